export { startReceiver, type ReceiverDeps, type ReceiverHandle, type ReceiverStats } from "./server.js";
export { STORE_STATUS } from "./store.js";
