import { spawn } from "node:child_process";
import type { SubscriptionAction } from "../config.js";
import type { AutomationEvent } from "./event.js";

type CommandAction = Extract<SubscriptionAction, { type: "command" }>;

const STDERR_TAIL = 300;

/** Run argv without a shell, the event JSON on stdin and in FIONA_EVENT. Exit ≠ 0 or a timeout throws. */
export function runCommand(action: CommandAction, event: AutomationEvent): Promise<void> {
  const json = JSON.stringify(event);
  const [cmd, ...args] = action.argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["pipe", "ignore", "pipe"],
      env: { ...process.env, FIONA_EVENT: json },
      timeout: action.timeoutMs,
      killSignal: "SIGKILL",
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_TAIL)));
    child.stdin.on("error", () => {}); // the command may exit without reading stdin
    child.stdin.end(json);
    child.on("error", (e) => reject(new Error(`${cmd}: ${e.message}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else if (signal) reject(new Error(`${cmd} killed by ${signal} (timeout ${action.timeoutMs} ms)`));
      else reject(new Error(`${cmd} exited with ${code}${stderr ? `: ${stderr.trim()}` : ""}`));
    });
  });
}
