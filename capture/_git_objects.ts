/**
 * Private git object plumbing for the git plugin: the object source interface (and a fallback
 * source through isomorphic-git, loaded only when used), walking reachability, writing packfiles
 * and bundles, and writing an index. Bundles are written synchronously (one reused zlib engine,
 * buffered writes), pausing every 16 ms so concurrent plugins' I/O keeps moving.
 *
 * @module
 */
import { pacer } from "../_pace.ts";
import { createHash } from "node:crypto";
import { digestHex } from "../bundle/_digest.ts";
import { Buffer } from "node:buffer";
import { createDeflate, deflateSync } from "node:zlib";
import { gitFs } from "./_git_repo.ts";
import { deflateBlocksSync, SyncZlib, syncZlibAvailable } from "./_git_zlib.ts";

/** A git object type. */
export type ObjectType = "commit" | "tree" | "blob" | "tag";

/** A git object: its type and its body (without the `"<type> <size>\0"` header). */
export interface GitObject {
  type: ObjectType;
  body: Uint8Array;
}

/** A raw pack entry of an object, compressed data included, as stored in its pack. */
export type RawEntry =
  | { kind: "whole"; type: ObjectType; size: number; data: Uint8Array }
  | { kind: "delta"; base: string; size: number; data: Uint8Array };

/** Something objects can be read from. */
export interface ObjectSource {
  /** Reads an object, resolved. */
  read(oid: string): Promise<GitObject>;
  /** The raw pack entry of `oid`, when the source has one (lets a bundle reuse deltas). */
  raw?(oid: string): RawEntry | undefined;
  /** Whether `raw(oid)` is likely to give an entry (cheap; `raw` itself copies the entry). */
  hasRaw?(oid: string): boolean;
  /**
   * A large entry that `raw(oid)` would give, with its compressed data as chunks (each may be
   * reused by the next: use it before pulling the next), so that it is never held whole;
   * `undefined` when the source has no such entry (then `raw`).
   */
  rawChunks?(oid: string): RawChunks | undefined;
  /**
   * The object's body as a stream of chunks, when the source can read it without holding it
   * whole (a loose object); `undefined` otherwise. As with `streamSync`, a chunk may be reused
   * by the next: use it before pulling the next.
   */
  stream?(oid: string): Promise<ObjectStream | undefined>;
  /**
   * Reads an object synchronously when the source can (a packed or loose object), else
   * `undefined` (then use `read`).
   */
  readSync?(oid: string): GitObject | undefined;
  /**
   * Like `readSync`, but the body may be a view of a buffer that the source's next read reuses
   * (use it before reading again): a loose object's body straight from the inflater, not
   * copied. `undefined` when the source cannot read `oid` synchronously.
   */
  readView?(oid: string): GitObject | undefined;
  /**
   * Like `stream`, synchronously: the body of a large loose object as chunks, or `undefined`
   * if `oid` is not one. When a source has `streamSync`, its `stream` gives the same answer.
   */
  streamSync?(oid: string): SyncObjectStream | undefined;
}

/**
 * A pack entry's fields and its compressed data in chunks (each may be reused by the next:
 * use it before pulling the next): a whole object, or a delta against `base`.
 */
export type RawChunks =
  | { kind: "whole"; type: ObjectType; size: number; data: Iterable<Uint8Array> }
  | { kind: "delta"; base: string; size: number; data: Iterable<Uint8Array> };

/** An object read as a synchronous stream: type, size and body chunks. */
export interface SyncObjectStream {
  type: ObjectType;
  size: number;
  /**
   * The body's chunks. A chunk may be a view of a buffer the next one reuses: use it, or copy
   * it, before pulling the next.
   */
  body: Iterable<Uint8Array>;
}

