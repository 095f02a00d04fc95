/**
 * PatientID buckets of a C-FIND that the PACS refused (too many matches, Unable to Process, a truncated
 * answer): as getAllPatients2.sh, a refused query is asked again once per last character of the
 * PatientID (`*0` … `*9` …), a refused bucket once per last two characters (`*00` … `*99` …), and so on
 * down to the configured depth. The buckets of one level partition the IDs ending in the alphabet, so
 * no study is listed twice; IDs ending in a character outside the alphabet are not reached by a split.
 */

/** A bucket is the PatientID suffix; "" is the whole, unsplit query. */
export type Bucket = string;

/** The C-FIND PatientID key of a bucket: "" (every patient) or `*<suffix>`. */
export const bucketKey = (b: Bucket): string => (b === "" ? "" : `*${b}`);

/** The buckets a refused bucket splits into, or [] when it is already at the maximum depth. */
export function splitBucket(b: Bucket, alphabet: string, maxDepth: number): Bucket[] {
  if (b.length >= maxDepth) return [];
  return [...alphabet].map((c) => `${c}${b}`);
}
