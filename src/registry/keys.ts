/**
 * Registry keys. The `{prefix}` braces-free prefix is shared with BullMQ; wrap it in braces
 * (e.g. "{fiona}") to keep every key in one Redis Cluster hash slot.
 */
export const registryKeys = (prefix: string) => ({
  /** Sorted set of study UIDs scored by last activity (ms). */
  studies: `${prefix}:registry:studies`,
  /** Hash of one study's fields. */
  study: (studyUid: string) => `${prefix}:registry:study:${studyUid}`,
  /** Short-lived lock serialising read-modify-write of one series JSON. */
  seriesLock: (seriesUid: string) => `${prefix}:lock:series:${seriesUid}`,
});
