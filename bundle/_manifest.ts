/**
 * Manifest parsing and validation (private).
 *
 * @module
 */
import { RefusedError } from "../errors.ts";
import { FORMAT_ID, type Manifest, MANIFEST_VERSION, type ManifestArtifact } from "./types.ts";
import { validateManifestSchema as validator } from "./_manifest_validator.ts";
import { canonicalJson } from "./canonical_json.ts";
import { corrupt, unsafe } from "./_errors.ts";
import { checkPath, comparePaths } from "./_paths.ts";
import { artifactTableOf } from "./_artifact_table.ts";
import { concatBytes } from "./_io.ts";
import type { BundleLimits } from "./bundle_limits.ts";

export const MANIFEST_NAME = "manifest.json";
export const SIGNATURE_NAME = "manifest.json.minisig";
export const PAYLOAD_PLAIN = "payload.tar.zst";
export const PAYLOAD_AGE = "payload.tar.zst.age";

function schemaError(field: string, state: string): never {
  throw corrupt(
    "manifest_schema",
    MANIFEST_NAME,
    `is invalid: field ${JSON.stringify(field || "/")} ${state}`,
  );
}

/**
 * Whether `text` is exactly `canonicalJson(value)`, where `value = JSON.parse(text)` (a
 * manifest, valid against the schema). A large one is compared with the pieces of
 * {@linkcode manifestChunks}. Otherwise, fast path: the native `JSON.stringify` writes keys in property order (the text's order) and every
 * string and number as `canonicalJson` does, so when it reproduces the text, the text is
 * canonical iff every object's keys are sorted. Integer-like keys (which JavaScript orders
 * first) or any other difference go to the exact slow path.
 */
function isCanonical(value: unknown, text: string): boolean {
  const m = value as Manifest;
  if (m.artifacts.length > CHUNK_ARTIFACTS) {
    // Piece by piece: a large manifest's text is not made a second time whole (~170 bytes per
    // artifact, 25 MB for 147,000, next to the text, its bytes and the parsed value).
    let at = 0;
    for (const piece of manifestText(m)) {
      if (!text.startsWith(piece, at)) return false;
      at += piece.length;
    }
    return at === text.length;
  }
  if (JSON.stringify(value) === text && keysSorted(value)) return true;
  return canonicalJson(value) === text;
}

function keysSorted(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) {
    for (const v of value) if (!keysSorted(v)) return false;
    return true;
  }
  const obj = value as Record<string, unknown>;
  let prev: string | undefined;
  for (const k of Object.keys(obj)) {
    if (prev !== undefined && !(prev < k)) return false;
    prev = k;
    if (!keysSorted(obj[k])) return false;
  }
  return true;
}

/**
 * Parses and validates manifest bytes: UTF-8, JSON, canonical, a memsnap manifest of a
 * supported version, valid against the schema, artifacts sorted and unique with safe paths,
 * payload path consistent with its encryption.
 */
export function parseManifest(bytes: Uint8Array, limits: BundleLimits): Manifest {
  return parseManifestText(decodeManifest(bytes), limits);
}

/** A manifest's bytes as text; refused as `manifest_json` unless they are UTF-8. */
function decodeManifest(bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw corrupt("manifest_json", MANIFEST_NAME, "is not valid UTF-8 JSON", e);
  }
}

/**
 * {@linkcode parseManifest} of the bytes' text. Readers parse a manifest as it streams in
 * (`ManifestStreamParser`), which calls this for its header and for anything it cannot read.
 */
export function parseManifestText(text: string, limits: BundleLimits): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw corrupt("manifest_json", MANIFEST_NAME, "is not valid UTF-8 JSON", e);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    schemaError("/", "must be an object");
  }
  const obj = value as Record<string, unknown>;
  if (obj.format !== FORMAT_ID) {
    throw new RefusedError(
      `Cannot read the bundle: its manifest format is ${
        JSON.stringify(obj.format ?? null)
      }, not "${FORMAT_ID}" (unsupported)`,
    );
  }
  const version = obj.manifest_version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) {
    schemaError("/manifest_version", "must be an integer >= 1");
  }
  if (version > MANIFEST_VERSION) {
    throw new RefusedError(
      `Cannot read the bundle: manifest_version ${version} is newer than the supported ${MANIFEST_VERSION} (unsupported)`,
      { hint: "Upgrade memsnap to read this bundle." },
    );
  }
  if (!validator(value)) {
    const err = validator.errors?.[0];
    schemaError(err?.instancePath ?? "", err?.message ?? "is invalid");
  }
  if (!isCanonical(value, text!)) {
    throw corrupt("manifest_canonical", MANIFEST_NAME, "is not canonical JSON");
  }
  const m = value as unknown as Manifest;
  if (m.artifacts.length > limits.maxEntries) {
    throw unsafe(
      "max_entries",
      MANIFEST_NAME,
      `lists ${m.artifacts.length} artifacts, over the cap of ${limits.maxEntries}`,
    );
  }
  let prev: string | undefined;
  m.artifacts.forEach((a, i) => {
    const problem = checkPath(a.path, limits.maxPathLength, limits.maxPathDepth);
    if (problem) schemaError(`/artifacts/${i}/path`, `${problem.state} (${problem.rule})`);
    if (prev !== undefined && comparePaths(prev, a.path) >= 0) {
      schemaError(`/artifacts/${i}/path`, "is not sorted or is a duplicate");
    }
    prev = a.path;
  });
  const encrypted = m.payload.encryption !== null;
  if (m.payload.path !== (encrypted ? PAYLOAD_AGE : PAYLOAD_PLAIN)) {
    schemaError("/payload/path", "does not match payload.encryption");
  }
  return m;
}

