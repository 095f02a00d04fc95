// pm2 process file: `pm2 start ecosystem.config.cjs`. Each role is its own process so pm2 restarts
// what dies; the workers scale by instances (they share Redis and the data directory).
const common = {
  script: "bin/fiona.js",
  cwd: __dirname,
  env: { NODE_ENV: "production" },
  kill_timeout: 30000, // let workers finish active jobs on SIGTERM
  max_restarts: 50,
  exp_backoff_restart_delay: 1000,
};

module.exports = {
  apps: [
    { ...common, name: "fiona-receiver", args: "receiver" },
    { ...common, name: "fiona-worker", args: "worker", instances: 2, exec_mode: "fork" },
    { ...common, name: "fiona-web", args: "web" },
  ],
};
