/**
 * The fingerprint of a redactor's packs (private): what tells apart two loads of the same pack
 * specs, for a redactor made again on a worker (see `Redactor.portable`).
 *
 * @module
 */
import type { RulePack } from "./types.ts";

/**
 * Each pack's id, version and rule ids, in order. A pack file edited between the snapshot's load
 * and a worker's gives another fingerprint.
 */
export function packsFingerprint(packs: readonly RulePack[]): string {
  return JSON.stringify(packs.map((p) => [p.id, p.version, p.rules.map((r) => r.id)]));
}
