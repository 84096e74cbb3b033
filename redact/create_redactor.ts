/**
 * {@linkcode createRedactor}: the engine that applies rule packs to captured artifacts.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import type { JsonValue, RedactionReport } from "../bundle/types.ts";
import type { PortableRedactor, Redactor, RulePack } from "./types.ts";
import { packsFingerprint } from "./_portable.ts";
import { packSource } from "./load_pack.ts";
import { Engine, type Span } from "./_engine.ts";
import { redactSqliteFile } from "./_sqlite.ts";
import { digestInto } from "../bundle/_digest.ts";

/** Options of {@linkcode createRedactor}. */
export interface CreateRedactorOptions {
  /** The packs to apply, in order (the order breaks ties between overlapping matches). */
  packs: RulePack[];
  /**
   * The store's redaction key (at least 16 bytes). Replacement tokens carry the first 8 hex of
   * HMAC-SHA256(key, secret), so the same secret gives the same token across artifacts and
   * snapshots of one store, and nothing an outsider can test a guess against.
   */
  key: Uint8Array;
  /**
   * Size in bytes of the blocks {@linkcode Redactor.redactFile} reads.
   *
   * @default {1048576}
   */
  chunkSize?: number;
  /**
   * Bytes kept from one block to the next so a secret across a block boundary is still
   * caught; also the longest secret guaranteed to be caught across a boundary.
   *
   * @default {65536}
   */
  overlap?: number;
}

/**
 * Byte inputs of {@linkcode Redactor.redactBytes} from this size are remembered by content
 * hash, so the same content seen again (a memory note and its HEAD blob in the git history) is
 * not redacted twice: "no findings" and "binary" always, redacted results up to
 * `CACHE_RESULT_BYTES` in all (past it, content with findings is redacted again). Notes without
 * findings are cheap to redact already (keyword prefilters): over the fixture's 5,200 notes
 * seen twice, the second pass took 0.24-0.36 CPU-s before, 0.14-0.20 after (the first one
 * ~0.05 more, for the hash).
 */
const CACHE_MIN = 256;
const CACHE_RESULT_BYTES = 2 << 20;
const CACHE_ENTRIES = 200_000;

/** What a cached {@linkcode Redactor.redactBytes} call gave. */
type Cached =
  /** Binary (skipped). */
  | { kind: "binary" }
  /** No findings: the input is the output. */
  | { kind: "same" }
  /** Findings: the rules replaced, in order, and the output. */
  | { kind: "changed"; rules: string[]; out: Uint8Array };

/** The raw digest, one byte per char: a 48-byte string where hex takes 80 (~60,000 are kept). */
const KEY_BYTES = new Uint8Array(32);
function cacheKey(bytes: Uint8Array): string {
  digestInto("sha256", KEY_BYTES, 0, bytes);
  return String.fromCharCode(...KEY_BYTES);
}

/** The entries without a result, shared (a 2 GiB memory has ~70,000 distinct notes). */
const BINARY: Cached = { kind: "binary" };
const SAME: Cached = { kind: "same" };

const JSON_SECRET_KEY = /pass|pwd|secret|token|key|auth|cred/i;
const BINARY_PROBE = 8192;
const ENCODER = new TextEncoder();
/** Strict UTF-8 (one-shot `decode` calls keep no state between them). */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A {@linkcode Redactor} with a few extras for tests and the scanner. */
export interface RedactorWithStats extends Redactor {
  /** Total replacements made so far. */
  readonly replacements: number;
  /**
   * How to make this redactor again in a worker: `undefined` when a pack was made in code
   * (only those loaded by `loadPack`, built-in or from a file, can be loaded again).
   */
  portable(): PortableRedactor | undefined;
  /** Adds the report of a redactor made from {@linkcode RedactorWithStats.portable}. */
  absorb(report: RedactionReport): void;
}

