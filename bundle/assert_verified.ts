/**
 * Turning a verification report into an error.
 *
 * @module
 */
import { VerificationError } from "../errors.ts";
import type { VerifyReport } from "./verify_bundle.ts";

/**
 * Throws if a verification report is not ok.
 *
 * @param report What `verifyBundle()` returned.
 * @throws {VerificationError} Carrying every failure, if `!report.ok`.
 *
 * @example
 * ```ts
 * import { assertVerified } from "./assert_verified.ts";
 * import { VerificationError } from "../errors.ts";
 * try {
 *   assertVerified({
 *     ok: false, manifest: {} as never, signature: "absent", artifacts_checked: true,
 *     failures: [{ check: "missing", path: "memdir/a.md", detail: "not in the payload" }],
 *   });
 * } catch (e) {
 *   console.log(e instanceof VerificationError); // true
 * }
 * ```
 */
export function assertVerified(report: VerifyReport): void {
  if (report.ok) return;
  const f = report.failures;
  const first = f[0];
  const what = first
    ? `${first.check}${first.path === undefined ? "" : ` (${first.path})`}: ${first.detail}`
    : "unknown failure";
  const more = f.length > 1 ? ` and ${f.length - 1} more` : "";
  throw new VerificationError(`Cannot verify the bundle: ${what}${more}`, f);
}
