/**
 * The few assertions store tests use, over `node:assert/strict`.
 *
 * @module
 */
import nodeAssert from "node:assert/strict";

/** Asserts a truthy value. */
export function assert(value: unknown, message?: string): asserts value {
  nodeAssert.ok(value, message);
}

/** Asserts deep equality. */
export function assertEquals<T>(actual: T, expected: T, message?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, message);
}

/** Asserts that a promise rejects with an instance of a class whose message includes text. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  cls: new (...args: any[]) => Error,
  includes?: string,
): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    nodeAssert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    if (includes !== undefined) {
      nodeAssert.ok(
        (e as Error).message.includes(includes),
        `expected message to include ${JSON.stringify(includes)}: ${(e as Error).message}`,
      );
    }
    return e as Error;
  }
  throw new Error(`expected a rejection with ${cls.name}`);
}
