/**
 * CONTRACT (implementation pending): header reading with dicom-parser, stopping before PixelData.
 * A value is a string for single-valued text, a number for single-valued binary numbers,
 * and an array for multi-valued elements (backslash-separated text or several binary numbers).
 */
export type TagValue = string | number | Array<string | number>;

/** What the classifier needs from a dataset. */
export interface TagSource {
  /** Top-level element by DICOM keyword (pydicom keyword, e.g. "SeriesDescription"). */
  keyword(name: string): TagValue | undefined;
  /** Top-level element by group/element. */
  tag(group: number, element: number): TagValue | undefined;
  /**
   * Element inside sequences, item 0 at each level: path is [[seqGroup, seqElement], …, [group, element]].
   * Returns undefined when any level is missing.
   */
  nested(path: Array<[number, number]>): TagValue | undefined;
}

export interface DicomHeader extends TagSource {
  /** Transfer syntax of the dataset. */
  transferSyntaxUid: string;
  /** Trimmed string value of a top-level element (keyword or "ggggeeee" hex), undefined when absent. */
  string(keywordOrTag: string): string | undefined;
}
