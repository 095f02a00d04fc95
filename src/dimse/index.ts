/** Byte-faithful C-STORE SCU (see association.ts) and a Part-10 batch sender (see send.ts). */
export {
  openAssociation,
  type ContextRequest,
  type NegotiatedContext,
  type StoreDestination,
  type StoreRequest,
} from "./association.js";
export { PermanentSendError, RetryableSendError, SendError } from "./errors.js";
export {
  NotSendableError,
  parsePart10Meta,
  readPart10ForStore,
  readPart10Meta,
  sendFiles,
  type FileOutcome,
  type Part10Meta,
  type SendOptions,
  type SendProgress,
  type SendReport,
} from "./send.js";
export { NOT_SENT, classifyStatus, type OutcomeKind, type StoreOutcome } from "./status.js";