/**
 * Creates a redactor: applies `packs` to strings, bytes, files, JSON values and SQLite
 * databases, replacing each secret with `[REDACTED:<rule-id>:<8 hex of HMAC-SHA256(key, secret)>]`
 * and accumulating a report that never contains a secret.
 *
 * Redaction is idempotent: replacement tokens are never matched again, so redacting twice
 * gives the same bytes. Overlapping matches resolve to the earliest start, then the longest,
 * then the first rule in pack order.
 *
 * @param options The packs and the key.
 * @returns The redactor.
 * @throws {TypeError} When the key is shorter than 16 bytes or a pack is malformed.
 *
 * @example Redacting a string and reading the report
 * ```ts
 * import { createRedactor, secretsPack } from "@memsnap/core/redact";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * const r = createRedactor({ packs: [secretsPack], key: new Uint8Array(32).fill(7) });
 * const out = r.redactString("key AKIAZ7ZQWUXYVDCBA234 used", "memdir/a.md");
 * console.log(out); // key [REDACTED:aws-access-key-id:xxxxxxxx] used
 * assertEquals(r.redactString(out, "memdir/a.md"), out); // idempotent
 * assertEquals(r.report().rules, [
 *   { id: "aws-access-key-id", count: 1, artifacts: ["memdir/a.md"] },
 * ]);
 * ```
 */
export function createRedactor(options: CreateRedactorOptions): RedactorWithStats {
  return new RedactorImpl(options);
}

class RedactorImpl implements RedactorWithStats {
  #engine: Engine;
  readonly #packs: readonly RulePack[];
  #key: Uint8Array;
  #chunkSize: number;
  #overlap: number;
  #tokens = new Map<string, string>();
  #counts = new Map<string, { count: number; artifacts: Set<string> }>();
  #skipped = new Set<string>();
  #replacements = 0;
  /** redactBytes results by content hash (see CACHE_MIN). */
  #cache = new Map<string, Cached>();
  #cachedBytes = 0;
  /** Rules recorded since a redactBytes call began, while one is being cached. */
  #log: string[] | undefined;
  /** While set, replacements are made but not recorded (a value redacted again). */
  #mute = false;

