/**
 * Parsing a manifest as its bytes stream in (private).
 *
 * `parseManifest()` needs the whole text: at 411,000 artifacts the bytes (65 MB), the text
 * (65 MB) and the parsed value (~90 MB) were alive together, the peak of every command that
 * reads such a bundle (verify: 311 MiB). This parser takes the bytes a chunk at a time and
 * turns the artifact list into objects a few thousand entries at a time, so neither the bytes
 * nor the text is ever held whole: only the parsed value remains.
 *
 * It accepts exactly what `parseManifest()` accepts and gives the same value. It handles only
 * the shape a valid manifest has (canonical JSON: `{"agent_id":...,"artifacts":[{...},...],`
 * then the other keys); at the first thing that does not fit it keeps the rest of the bytes,
 * rebuilds the text read so far (every batch it took was checked to be canonical, so the
 * entries it parsed re-serialize to exactly the bytes they came from), and hands the whole to
 * `parseManifest()`, which refuses it with its own error (or accepts it).
 *
 * @module
 */
import type { Manifest, ManifestArtifact } from "./types.ts";
import { ArtifactTable, lazyManifest } from "./_artifact_table.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { validateManifestSchema as validator } from "./_manifest_validator.ts";
import { parseManifest, parseManifestText, plainArtifact } from "./_manifest.ts";
import { checkPath, comparePaths } from "./_paths.ts";

/** Bytes of artifact entries that make a batch worth parsing (~1,600 entries). */
const BATCH_BYTES = 256 * 1024;

const enc = new TextEncoder();
const HEAD = enc.encode('{"agent_id":"');
const ARTIFACTS_KEY = enc.encode(',"artifacts":[');
/**
 * Between two entries. In valid JSON these bytes occur nowhere else: inside a string every `"`
 * is escaped, and a string's closing quote is never followed by `kind`.
 */
const BETWEEN = enc.encode('},{"kind":"');
/** The end of the list and the key that follows it, likewise found only there. */
const END = enc.encode('}],"captures":');
/** The end of an empty list. */
const END_EMPTY = enc.encode('],"captures":');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/** A valid manifest header without artifacts: batches are checked against the schema in it. */
const PROBE: Omit<Manifest, "artifacts"> = {
  agent_id: "a",
  captures: {},
  created_at: "2026-01-01T00:00:00.000Z",
  created_by: "api",
  format: "memsnap-bundle",
  label: null,
  manifest_version: 1,
  parent: null,
  payload: {
    compression: "zstd",
    encryption: null,
    path: "payload.tar.zst",
    sha256: "0".repeat(64),
    size: 0,
  },
  redaction: { packs: [], redacted: false, rules: [], skipped_binary: [] },
  snapshot_id: "20260101T000000000Z-00000000",
  tenant: "default",
  tools: {},
};

type Mode = "head" | "artifacts" | "tail" | "raw";

/** Parses a manifest pushed in chunks; {@linkcode end} returns it or throws as parseManifest. */
export class ManifestStreamParser {
  readonly #limits: BundleLimits;
  #mode: Mode = "head";
  /** Bytes not consumed yet: the head, the artifact entries of the coming batch, the tail. */
  #buf = new Uint8Array(1 << 16);
  #len = 0;
  /** `{"agent_id":...,"artifacts":[` as text. */
  #head = "";
  /** The entries taken, compactly (see ArtifactTable): the manifest's until they are read. */
  readonly #table = new ArtifactTable();
  #prev: string | undefined;
  /** Each kind seen, to share one string per kind. */
  readonly #kinds = new Map<string, string>();
  /** Where in #buf to look for the end of the list next (what came before was looked at). */
  #searched = 0;
  readonly #decoder = new TextDecoder("utf-8", { fatal: true });

  readonly #batchBytes: number;
  #fellBack = false;

  /** Whether {@linkcode end} had to parse the whole text (anything but a valid manifest). */
  get fellBack(): boolean {
    return this.#fellBack;
  }

