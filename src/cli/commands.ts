import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { analyzeCommand, cancelAnalysisCommand, type AnalyzeOptions } from "../analysis/cli.js";
import { redactConfig } from "../config/load.js";
import { createLogger } from "../log.js";
import { ALL_QUEUES, type QueueName } from "../queues/index.js";
import { WORKER_QUEUES } from "../processors/index.js";
import { runRoles } from "../roles/run.js";
import { hashPassword } from "../web/password.js";
import { configFrom, type GlobalOptions } from "./main.js";
import { printStatus, printStudies } from "./inspect.js";
import { rulesTest } from "./rules-test.js";
import { s2m } from "./s2m.js";
import { exportCli, type ExportCliOptions } from "../export/cli.js";
import { assign, deidOffline, printTransfers, type AssignOptions } from "./transfers.js";
import { retryCli } from "./retry.js";
import { registerInventoryCommands } from "../inventory/cli.js";
import { DEMO_PACS_AE, DEMO_PROJECT, withDemo } from "../demo/demo-mode.js";
import { registerDoctorCommand } from "../doctor/cli.js";
import { registerFailuresCommands } from "../quarantine/cli.js";
import { registerReclassifyCommands } from "../reclassify/cli.js";
import { registerPullCommand } from "../scanner/cli.js";
import { registerAttachCommand } from "../wsi/cli.js";
import { registerAuditCommand } from "./audit.js";
import { registerUserCommands } from "./users.js";

function parseQueues(list: string | undefined): QueueName[] {
  if (!list) return WORKER_QUEUES;
  const names = list
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = names.filter((n) => !ALL_QUEUES.includes(n as QueueName));
  if (bad.length) throw new Error(`unknown queue(s): ${bad.join(", ")} (known: ${ALL_QUEUES.join(", ")})`);
  return names as QueueName[];
}

