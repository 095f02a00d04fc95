/** Bull Board, the queue dashboard, at BOARD_PATH: its express app over every queue. */
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Queue } from "bullmq";
import type express from "express";
import { ASSIGN_PATH } from "../assign/index.js";
import { BOARD_PATH } from "./path.js";

/** `readOnly`: every action answers 405 and the buttons are hidden. */
export function boardApp(queues: Iterable<Queue>, readOnly: boolean): express.Express {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [...queues].map((q) => new BullMQAdapter(q, { readOnlyMode: readOnly })),
    serverAdapter,
    options: {
      uiConfig: { boardTitle: "FIONA", miscLinks: [{ text: "Assign page", url: `${ASSIGN_PATH}/` }] },
    },
  });
  const app = serverAdapter.getRouter() as express.Express;
  app.disable("x-powered-by");
  return app;
}
