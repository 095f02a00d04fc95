import net from "node:net";
import { encodeAssociateRq } from "../../src/dimse/pdu.js";

/** Open an association to the receiver (A-ASSOCIATE-RQ for Verification) and then stay silent. */
export async function wedgeAssociation(port: number, calledAe = "FIONA"): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  socket.setNoDelay(true);
  const accepted = new Promise<void>((resolve) => socket.once("data", () => resolve()));
  socket.write(
    encodeAssociateRq({
      calledAe,
      callingAe: "WEDGE",
      contexts: [{ id: 1, abstractSyntax: "1.2.840.10008.1.1", transferSyntaxes: ["1.2.840.10008.1.2"] }],
      maxPduLength: 16384,
      implementationClassUid: "1.2.3.4",
    }),
  );
  await accepted; // the A-ASSOCIATE-AC: the receiver counts it as an active association now
  return socket;
}
