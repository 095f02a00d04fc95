import { describe, expect, it } from "vitest";
import { activeAssociations, parseJobStats, type MetricsSnapshot } from "../../src/metrics/collect.js";
import { bucketIndex, DURATION_BUCKETS_S } from "../../src/metrics/keys.js";
import { renderMetrics } from "../../src/metrics/render.js";
import { parseTransferStages } from "../../src/metrics/transfer-stages.js";
import type { QueueCounts } from "../../src/queues/counts.js";
import { parsePrometheus, sampleValue } from "./prom-parser.js";

const counts = (n: number): QueueCounts => ({
  waiting: n,
  active: 1,
  delayed: 0,
  failed: 2,
  completed: 10,
  prioritized: 0,
  waitingChildren: 0,
  paused: 0,
  isPaused: false,
});

describe("metrics rendering", () => {
  it("puts durations in the right bucket", () => {
    expect(bucketIndex(0)).toBe(0);
    expect(bucketIndex(10)).toBe(0);
    expect(bucketIndex(11)).toBe(1);
    expect(bucketIndex(1000)).toBe(DURATION_BUCKETS_S.indexOf(1));
    expect(bucketIndex(10_000_000)).toBe(DURATION_BUCKETS_S.length);
  });

  it("reads the Redis hashes and ignores foreign fields", () => {
    const jobs = parseJobStats({
      "ingest:completed": "3",
      "ingest:failed": "1",
      "ingest:sum_ms": "1500",
      "ingest:bucket:0": "2",
      [`ingest:bucket:${DURATION_BUCKETS_S.length}`]: "2",
      "no-such-queue:completed": "9",
      "ingest:bucket:99": "5",
    });
    expect(Object.keys(jobs)).toEqual(["ingest"]);
    expect(jobs.ingest).toMatchObject({ completed: 3, failed: 1, durationSumMs: 1500 });
    expect(jobs.ingest!.buckets.reduce((a, b) => a + b)).toBe(4);
    const now = 1_000_000;
    expect(
      activeAssociations({ "a:1": `3|${now - 1000}`, "b:2": `2|${now - 60_000}`, "c:3": "junk" }, now),
    ).toBe(3);
  });

  it("renders text that a strict parser accepts, with consistent histograms", () => {
    const buckets = new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0);
    buckets[0] = 4;
    buckets[3] = 1;
    buckets[DURATION_BUCKETS_S.length] = 1;
    const snap: MetricsSnapshot = {
      queues: { ingest: counts(5), arrival: counts(0) } as MetricsSnapshot["queues"],
      workers: { ingest: { workers: 2, oldestWaitingMs: 1500 } },
      jobs: { ingest: { completed: 5, failed: 1, durationSumMs: 4200, buckets } },
      transferStages: parseTransferStages({
        "send:count": "2",
        "send:sum_ms": "3500",
        "send:bucket:5": "1",
        "send:bucket:7": "1",
        "no-such-stage:count": "9",
      }),
      quarantined: { send: 3 },
      receiver: {
        instancesStored: 7,
        instancesFailed: 1,
        bytesReceived: 123456,
        associationsAccepted: 2,
        associationsRejected: 1,
        connectionsRefused: 7,
        associationsActive: 0,
      },
      disk: {
        path: "/data",
        usedPercent: 42.123,
        totalBytes: 1e12,
        freeBytes: 5e9,
        floorBytes: 2e10,
        belowFloor: true,
      },
      heartbeat: {
        consecutiveFailures: 2,
        failuresTotal: 5,
        skippedTotal: 0,
        lastOk: new Date(1_700_000_000_000).toISOString(),
      },
    };
    const text = renderMetrics(snap);
    const fams = parsePrometheus(text);
    expect(fams.get("fiona_job_duration_seconds")?.type).toBe("histogram");
    expect(sampleValue(fams, "fiona_queue_jobs", { queue: "ingest", state: "waiting" })).toBe(5);
    expect(sampleValue(fams, "fiona_queue_workers", { queue: "ingest" })).toBe(2);
    expect(sampleValue(fams, "fiona_job_duration_seconds_count", { queue: "ingest" })).toBe(6);
    expect(sampleValue(fams, "fiona_job_duration_seconds_bucket", { queue: "ingest", le: "0.25" })).toBe(5);
    expect(sampleValue(fams, "fiona_job_duration_seconds_sum", { queue: "ingest" })).toBe(4.2);
    expect(fams.get("fiona_transfer_stage_seconds")?.type).toBe("histogram");
    expect(sampleValue(fams, "fiona_transfer_stage_seconds_count", { stage: "send" })).toBe(2);
    expect(sampleValue(fams, "fiona_transfer_stage_seconds_bucket", { stage: "send", le: "1" })).toBe(1);
    expect(sampleValue(fams, "fiona_transfer_stage_seconds_sum", { stage: "send" })).toBe(3.5);
    expect(sampleValue(fams, "fiona_transfer_stage_seconds_count", { stage: "queue_wait" })).toBe(0);
    expect(sampleValue(fams, "fiona_received_bytes_total")).toBe(123456);
    expect(sampleValue(fams, "fiona_associations_total", { state: "rejected" })).toBe(1);
    expect(sampleValue(fams, "fiona_connections_refused_total", {})).toBe(7);
    expect(sampleValue(fams, "fiona_quarantined", { queue: "send" })).toBe(3);
    expect(sampleValue(fams, "fiona_quarantined", { queue: "ingest" })).toBe(0);
    expect(sampleValue(fams, "fiona_disk_used_percent")).toBe(42.12);
    expect(sampleValue(fams, "fiona_disk_free_bytes")).toBe(5e9);
    expect(sampleValue(fams, "fiona_disk_floor_bytes")).toBe(2e10);
    expect(sampleValue(fams, "fiona_receiver_below_floor")).toBe(1);
    expect(sampleValue(fams, "fiona_heartbeat_consecutive_failures")).toBe(2);
    expect(sampleValue(fams, "fiona_heartbeat_failures_total")).toBe(5);
    expect(sampleValue(fams, "fiona_heartbeat_last_ok_timestamp_seconds")).toBe(1_700_000_000);
  });

  it("the parser rejects malformed text", () => {
    expect(() => parsePrometheus("fiona_x 1\n")).toThrow(/without a declared family/);
    expect(() => parsePrometheus('# HELP a_total x\n# TYPE a_total counter\na_total{q="1"} one\n')).toThrow(
      /bad sample value/,
    );
    const badHist =
      "# HELP h x\n# TYPE h histogram\n" + 'h_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n';
    expect(() => parsePrometheus(badHist)).toThrow(/cumulative/);
  });
});
