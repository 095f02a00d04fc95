/** The stored inventory and reconciliation of a project as the CLI and the API show them. */
import type { Reconciliation } from "./reconcile.js";
import type { InventoryStore, ProjectInventory } from "./store.js";
import { withoutIdentity } from "./studies.js";

export interface InventoryView {
  project: string;
  inventory?: ProjectInventory;
  reconciliation?: Reconciliation;
}

/** Without `showIdentity`, patient ID and name, accession number and referring physician are left out. */
export async function inventoryView(
  store: InventoryStore,
  project: string,
  showIdentity: boolean,
): Promise<InventoryView> {
  const [inventory, reconciliation] = await Promise.all([
    store.inventory(project),
    store.reconciliation(project),
  ]);
  const strip = showIdentity ? <T>(x: T) => x : withoutIdentity;
  return {
    project,
    ...(inventory ? { inventory: { ...inventory, studies: inventory.studies.map(strip) } } : {}),
    ...(reconciliation
      ? { reconciliation: { ...reconciliation, notSentByFiona: reconciliation.notSentByFiona.map(strip) } }
      : {}),
  };
}
