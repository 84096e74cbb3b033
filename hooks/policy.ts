/**
 * {@linkcode HOOK_POLICIES}: the one table of how each built-in hook behaves on failure.
 *
 * @module
 */
import type { BuiltinHookName, HookPolicy } from "./types.ts";

/**
 * How each built-in hook behaves on failure, its handler order, and its time limits. A
 * registry can override any field per hook (`createHooks({ policy })`); custom hooks declare
 * theirs (`createHooks({ hooks })`).
 *
 * | hook             | failure     | sequence | timeoutMs | deadlineMs |
 * | ---------------- | ----------- | -------- | --------: | ---------: |
 * | `pre-dream`      | best-effort | fifo     |    60 000 |    120 000 |
 * | `post-dream`     | best-effort | fifo     |    30 000 |     60 000 |
 * | `pre-restore`    | fail-closed | fifo     |    60 000 |    300 000 |
 * | `post-restore`   | best-effort | fifo     |    30 000 |     60 000 |
 * | `pre-compaction` | best-effort | fifo     |    60 000 |    120 000 |
 * | `shutdown`       | best-effort | lifo     |     5 000 |     10 000 |
 * | `scheduled`      | best-effort | fifo     |    60 000 |    300 000 |
 *
 * - best-effort: every handler runs; failures are reported in the emit result, never thrown.
 * - fail-closed: the first failure stops the emit; it rejects with a `HookError`.
 * - lifo: the last registered handler runs first (teardown order); stages and `before` still
 *   apply.
 * - `timeoutMs` is each handler's default limit; `deadlineMs` bounds the whole emit (and the
 *   context's `deadline`, when earlier, wins).
 * - Custom hooks default to fifo, 30 000 ms per handler and 60 000 ms per emit.
 *
 * @example Reading the policy of a hook
 * ```ts
 * import { HOOK_POLICIES } from "@memsnap/core/hooks";
 * console.log(HOOK_POLICIES["pre-restore"].failure); // "fail-closed"
 * ```
 */
export const HOOK_POLICIES: { readonly [K in BuiltinHookName]: Readonly<HookPolicy> } = Object
  .freeze(
    {
      "pre-dream": Object.freeze({
        failure: "best-effort",
        sequence: "fifo",
        timeoutMs: 60_000,
        deadlineMs: 120_000,
      }),
      "post-dream": Object.freeze({
        failure: "best-effort",
        sequence: "fifo",
        timeoutMs: 30_000,
        deadlineMs: 60_000,
      }),
      "pre-restore": Object.freeze({
        failure: "fail-closed",
        sequence: "fifo",
        timeoutMs: 60_000,
        deadlineMs: 300_000,
      }),
      "post-restore": Object.freeze({
        failure: "best-effort",
        sequence: "fifo",
        timeoutMs: 30_000,
        deadlineMs: 60_000,
      }),
      "pre-compaction": Object.freeze({
        failure: "best-effort",
        sequence: "fifo",
        timeoutMs: 60_000,
        deadlineMs: 120_000,
      }),
      shutdown: Object.freeze({
        failure: "best-effort",
        sequence: "lifo",
        timeoutMs: 5_000,
        deadlineMs: 10_000,
      }),
      scheduled: Object.freeze({
        failure: "best-effort",
        sequence: "fifo",
        timeoutMs: 60_000,
        deadlineMs: 300_000,
      }),
    } as const,
  );
