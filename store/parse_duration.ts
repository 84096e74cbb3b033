// Copyright memsnap authors. MIT license.
/**
 * Parses restic-style durations.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import type { Duration } from "./types.ts";

const UNITS: Record<string, keyof Duration> = { y: "years", m: "months", d: "days", h: "hours" };
const EXAMPLE = 'units y (years), m (months), d (days), h (hours); e.g. "2d3h" or "1y2m"';

/**
 * Parses a duration as restic writes it: numbers each followed by a unit, `y` (years),
 * `m` (months), `d` (days), `h` (hours), each unit at most once: `"2d3h"`, `"1y2m"`, `"36h"`.
 *
 * @param text The duration.
 * @returns The duration's parts (missing parts are 0).
 * @throws {UsageError} when the text is empty, has an unknown unit, a unit without a number,
 * a number without a unit, or a unit twice.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./parse_duration.ts";
 * console.log(parseDuration("1y2m")); // { years: 1, months: 2, days: 0, hours: 0 }
 * ```
 */
export function parseDuration(text: string): Duration {
  const fail = (why: string): never => {
    throw new UsageError(`Cannot parse duration ${JSON.stringify(text)}: ${why}`, {
      hint: `Write a duration with ${EXAMPLE}.`,
    });
  };
  const s = String(text).trim();
  if (s === "") fail("it is empty");
  const out: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  const seen = new Set<string>();
  const re = /(\d*)([^\d]?)/gy;
  let i = 0;
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    const num = m?.[1] ?? "";
    const unit = m?.[2] ?? "";
    if (!m || m[0] === "") fail(`unexpected ${JSON.stringify(s.slice(i))}`);
    if (unit === "") fail(`the number ${num} has no unit (${EXAMPLE})`);
    const key = UNITS[unit];
    if (!key) fail(`unknown unit ${JSON.stringify(unit)} (${EXAMPLE})`);
    if (num === "") fail(`the unit ${JSON.stringify(unit)} has no number`);
    if (seen.has(unit)) fail(`the unit ${JSON.stringify(unit)} is given twice`);
    seen.add(unit);
    const n = Number(num);
    if (!Number.isSafeInteger(n)) fail(`the number ${num} is too large`);
    out[key!] = n;
    i += m![0].length;
  }
  return out;
}
