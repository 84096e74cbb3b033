/**
 * Worker side of the sqlite plugin's copies (private). Protocol (main → worker):
 * `{ id, op: "copy", job }` ({@linkcode CopyJob}), `{ id, op: "vacuum", copy, journalMode }` or
 * `{ id, op: "release", copy }`; worker → main: `{ id, result }` or `{ id, error, copyError }`
 * (the message, and whether it is a {@linkcode CopyError}). Each operation runs to completion
 * before its answer is posted, its connections closed, except a copy answered with `held`:
 * that connection stays open, in its read transaction, until the `release` of its copy path.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import {
  copyDatabase,
  CopyError,
  type CopyJob,
  releaseHold,
  vacuumAndDescribe,
} from "./_sqlite_copy.ts";

self.onmessage = (ev: MessageEvent) => {
  const msg = ev.data as
    | { id: number; op: "copy"; job: CopyJob }
    | { id: number; op: "vacuum"; copy: string; journalMode: string }
    | { id: number; op: "release"; copy: string };
  try {
    const result = msg.op === "copy"
      ? copyDatabase(msg.job)
      : msg.op === "vacuum"
      ? vacuumAndDescribe(msg.copy, msg.journalMode)
      : releaseHold(msg.copy) ?? null;
    self.postMessage({ id: msg.id, result });
  } catch (e) {
    self.postMessage({
      id: msg.id,
      error: e instanceof Error ? e.message : String(e),
      copyError: e instanceof CopyError,
    });
  }
};
