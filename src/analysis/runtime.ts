import { spawn, spawnSync } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";
import type { AnalysisJobConfig, RuntimeName } from "./config.js";

/** The folder contract shared by every runtime (host paths). */
export interface JobFolder {
  /** The job folder: descr.json, input/, output/, log/. */
  dir: string;
  input: string;
  output: string;
  descr: string;
  logDir: string;
}

export function jobFolder(dir: string): JobFolder {
  return {
    dir,
    input: path.join(dir, "input"),
    output: path.join(dir, "output"),
    descr: path.join(dir, "descr.json"),
    logDir: path.join(dir, "log"),
  };
}

/** Where the folder contract appears inside a container. */
const CONTAINER_PATHS = {
  input: "/data/input",
  output: "/data/output",
  descr: "/data/descr.json",
} as const;

/** What to run: argv[0] is the program. */
export interface Invocation {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  /** Command that stops the run besides killing the process tree (docker/podman kill <name>). */
  killArgv?: string[];
  /** Container name (docker/podman). */
  containerName?: string;
}

function substitute(args: readonly string[], values: Record<string, string>): string[] {
  return args.map((a) =>
    a.replace(/\{(input|output|descr|output_json|job)\}/g, (_, k: string) => values[k] ?? _),
  );
}

/** Environment variables describing the folder contract (and the job's options). */
function contractEnv(p: { input: string; output: string; descr: string }, job: AnalysisJobConfig) {
  const env: Record<string, string> = {
    FIONA_INPUT: p.input,
    FIONA_OUTPUT: p.output,
    FIONA_DESCR: p.descr,
    FIONA_OUTPUT_JSON: path.posix.join(p.output, "output.json"),
  };
  if (job.options) {
    env.FIONA_JOB_OPTIONS = JSON.stringify(job.options);
    env.ROR_CONT_OPTIONS = env.FIONA_JOB_OPTIONS;
  }
  return env;
}

/** A container name for a run: letters, digits, _ . - (docker's rule), unique per BullMQ job. */
function containerName(jobName: string, runId: string): string {
  return `fiona-${jobName}-${runId}`.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 120);
}

/**
 * The command line of one run. docker/podman: input and descr.json read-only, output writable, no
 * network unless the job allows it, memory/CPU limits, removed afterwards, named so it can be killed.
 * process: the command itself with host paths, in the job folder.
 */
export function buildInvocation(
  runtime: RuntimeName,
  job: AnalysisJobConfig,
  folder: JobFolder,
  runId: string,
  opts: { engineBinary?: string; baseEnv?: NodeJS.ProcessEnv } = {},
): Invocation {
  if (runtime === "process") {
    const [program, ...rest] = substitute(job.command, {
      input: folder.input,
      output: folder.output,
      descr: folder.descr,
      output_json: path.join(folder.output, "output.json"),
      job: folder.dir,
    });
    if (!program) throw new Error(`analysis job ${job.name}: the process runtime needs a command`);
    return {
      argv: [program, ...rest],
      cwd: folder.dir,
      env: {
        ...filterEnv(opts.baseEnv ?? process.env),
        ...job.env,
        ...contractEnv(folder, job),
        FIONA_JOB_DIR: folder.dir,
      },
    };
  }
  if (!job.image) throw new Error(`analysis job ${job.name}: the ${runtime} runtime needs an image`);
  const bin = opts.engineBinary ?? runtime;
  const name = containerName(job.name, runId);
  const env = { ...job.env, ...contractEnv(CONTAINER_PATHS, job) };
  const argv = [bin, "run", "--rm", "--name", name];
  if (!job.network) argv.push("--network", "none");
  if (job.limits.memory) argv.push("--memory", job.limits.memory);
  if (job.limits.cpus !== undefined) argv.push("--cpus", String(job.limits.cpus));
  for (const [k, v] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b)))
    argv.push("--env", `${k}=${v}`);
  argv.push(
    "--volume",
    `${folder.input}:${CONTAINER_PATHS.input}:ro`,
    "--volume",
    `${folder.descr}:${CONTAINER_PATHS.descr}:ro`,
    "--volume",
    `${folder.output}:${CONTAINER_PATHS.output}:rw`,
    job.image,
    ...substitute(job.command, {
      input: CONTAINER_PATHS.input,
      output: CONTAINER_PATHS.output,
      descr: CONTAINER_PATHS.descr,
      output_json: `${CONTAINER_PATHS.output}/output.json`,
      job: "/data",
    }),
  );
  return {
    argv,
    cwd: folder.dir,
    env: filterEnv(opts.baseEnv ?? process.env),
    killArgv: [bin, "kill", name],
    containerName: name,
  };
}

