// @ts-check
// The Assign page: native ES modules the browser loads as they are (no build step), against the REST
// API under /api. The page's Content-Security-Policy allows scripts from this origin only.
import { wireAssignForm } from "./assign-form.js";
import { wireAudit } from "./audit.js";
import { wireFailures } from "./failures.js";
import { wireConfirm } from "./confirm.js";
import { wireCoupling } from "./coupling.js";
import { wireDrawer } from "./drawer.js";
import { wireExports } from "./exports.js";
import { wireOutBox } from "./out-box.js";
import { wirePolling } from "./polling.js";
import { boot, wireSession } from "./session.js";
import { wireStudies } from "./studies.js";
import { wireTransfers } from "./transfers.js";
import { wireViews } from "./views.js";

// Module scripts run once the document is parsed, so every element is there to wire.
wireSession();
wireViews();
wireStudies();
wireDrawer();
wireAssignForm();
wireConfirm();
wireTransfers();
wireCoupling();
wireExports();
wireOutBox();
wireAudit();
wireFailures();
wirePolling();
void boot();
