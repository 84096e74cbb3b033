/**
 * Worker side of the sqlite plugin's copies (private). Protocol (main → worker):
 * `{ id, op: "copy", job }` ({@linkcode CopyJob}), `{ id, op: "redact", copy, artifact,
 * redactor }` (a {@linkcode PortableRedactor}: the copy is redacted in place, not vacuumed; the
 * result is the redaction's report), `{ id, op: "vacuum", copy, journalMode }` or
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
import type { RedactionReport } from "../bundle/types.ts";
import type { PortableRedactor, RulePack } from "../redact/types.ts";

/** The packs of the last redactor asked for, by fingerprint (loaded once per worker). */
let loaded: { fingerprint: string; packs: RulePack[] } | undefined;

/** Redacts a copy with a redactor made from `portable`; the redaction's report. */
async function redact(
  copy: string,
  artifact: string,
  portable: PortableRedactor,
): Promise<RedactionReport> {
  const [{ loadPortablePacks }, { createRedactor }] = await Promise.all([
    import("../redact/load_pack.ts"),
    import("../redact/create_redactor.ts"),
  ]);
  if (loaded?.fingerprint !== portable.fingerprint) {
    loaded = { fingerprint: portable.fingerprint, packs: await loadPortablePacks(portable) };
  }
  const redactor = createRedactor({ packs: loaded.packs, key: portable.key });
  await redactor.redactSqlite(copy, artifact, { vacuum: false });
  return redactor.report();
}

self.onmessage = async (ev: MessageEvent) => {
  const msg = ev.data as
    | { id: number; op: "copy"; job: CopyJob }
    | { id: number; op: "redact"; copy: string; artifact: string; redactor: PortableRedactor }
    | { id: number; op: "vacuum"; copy: string; journalMode: string }
    | { id: number; op: "release"; copy: string };
  try {
    const result = msg.op === "copy"
      ? copyDatabase(msg.job)
      : msg.op === "redact"
      ? await redact(msg.copy, msg.artifact, msg.redactor)
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