export function registerCommands(program: Command): void {
  const cfg = () => configFrom(program.opts<GlobalOptions>());
  const logFor = (c: ReturnType<typeof cfg>) => createLogger(c.log.level);

  program
    .command("start")
    .description(
      "run every role in one process (receiver, workers, web); starts redis-server if none answers",
    )
    .option(
      "--demo",
      `add a project ${DEMO_PROJECT} whose research PACS is this FIONA's own receiver (not for real data)`,
    )
    .action(async (o: { demo?: boolean }) => {
      const c = o.demo ? withDemo(cfg()) : cfg();
      const log = logFor(c);
      if (o.demo)
        log.warn(
          {
            event: "demo-mode",
            project: DEMO_PROJECT,
            destination: `${DEMO_PACS_AE}@127.0.0.1:${c.dicomPort}`,
          },
          "demo mode: assigned studies come back to this FIONA pseudonymized; not for real data",
        );
      await runRoles(
        c,
        { receiver: true, workers: WORKER_QUEUES, web: true, scheduler: true, startRedis: true },
        log,
      );
    });
  program
    .command("receiver")
    .description("run the DICOM receiver (C-ECHO, C-STORE)")
    .action(async () => {
      const c = cfg();
      await runRoles(c, { receiver: true }, logFor(c));
    });
  program
    .command("worker")
    .description("run pipeline workers")
    .option("-q, --queues <list>", `comma-separated queues (default: ${WORKER_QUEUES.join(",")})`)
    .action(async (o: { queues?: string }) => {
      const c = cfg();
      await runRoles(c, { workers: parseQueues(o.queues) }, logFor(c));
    });
  program
    .command("scheduler")
    .description("upsert every job scheduler (heartbeat, cleanup, exports, REDCap, inventory) and keep them")
    .action(async () => {
      const c = cfg();
      await runRoles(c, { scheduler: true }, logFor(c));
    });
  program
    .command("web")
    .description("run the web server (Bull Board at /admin/queues, /healthz, /readyz)")
    .action(async () => {
      const c = cfg();
      await runRoles(c, { web: true }, logFor(c));
    });
  program
    .command("status")
    .description(
      "queues, workers, job totals, files received, associations, disk and heartbeat (as /metrics)",
    )
    .option("--json", "machine-readable output")
    .action(async (o: { json?: boolean }) => printStatus(cfg(), !!o.json));
  program
    .command("studies")
    .description("studies in the incoming list with their series")
    .option("--json", "machine-readable output")
    .option("--show-phi", "include patient name, ID and accession number (read from the series JSON on disk)")
    .action(async (o: { json?: boolean; showPhi?: boolean }) => printStudies(cfg(), !!o.json, !!o.showPhi));
  program
    .command("s2m")
    .description("send a folder, or an archived study by StudyInstanceUID, back through the receiver")
    .argument("<dirOrStudyUid>")
    .option("--host <host>", "receiver host", "127.0.0.1")
    .option("--port <port>", "receiver port (default: the configured DICOM port)")
    .option("--aet <aet>", "calling AE title", "S2M")
    .action(async (target: string, o: { host: string; port?: string; aet: string }) =>
      s2m(cfg(), target, { host: o.host, port: o.port ? Number(o.port) : undefined, callingAe: o.aet }),
    );
  program
    .command("assign")
    .description("send an arrived study, pseudonymized, to a project's research PACS")
    .argument("<StudyInstanceUID>")
    .requiredOption("-p, --project <name>", "project")
    .requiredOption("-s, --participant <id>", "participant pseudonym (must match the project's pattern)")
    .option("-e, --event <name>", "event (time point)")
    .option("--by <who>", "who asked (recorded with the request)")
    .option("--replace", "confirm re-assigning a study already sent for the project as another participant")
    .action(async (uid: string, o: AssignOptions) => assign(cfg(), uid, o));
  program
    .command("transfers")
    .description("transfer requests and the result of their latest run")
    .option("--json", "machine-readable output")
    .action(async (o: { json?: boolean }) => printTransfers(cfg(), !!o.json));
  program
    .command("retry")
    .description("run a transfer request again, as the Assign page's Retry (sends what was not accepted yet)")
    .argument("<requestId>", "transfer request id (fiona transfers)")
    .action(async (id: string) => retryCli(cfg(), id));
  program
    .command("export")
    .description(
      "build a ZIP export of a study (DEFAULT, PURE or NIFTI layout); optionally upload it by SFTP",
    )
    .argument("<StudyInstanceUID>")
    .requiredOption("-p, --project <name>", "project")
    .requiredOption("-s, --participant <id>", "participant pseudonym")
    .option("-e, --event <name>", "event")
    .option("-l, --layout <layout>", "DEFAULT, PURE or NIFTI", "DEFAULT")
    .option("--noassign", "pseudonymize the received study now, even if it was transferred")
    .option("--upload <destination>", "then upload it to this exports.sftp destination")
    .action(async (uid: string, o: ExportCliOptions) => exportCli(cfg(), uid, o));
  program
    .command("deid")
    .description("pseudonymize a file or folder offline with a project's settings")
    .argument("<in>")
    .argument("<out>", "output folder")
    .requiredOption("-p, --project <name>", "project")
    .requiredOption("-s, --participant <id>", "participant pseudonym")
    .option("-e, --event <name>", "event")
    .action(async (input: string, out: string, o: AssignOptions) => deidOffline(cfg(), input, out, o));
  program
    .command("analyze")
    .description("run an analysis job (analysis.jobs) over a received study, pseudonymized for a project")
    .argument("<StudyInstanceUID>")
    .requiredOption("-j, --job <name>", "analysis job name")
    .requiredOption("-p, --project <name>", "project")
    .requiredOption("-s, --participant <id>", "participant pseudonym")
    .option("-e, --event <name>", "event")
    .action(async (uid: string, o: AnalyzeOptions) => analyzeCommand(cfg(), uid, o));
  program
    .command("analyze-cancel")
    .description("stop a running analysis job")
    .argument("<jobId>")
    .action(async (id: string) => cancelAnalysisCommand(cfg(), id));
  registerInventoryCommands(program, cfg);
  registerReclassifyCommands(program, cfg);
  registerFailuresCommands(program, cfg);
  registerDoctorCommand(program, cfg);
  registerPullCommand(program, cfg);
  registerAttachCommand(program, cfg);
  registerUserCommands(program, cfg);
  registerAuditCommand(program, cfg);
  const rules = program.command("rules").description("classification rules");
  rules
    .command("test")
    .description("classify one DICOM file and explain which types match and why")
    .argument("<file>")
    .option("--rules <rulesFile>", "rules file (default: the configured one)")
    .option("--show-phi", "show patient identifying values in the explanation")
    .action(async (file: string, o: { rules?: string; showPhi?: boolean }) => rulesTest(cfg(), file, o));
  const config = program.command("config").description("configuration");
  config
    .command("check")
    .description("validate the configuration and print the effective values (secrets redacted)")
    .action(() => {
      console.log(JSON.stringify(redactConfig(cfg()), null, 2));
    });
  program
    .command("dev")
    .description("development helpers")
    .command("redcap")
    .description(
      "run a REDCap API simulator with FIONA's projects (Incoming, Routing, … and one per configured project)",
    )
    .option("--port <port>", "port to listen on", "8090")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--ban-threshold <n>", "calls per minute from one IP before it is banned (0: never)", "600")
    .action(async (o: { port: string; host: string; banThreshold: string }) => {
      // The simulator is development code outside the build: run it from the checkout's sources.
      const entry = fileURLToPath(new URL("../../dev/redcap/cli.ts", import.meta.url));
      if (!existsSync(entry)) throw new Error("fiona dev redcap needs a source checkout (dev/redcap/cli.ts)");
      const args = [
        "--import",
        "tsx",
        entry,
        "--port",
        o.port,
        "--host",
        o.host,
        "--ban-threshold",
        o.banThreshold,
      ];
      const child = spawn(process.execPath, args, { stdio: "inherit" });
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => child.kill(signal));
      await new Promise<void>((resolve) => child.once("exit", () => resolve()));
    });
  program
    .command("redcap")
    .description("REDCap integration")
    .command("clear-alert")
    .description(
      "after REDCap lifted its ban on this host: clear the REDCap alert and resume the REDCap stages",
    )
    .action(async () => {
      const { clearRedcapAlertCli } = await import("../redcap/cli.js");
      await clearRedcapAlertCli(cfg());
    });
  program
    .command("hash-password")
    .description("hash a password for web.users[].passwordHash (reads it from stdin)")
    .action(async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      const pw = Buffer.concat(chunks)
        .toString("utf8")
        .replace(/\r?\n$/, "");
      if (!pw) throw new Error("no password on stdin");
      console.log(hashPassword(pw));
    });
}
