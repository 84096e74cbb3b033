// Copyright memsnap authors. MIT license.
/**
 * Checks a retention policy before pruning.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import type { RetentionPolicy } from "./types.ts";
import { parseDuration } from "./parse_duration.ts";

const COUNTS = [
  "keepLast",
  "keepHourly",
  "keepDaily",
  "keepWeekly",
  "keepMonthly",
  "keepYearly",
] as const;
const KNOWN = new Set<string>([...COUNTS, "keepWithin", "keepLabel", "keepTag"]);

/**
 * Checks a retention policy: known keys only, counts are integers `>= 0` or `-1`
 * (unlimited), `keepWithin` parses, and at least one rule is given. An empty policy would
 * remove nothing, so a prune command asking for one is a usage mistake.
 *
 * @param policy The policy.
 * @returns The same policy.
 * @throws {UsageError} "Cannot prune: no keep rule given", or which value is wrong.
 *
 * @example
 * ```ts
 * import { validateRetentionPolicy } from "./validate_retention_policy.ts";
 * validateRetentionPolicy({ keepDaily: 7, keepWithin: "2d" });
 * try {
 *   validateRetentionPolicy({});
 * } catch (e) {
 *   console.log((e as Error).message); // Cannot prune: no keep rule given
 * }
 * ```
 */
export function validateRetentionPolicy(policy: RetentionPolicy): RetentionPolicy {
  for (const key of Object.keys(policy)) {
    if (!KNOWN.has(key)) {
      throw new UsageError(`Cannot prune: unknown retention rule ${JSON.stringify(key)}`, {
        hint: `Known rules: ${[...KNOWN].join(", ")}.`,
      });
    }
  }
  let given = false;
  for (const key of COUNTS) {
    const n = policy[key];
    if (n === undefined) continue;
    if (!Number.isInteger(n) || n < -1) {
      throw new UsageError(
        `Cannot prune: ${key} must be a whole number >= 0, or -1 for unlimited, got ${n}`,
      );
    }
    if (n !== 0) given = true;
  }
  if (policy.keepWithin !== undefined && policy.keepWithin !== "") {
    const d = parseDuration(policy.keepWithin);
    if (d.years || d.months || d.days || d.hours) given = true;
  }
  for (const key of ["keepLabel", "keepTag"] as const) {
    const labels = policy[key];
    if (labels === undefined) continue;
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string")) {
      throw new UsageError(`Cannot prune: ${key} must be a list of labels`);
    }
    if (labels.length) given = true;
  }
  if (!given) {
    throw new UsageError("Cannot prune: no keep rule given", {
      hint: "Give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, " +
        "--keep-monthly, --keep-yearly, --keep-within, --keep-label.",
    });
  }
  return policy;
}
