/**
 * The DICOM receiver: C-STORE/C-ECHO SCP that archives the received bytes unchanged under
 * `<data>/site/archive/scp_<StudyInstanceUID>/<MOD>.<SOPInstanceUID>` (Part-10, our meta header),
 * adds one `ingest` job per file, and only then answers Success. Bad datasets go to
 * `<data>/site/quarantine-bad/` with a JSON sidecar and a failure status.
 *
 *   const rx = await startReceiver(cfg);          // listens on cfg.dicomHost:cfg.dicomPort
 *   rx.activeAssociations();                      // > 0 while peers are sending
 *   await rx.close();                             // stop accepting, drain (bounded), abort the rest
 *
 * Files: server.ts (listeners, admission, Redis producer), association.ts (one association: the
 * acceptor state machine on src/dimse's PDU reader and codecs), store.ts (persist, then enqueue;
 * quarantine), collect.ts (dataset buffering/spilling), identify.ts (UIDs + structure check),
 * policy.ts (what is accepted). The network layer itself: docs/dicom-network.md.
 */
export { startReceiver, type ReceiverDeps, type ReceiverHandle, type ReceiverStats } from "./server.js";