  constructor(options: CreateRedactorOptions) {
    if (!(options.key instanceof Uint8Array) || options.key.length < 16) {
      throw new TypeError("Cannot create the redactor: key must be a Uint8Array of 16+ bytes");
    }
    this.#engine = new Engine(options.packs);
    this.#packs = [...options.packs];
    this.#key = options.key.slice();
    this.#chunkSize = options.chunkSize ?? 1 << 20;
    this.#overlap = options.overlap ?? 1 << 16;
    if (!(this.#chunkSize >= 1) || !(this.#overlap >= 0)) {
      throw new RangeError("Cannot create the redactor: chunkSize must be >= 1, overlap >= 0");
    }
  }

  get replacements(): number {
    return this.#replacements;
  }

  #token(rule: string, secret: string): string {
    let h = this.#tokens.get(secret);
    if (h === undefined) {
      h = createHmac("sha256", this.#key).update(secret, "utf8").digest("hex").slice(0, 8);
      if (this.#tokens.size > 100_000) this.#tokens.clear();
      this.#tokens.set(secret, h);
    }
    return `[REDACTED:${rule}:${h}]`;
  }

  /** The count of `rule`'s replacements, made at its first. */
  #countOf(rule: string): { count: number; artifacts: Set<string> } {
    let c = this.#counts.get(rule);
    if (c === undefined) {
      c = { count: 0, artifacts: new Set() };
      this.#counts.set(rule, c);
    }
    return c;
  }

  #record(rule: string, artifact: string): void {
    if (this.#mute) return;
    const c = this.#countOf(rule);
    c.count++;
    c.artifacts.add(artifact);
    this.#replacements++;
    this.#log?.push(rule);
  }

  /** Replaces `spans` (sorted, disjoint) in `text`. */
  #apply(text: string, spans: Span[], artifact: string): string {
    if (spans.length === 0) return text;
    const parts: string[] = [];
    let pos = 0;
    for (const s of spans) {
      parts.push(text.slice(pos, s.start), this.#token(s.rule, text.slice(s.start, s.end)));
      this.#record(s.rule, artifact);
      pos = s.end;
    }
    parts.push(text.slice(pos));
    return parts.join("");
  }

  redactString(text: string, artifact: string): string {
    let out = text;
    for (let i = 0; i < 4; i++) {
      const { spans, partial } = this.#engine.find(out);
      out = this.#apply(out, spans, artifact);
      if (!partial) break;
    }
    return out;
  }

  redactBytes(bytes: Uint8Array, artifact: string): Uint8Array | undefined {
    if (bytes.length < CACHE_MIN) return this.#redactBytes(bytes, artifact);
    // Same content, same result: replay what the first call recorded (the report counts every
    // replacement of every artifact, as if it had been redacted again).
    // (libcrypto's digest: a node:crypto hash per note would leave native memory until V8
    // collects it, ~150 bytes each)
    const key = cacheKey(bytes);
    const hit = this.#cache.get(key);
    if (hit !== undefined) {
      if (hit.kind === "binary") {
        this.#skipped.add(artifact);
        return undefined;
      }
      if (hit.kind === "same") return bytes;
      for (const rule of hit.rules) this.#record(rule, artifact);
      return hit.out.slice();
    }
    const log: string[] = [];
    this.#log = log;
    let out: Uint8Array | undefined;
    try {
      out = this.#redactBytes(bytes, artifact);
    } finally {
      this.#log = undefined;
    }
    if (this.#cache.size >= CACHE_ENTRIES) {
      this.#cache.clear();
      this.#cachedBytes = 0;
    }
    if (out === undefined) this.#cache.set(key, BINARY);
    else if (out === bytes) this.#cache.set(key, SAME);
    else if (this.#cachedBytes + out.length <= CACHE_RESULT_BYTES) {
      // A copy: the caller owns what it gets.
      this.#cachedBytes += out.length;
      this.#cache.set(key, { kind: "changed", rules: log, out: out.slice() });
    }
    return out;
  }

  #redactBytes(bytes: Uint8Array, artifact: string): Uint8Array | undefined {
    const text = decodeText(bytes);
    if (text === undefined) {
      this.#skipped.add(artifact);
      return undefined;
    }
    const out = this.redactString(text, artifact);
    return out === text ? bytes : ENCODER.encode(out);
  }

