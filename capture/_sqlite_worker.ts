/**
 * Worker side of the sqlite plugin's copies (private). Protocol (main → worker):
 * `{ id, op: "copy", job }` ({@linkcode CopyJob}) or `{ id, op: "vacuum", copy, journalMode }`;
 * worker → main: `{ id, result }` or `{ id, error, copyError }` (the message, and whether it is
 * a {@linkcode CopyError}). Each operation runs to completion, connections closed, before its
 * answer is posted.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { copyDatabase, CopyError, type CopyJob, vacuumAndDescribe } from "./_sqlite_copy.ts";

self.onmessage = (ev: MessageEvent) => {
  const msg = ev.data as
    | { id: number; op: "copy"; job: CopyJob }
    | { id: number; op: "vacuum"; copy: string; journalMode: string };
  try {
    const result = msg.op === "copy"
      ? copyDatabase(msg.job)
      : vacuumAndDescribe(msg.copy, msg.journalMode);
    self.postMessage({ id: msg.id, result });
  } catch (e) {
    self.postMessage({
      id: msg.id,
      error: e instanceof Error ? e.message : String(e),
      copyError: e instanceof CopyError,
    });
  }
};
