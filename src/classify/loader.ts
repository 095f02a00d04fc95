import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { compileRules, RulesError, type CompiledRules } from "./rules.js";

function parse(text: string, file: string): CompiledRules {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RulesError([`invalid JSON: ${(err as Error).message}`], file);
  }
  return compileRules(json, file);
}

/** Read and compile a rules file; throws RulesError (or the fs error) on failure. */
export async function loadRulesFile(file: string): Promise<CompiledRules> {
  return parse(await readFile(file, "utf8"), file);
}

export interface RulesWatch {
  /** The last rules that loaded without error. */
  current(): CompiledRules;
  close(): void;
}

export interface WatchOptions {
  /** Quiet time after the last change event before reloading (editors write in several steps). */
  debounceMs?: number;
}

/**
 * Load `file`, then reload it whenever it changes. The directory is watched rather than the file,
 * so editors that save by rename keep being followed. A bad edit keeps the previous rules and
 * is reported through onError; rejects if the first load fails.
 */
export async function watchRules(
  file: string,
  onChange: (rules: CompiledRules) => void,
  onError: (err: Error) => void,
  options: WatchOptions = {},
): Promise<RulesWatch> {
  const debounceMs = options.debounceMs ?? 200;
  let lastText = await readFile(file, "utf8");
  let rules = parse(lastText, file);
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const reload = async () => {
    try {
      const text = await readFile(file, "utf8");
      // Several events arrive per save; only a real content change counts.
      if (closed || text === lastText) return;
      lastText = text;
      rules = parse(text, file);
      onChange(rules);
    } catch (err) {
      if (!closed) onError(err as Error);
    }
  };
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      // Serialise reloads: a change during a reload is picked up by the next one.
      running = (running ?? Promise.resolve()).then(reload);
    }, debounceMs);
  };

  const base = path.basename(file);
  const watcher: FSWatcher = watch(path.dirname(file), (_event, name) => {
    if (name === null || name === base) schedule();
  });
  watcher.on("error", (err) => onError(err));

  return {
    current: () => rules,
    close: () => {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
