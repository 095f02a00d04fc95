import { fileURLToPath } from "node:url";

/**
 * The Attach page's static files (served by the Assign page's router, same CSP). Like the Assign page
 * they stay in src/: the relative URL resolves from src/wsi/ and dist/wsi/ alike.
 */
export const ATTACH_STATIC_DIR = fileURLToPath(new URL("../../src/wsi/static/", import.meta.url));

export const ATTACH_PATH = "/attach";
