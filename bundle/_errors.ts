/**
 * Constructors of the reader's refusals (private).
 *
 * @module
 */
import { CorruptBundleError, UnsafeBundleError } from "../errors.ts";

function message(rule: string, entry: string | undefined, state: string): string {
  const what = entry === undefined ? "" : `entry ${JSON.stringify(entry)} `;
  return `Cannot read the bundle: ${what}${state} (rule ${rule})`;
}

/** The bytes break the format. */
export function corrupt(
  rule: string,
  entry: string | undefined,
  state: string,
  cause?: unknown,
): CorruptBundleError {
  return new CorruptBundleError(rule, entry, message(rule, entry, state), { cause });
}

/** The bundle breaks a safety rule. */
export function unsafe(
  rule: string,
  entry: string | undefined,
  state: string,
): UnsafeBundleError {
  return new UnsafeBundleError(rule, entry, message(rule, entry, state));
}
