/**
 * Snapshot id parsing.
 *
 * @module
 */

/** The parts of a snapshot id. */
export interface ParsedSnapshotId {
  /** The creation time, to the millisecond. */
  date: Date;
  /** The 8 hex digit suffix. */
  suffix: string;
}

const ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-([0-9a-f]{8})$/;

/**
 * Parses a snapshot id made by `newSnapshotId()`.
 *
 * @param id The id, e.g. `20261125T195222123Z-1a2b3c4d`.
 * @returns Its date and suffix, or `undefined` if `id` is not a valid snapshot id.
 *
 * @example
 * ```ts
 * import { parseSnapshotId } from "./parse_snapshot_id.ts";
 * const p = parseSnapshotId("20261125T195222123Z-1a2b3c4d");
 * console.log(p?.date.toISOString(), p?.suffix); // 2026-11-25T19:52:22.123Z 1a2b3c4d
 * ```
 */
export function parseSnapshotId(id: string): ParsedSnapshotId | undefined {
  const m = ID.exec(id);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms, suffix] = m as unknown as string[];
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
  const date = new Date(iso);
  if (!Number.isFinite(date.getTime()) || date.toISOString() !== iso) return undefined;
  return { date, suffix: suffix! };
}
