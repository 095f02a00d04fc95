/** A REDCap data dictionary field as the API's `metadata` export and import carry it. */
export interface RedcapFieldDef {
  field_name: string;
  form_name: string;
  field_type:
    | "text"
    | "notes"
    | "dropdown"
    | "radio"
    | "yesno"
    | "truefalse"
    | "checkbox"
    | "calc"
    | "file"
    | "descriptive";
  field_label?: string;
  /** "1, Yes | 0, No" for dropdown/radio/checkbox. */
  select_choices_or_calculations?: string;
  /** integer, number, date_ymd, datetime_ymd, … */
  text_validation_type_or_show_slider_number?: string;
}
