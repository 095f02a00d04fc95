/**
 * Registry keys. The `{prefix}` braces-free prefix is shared with BullMQ; wrap it in braces
 * (e.g. "{fiona}") to keep every key in one Redis Cluster hash slot.
 */
export const registryKeys = (prefix: string) => ({
  /** Sorted set of study UIDs scored by last activity (ms). */
  studies: `${prefix}:registry:studies`,
  /** Hash of one study's fields. */
  study: (studyUid: string) => `${prefix}:registry:study:${studyUid}`,
  /** Hash of one transfer request and the result of its latest run. */
  transfer: (requestId: string) => `${prefix}:registry:transfer:${requestId}`,
  /** Sorted set of transfer request ids by last update (ms). */
  transfers: `${prefix}:registry:transfers`,
  /** Set of transfer request ids made for one study (late series are sent to each). */
  studyTransfers: (studyUid: string) => `${prefix}:registry:study:${studyUid}:transfers`,
  /** Set of pseudonymized SOP instance UIDs already accepted by the destination. */
  transferSent: (requestId: string) => `${prefix}:registry:transfer:${requestId}:sent`,
  /** Lock held while one series of one transfer request is being sent. */
  sendLock: (requestId: string, seriesUid: string) => `${prefix}:lock:send:${requestId}:${seriesUid}`,
  /** Short-lived lock serialising read-modify-write of one series JSON. */
  seriesLock: (seriesUid: string) => `${prefix}:lock:series:${seriesUid}`,
});
