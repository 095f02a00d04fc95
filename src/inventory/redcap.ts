/**
 * The inventory mirrored into the REDCap project WhatIsInIDS7: one record
 * per study, record_id = StudyInstanceUID, imported in chunks of 100 with overwrite; records of the
 * project whose study the PACS no longer lists are deleted, 200 per request (whatIsNotInIDS7.py). Deletes
 * happen only after a complete crawl: an incomplete one cannot tell a gone study from an unlisted one.
 */
import type { RedcapClient, RedcapImportRow } from "../redcap/client.js";
import type { RedcapFieldDef } from "../redcap/fields.js";
import type { ProjectInventory } from "./store.js";
import type { InventoryStudy } from "./studies.js";

const FIELD_OF: Record<string, keyof InventoryStudy> = {
  ids7_patient_name: "patientName",
  ids7_patient_id: "patientId",
  ids7_study_description: "studyDescription",
  ids7_number_of_series: "numberOfSeries",
  ids7_number_of_instances: "numberOfInstances",
  ids7_institution_name: "institutionName",
  ids7_referring_physician: "referringPhysician",
  ids7_study_time: "studyTime",
  ids7_study_date: "studyDate",
  ids7_study_id: "studyId",
  ids7_accession_number: "accessionNumber",
  ids7_modalities: "modalities",
};

/** The WhatIsInIDS7 data dictionary (for the REDCap simulator and for setting the project up). */
export const WHAT_IS_IN_IDS7_FIELDS: RedcapFieldDef[] = [
  "record_id",
  ...Object.keys(FIELD_OF),
  "ids7_date_stamp",
].map((field_name) => ({ field_name, form_name: "ids7", field_type: "text" }));

/** One WhatIsInIDS7 row; empty strings erase stale values (overwrite import). */
function ids7Row(project: string, s: InventoryStudy, dateStamp: string): RedcapImportRow {
  const row: RedcapImportRow = { record_id: s.studyInstanceUid };
  for (const [field, key] of Object.entries(FIELD_OF)) row[field] = String(s[key] ?? "");
  // A PACS that does not return InstitutionName still holds the study under the crawled project.
  row.ids7_institution_name = s.institutionName ?? project;
  row.ids7_date_stamp = dateStamp;
  return row;
}

export interface Ids7Push {
  imported: number;
  deleted: number;
}

export async function pushToWhatIsInIds7(client: RedcapClient, inv: ProjectInventory): Promise<Ids7Push> {
  const rows = inv.studies.map((s) => ids7Row(inv.project, s, inv.crawledAt));
  const imported = await client.importRecordsBatched(rows, "record_id", { overwriteBehavior: "overwrite" });
  if (!inv.complete) return { imported, deleted: 0 };
  const listed = new Set(inv.studies.map((s) => s.studyInstanceUid));
  const stored = await client.exportRecords({ fields: ["record_id", "ids7_institution_name"] });
  const gone = stored
    .filter((r) => String(r.ids7_institution_name ?? "") === inv.project && !listed.has(String(r.record_id)))
    .map((r) => String(r.record_id));
  const deleted = gone.length ? await client.deleteRecords(gone) : 0;
  return { imported, deleted };
}