  /** `batchBytes`: list bytes that make a batch (tests make it small). */
  constructor(limits: BundleLimits, batchBytes = BATCH_BYTES) {
    this.#limits = limits;
    this.#batchBytes = batchBytes;
  }

  /** Takes the next bytes (copied: the caller may reuse the chunk). */
  push(chunk: Uint8Array): void {
    const from = this.#len;
    this.#append(chunk);
    if (this.#mode === "head") this.#readHead();
    else if (this.#mode === "artifacts") this.#scanFrom(from);
  }

  /** The manifest, once every byte has been pushed. */
  end(): Manifest {
    if (this.#mode === "artifacts" || this.#mode === "head") this.#toRaw();
    if (this.#mode === "tail") {
      const m = this.#tail();
      if (m !== undefined) return m;
      this.#toRaw();
    }
    return this.#fallback();
  }

  #append(chunk: Uint8Array): void {
    const need = this.#len + chunk.length;
    if (need > this.#buf.length) {
      const grown = new Uint8Array(Math.max(need, this.#buf.length * 2));
      grown.set(this.#buf.subarray(0, this.#len));
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len = need;
  }

  /** Gives up streaming: everything from here on is kept for parseManifest(). */
  #toRaw(): void {
    this.#mode = "raw";
  }

  /** `{"agent_id":"...","artifacts":[` at the start, else the manifest is read whole. */
  #readHead(): void {
    const b = this.#buf;
    const n = this.#len;
    for (let i = 0; i < Math.min(n, HEAD.length); i++) {
      if (b[i] !== HEAD[i]) return this.#toRaw();
    }
    if (n <= HEAD.length) return;
    let i = HEAD.length;
    while (i < n && b[i] !== QUOTE) i += b[i] === BACKSLASH ? 2 : 1;
    if (i >= n) return; // the agent id goes on
    const end = i + 1 + ARTIFACTS_KEY.length;
    for (let k = 0; k < ARTIFACTS_KEY.length && i + 1 + k < n; k++) {
      if (b[i + 1 + k] !== ARTIFACTS_KEY[k]) return this.#toRaw();
    }
    if (n < end) return;
    try {
      this.#head = this.#decoder.decode(b.subarray(0, end));
    } catch {
      return this.#toRaw();
    }
    this.#mode = "artifacts";
    this.#shift(end);
    this.#scanFrom(0);
  }

  /** Drops #buf[0, k) (consumed), moving the rest to the front. */
  #shift(k: number): void {
    this.#buf.copyWithin(0, k, this.#len);
    this.#len -= k;
  }

  /**
   * Looks at the bytes of the list from `from` on (#buf holds entries not taken yet): at its
   * end, takes the last entries and moves on to the tail; otherwise, once enough bytes are in,
   * takes the complete entries as a batch.
   */
  #scanFrom(from: number): void {
    const b = this.#buf;
    const n = this.#len;
    if (n === 0) return;
    if (b[0] === CLOSE_BRACKET && this.#table.length === 0) {
      // `]` first: an empty list, or not a manifest the fast path reads.
      if (n < END_EMPTY.length) return;
      if (!startsWith(b, n, 0, END_EMPTY)) return this.#toRaw();
      this.#mode = "tail";
      return;
    }
    // The end of the list: `}]` then the key after it.
    const held = b.subarray(0, n);
    for (let j = Math.max(from - END.length, this.#searched, 0);; j++) {
      j = held.indexOf(CLOSE_BRACKET, j);
      if (j === -1 || j - 1 + END.length > n) {
        this.#searched = j === -1 ? Math.max(0, n - END.length) : Math.max(0, j - 1);
        break;
      }
      if (j > 0 && startsWith(b, n, j - 1, END)) {
        if (!this.#takeBatch(j)) return this.#toRaw();
        this.#mode = "tail"; // #buf now starts with `]`
        return;
      }
    }
    if (n < this.#batchBytes) return;
    // A batch: every complete entry, up to the last boundary between two.
    for (let j = n - BETWEEN.length; j > 0; j--) {
      if (b[j] === CLOSE_BRACE && startsWith(b, n, j, BETWEEN)) {
        if (!this.#takeBatch(j + 1)) this.#toRaw();
        return;
      }
    }
    // Not one boundary in a batch's worth: a very large entry; read on (an entry is at most
    // maxManifestSize).
  }

  /**
   * Parses the entries in #buf[0, end) (after a `,` if there were entries before) and drops
   * them; false if they are not as a valid manifest has them.
   */
  #takeBatch(end: number): boolean {
    const b = this.#buf;
    const table = this.#table;
    const start = table.length > 0 ? 1 : 0;
    if (start === 1 && b[0] !== COMMA) return false;
    let text: string;
    let batch: unknown;
    try {
      text = `[${this.#decoder.decode(b.subarray(start, end))}]`;
      batch = JSON.parse(text);
    } catch {
      return false;
    }
    if (!Array.isArray(batch) || batch.length === 0) return false;
    const limits = this.#limits;
    if (table.length + batch.length > limits.maxEntries) return false;
    for (const a of batch) if (!plainArtifact(a)) return false;
    // Plain entries have their keys sorted, and the native serializer writes them canonically.
    if (JSON.stringify(batch) !== text) return false;
    if (!validator({ ...PROBE, artifacts: batch })) return false;
    let prev = this.#prev;
    for (const a of batch as ManifestArtifact[]) {
      if (checkPath(a.path, limits.maxPathLength, limits.maxPathDepth)) return false;
      if (prev !== undefined && comparePaths(prev, a.path) >= 0) return false;
      prev = a.path;
    }
    this.#prev = prev;
    // One string per kind, not one per entry (JSON.parse makes a new "git-object" each time:
    // 6.4 MB for 211,000 git objects). Digests (lowercase hex: the schema's pattern) as bytes.
    const kinds = this.#kinds;
    for (const a of batch as ManifestArtifact[]) {
      let kind = kinds.get(a.kind);
      if (kind === undefined) kinds.set(a.kind, kind = a.kind);
      table.setDigestHex(table.push(kind, a.path, a.size, a.mode), a.sha256);
    }
    this.#shift(end);
    this.#searched = 0;
    return true;
  }

  /** The manifest from the head, the artifacts and the tail in #buf (`]` then the rest). */
  #tail(): Manifest | undefined {
    let m: Manifest;
    try {
      const text = this.#head + this.#decoder.decode(this.#buf.subarray(0, this.#len));
      // Checked as a manifest without artifacts: every batch was checked already.
      m = parseManifestText(text, this.#limits);
    } catch {
      return undefined;
    }
    if (m.artifacts.length !== 0) return undefined;
    return lazyManifest(m, this.#table);
  }

  /** parseManifest() of every byte: the head and entries taken, re-serialized, then the rest. */
  #fallback(): Manifest {
    if (this.#head === "") return parseManifest(this.#buf.subarray(0, this.#len), this.#limits);
    const table = this.#table;
    const taken = new TextEncoder().encode(
      this.#head + (table.length > 0 ? JSON.stringify(table.entries()).slice(1, -1) : ""),
    );
    const all = new Uint8Array(taken.length + this.#len);
    all.set(taken);
    all.set(this.#buf.subarray(0, this.#len), taken.length);
    return parseManifest(all, this.#limits);
  }
}

/** Whether `pattern` is at `b[at]`, within the first `n` bytes. */
function startsWith(b: Uint8Array, n: number, at: number, pattern: Uint8Array): boolean {
  if (at + pattern.length > n) return false;
  for (let k = 0; k < pattern.length; k++) if (b[at + k] !== pattern[k]) return false;
  return true;
}