/** The canonical bytes of a manifest. */
export function encodeManifest(m: Manifest): Uint8Array {
  if (artifactTableOf(m) === undefined) return new TextEncoder().encode(canonicalJson(m));
  // A written bundle's manifest: from its table, without making its entries.
  return concatBytes([...manifestChunks(m)]);
}

/**
 * Artifacts per piece in {@linkcode manifestChunks}: a piece's text (~150 bytes an entry) stays
 * under V8's large-object size (128 KiB), so it dies young. Pieces of 2,048 (~300 KB) were
 * allocated in the large-object space, old generation: the manifest of 411,000 artifacts left
 * ~60 MB of them there until the next full collection (the 200,000-note snapshot's peak).
 */
const CHUNK_ARTIFACTS = 512;

/** Whether the native serializer writes this artifact entry as canonical JSON already. */
export function plainArtifact(a: ManifestArtifact): boolean {
  if (typeof a !== "object" || a === null || Array.isArray(a)) return false;
  const keys = Object.keys(a);
  const n = keys.length;
  return (n === 4 || (n === 5 && keys[1] === "mode" && Number.isSafeInteger(a.mode))) &&
    keys[0] === "kind" && keys[n - 3] === "path" && keys[n - 2] === "sha256" &&
    keys[n - 1] === "size" && typeof a.kind === "string" && typeof a.path === "string" &&
    typeof a.sha256 === "string" && Number.isSafeInteger(a.size);
}

/**
 * The canonical bytes of a manifest in pieces, whose concatenation is
 * {@linkcode encodeManifest}`(m)`: the artifacts (tens of thousands for a large memory) are
 * serialized a few thousand at a time, so the whole text never needs to exist at once, as a
 * string nor as bytes. Manifests whose artifact entries are not plain (keys in canonical order,
 * no extra fields) come as one piece.
 */
export function* manifestChunks(m: Manifest): Generator<Uint8Array> {
  const enc = new TextEncoder();
  for (const text of manifestText(m)) yield enc.encode(text);
}

/** The canonical text of a manifest in the pieces of {@linkcode manifestChunks}. */
function* manifestText(m: Manifest): Generator<string> {
  // A written or read bundle's manifest whose entries were not made is serialized from its
  // table (its entries are plain), without making them all.
  const table = artifactTableOf(m);
  const arts = table === undefined ? m.artifacts : undefined;
  const count = table?.length ?? arts!.length;
  const piece = (i: number): ManifestArtifact[] =>
    table?.entries(i, i + CHUNK_ARTIFACTS) ?? arts!.slice(i, i + CHUNK_ARTIFACTS);
  let head: string | undefined;
  if (table !== undefined || (count > CHUNK_ARTIFACTS && arts!.every(plainArtifact))) {
    // The header with no artifacts, without reading a lazy manifest's `artifacts`.
    const header: Record<string, unknown> = {};
    for (const k of Object.keys(m)) {
      header[k] = k === "artifacts" ? [] : (m as unknown as Record<string, unknown>)[k];
    }
    head = canonicalJson(header);
  }
  // Keys are sorted: "artifacts" comes right after "agent_id", the only key before it.
  const prefix = `{"agent_id":${JSON.stringify(m.agent_id)},"artifacts":[`;
  if (head === undefined || !head.startsWith(`${prefix}]`)) {
    yield canonicalJson(m);
    return;
  }
  yield prefix;
  for (let i = 0; i < count; i += CHUNK_ARTIFACTS) {
    const text = JSON.stringify(piece(i));
    yield (i > 0 ? "," : "") + text.slice(1, -1);
  }
  yield head.slice(prefix.length);
}

/**
 * The UTF-8 length of `JSON.stringify(s)`: quotes, two-character escapes, `\u00XX` for other
 * control characters and `\uXXXX` for a lone surrogate (as the native serializer writes them).
 */
export function jsonStringLength(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) n += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 6;
    } else if (c >= 0xdc00 && c <= 0xdfff) n += 6;
    else n += 3;
  }
  return n;
}
