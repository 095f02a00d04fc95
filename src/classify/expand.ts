import type { CompiledEntry } from "./rules.js";

/** A { "rule": id } or { "notrule": id } entry before expansion. */
export interface RefItem {
  ref: string;
  negate: boolean;
  /** Where it was written, for error messages. */
  where: string;
}

export type Item = CompiledEntry | RefItem;

export interface ExpandNode {
  id?: string;
  where: string;
  items: Item[];
}

const MAX_PASSES = 100;

const isRef = (item: Item): item is RefItem => "ref" in item;

/**
 * Replace references by copies of the referenced definition's entries, appended at the end of the
 * list, pass after pass until nothing changes (the original's resolveClassifyRules). A "notrule"
 * sets negate on every copied entry: it means "none of the referenced conditions hold", not
 * "not all of them"; an entry that was already negated stays negated (set, not toggled, as in the
 * original). Unknown ids, duplicate ids and cycles are reported in `issues`; the nodes are then
 * left unexpanded.
 */
export function expandReferences(nodes: ExpandNode[], issues: string[]): void {
  const byId = new Map<string, ExpandNode>();
  for (const node of nodes) {
    if (node.id === undefined) continue;
    const seen = byId.get(node.id);
    if (seen) issues.push(`${node.where}: duplicate id "${node.id}" (also on ${seen.where})`);
    else byId.set(node.id, node);
  }
  for (const node of nodes)
    for (const item of node.items)
      if (isRef(item) && !byId.has(item.ref)) issues.push(`${item.where}: unknown rule id "${item.ref}"`);
  if (issues.length > 0) return;

  const cycle = findCycle(byId);
  if (cycle) {
    issues.push(`reference cycle: ${cycle}`);
    return;
  }

  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let changed = false;
    for (const node of nodes) {
      const refs = node.items.filter(isRef);
      if (refs.length === 0) continue;
      const copies = refs.flatMap((ref) => {
        const target = byId.get(ref.ref)!;
        return target.items.map((item) => copyFor(item, ref, target.id!));
      });
      node.items = [...node.items.filter((i) => !isRef(i)), ...copies];
      changed = true;
    }
    if (!changed) return;
  }
  const deep = nodes.find((n) => n.items.some(isRef));
  if (deep) issues.push(`${deep.where}: references nested deeper than ${MAX_PASSES} levels`);
}

function copyFor(item: Item, ref: RefItem, targetId: string): Item {
  const negate = item.negate || ref.negate;
  if (isRef(item)) return { ...item, negate };
  return { ...item, negate, from: item.from ?? targetId };
}

function findCycle(byId: Map<string, ExpandNode>): string | undefined {
  const done = new Set<string>();
  const stack: string[] = [];
  const visit = (id: string): string | undefined => {
    stack.push(id);
    for (const item of byId.get(id)!.items) {
      if (!isRef(item)) continue;
      const at = stack.indexOf(item.ref);
      if (at >= 0) return [...stack.slice(at), item.ref].join(" -> ");
      if (!done.has(item.ref)) {
        const found = visit(item.ref);
        if (found) return found;
      }
    }
    stack.pop();
    done.add(id);
    return undefined;
  };
  for (const id of byId.keys()) {
    if (done.has(id)) continue;
    const found = visit(id);
    if (found) return found;
  }
  return undefined;
}
