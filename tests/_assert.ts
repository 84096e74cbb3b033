/**
 * Test assertions: node:assert/strict under the names the tests use.
 *
 * @module
 */
import assertNs from "node:assert/strict";

/** Asserts a truthy value. */
export function assert(value: unknown, message?: string): asserts value {
  assertNs.ok(value, message);
}

/** Asserts deep strict equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  assertNs.deepStrictEqual(actual, expected, message);
}

/** Asserts a promise rejects; returns the error. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  message?: string,
): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new assertNs.AssertionError({ message: message ?? "Expected the promise to reject" });
}
