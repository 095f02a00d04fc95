/**
 * FIONA's REDCap projects, as data dictionaries for the simulator and as the
 * field names the sync stages use.
 */
import type { SimField, SimProjectDef } from "./simulator.js";

const t = (field_name: string, form_name: string, extra: Partial<SimField> = {}): SimField => ({
  field_name,
  form_name,
  field_type: "text",
  ...extra,
});
const int = { text_validation_type_or_show_slider_number: "integer" } as const;

export const INCOMING_FIELDS: SimField[] = [
  ...[
    "study_instance_uid",
    "study_institution_name",
    "study_aetitle_sender",
    "study_aetitle_addressed",
    "study_patient_name",
    "study_patient_id",
    "study_description",
    "study_date",
    "study_time",
    "study_accession_number",
    "study_arrival_date",
  ].map((f) => t(f, "incoming_studies")),
  ...["series_instance_uid", "series_description", "series_date", "series_time"].map((f) => t(f, "series")),
  t("series_num_files", "series", int),
  t("series_sequence_name", "series"),
  t("series_classify_types", "series", { field_type: "notes" }),
  t("transfer_requested_date", "transfers"),
  t("transfer_project_name", "transfers"),
  t("transfer_name", "transfers"),
  t("transfer_event_name", "transfers"),
  t("transfer_date", "transfers"),
  t("transfer_error", "transfers", {
    field_type: "checkbox",
    select_choices_or_calculations:
      "1, anonymization error | 2, send error | 3, pixel anonymization performed",
  }),
  t("transfer_mapped_uid", "transfers"),
  t("transfer_error_message", "transfers", { field_type: "notes" }),
  t("transfer_active_proc_time", "transfers", { text_validation_type_or_show_slider_number: "number" }),
];

export const ROUTING_FIELDS: SimField[] = [
  t("record_id", "routing"),
  t("routing_active", "routing", { field_type: "yesno" }),
  t("routing_dest_project", "routing", {
    field_type: "dropdown",
    select_choices_or_calculations: "1, PROJ | 2, KEEP",
  }),
  ...[
    "routing_incoming_aetitle",
    "routing_sending_aetitle",
    "routing_allowed_patientid",
    "routing_allowed_patientname",
    "routing_event_name",
  ].map((f) => t(f, "routing")),
];

export const COUPLING_FIELDS: SimField[] = [
  t("record_id", "couplinglist"),
  ...[
    "cl_accessionnumber",
    "cl_studyinstanceuid",
    "cl_projectname",
    "cl_subjectid",
    "cl_eventname",
    "cl_date",
  ].map((f) => t(f, "couplinglist")),
];

export const PROJECTS_FIELDS: SimField[] = [
  t("record_id", "projects"),
  t("project_name", "projects"),
  t("project_type", "projects", {
    field_type: "dropdown",
    select_choices_or_calculations: "0, REK | 1, non-human | 2, QC | 3, public",
  }),
  t("project_patient_naming", "projects"),
  t("project_token", "projects"),
  t("project_active", "projects", { field_type: "yesno" }),
  t("project_features", "projects", {
    field_type: "checkbox",
    select_choices_or_calculations:
      "0, remove presentation states | 1, never rewrite burned-in pixels | 2, remove secondary captures",
  }),
  t("project_use_autoid", "projects", { field_type: "yesno" }),
  t("project_autoid_aetitle", "projects"),
];

export const AUTOID_FIELDS: SimField[] = [
  t("record_id", "autoid"),
  ...["autoid_project_name", "autoid_hash", "autoid_value"].map((f) => t(f, "autoid")),
  t("autoid_method", "autoid", { field_type: "dropdown", select_choices_or_calculations: "1, random" }),
];

/** A research project's own REDCap: participant records, `imaging` repeats in event_1_arm_1. */
export const PER_PROJECT_FIELDS: SimField[] = [
  t("record_id", "demographics"),
  t("first_name", "demographics"),
  t("last_name", "demographics"),
  ...["img_study_instance_uid", "img_event_name", "img_study_description", "img_study_date"].map((f) =>
    t(f, "imaging"),
  ),
];

/** Simulator definitions of FIONA's REDCap projects; tokens by configuration name. */
export function fionaSimProjects(tokens: {
  incoming: string;
  routing?: string;
  coupling?: string;
  dataTransferProjects?: string;
  autoId?: string;
  perProject?: Record<string, string>;
}): SimProjectDef[] {
  const defs: SimProjectDef[] = [
    { name: "incoming", token: tokens.incoming, fields: INCOMING_FIELDS, repeating: ["series", "transfers"] },
  ];
  if (tokens.routing) defs.push({ name: "routing", token: tokens.routing, fields: ROUTING_FIELDS });
  if (tokens.coupling) defs.push({ name: "coupling", token: tokens.coupling, fields: COUPLING_FIELDS });
  if (tokens.dataTransferProjects)
    defs.push({ name: "dataTransferProjects", token: tokens.dataTransferProjects, fields: PROJECTS_FIELDS });
  if (tokens.autoId) defs.push({ name: "autoId", token: tokens.autoId, fields: AUTOID_FIELDS });
  for (const [name, token] of Object.entries(tokens.perProject ?? {}))
    defs.push({
      name: `project:${name}`,
      token,
      fields: PER_PROJECT_FIELDS,
      repeating: ["imaging"],
      events: [
        {
          unique_event_name: "event_1_arm_1",
          event_name: "Event 1",
          arm_num: 1,
          forms: ["demographics", "imaging"],
        },
        {
          unique_event_name: "baseline_arm_1",
          event_name: "baseline",
          arm_num: 1,
          forms: ["demographics", "imaging"],
        },
      ],
    });
  return defs;
}
