/**
 * Snapshot ids.
 *
 * @module
 */

/**
 * Makes a snapshot id that sorts by creation time: the UTC time to the millisecond in compact
 * ISO 8601 basic form, a dash, and 8 lowercase hex digits, e.g. `20261125T195222123Z-1a2b3c4d`.
 *
 * @param date The creation time.
 * @param suffix 8 lowercase hex digits; random by default.
 * @returns The snapshot id.
 * @throws {RangeError} If the date is invalid or outside years 0000-9999, or the suffix is not 8
 * lowercase hex digits.
 *
 * @example
 * ```ts
 * import { newSnapshotId } from "./new_snapshot_id.ts";
 * const id = newSnapshotId(new Date("2026-11-25T19:52:22.123Z"), "1a2b3c4d");
 * console.log(id); // 20261125T195222123Z-1a2b3c4d
 * ```
 */
export function newSnapshotId(date: Date, suffix?: string): string {
  const t = date.getTime();
  if (!Number.isFinite(t) || date.getUTCFullYear() < 0 || date.getUTCFullYear() > 9999) {
    throw new RangeError("Cannot make a snapshot id: the date is invalid or out of range");
  }
  if (suffix === undefined) {
    const b = crypto.getRandomValues(new Uint8Array(4));
    suffix = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  } else if (!/^[0-9a-f]{8}$/.test(suffix)) {
    throw new RangeError(
      `Cannot make a snapshot id: suffix "${suffix}" is not 8 lowercase hex digits`,
    );
  }
  const iso = date.toISOString(); // 2026-11-25T19:52:22.123Z
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + "T" + iso.slice(11, 13) +
    iso.slice(14, 16) + iso.slice(17, 19) + iso.slice(20, 23) + "Z-" + suffix;
}
