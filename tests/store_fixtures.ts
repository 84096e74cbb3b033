/**
 * Test fixtures for store/ tests: tiny valid bundles (a ustar tar whose first entry is
 * manifest.json) built without bundle/, so store tests do not depend on the writer.
 *
 * @module
 */
import type { Manifest } from "../bundle/types.ts";
import { canonicalJson } from "../bundle/canonical_json.ts";

const enc = new TextEncoder();

function header(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(enc.encode(s), off);
  put(0, name);
  put(100, "0000644\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, size.toString(8).padStart(11, "0") + "\0");
  put(136, "00000000000\0");
  put(148, "        ");
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function pad(n: number): number {
  return Math.ceil(n / 512) * 512;
}

/** Builds tar bytes: manifest.json then payload.tar.zst (arbitrary bytes), then the end. */
export function bundleBytes(
  manifest: Manifest,
  payload: Uint8Array = new Uint8Array(16),
): Uint8Array {
  const m = enc.encode(canonicalJson(manifest));
  const out = new Uint8Array(512 + pad(m.length) + 512 + pad(payload.length) + 1024);
  out.set(header("manifest.json", m.length), 0);
  out.set(m, 512);
  const p = 512 + pad(m.length);
  out.set(header("payload.tar.zst", payload.length), p);
  out.set(payload, p + 512);
  return out;
}

let counter = 0;

/** A sortable snapshot id for a time. */
export function snapshotId(at: Date, n: number = counter++): string {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace(".", "");
  return `${stamp}-${(n >>> 0).toString(16).padStart(8, "0")}`;
}

/** A manifest with the given fields. */
export function manifest(fields: {
  agent?: string;
  tenant?: string;
  at?: Date;
  id?: string;
  label?: string | null;
  createdBy?: string;
  parent?: string | null;
}): Manifest {
  const at = fields.at ?? new Date();
  return {
    format: "memsnap-bundle",
    manifest_version: 1,
    snapshot_id: fields.id ?? snapshotId(at),
    agent_id: fields.agent ?? "a1",
    tenant: fields.tenant ?? "default",
    label: fields.label ?? null,
    created_at: at.toISOString(),
    created_by: fields.createdBy ?? "cli",
    parent: fields.parent ?? null,
    artifacts: [],
    payload: {
      path: "payload.tar.zst",
      size: 16,
      sha256: "0".repeat(64),
      compression: "zstd",
      encryption: null,
    },
    captures: {},
    redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
    tools: { memsnap: "0.1.0" },
  };
}
