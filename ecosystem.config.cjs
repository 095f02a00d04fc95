// pm2 process file: `pm2 start ecosystem.config.cjs`. Each role is its own process, so pm2 restarts
// what dies (the receiver exits on purpose after failed heartbeats); workers are grouped by stage.
// Logs go to logs/<name>.out.log and .err.log (pino JSON, one event per line).
const path = require("node:path");

const logs = process.env.FIONA_LOG_DIR || path.join(__dirname, "logs");
const role = (name, args, extra = {}) => ({
  name,
  script: "bin/fiona.js",
  args,
  cwd: __dirname,
  env: { NODE_ENV: "production" },
  autorestart: true,
  // 100 ms, doubling up to 15 s while a process keeps dying; reset after 30 s of uptime.
  exp_backoff_restart_delay: 100,
  min_uptime: 30000,
  max_restarts: 50,
  // A SIGTERM lets the receiver drain associations (10 s) and workers finish active jobs.
  kill_timeout: 30000,
  out_file: path.join(logs, `${name}.out.log`),
  error_file: path.join(logs, `${name}.err.log`),
  merge_logs: true,
  time: false,
  ...extra,
});

module.exports = {
  apps: [
    role("fiona-receiver", "receiver", { kill_timeout: 15000 }),
    role("fiona-worker-ingest", "worker --queues ingest,arrival,study-arrived,reclassify", {
      max_memory_restart: "2G",
    }),
    role("fiona-worker-transfer", "worker --queues transfer,deidentify,send", { max_memory_restart: "2G" }),
    role(
      "fiona-worker-jobs",
      "worker --queues export,sftp,analysis,wsi,automation,cleanup,inventory,scanner-pull,redcap-push,redcap-sync",
      // Analysis jobs and WSI conversion may run for a long time.
      { max_memory_restart: "4G", kill_timeout: 120000 },
    ),
    role("fiona-web", "web", { max_memory_restart: "1G" }),
    role("fiona-scheduler", "scheduler", { max_memory_restart: "256M" }),
  ],
};
