import type { MetricsSnapshot } from "./collect.js";
import { DURATION_BUCKETS_S } from "./keys.js";
import { ALL_QUEUES } from "../queues/index.js";

type Labels = Record<string, string>;

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (l: Labels) => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(v)}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
};

/** Prometheus text exposition format 0.0.4 of one snapshot. Labels are queue, state and stage only. */
export function renderMetrics(s: MetricsSnapshot): string {
  const out: string[] = [];
  const family = (name: string, type: "gauge" | "counter" | "histogram", help: string) =>
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  const sample = (name: string, labels: Labels, value: number) =>
    out.push(`${name}${labelText(labels)} ${value}`);
  /** Samples of one histogram series from non-cumulative DURATION_BUCKETS_S counts (the last +Inf). */
  const histogram = (name: string, labels: Labels, buckets: number[], sumMs: number) => {
    let cumulative = 0;
    DURATION_BUCKETS_S.forEach((le, i) => {
      cumulative += buckets[i] ?? 0;
      sample(`${name}_bucket`, { ...labels, le: String(le) }, cumulative);
    });
    cumulative += buckets[DURATION_BUCKETS_S.length] ?? 0;
    sample(`${name}_bucket`, { ...labels, le: "+Inf" }, cumulative);
    sample(`${name}_sum`, labels, sumMs / 1000);
    sample(`${name}_count`, labels, cumulative);
  };

  family("fiona_queue_jobs", "gauge", "Jobs per queue and state.");
  for (const [queue, c] of Object.entries(s.queues)) {
    const states = {
      waiting: c.waiting,
      active: c.active,
      delayed: c.delayed,
      failed: c.failed,
      completed: c.completed,
    };
    const more = { prioritized: c.prioritized, "waiting-children": c.waitingChildren };
    for (const [state, v] of Object.entries({ ...states, ...more }))
      sample("fiona_queue_jobs", { queue, state }, v);
  }
  family("fiona_queue_paused", "gauge", "1 when the queue is paused.");
  for (const [queue, c] of Object.entries(s.queues))
    sample("fiona_queue_paused", { queue }, c.isPaused ? 1 : 0);
  family("fiona_queue_workers", "gauge", "Workers connected to the queue.");
  for (const [queue, w] of Object.entries(s.workers)) sample("fiona_queue_workers", { queue }, w.workers);
  family("fiona_queue_oldest_waiting_seconds", "gauge", "How long the oldest waiting job has waited.");
  for (const [queue, w] of Object.entries(s.workers))
    sample("fiona_queue_oldest_waiting_seconds", { queue }, w.oldestWaitingMs / 1000);

  family("fiona_jobs_completed_total", "counter", "Job attempts completed per queue.");
  for (const [queue, j] of Object.entries(s.jobs))
    sample("fiona_jobs_completed_total", { queue }, j.completed);
  family("fiona_jobs_failed_total", "counter", "Job attempts failed per queue (retried or final).");
  for (const [queue, j] of Object.entries(s.jobs)) sample("fiona_jobs_failed_total", { queue }, j.failed);
  family("fiona_job_duration_seconds", "histogram", "Processing time of job attempts per queue.");
  for (const [queue, j] of Object.entries(s.jobs))
    histogram("fiona_job_duration_seconds", { queue }, j.buckets, j.durationSumMs);
  family(
    "fiona_transfer_stage_seconds",
    "histogram",
    "Per finished transfer run: queue wait, de-identification and send (wall time), bookkeeping.",
  );
  for (const [stage, st] of Object.entries(s.transferStages))
    histogram("fiona_transfer_stage_seconds", { stage }, st.buckets, st.sumMs);

  const rx = s.receiver;
  family("fiona_received_files_total", "counter", "Instances received (C-STORE) and stored.");
  sample("fiona_received_files_total", {}, rx.instancesStored);
  family("fiona_received_files_failed_total", "counter", "Instances received and refused (not stored).");
  sample("fiona_received_files_failed_total", {}, rx.instancesFailed);
  family("fiona_received_bytes_total", "counter", "Dataset bytes of the instances stored.");
  sample("fiona_received_bytes_total", {}, rx.bytesReceived);
  family("fiona_associations_total", "counter", "DICOM associations requested, by outcome.");
  sample("fiona_associations_total", { state: "accepted" }, rx.associationsAccepted);
  sample("fiona_associations_total", { state: "rejected" }, rx.associationsRejected);
  family(
    "fiona_connections_refused_total",
    "counter",
    "DICOM connections closed unread by admission control.",
  );
  sample("fiona_connections_refused_total", {}, rx.connectionsRefused);
  family("fiona_associations_active", "gauge", "DICOM associations open now.");
  sample("fiona_associations_active", {}, rx.associationsActive);

  family("fiona_quarantined", "gauge", "Objects a stage refused or gave up on, until retried or dismissed.");
  for (const queue of ALL_QUEUES) sample("fiona_quarantined", { queue }, s.quarantined[queue] ?? 0);

  if (s.disk) {
    family("fiona_disk_used_percent", "gauge", "Used space of the data directory's file system.");
    sample("fiona_disk_used_percent", {}, Number(s.disk.usedPercent.toFixed(2)));
    family("fiona_disk_free_bytes", "gauge", "Free space of the data directory's file system.");
    sample("fiona_disk_free_bytes", {}, s.disk.freeBytes);
    family("fiona_disk_floor_bytes", "gauge", "Free-space floor: below it the receiver refuses C-STOREs.");
    sample("fiona_disk_floor_bytes", {}, s.disk.floorBytes);
    family(
      "fiona_receiver_below_floor",
      "gauge",
      "1 while free space is below the floor (C-STOREs refused).",
    );
    sample("fiona_receiver_below_floor", {}, s.disk.belowFloor ? 1 : 0);
  }
  const hb = s.heartbeat;
  if (hb) {
    family("fiona_heartbeat_consecutive_failures", "gauge", "Receiver heartbeats (C-ECHO) failed in a row.");
    sample("fiona_heartbeat_consecutive_failures", {}, hb.consecutiveFailures);
    family("fiona_heartbeat_failures_total", "counter", "Receiver heartbeats failed.");
    sample("fiona_heartbeat_failures_total", {}, hb.failuresTotal);
    const lastOk = hb.lastOk ? Date.parse(hb.lastOk) : NaN;
    if (Number.isFinite(lastOk)) {
      family("fiona_heartbeat_last_ok_timestamp_seconds", "gauge", "When the last heartbeat succeeded.");
      sample("fiona_heartbeat_last_ok_timestamp_seconds", {}, Math.floor(lastOk / 1000));
    }
  }
  return `${out.join("\n")}\n`;
}