/** An object read as a stream: type, size and body chunks. */
export interface ObjectStream {
  type: ObjectType;
  size: number;
  body: AsyncIterable<Uint8Array>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads objects of a repository (loose and packed) through isomorphic-git. */
export function repoSource(gitdir: string): ObjectSource {
  const cache = {};
  return {
    async read(oid: string): Promise<GitObject> {
      const { default: git } = await import("isomorphic-git");
      const o = await git.readObject({ fs: await gitFs(), gitdir, oid, format: "content", cache });
      return { type: o.type as ObjectType, body: o.object as Uint8Array };
    },
  };
}

/** Rewritten objects, as {@linkcode overlaySource} reads them. */
export interface Overlay {
  has(oid: string): boolean;
  get(oid: string): GitObject | undefined;
  raw?(oid: string): RawEntry | undefined;
  rawChunks?(oid: string): RawChunks | undefined;
}

/** A source that serves rewritten objects first, then falls back to another source. */
export function overlaySource(
  objects: Map<string, GitObject> | Overlay,
  base: ObjectSource,
): ObjectSource {
  const own = (oid: string): RawEntry | undefined =>
    "raw" in objects && typeof objects.raw === "function" ? objects.raw(oid) : undefined;
  const source: ObjectSource = {
    read: (oid: string): Promise<GitObject> => {
      const o = objects.get(oid);
      return o === undefined ? base.read(oid) : Promise.resolve(o);
    },
    readSync: (oid: string): GitObject | undefined => objects.get(oid) ?? base.readSync?.(oid),
    readView: (oid: string): GitObject | undefined =>
      objects.get(oid) ?? base.readView?.(oid) ?? base.readSync?.(oid),
    raw: (oid: string): RawEntry | undefined => objects.has(oid) ? own(oid) : base.raw?.(oid),
    hasRaw: (oid: string): boolean =>
      objects.has(oid)
        ? "raw" in objects && typeof objects.raw === "function"
        : base.hasRaw?.(oid) ?? false,
    stream: (oid: string): Promise<ObjectStream | undefined> =>
      objects.has(oid) || base.stream === undefined ? Promise.resolve(undefined) : base.stream(oid),
  };
  if ("rawChunks" in objects && typeof objects.rawChunks === "function") {
    const own = objects.rawChunks.bind(objects);
    source.rawChunks = (oid) => objects.has(oid) ? own(oid) : base.rawChunks?.(oid);
  } else if (base.rawChunks !== undefined) {
    const rawChunks = base.rawChunks;
    source.rawChunks = (oid) => objects.has(oid) ? undefined : rawChunks(oid);
  }
  const streamSync = base.streamSync;
  if (streamSync !== undefined) {
    source.streamSync = (oid) => objects.has(oid) ? undefined : streamSync(oid);
  }
  return source;
}

/** The object id (SHA-1 hex) of an object. */
export function objectId(type: ObjectType, body: Uint8Array): string {
  return digestHex("sha1", `${type} ${body.byteLength}\0`, body);
}

/** One entry of a tree object. */
export interface TreeEntry {
  /** Octal mode as written in the tree, e.g. `"100644"`, `"40000"`. */
  mode: string;
  /** Raw name bytes. */
  name: Uint8Array;
  /** Object id. */
  oid: string;
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** Hex of 20 bytes at `at` (faster than Buffer/TextDecoder for many tiny calls). */
export function hexAt(bytes: Uint8Array, at: number): string {
  let s = "";
  for (let k = at; k < at + 20; k++) s += HEX[bytes[k]!]!;
  return s;
}

/** 40 hex digits as 20 bytes into `out`; false if `hex` is not that. */
export function hexInto(hex: string, out: Uint8Array): boolean {
  if (hex.length !== 40) return false;
  for (let i = 0; i < 20; i++) {
    const hi = hexDigit(hex.charCodeAt(2 * i));
    const lo = hexDigit(hex.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return false;
    out[i] = (hi << 4) | lo;
  }
  return true;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Parses a tree object body. */
export function parseTree(body: Uint8Array): TreeEntry[] {
  const out: TreeEntry[] = [];
  let i = 0;
  while (i < body.length) {
    let mode = "";
    while (i < body.length && body[i] !== 0x20) mode += String.fromCharCode(body[i++]!);
    const nul = body.indexOf(0, i);
    if (i >= body.length || nul < 0 || nul + 21 > body.length) {
      throw new Error("Cannot parse tree: truncated");
    }
    out.push({ mode, name: body.subarray(i + 1, nul), oid: hexAt(body, nul + 1) });
    i = nul + 21;
  }
  return out;
}

/** Serializes tree entries (order kept as given). */
export function formatTree(entries: TreeEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const e of entries) {
    parts.push(
      encoder.encode(`${e.mode} `),
      e.name,
      new Uint8Array([0]),
      Buffer.from(e.oid, "hex"),
    );
  }
  return Buffer.concat(parts);
}

/** Splits a commit or tag body into header lines and the message bytes. */
export function splitHeaders(body: Uint8Array): { headers: string[]; message: Uint8Array } {
  let end = -1;
  for (let i = 0; i + 1 < body.length; i++) {
    if (body[i] === 0x0a && body[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end < 0) {
    const text = decoder.decode(body).replace(/\n$/, "");
    return { headers: text === "" ? [] : text.split("\n"), message: new Uint8Array() };
  }
  return {
    headers: decoder.decode(body.subarray(0, end)).split("\n"),
    message: body.slice(end + 2),
  };
}

/** Joins header lines and a message into a commit or tag body. */
export function joinHeaders(headers: string[], message: Uint8Array): Uint8Array {
  return Buffer.concat([encoder.encode(headers.join("\n") + "\n\n"), message]);
}

/** The objects a commit or tag points at. */
export function links(o: GitObject): string[] {
  if (o.type === "tree") {
    return parseTree(o.body).filter((e) => e.mode !== "160000").map((e) => e.oid);
  }
  if (o.type === "blob") return [];
  const out: string[] = [];
  for (const h of splitHeaders(o.body).headers) {
    const m = /^(tree|parent|object) ([0-9a-f]{40})$/.exec(h);
    if (m) out.push(m[2]!);
  }
  return out;
}

/**
 * A kept body from this size may be a loose object of 1 MiB or more compressed, which the
 * bundle writer streams.
 */
const KEPT_STREAM_CHECK = 1 << 19;

/** Bodies of trees, commits and tags kept by {@linkcode reachable}: up to 16 MiB. */
const KEEP_BYTES = 16 * 1024 * 1024;

/**
 * Every object reachable from `tips`, each once, tips' closure in DFS order. The trees,
 * commits and tags it reads go into `keep` (up to 16 MiB of them; not those the source has
 * raw entries for), so a bundle writer does not
 * read them again.
 */
export async function reachable(
  source: ObjectSource,
  tips: string[],
  signal?: AbortSignal,
  keep?: Map<string, GitObject>,
): Promise<string[]> {
  let kept = 0;
  const seen = new Set<string>();
  const order: string[] = [];
  // Blobs named by a tree are known to be blobs: they have no links, so they are not read
  // (the bundle writer copies their packed entries without inflating them).
  const blobs = new Set<string>();
  const stack = [...tips].reverse();
  const pace = pacer();
  while (stack.length > 0) {
    const oid = stack.pop()!;
    if (seen.has(oid)) continue;
    signal?.throwIfAborted();
    await pace();
    seen.add(oid);
    order.push(oid);
    if (blobs.has(oid)) continue;
    const o = source.readSync?.(oid) ?? await source.read(oid);
    // (objects the writer copies raw need no body)
    if (
      keep !== undefined && kept + o.body.byteLength <= KEEP_BYTES && !source.hasRaw?.(oid)
    ) {
      keep.set(oid, o);
      kept += o.body.byteLength;
    }
    let next: string[];
    if (o.type === "tree") {
      next = [];
      for (const e of parseTree(o.body)) {
        if (e.mode === "160000") continue;
        if (e.mode !== "40000") blobs.add(e.oid);
        next.push(e.oid);
      }
    } else next = links(o);
    for (let i = next.length - 1; i >= 0; i--) if (!seen.has(next[i]!)) stack.push(next[i]!);
  }
  return order;
}

const TYPE_CODE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3, tag: 4 };

/** Encodes a pack object header: type code (1-4, 7 for a ref delta) and inflated size. */
export function packObjectHeader(type: number, size: number): Uint8Array {
  const bytes: number[] = [];
  let c = (type << 4) | (size & 0x0f);
  size = Math.floor(size / 16);
  while (size > 0) {
    bytes.push(c | 0x80);
    c = size & 0x7f;
    size = Math.floor(size / 128);
  }
  bytes.push(c);
  return new Uint8Array(bytes);
}

/** A ref line of a bundle. */
export interface BundleRef {
  oid: string;
  name: string;
}

/** Bytes written to a file through a 1 MiB buffer, synchronously, hashed on the way. */
class HashingWriter {
  #file: Deno.FsFile;
  #buf = new Uint8Array(1 << 20);
  #fill = 0;
  readonly hash = createHash("sha1");

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  #write(bytes: Uint8Array): void {
    this.hash.update(bytes);
    let off = 0;
    while (off < bytes.byteLength) off += this.#file.writeSync(bytes.subarray(off));
  }

  push(bytes: Uint8Array): void {
    if (bytes.byteLength > this.#buf.byteLength - this.#fill) {
      this.flush();
      if (bytes.byteLength >= this.#buf.byteLength) {
        this.#write(bytes);
        return;
      }
    }
    this.#buf.set(bytes, this.#fill);
    this.#fill += bytes.byteLength;
  }

  flush(): void {
    if (this.#fill === 0) return;
    this.#write(this.#buf.subarray(0, this.#fill));
    this.#fill = 0;
  }
}

/**
 * Writes a git bundle v2 (`# v2 git bundle`, ref lines, blank line, packfile of `oids`) to
 * `path`. Entries the source hands out raw are copied (deltas become ref deltas against a base
 * in the same pack); other objects are stored whole, zlib-compressed. Objects in `bodies` are
 * taken from there rather than read again.
 *
 * @returns The pack checksum (hex).
 */
export async function writeBundle(
  path: string,
  refs: BundleRef[],
  source: ObjectSource,
  oids: string[],
  signal?: AbortSignal,
  bodies?: Map<string, GitObject>,
): Promise<string> {
  using file = Deno.openSync(path, { write: true, create: true, truncate: true });
  const head = encoder.encode(
    "# v2 git bundle\n" + refs.map((r) => `${r.oid} ${r.name}\n`).join("") + "\n",
  );
  let off = 0;
  while (off < head.byteLength) off += file.writeSync(head.subarray(off));
  const out = new HashingWriter(file);
  const header = new Uint8Array(12);
  const view = new DataView(header.buffer);
  header.set(encoder.encode("PACK"));
  view.setUint32(4, 2);
  view.setUint32(8, oids.length);
  out.push(header);
  const included = new Set(oids);
  // One engine for every whole object (same bytes as deflateSync, without a new engine each).
  const deflater = syncZlibAvailable() ? new SyncZlib("deflate") : undefined;
  try {
    await writeEntries();
  } finally {
    deflater?.close();
  }
  out.flush();
  const trailer = out.hash.digest();
  off = 0;
  while (off < trailer.byteLength) off += file.writeSync(trailer.subarray(off));
  return trailer.toString("hex");

  async function writeEntries(): Promise<void> {
    const pace = pacer();
    for (const oid of oids) {
      signal?.throwIfAborted();
      await pace();
      // Reuse the repository's compressed entry when possible: whole objects as they are,
      // deltas as ref deltas when their base is in this pack too. A large one is copied in
      // chunks, never held whole.
      const chunks = source.rawChunks?.(oid);
      if (chunks?.kind === "whole") {
        out.push(packObjectHeader(TYPE_CODE[chunks.type], chunks.size));
        for (const c of chunks.data) out.push(c);
        continue;
      }
      if (chunks?.kind === "delta" && included.has(chunks.base)) {
        out.push(packObjectHeader(7, chunks.size));
        out.push(Buffer.from(chunks.base, "hex"));
        for (const c of chunks.data) out.push(c);
        continue;
      }
      // (a large delta against a base left out is resolved below, streamed: not copied whole)
      const raw = chunks === undefined ? source.raw?.(oid) : undefined;
      if (raw?.kind === "whole") {
        out.push(packObjectHeader(TYPE_CODE[raw.type], raw.size));
        out.push(raw.data);
        continue;
      }
      if (raw?.kind === "delta" && included.has(raw.base)) {
        out.push(packObjectHeader(7, raw.size));
        out.push(Buffer.from(raw.base, "hex"));
        out.push(raw.data);
        continue;
      }
      let o = bodies?.get(oid);
      // (a kept body can be a large loose object too: it is streamed, as it always was)
      if (raw === undefined && (o === undefined || o.body.byteLength >= KEPT_STREAM_CHECK)) {
        // A large object (loose, or a packed delta): inflated and deflated again in chunks,
        // never whole.
        const sync = source.streamSync?.(oid);
        if (sync !== undefined) {
          out.push(packObjectHeader(TYPE_CODE[sync.type], sync.size));
          // (a 300 MB object is seconds of deflating: other tasks run meanwhile)
          for (const c of deflateBlocksSync(sync.body, true)) {
            out.push(c);
            const wait = pace();
            if (wait !== undefined) await wait;
          }
          continue;
        }
        const streamed = source.streamSync === undefined ? await source.stream?.(oid) : undefined;
        if (streamed !== undefined) {
          out.push(packObjectHeader(TYPE_CODE[streamed.type], streamed.size));
          for await (const c of deflateStream(streamed.body)) out.push(c);
          continue;
        }
      }
      // (a view at most until the next read: compressed and copied out at once)
      o ??= source.readView?.(oid) ?? source.readSync?.(oid) ?? await source.read(oid);
      out.push(packObjectHeader(TYPE_CODE[o.type], o.body.byteLength));
      out.push(
        deflater?.once(o.body) ?? deflateSync(o.body, {
          level: 1,
          ...(o.body.byteLength >= 1 << 20 ? { chunkSize: 1 << 20 } : {}),
        }),
      );
    }
  }
}

/**
 * zlib level 1 over a stream of chunks. The input is re-cut into 64 KiB blocks first, so the
 * output depends only on the bytes, not on how they were chunked.
 */
export async function* deflateStream(
  body: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const BLOCK = 1 << 16;
  const z = createDeflate({ level: 1 });
  const out: Uint8Array[] = [];
  let error: Error | undefined;
  z.on("data", (c: Uint8Array) => out.push(c));
  z.on("error", (e: Error) => (error = e));
  const flushed = new Promise<void>((resolve) => z.on("end", resolve));
  const feed = (c: Uint8Array): Promise<void> =>
    new Promise<void>((resolve, reject) => z.write(c, (e) => (e ? reject(e) : resolve())));
  const block = new Uint8Array(BLOCK);
  let fill = 0;
  for await (const c of body) {
    let at = 0;
    while (at < c.length) {
      const k = Math.min(BLOCK - fill, c.length - at);
      block.set(c.subarray(at, at + k), fill);
      fill += k;
      at += k;
      if (fill === BLOCK) {
        await feed(block.slice());
        fill = 0;
        if (error) throw error;
        yield* out.splice(0);
      }
    }
  }
  if (fill > 0) await feed(block.slice(0, fill));
  z.end();
  await flushed;
  if (error) throw error;
  yield* out.splice(0);
}

/** A parsed bundle: its ref lines and where the pack starts. */
export interface ParsedBundle {
  refs: BundleRef[];
  pack: Uint8Array;
}

/** Parses a git bundle v2; throws on prerequisites or a malformed header. */
export function parseBundle(bytes: Uint8Array): ParsedBundle {
  const sig = "# v2 git bundle\n";
  if (decoder.decode(bytes.subarray(0, sig.length)) !== sig) {
    throw new Error("not a v2 git bundle");
  }
  const refs: BundleRef[] = [];
  let i = sig.length;
  while (true) {
    const nl = bytes.indexOf(0x0a, i);
    if (nl < 0) throw new Error("truncated bundle header");
    const line = decoder.decode(bytes.subarray(i, nl));
    i = nl + 1;
    if (line === "") break;
    const m = /^([0-9a-f]{40}) (\S+)$/.exec(line);
    if (m === null) throw new Error(`unsupported bundle header line "${line.slice(0, 80)}"`);
    refs.push({ oid: m[1]!, name: m[2]! });
  }
  const pack = bytes.subarray(i);
  if (decoder.decode(pack.subarray(0, 4)) !== "PACK") throw new Error("no packfile after header");
  return { refs, pack };
}

/**
 * Reads the header of the git bundle v2 file at `path` (ref lines up to the blank line),
 * without reading the pack; throws on prerequisites or a malformed header.
 *
 * @returns The refs, and the offset in the file where the pack starts.
 */
export async function readBundleHeader(
  path: string,
): Promise<{ refs: BundleRef[]; packStart: number }> {
  using file = await Deno.open(path, { read: true });
  const chunks: Uint8Array[] = [];
  let have = 0;
  let end = -1;
  const buf = new Uint8Array(64 * 1024);
  // The header ends at the first "\n\n"; the 4 bytes after it must be "PACK".
  while (end < 0 || have < end + 6) {
    const n = await file.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    have += n;
    if (end < 0) {
      const all = Buffer.concat(chunks);
      chunks.splice(0, chunks.length, all);
      end = all.indexOf("\n\n");
    }
    if (have > 256 * 1024 * 1024) throw new Error("bundle header too large");
  }
  const head = Buffer.concat(chunks);
  if (end < 0) {
    if (decoder.decode(head.subarray(0, 16)) !== "# v2 git bundle\n") {
      throw new Error("not a v2 git bundle");
    }
    throw new Error("truncated bundle header");
  }
  const { refs } = parseBundle(head.subarray(0, Math.min(head.length, end + 6)));
  return { refs, packStart: end + 2 };
}

/** The value of a lowercase or uppercase hex digit's char code (0 for anything else). */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return 0;
}

/** The length of a version 2 index entry for `path`, NUL padding included. */
function entryLength(path: Uint8Array): number {
  return Math.ceil((62 + path.byteLength + 1) / 8) * 8;
}

/** Encodes an index entry at `buf[at]` (zeroing its padding); returns its length. */
function encodeEntry(
  buf: Uint8Array,
  v: DataView,
  at: number,
  path: Uint8Array,
  mode: number,
  oid: string | Uint8Array,
  stat?: Deno.FileInfo,
): number {
  const padded = entryLength(path);
  buf.fill(0, at, at + padded);
  const u32 = (n: number | null | undefined): number => Math.max(0, Math.floor(n ?? 0)) >>> 0;
  const ctime = stat?.ctime?.getTime() ?? 0;
  const mtime = stat?.mtime?.getTime() ?? 0;
  v.setUint32(at, u32(ctime / 1000));
  v.setUint32(at + 4, u32((ctime % 1000) * 1e6));
  v.setUint32(at + 8, u32(mtime / 1000));
  v.setUint32(at + 12, u32((mtime % 1000) * 1e6));
  v.setUint32(at + 16, u32(stat?.dev));
  v.setUint32(at + 20, u32(stat?.ino));
  v.setUint32(at + 24, mode);
  v.setUint32(at + 28, u32(stat?.uid));
  v.setUint32(at + 32, u32(stat?.gid));
  v.setUint32(at + 36, u32(stat?.size));
  if (typeof oid === "string") {
    for (let i = 0; i < 20; i++) {
      buf[at + 40 + i] = (hexValue(oid.charCodeAt(2 * i)) << 4) |
        hexValue(oid.charCodeAt(2 * i + 1));
    }
  } else {
    buf.set(oid.subarray(0, 20), at + 40);
  }
  v.setUint16(at + 60, Math.min(path.byteLength, 0xfff));
  buf.set(path, at + 62);
  return padded;
}

/** Whether path bytes `a` sort strictly before `b` (byte order, as the index sorts). */
function bytesBefore(a: Uint8Array, b: Uint8Array, aLength = a.length): boolean {
  const n = Math.min(aLength, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return aLength < b.length;
}

/**
 * Writes an index file (version 2) straight to disk, entry by entry, for entries that come in
 * path order (a walk of a tree gives them so): what `IndexBuilder` makes, without holding the
 * entries (~105 bytes per file, and the index twice while it was built: 80 MB at 200,000
 * files). {@linkcode add} returns false for an entry out of order; the caller then builds the
 * index with `IndexBuilder` instead (and discards this one with {@linkcode discard}).
 */
export class IndexFileWriter {
  readonly #path: string;
  readonly #file: Deno.FsFile;
  #buf = new Uint8Array(1 << 20);
  #view = new DataView(this.#buf.buffer);
  #fill = 12; // the header, written last
  #count = 0;
  /** The last entry's path: its bytes copied into one reused buffer (not a buffer per entry). */
  #last = new Uint8Array(256);
  #lastLength = -1;

  constructor(path: string) {
    this.#path = path;
    this.#file = Deno.openSync(path, { read: true, write: true, create: true, truncate: true });
  }

  /**
   * Writes the entry (`oid` as hex or 20 bytes); false (nothing written) when `path` does not
   * sort after the last one.
   */
  add(path: Uint8Array, mode: number, oid: string | Uint8Array, stat?: Deno.FileInfo): boolean {
    if (this.#lastLength >= 0 && !bytesBefore(this.#last, path, this.#lastLength)) return false;
    const padded = entryLength(path);
    if (this.#fill + padded > this.#buf.length) this.#flush();
    if (padded > this.#buf.length) {
      this.#buf = new Uint8Array(padded);
      this.#view = new DataView(this.#buf.buffer);
    }
    encodeEntry(this.#buf, this.#view, this.#fill, path, mode, oid, stat);
    this.#fill += padded;
    this.#count++;
    if (path.length > this.#last.length) this.#last = new Uint8Array(path.length * 2);
    this.#last.set(path);
    this.#lastLength = path.length;
    return true;
  }

  /** Entries written. */
  get length(): number {
    return this.#count;
  }

  #flush(): void {
    let off = 0;
    while (off < this.#fill) off += this.#file.writeSync(this.#buf.subarray(off, this.#fill));
    this.#fill = 0;
  }

  /** Writes the header and the SHA-1 trailer (read back from the file) and closes it. */
  finish(): void {
    try {
      this.#flush();
      const header = new Uint8Array(12);
      header.set(encoder.encode("DIRC"));
      new DataView(header.buffer).setUint32(4, 2);
      new DataView(header.buffer).setUint32(8, this.#count);
      this.#file.seekSync(0, Deno.SeekMode.Start);
      this.#file.writeSync(header);
      this.#file.seekSync(0, Deno.SeekMode.Start);
      const hash = createHash("sha1");
      const chunk = this.#buf.length >= 1 << 20 ? this.#buf : new Uint8Array(1 << 20);
      for (;;) {
        const n = this.#file.readSync(chunk);
        if (n === null || n === 0) break;
        hash.update(chunk.subarray(0, n));
      }
      const trailer = hash.digest();
      let off = 0;
      while (off < trailer.length) off += this.#file.writeSync(trailer.subarray(off));
    } finally {
      this.#file.close();
    }
  }

  /** Closes and removes the file. */
  discard(): void {
    try {
      this.#file.close();
    } catch {
      // closed already
    }
    try {
      Deno.removeSync(this.#path);
    } catch {
      // gone already
    }
  }
}

/**
 * Builds an index file (version 2) one entry at a time. Each entry is encoded at once into one
 * growing buffer (its stat data copied out, so no `Deno.FileInfo` nor path buffer is kept
 * per file: at 36,000 files those held ~85 MB of heap until the index was written); entries
 * are sorted by path bytes when the index is built.
 */
export class IndexBuilder {
  #arena = new Uint8Array(64 << 10);
  #view = new DataView(this.#arena.buffer);
  #used = 0;
  #offsets: number[] = [];

  /** Adds the entry for `path` (its bytes are copied); `stat` describes a clean working file. */
  add(path: Uint8Array, mode: number, oid: string | Uint8Array, stat?: Deno.FileInfo): void {
    const padded = entryLength(path);
    if (this.#used + padded > this.#arena.byteLength) {
      const grown = new Uint8Array(Math.max(this.#arena.byteLength * 2, this.#used + padded));
      grown.set(this.#arena.subarray(0, this.#used));
      this.#arena = grown;
      this.#view = new DataView(grown.buffer);
    }
    const at = this.#used;
    encodeEntry(this.#arena, this.#view, at, path, mode, oid, stat);
    this.#used += padded;
    this.#offsets.push(at);
  }

  /** Entries added so far. */
  get length(): number {
    return this.#offsets.length;
  }

  /** The index file: header, entries sorted by path bytes, SHA-1 trailer. */
  build(): Uint8Array {
    const buf = this.#arena;
    const v = this.#view;
    // The stored length is capped at 0xfff: a path ends at its first NUL after that (paths
    // hold no NUL; the padding holds at least one).
    const pathEnd = (at: number): number => {
      const n = v.getUint16(at + 60);
      if (n < 0xfff) return at + 62 + n;
      let e = at + 62 + n;
      while (buf[e] !== 0) e++;
      return e;
    };
    const offsets = this.#offsets.slice().sort((a, b) => {
      const ea = pathEnd(a);
      const eb = pathEnd(b);
      for (let i = a + 62, j = b + 62; i < ea && j < eb; i++, j++) {
        if (buf[i] !== buf[j]) return buf[i]! - buf[j]!;
      }
      return (ea - a) - (eb - b);
    });
    const out = new Uint8Array(12 + this.#used + 20);
    out.set(encoder.encode("DIRC"));
    new DataView(out.buffer).setUint32(4, 2);
    new DataView(out.buffer).setUint32(8, offsets.length);
    let pos = 12;
    for (const at of offsets) {
      const end = Math.ceil((pathEnd(at) - at + 1) / 8) * 8 + at;
      out.set(buf.subarray(at, end), pos);
      pos += end - at;
    }
    out.set(createHash("sha1").update(out.subarray(0, pos)).digest(), pos);
    return out;
  }
}
