/** Where Bull Board, the queue dashboard, is served. */
export const BOARD_PATH = "/admin/queues";