/** The parent's environment without FIONA secrets (site secret, REDCap tokens). */
function filterEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env))
    if (v !== undefined && !/^FIONA_(SECRET|REDCAP_TOKEN)/.test(k)) out[k] = v;
  return out;
}

export interface RunOutcome {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  cancelled: boolean;
  durationMs: number;
}

export interface RunOptions {
  timeoutMs: number;
  /** Stops the run (Worker.cancelJob, or a cancel request seen by the processor). */
  signal?: AbortSignal;
  /** Each line of output, tagged with its stream. */
  onLine?: (stream: "stdout" | "stderr", line: string) => void;
  /** Files receiving the full stdout and stderr. */
  logDir?: string;
  /** Between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

/**
 * Run an invocation in its own process group. On timeout or abort: `killArgv` (docker kill), SIGTERM
 * to the group, SIGKILL after the grace period. Resolves when the process has exited.
 */
export function runInvocation(inv: Invocation, o: RunOptions): Promise<RunOutcome> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let timedOut = false;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const [program, ...args] = inv.argv;
    if (!program) return reject(new Error("empty command"));
    const child = spawn(program, args, {
      cwd: inv.cwd,
      env: inv.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (o.logDir) mkdirSync(o.logDir, { recursive: true });
    const files = o.logDir
      ? {
          stdout: createWriteStream(path.join(o.logDir, "stdout.log")),
          stderr: createWriteStream(path.join(o.logDir, "stderr.log")),
        }
      : undefined;
    for (const stream of ["stdout", "stderr"] as const) {
      let rest = "";
      const s = child[stream];
      s.setEncoding("utf8");
      s.on("data", (chunk: string) => {
        files?.[stream].write(chunk);
        const lines = (rest + chunk).split(/\r?\n/);
        rest = lines.pop() ?? "";
        for (const l of lines) o.onLine?.(stream, l);
      });
      s.on("end", () => {
        if (rest) o.onLine?.(stream, rest);
        rest = "";
      });
    }
    const kill = () => {
      if (inv.killArgv) {
        const [k, ...kargs] = inv.killArgv;
        if (k) spawnSync(k, kargs, { stdio: "ignore", timeout: 30_000 });
      }
      signalGroup(child.pid, "SIGTERM");
      killTimer = setTimeout(() => signalGroup(child.pid, "SIGKILL"), o.killGraceMs ?? 5000);
      killTimer.unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, o.timeoutMs);
    const onAbort = () => {
      cancelled = true;
      kill();
    };
    if (o.signal?.aborted) onAbort();
    else o.signal?.addEventListener("abort", onAbort, { once: true });
    child.once("error", (e) => {
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      files?.stdout.end();
      files?.stderr.end();
      reject(new Error(`could not start ${program}: ${e.message}`));
    });
    child.once("close", (exitCode, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      // Children that outlived the leader (still in its group) go too.
      if (timedOut || cancelled) signalGroup(child.pid, "SIGKILL");
      o.signal?.removeEventListener("abort", onAbort);
      files?.stdout.end();
      files?.stderr.end();
      resolve({ exitCode, signal, timedOut, cancelled, durationMs: Math.round(performance.now() - started) });
    });
  });
}

function signalGroup(pid: number | undefined, sig: NodeJS.Signals) {
  if (!pid) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
}