  async redactFile(src: string, dest: string, artifact: string): Promise<boolean> {
    // A file smaller than one block (most memory notes) is one text either way: read it whole,
    // redact it as bytes and write it in one call, synchronously (3 file operations instead of
    // ~8 async ones: 3,000 notes of ~12 KB took 1.4-2.6 CPU-s before, 0.9-1.2 after).
    if (Deno.statSync(src).size < this.#chunkSize) {
      const bytes = Deno.readFileSync(src);
      if (bytes.length < this.#chunkSize) {
        const out = this.redactBytes(bytes, artifact);
        if (out === undefined) {
          await Deno.remove(dest).catch(() => {});
          return false;
        }
        Deno.writeFileSync(dest, out);
        return true;
      }
      // It grew since: streamed below.
    }
    const input = await Deno.open(src, { read: true });
    let output: Deno.FsFile | undefined;
    const enc = ENCODER;
    const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    // Blocks are sized from the file (+1 so that a short read still tells the end of the file).
    const size = (await input.stat()).size;
    const blockLength = Math.max(1, Math.min(this.#chunkSize, size + 1));
    const window = this.#chunkSize + this.#overlap;
    // Bytes read and not yet written, in one buffer that blocks are read into and that is
    // compacted after each window (grown only for a line longer than a window). Cuts are made at
    // line ends in the byte domain ("\n" is one byte in UTF-8), so a stretch without matches is
    // written as the original bytes. Per block, nothing but the window's decoded string is
    // allocated: no block-sized copies of the bytes, no joined output string, no encoded copy
    // (each of those was block-sized garbage, freed late: see PERFORMANCE.md, round 4).
    let pending = new Uint8Array(blockLength + Math.min(window, size + 1));
    let length = 0;
    const sink = new ByteSink();
    let first = true;
    let binary = false;
    const decode = (b: Uint8Array): string | undefined => {
      try {
        return dec.decode(b);
      } catch {
        return undefined;
      }
    };
    try {
      output = await Deno.open(dest, { write: true, create: true, truncate: true });
      const write = async (bytes: Uint8Array): Promise<void> => {
        let off = 0;
        while (off < bytes.length) off += await output!.write(bytes.subarray(off));
      };
      let eof = false;
      while (!eof) {
        if (length + blockLength > pending.length) {
          const grown = new Uint8Array(Math.max(2 * pending.length, length + blockLength));
          grown.set(pending.subarray(0, length));
          pending = grown;
        }
        const n = await readFull(input, pending.subarray(length, length + blockLength));
        eof = n < blockLength;
        if (first) {
          first = false;
          if (pending.subarray(0, Math.min(n, BINARY_PROBE)).indexOf(0) >= 0) {
            binary = true;
            break;
          }
        }
        length += n;
        if (eof) {
          const bytes = pending.subarray(0, length);
          const text = decode(bytes);
          if (text === undefined) {
            binary = true;
            break;
          }
          const { spans, partial } = this.#engine.find(text);
          if (spans.length === 0) await write(bytes);
          else if (!partial && this.#applyBytes(text, bytes, spans, text.length, sink, artifact)) {
            await write(sink.bytes());
          } else {
            // (rare: what the rescan of redactString covers, or a span inside a surrogate pair)
            await write(enc.encode(this.redactString(text, artifact)));
          }
          break;
        }
        if (length < window) continue;
        const end = lastBoundary(pending.subarray(0, length));
        const limit = end - this.#overlap;
        // Cut at a line start so every rule sees whole lines. With no line end yet, read on;
        // only a huge line (4 blocks) is cut, at a space (or a character boundary).
        let cut = pending.lastIndexOf(0x0a, limit - 1) + 1;
        if (cut <= 0) {
          if (length < 4 * window) continue;
          cut = pending.lastIndexOf(0x20, limit - 1) + 1;
          if (cut <= 0) cut = lastBoundary(pending.subarray(0, limit));
        }
        // One flat string for the window (the cut is at a character boundary, so decoding it
        // whole checks the same bytes as decoding both sides): decoding the head and the tail
        // apart and joining them made three block-sized strings, not one, and block-sized
        // strings are old-space garbage that only a full GC frees (+35-40 MB of heap per
        // 26 MB transcript before one ran).
        const bytes = pending.subarray(0, end);
        const text = decode(bytes);
        if (text === undefined) {
          binary = true;
          break;
        }
        // (counted over the tail, about `overlap` bytes, rather than the whole head)
        const headLength = text.length - utf16Length(pending, cut, end);
        const { spans, partial } = this.#engine.find(text);
        const taken: Span[] = [];
        let endC = headLength;
        for (const sp of spans) {
          if (sp.start >= headLength) break;
          taken.push(sp);
          if (sp.end > endC) endC = sp.end;
        }
        let consumed = cut;
        if (taken.length === 0) {
          await write(pending.subarray(0, cut));
        } else if (!partial && this.#applyBytes(text, bytes, taken, endC, sink, artifact)) {
          await write(sink.bytes());
          consumed = sink.consumed;
        } else {
          let out = this.#apply(text.slice(0, endC), taken, artifact);
          if (partial) out = this.redactString(out, artifact);
          await write(enc.encode(out));
          if (endC > headLength) consumed += enc.encode(text.slice(headLength, endC)).length;
        }
        pending.copyWithin(0, consumed, length);
        length -= consumed;
      }
    } finally {
      input.close();
      output?.close();
    }
    if (binary) {
      this.#skipped.add(artifact);
      await Deno.remove(dest).catch(() => {});
      return false;
    }
    return true;
  }

  /**
   * What `ENCODER.encode(this.#apply(text.slice(0, endC), spans, artifact))` gives, into `sink`,
   * without building the string: the stretches between spans are copied from `bytes` (the
   * UTF-8 that `text` was decoded from) and only the tokens are encoded. `sink.consumed` is then
   * the byte length of `text.slice(0, endC)`. Returns `false`, recording nothing, when a span
   * starts or ends inside a surrogate pair (the string path encodes its halves as U+FFFD, which
   * no byte copy gives): the caller takes the string path.
   */
  #applyBytes(
    text: string,
    bytes: Uint8Array,
    spans: Span[],
    endC: number,
    sink: ByteSink,
    artifact: string,
  ): boolean {
    for (const s of spans) {
      if (splitsPair(text, s.start) || splitsPair(text, s.end)) return false;
    }
    // All ASCII: UTF-16 offsets are byte offsets.
    const ascii = text.length === bytes.length;
    let unit = 0;
    let at = 0;
    const byteOf = (u: number): number => {
      if (ascii) return u;
      while (unit < u) {
        const c = bytes[at]!;
        if (c < 0x80) {
          at += 1;
          unit += 1;
        } else if (c < 0xe0) {
          at += 2;
          unit += 1;
        } else if (c < 0xf0) {
          at += 3;
          unit += 1;
        } else {
          at += 4;
          unit += 2;
        }
      }
      return at;
    };
    sink.reset();
    let pos = 0;
    for (const s of spans) {
      const from = byteOf(s.start);
      sink.copy(bytes, pos, from);
      sink.text(this.#token(s.rule, text.slice(s.start, s.end)));
      this.#record(s.rule, artifact);
      pos = byteOf(s.end);
    }
    const last = byteOf(endC);
    sink.copy(bytes, pos, last);
    sink.consumed = last;
    return true;
  }

  redactJson(value: JsonValue, artifact: string): JsonValue {
    return this.#json(value, artifact, undefined);
  }

  #json(value: JsonValue, artifact: string, key: string | undefined): JsonValue {
    if (typeof value === "string") {
      if (key !== undefined && JSON_SECRET_KEY.test(key)) {
        return this.#redactWithContext(`${key}=`, value, artifact);
      }
      return this.redactString(value, artifact);
    }
    if (Array.isArray(value)) return value.map((v) => this.#json(v, artifact, undefined));
    if (value !== null && typeof value === "object") {
      const out: { [key: string]: JsonValue } = {};
      for (const [k, v] of Object.entries(value)) out[k] = this.#json(v, artifact, k);
      return out;
    }
    return value;
  }

  /** Redacts `value` seen after `prefix` (its JSON key), so `"password": "..."` is caught. */
  #redactWithContext(prefix: string, value: string, artifact: string): string {
    const out = this.redactString(value, artifact);
    if (out !== value) return out;
    const { spans } = this.#engine.find(prefix + value);
    const inValue = spans
      .filter((s) => s.start >= prefix.length)
      .map((s) => ({ ...s, start: s.start - prefix.length, end: s.end - prefix.length }));
    return this.#apply(value, inValue, artifact);
  }

  async redactSqlite(
    dbPath: string,
    artifact: string,
    options: { vacuum?: boolean } = {},
  ): Promise<void> {
    const text = (t: string): string => this.redactString(t, artifact);
    const blob = (bytes: Uint8Array): Uint8Array | undefined => {
      const t = decodeText(bytes);
      if (t === undefined) return undefined;
      const out = this.redactString(t, artifact);
      return out === t ? undefined : ENCODER.encode(out);
    };
    // Values not held between the two passes are redacted again when written: the same
    // output, not counted twice in the report.
    const muted = <A, R>(f: (a: A) => R) => (a: A): R => {
      this.#mute = true;
      try {
        return f(a);
      } finally {
        this.#mute = false;
      }
    };
    await redactSqliteFile(dbPath, text, blob, {
      again: { text: muted(text), blob: muted(blob) },
      vacuum: options.vacuum ?? true,
    });
  }

  portable(): PortableRedactor | undefined {
    const specs: string[] = [];
    for (const p of this.#packs) {
      const spec = packSource(p);
      if (spec === undefined) return undefined;
      specs.push(spec);
    }
    return { packs: specs, key: this.#key.slice(), fingerprint: packsFingerprint(this.#packs) };
  }

  absorb(report: RedactionReport): void {
    for (const r of report.rules) {
      const c = this.#countOf(r.id);
      c.count += r.count;
      for (const a of r.artifacts) c.artifacts.add(a);
      this.#replacements += r.count;
    }
    for (const a of report.skipped_binary) this.#skipped.add(a);
  }

  report(): RedactionReport {
    return {
      redacted: true,
      packs: this.#engine.packs.map((p) => ({ id: p.id, version: p.version })),
      rules: [...this.#counts.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([id, c]) => ({ id, count: c.count, artifacts: [...c.artifacts].sort() })),
      skipped_binary: [...this.#skipped].sort(),
    };
  }
}

/** Decodes UTF-8 text; `undefined` when the bytes look binary (NUL, invalid UTF-8). */
function decodeText(bytes: Uint8Array): string | undefined {
  if (bytes.subarray(0, BINARY_PROBE).indexOf(0) >= 0) return undefined;
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Length in UTF-16 code units of the text that the valid UTF-8 `b.subarray(start, end)` decodes
 * to: one unit per lead byte, two for a 4-byte sequence (a surrogate pair).
 */
function utf16Length(b: Uint8Array, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if ((c & 0xc0) !== 0x80) n += c >= 0xf0 ? 2 : 1;
  }
  return n;
}

/** Whether UTF-16 offset `i` of `text` falls between the two halves of a surrogate pair. */
function splitsPair(text: string, i: number): boolean {
  if (i <= 0 || i >= text.length) return false;
  const lo = text.charCodeAt(i);
  const hi = text.charCodeAt(i - 1);
  return lo >= 0xdc00 && lo <= 0xdfff && hi >= 0xd800 && hi <= 0xdbff;
}

/** A reused output buffer: byte ranges copied in, text encoded in, grown as needed. */
class ByteSink {
  #buf = new Uint8Array(1 << 16);
  #fill = 0;
  /** Set by the writer: input bytes the output stands for. */
  consumed = 0;

  reset(): void {
    this.#fill = 0;
  }

  #room(n: number): void {
    if (this.#fill + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(2 * this.#buf.length, this.#fill + n));
    grown.set(this.#buf.subarray(0, this.#fill));
    this.#buf = grown;
  }

  /** Appends `from.subarray(start, end)`. */
  copy(from: Uint8Array, start: number, end: number): void {
    if (end <= start) return;
    this.#room(end - start);
    this.#buf.set(from.subarray(start, end), this.#fill);
    this.#fill += end - start;
  }

  /** Appends the UTF-8 of `s`. */
  text(s: string): void {
    this.#room(3 * s.length);
    this.#fill += ENCODER.encodeInto(s, this.#buf.subarray(this.#fill)).written;
  }

  /** The bytes appended since `reset()` (a view, valid until the next call). */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.#fill);
  }
}

/** Length of the longest prefix of `b` that ends on a UTF-8 character boundary. */
function lastBoundary(b: Uint8Array): number {
  let i = b.length;
  // Step back over at most 3 continuation bytes to the lead byte of the last character.
  let k = i - 1;
  while (k >= 0 && k >= i - 4 && (b[k]! & 0xc0) === 0x80) k--;
  if (k < 0) return i;
  const lead = b[k]!;
  const len = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  if (k + len > i) i = k;
  return i;
}

/** Reads until `buf` is full or the file ends; returns the bytes read. */
async function readFull(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}
