/**
 * Fast pack plumbing for the git plugin.
 *
 * - {@linkcode packReader}: reads a repository's objects by parsing pack indexes (v2) and packs
 *   directly, resolving deltas (ofs and ref) with a bounded cache of bases, inflating loose
 *   objects, and falling back to isomorphic-git for anything else (alternates...). It also hands
 *   out the raw, still-compressed pack entries, so a bundle can reuse the repository's deltas
 *   instead of storing every version whole. Packs are read by position through a small window
 *   ({@linkcode PackFile}), never whole. Objects of 8 MiB and more (`streamSync`, whole entries
 *   or deltas, and `rawChunks`) are handed out in chunks: a delta is applied as it is inflated,
 *   against its base in memory or, when the base is large too, written out to a temporary file
 *   first: memory is bounded by the cache and the 8 MiB, whatever the objects' sizes (`readSync`
 *   reads an object whole, up to 1 GiB, for callers that need its body at once).
 * - {@linkcode indexPack}: builds the `.idx` of a pack (whole objects and ref/ofs deltas),
 *   the job of `git index-pack`, reading the pack by position too, and hashing large objects
 *   (whole or deltas) as they are inflated or applied.
 *
 * isomorphic-git's `readObject` re-resolves delta chains on every call (~2 ms per object on
 * a gc'd repository); this is what makes capturing a long history practical.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { digestInto } from "../bundle/_digest.ts";
import { readWholeFile } from "../bundle/_io.ts";
import { crc32, createInflate, inflateSync } from "node:zlib";
import { posix } from "node:path";
import type {
  GitObject,
  ObjectSource,
  ObjectStream,
  ObjectType,
  RawChunks,
  RawEntry,
} from "./_git_objects.ts";
import { hexAt, hexInto, repoSource } from "./_git_objects.ts";
import { readFullyAt } from "./_util.ts";
import { pacer } from "../_pace.ts";
import type { SyncObjectStream } from "./_git_objects.ts";
import { SyncZlib, syncZlibAvailable } from "./_git_zlib.ts";

const TYPES: Record<number, ObjectType> = { 1: "commit", 2: "tree", 3: "blob", 4: "tag" };

/**
 * The largest object (or delta) read whole here: 1 GiB. Larger ones are streamed
 * ({@linkcode streamObject}); reading one whole is refused.
 */
const MAX_OBJECT = 2 ** 30;

/**
 * Packed objects from `minBytes` (8 MiB) are streamed by `streamSync` and hashed as they are
 * applied by `indexPack` (never held whole). Mutable for tests only.
 */
export const streamConfig: { minBytes: number } = { minBytes: 8 << 20 };

/** Packed entries with this much compressed data or more are handed out in chunks. */
const RAW_CHUNKS = 1 << 20;

/** Resolved objects kept to resolve delta chains: 32 MiB. */
const CACHE_BYTES = 32 * 1024 * 1024;

/** Bytes of a pack by position. */
export interface PackBytes {
  /** Length of the pack (trailer included). */
  readonly size: number;
  /**
   * Bytes `[offset, offset + length)`, clipped to the pack's end. The view may be overwritten
   * by the next call: use it (or copy it) at once.
   */
  bytes(offset: number, length: number): Uint8Array;
  /**
   * Bytes `[offset, offset + length)`, clipped to the pack's end, in a buffer of their own,
   * read as they are (no read-ahead window): for random access to whole entries.
   */
  copy?(offset: number, length: number): Uint8Array;
  /** Releases the file, if any. */
  close(): void;
}

/** A pack held in memory. */
export function memoryPack(pack: Uint8Array): PackBytes {
  return {
    size: pack.byteLength,
    bytes: (offset, length) => pack.subarray(offset, Math.min(pack.byteLength, offset + length)),
    close: () => {},
  };
}

const WINDOW = 1 << 20;

/**
 * A pack read by position from a file (from byte `start` of the file to its end, so the pack
 * inside a git bundle is read in place), through one reused 1 MiB window. Reads larger than the
 * window get their own buffer.
 */
export class PackFile implements PackBytes {
  readonly size: number;
  #file: Deno.FsFile;
  #start: number;
  #buf = new Uint8Array(WINDOW);
  #win: Uint8Array = new Uint8Array(0);
  #winAt = 0;

  constructor(path: string, start = 0) {
    this.#file = Deno.openSync(path, { read: true });
    try {
      this.size = this.#file.statSync().size - start;
    } catch (e) {
      this.#file.close();
      throw e;
    }
    if (this.size < 0) {
      this.#file.close();
      throw new Error("truncated pack");
    }
    this.#start = start;
  }

  #read(into: Uint8Array, offset: number): void {
    readFullyAt(this.#file, into, this.#start + offset, "truncated pack");
  }

  bytes(offset: number, length: number): Uint8Array {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    const winEnd = this.#winAt + this.#win.length;
    if (offset >= this.#winAt && end <= winEnd) {
      return this.#win.subarray(offset - this.#winAt, end - this.#winAt);
    }
    if (end - offset > WINDOW) {
      const big = new Uint8Array(end - offset);
      this.#read(big, offset);
      return big;
    }
    this.#win = this.#buf.subarray(0, Math.min(WINDOW, this.size - offset));
    this.#winAt = offset;
    this.#read(this.#win, offset);
    return this.#win.subarray(0, end - offset);
  }

  copy(offset: number, length: number): Uint8Array {
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (offset >= this.#winAt && end <= this.#winAt + this.#win.length) {
      return this.#win.slice(offset - this.#winAt, end - this.#winAt);
    }
    const out = new Uint8Array(end - offset);
    this.#read(out, offset);
    return out;
  }

  close(): void {
    try {
      this.#file.close();
    } catch {
      // already closed
    }
  }
}

/** An object source that can also hand out raw pack entries. */
export interface PackedSource extends ObjectSource {
  /** The raw entry of `oid` if it is packed (and its delta base is known), else `undefined`. */
  raw(oid: string): RawEntry | undefined;
  /** Closes the pack files. */
  close(): void;
}

/** A parsed pack entry header. */
interface EntryHeader {
  type: number;
  /** Inflated size (of the object, or of the delta for types 6 and 7). */
  size: number;
  /** Where the zlib data starts. */
  dataStart: number;
  /** Type 6: offset of the base. */
  baseOffset?: number;
  /** Type 7: oid of the base. */
  baseOid?: string;
}

function parseEntry(b: Uint8Array, offset: number): EntryHeader {
  let i = offset;
  let c = b[i++]!;
  const type = (c >> 4) & 7;
  let size = c & 0x0f;
  let shift = 4;
  while (c & 0x80) {
    c = b[i++]!;
    size += (c & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (size > Number.MAX_SAFE_INTEGER) throw new Error("pack entry size is invalid");
  if (type === 6) {
    c = b[i++]!;
    let rel = c & 0x7f;
    while (c & 0x80) {
      c = b[i++]!;
      rel = (rel + 1) * 128 + (c & 0x7f);
    }
    return { type, size, dataStart: i, baseOffset: offset - rel };
  }
  if (type === 7) return { type, size, dataStart: i + 20, baseOid: hexAt(b, i) };
  if (TYPES[type] === undefined) throw new Error(`unknown pack object type ${type}`);
  return { type, size, dataStart: i };
}

/** Parses the entry header at `offset` of a pack. */
function parseEntryAt(p: PackBytes, offset: number): EntryHeader {
  const h = parseEntry(p.bytes(offset, 64), 0);
  h.dataStart += offset;
  if (h.baseOffset !== undefined) h.baseOffset += offset;
  return h;
}

/** Upper bound of the compressed length of an entry inflating to `size` bytes (see below). */
function deflateBound(size: number): number {
  return size + (size >>> 3) + 1024 + 5 * Math.ceil(size / 16000 + 1);
}

/**
 * Inflates the zlib data of an entry. The input is bounded: deflate never grows data by more
 * than ~5 bytes per 16 KiB block plus a header, and inflating up to the end of a large pack
 * is slow.
 */
let sharedInflater: SyncZlib | undefined | null = null;

/**
 * One inflate engine for the entries of every pack read here (calls are synchronous, never
 * nested), or `undefined` where {@linkcode SyncZlib} is not available.
 */
function entryInflater(): SyncZlib | undefined {
  if (sharedInflater === null) {
    sharedInflater = syncZlibAvailable() ? new SyncZlib("inflate") : undefined;
  }
  return sharedInflater;
}

function inflateEntry(p: PackBytes, h: EntryHeader, end?: number): Uint8Array {
  if (h.size > MAX_OBJECT) {
    throw new Error(`pack object of ${h.size} bytes is too large to read whole`);
  }
  const max = { maxOutputLength: Math.max(h.size, 1) };
  // Deflate can grow data: up to 9 bits per literal in fixed-Huffman blocks (+12.5%), and
  // not every deflater falls back to stored blocks (a 4 KiB random blob was seen taking
  // 4 327 bytes). Bound the input by that worst case (or the entry's known end); if the stream
  // still runs past the bound, inflate from the rest of the pack (zlib stops at the end of the
  // stream).
  const limit = p.size - 20;
  let bound = end ?? h.dataStart + deflateBound(h.size);
  const engine = h.size < 1 << 20 ? entryInflater() : undefined;
  for (;;) {
    try {
      const input = p.bytes(h.dataStart, Math.min(limit, bound) - h.dataStart);
      if (engine !== undefined) {
        // a copy: the engine's output buffer is reused by the next call
        const out = new Uint8Array(engine.once(input, max.maxOutputLength));
        if (out.byteLength !== h.size) throw new Error("pack entry size mismatch");
        return out;
      }
      return checked(inflateSync(input, max), h);
    } catch (e) {
      if (end !== undefined || bound >= limit) throw e;
      bound = h.dataStart + 2 * (bound - h.dataStart);
    }
  }
}

function checked(out: Buffer, h: EntryHeader): Uint8Array {
  if (out.byteLength !== h.size) throw new Error("pack entry size mismatch");
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Applies a git delta to a base. */
function applyDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let i = 0;
  const varint = (): number => {
    let n = 0;
    let shift = 0;
    let b: number;
    do {
      b = delta[i++]!;
      n += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return n;
  };
  if (varint() !== base.byteLength) throw new Error("delta base size mismatch");
  const size = varint();
  if (size > MAX_OBJECT) throw new Error(`delta result of ${size} bytes is too large`);
  const out = new Uint8Array(size);
  let o = 0;
  while (i < delta.length) {
    const op = delta[i++]!;
    if (op & 0x80) {
      let off = 0;
      let size = 0;
      for (let k = 0; k < 4; k++) if (op & (1 << k)) off += delta[i++]! * 2 ** (8 * k);
      for (let k = 0; k < 3; k++) if (op & (0x10 << k)) size += delta[i++]! * 2 ** (8 * k);
      if (size === 0) size = 0x10000;
      if (off + size > base.byteLength || o + size > out.length) throw new Error("bad delta copy");
      out.set(base.subarray(off, off + size), o);
      o += size;
    } else if (op > 0) {
      if (o + op > out.length || i + op > delta.length) throw new Error("bad delta insert");
      out.set(delta.subarray(i, i + op), o);
      i += op;
      o += op;
    } else throw new Error("invalid delta opcode 0");
  }
  if (o !== out.length) throw new Error("delta result size mismatch");
  return out;
}

/** A bounded cache of resolved objects by key, evicting oldest first. */
function boundedCache(limitBytes: number): {
  get(key: string): GitObject | undefined;
  set(key: string, o: GitObject): void;
} {
  const map = new Map<string, GitObject>();
  let bytes = 0;
  return {
    get: (key) => map.get(key),
    set(key, o) {
      if (o.body.byteLength > limitBytes / 16 || map.has(key)) return;
      map.set(key, o);
      bytes += o.body.byteLength;
      while (bytes > limitBytes) {
        const [k, v] = map.entries().next().value!;
        map.delete(k);
        bytes -= v.body.byteLength;
      }
    },
  };
}

/** Compressed input per step of a streamed entry: ≤ 16.5 MiB of output at zlib's largest ratio. */
const ENTRY_STEP = 1 << 14;

/**
 * The inflated data of the entry `h` (the object's body, or a delta's instructions) in chunks,
 * fed {@linkcode ENTRY_STEP} of input at a time: each chunk is a view of the engine's output
 * buffer, valid until the next one is pulled. The engine is made when the iteration starts and
 * closed when it ends.
 */
function* entryChunks(p: PackBytes, h: EntryHeader, end: number): Generator<Uint8Array> {
  const z = new SyncZlib("inflate", 1 << 20);
  let total = 0;
  try {
    let at = h.dataStart;
    let ended = false;
    while (at < end) {
      const input = p.bytes(at, Math.min(ENTRY_STEP, end - at));
      const out = z.pushView(input);
      const used = z.bytesWritten;
      at += used;
      total += out.length;
      if (total > h.size) throw new Error("pack entry size mismatch");
      // (a plain view: a Buffer's slice() is not a copy)
      if (out.length > 0) yield new Uint8Array(out.buffer, out.byteOffset, out.length);
      // Less taken than given: the zlib stream ended in this piece.
      if (used < input.length) {
        ended = true;
        break;
      }
    }
    if (!ended) {
      const out = z.pushView(new Uint8Array(0), true);
      total += out.length;
      if (total > h.size) throw new Error("pack entry size mismatch");
      if (out.length > 0) yield new Uint8Array(out.buffer, out.byteOffset, out.length);
    }
  } finally {
    z.close();
  }
  if (total !== h.size) throw new Error("pack entry size mismatch");
}

/** The engine that reads the start of zlib streams (made once, reset after each use). */
let startEngine: SyncZlib | undefined;

/**
 * The first bytes (up to 64) that the start of a zlib stream, `input`, inflates to: a copy, or
 * a view of `into` when given (no buffer per call, for a caller that looks at many).
 */
export function inflateStart(input: Uint8Array, into?: Uint8Array): Uint8Array {
  const z = startEngine ??= new SyncZlib("inflate", 1 << 12);
  try {
    // (a copy: the view is the engine's buffer, and a Buffer's slice() is a view too)
    const view = z.pushView(input);
    const n = Math.min(view.length, 64, into?.length ?? 64);
    let out: Uint8Array;
    if (into === undefined) out = new Uint8Array(view.subarray(0, n));
    else {
      into.set(view.subarray(0, n));
      out = into.subarray(0, n);
    }
    z.reset();
    return out;
  } catch (e) {
    startEngine = undefined; // closed by the failure
    throw e;
  }
}

/** A delta's base and result sizes (its two leading varints), inflating only its start. */
function deltaSizes(p: PackBytes, h: EntryHeader, end: number): { base: number; result: number } {
  for (let n = 256;; n *= 4) {
    const len = Math.min(n, end - h.dataStart);
    const b = inflateStart(p.bytes(h.dataStart, len));
    let i = 0;
    const varint = (): number => {
      let v = 0;
      for (let shift = 0; i < b.length && shift < 53; shift += 7) {
        const c = b[i++]!;
        v += (c & 0x7f) * 2 ** shift;
        if ((c & 0x80) === 0) return v;
      }
      return -1;
    };
    const base = varint();
    const result = base < 0 ? -1 : varint();
    if (result >= 0) return { base, result };
    if (len === end - h.dataStart || n >= 1 << 16) throw new Error("bad delta header");
  }
}

/** Pulls bytes from a stream of chunks (each valid until the next is pulled). */
class ChunkReader {
  #it: Iterator<Uint8Array>;
  #c: Uint8Array = new Uint8Array(0);
  #i = 0;

  constructor(chunks: Iterable<Uint8Array>) {
    this.#it = chunks[Symbol.iterator]();
  }

  #more(): boolean {
    while (this.#i >= this.#c.length) {
      const r = this.#it.next();
      if (r.done) return false;
      this.#c = r.value;
      this.#i = 0;
    }
    return true;
  }

  /** The next byte, or -1 at the end. */
  byte(): number {
    return this.#more() ? this.#c[this.#i++]! : -1;
  }

  /** Copies the next bytes into `into` (as many as the current chunk has); 0 at the end. */
  read(into: Uint8Array): number {
    if (!this.#more()) return 0;
    const k = Math.min(into.length, this.#c.length - this.#i);
    into.set(this.#c.subarray(this.#i, this.#i + k));
    this.#i += k;
    return k;
  }

  close(): void {
    this.#it.return?.();
  }
}

/** A delta's base, read by position. */
interface DeltaBase {
  readonly size: number;
  /** Copies `into.length` bytes from `offset`. */
  read(offset: number, into: Uint8Array): void;
}

function memoryBase(body: Uint8Array): DeltaBase {
  return {
    size: body.byteLength,
    read: (offset, into) => into.set(body.subarray(offset, offset + into.length)),
  };
}

/** Bytes of a base file read at once around a copy (copies mostly go forward). */
const BASE_WINDOW = 1 << 20;

/**
 * A large delta base written out to a temporary file (removed from its directory at once where
 * the system allows it: nothing is left behind if the process dies), read through a window.
 */
class BaseFile implements DeltaBase {
  size = 0;
  users = 0;
  #file: Deno.FsFile;
  #path: string | undefined;
  #win = new Uint8Array(0);
  #winAt = 0;

  constructor(chunks: Iterable<Uint8Array>, size: number) {
    const path = Deno.makeTempFileSync({ prefix: "memsnap-git-base-" });
    this.#file = Deno.openSync(path, { read: true, write: true });
    try {
      Deno.removeSync(path);
    } catch {
      this.#path = path; // removed on close
    }
    try {
      for (const c of chunks) {
        let off = 0;
        while (off < c.length) off += this.#file.writeSync(c.subarray(off));
        this.size += c.length;
      }
      if (this.size !== size) throw new Error("delta base size mismatch");
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #fill(into: Uint8Array, offset: number): void {
    readFullyAt(this.#file, into, offset, "delta base file is truncated");
  }

  read(offset: number, into: Uint8Array): void {
    const end = offset + into.length;
    if (offset < this.#winAt || end > this.#winAt + this.#win.length) {
      if (into.length >= BASE_WINDOW) return this.#fill(into, offset);
      if (this.#win.buffer.byteLength < BASE_WINDOW) this.#win = new Uint8Array(BASE_WINDOW);
      this.#win = new Uint8Array(this.#win.buffer, 0, Math.min(BASE_WINDOW, this.size - offset));
      this.#fill(this.#win, offset);
      this.#winAt = offset;
    }
    into.set(this.#win.subarray(offset - this.#winAt, end - this.#winAt));
  }

  close(): void {
    try {
      this.#file.close();
    } catch {
      // closed already
    }
    if (this.#path !== undefined) {
      try {
        Deno.removeSync(this.#path);
      } catch {
        // gone already
      }
    }
  }
}

/** Base files kept for the next deltas (most deltas of a history share a few bases). */
const BASE_FILES = 3;

/** The most recently used base files, by pack and offset; closed when evicted. */
class BaseFiles {
  #files = new Map<string, BaseFile>();

  get(key: string): BaseFile | undefined {
    const f = this.#files.get(key);
    if (f !== undefined) {
      this.#files.delete(key);
      this.#files.set(key, f);
    }
    return f;
  }

  add(key: string, f: BaseFile): void {
    this.#files.set(key, f);
    for (const [k, v] of this.#files) {
      if (this.#files.size <= BASE_FILES) break;
      if (v.users > 0 || k === key) continue;
      v.close();
      this.#files.delete(k);
    }
  }

  close(): void {
    for (const f of this.#files.values()) f.close();
    this.#files.clear();
  }
}

/** One pack's entries, for {@linkcode streamObject}. */
interface PackEntries {
  bytes: PackBytes;
  /** Tells this pack's base files apart from another's. */
  id: number;
  /** Where the entry at `offset` ends; `undefined` if no entry starts there. */
  end(offset: number): number | undefined;
  /** The offset of `oid`'s entry in this pack, if it is in it. */
  find(oid: string): number | undefined;
  /** The object at `offset` read whole (small objects), or `undefined`. */
  whole(offset: number): GitObject | undefined;
}

/** The type of the object at `offset` (following its delta chain), if it is in the pack. */
function typeAt(pack: PackEntries, offset: number): ObjectType | undefined {
  for (let hops = 0; hops < 10_000; hops++) {
    const h = parseEntryAt(pack.bytes, offset);
    if (h.type !== 6 && h.type !== 7) return TYPES[h.type];
    const next = h.type === 6 ? h.baseOffset : pack.find(h.baseOid!);
    if (next === undefined) return undefined;
    offset = next;
  }
  throw new Error("delta chain too long");
}

/**
 * The object at `offset` as a stream of chunks (each valid until the next is pulled), when it
 * is at least `streamConfig.minBytes` bytes; else (or when a delta's base is not in this pack,
 * or the synchronous engine is missing) `undefined`, and it is read whole. A whole entry is
 * inflated as it is pulled; a delta is applied as it is pulled, to its base in memory (a small
 * one) or written out to a {@linkcode BaseFile} first (streamed the same way). Nothing is held
 * whole, so memory does not grow with the object's size; a temporary file does.
 */
function streamObject(
  pack: PackEntries,
  offset: number,
  files: BaseFiles,
): SyncObjectStream | undefined {
  if (!syncZlibAvailable()) return undefined;
  const h = parseEntryAt(pack.bytes, offset);
  const end = pack.end(offset);
  if (end === undefined) return undefined;
  if (h.type !== 6 && h.type !== 7) {
    if (h.size < streamConfig.minBytes) return undefined;
    return { type: TYPES[h.type]!, size: h.size, body: entryChunks(pack.bytes, h, end) };
  }
  const sizes = deltaSizes(pack.bytes, h, end);
  if (sizes.result < streamConfig.minBytes) return undefined;
  const baseAt = h.type === 6 ? h.baseOffset! : pack.find(h.baseOid!);
  if (baseAt === undefined) return undefined;
  const type = typeAt(pack, baseAt);
  if (type === undefined) return undefined;
  return {
    type,
    size: sizes.result,
    body: (function* (): Generator<Uint8Array> {
      const key = `${pack.id}:${baseAt}`;
      let file = files.get(key);
      let base: DeltaBase;
      if (file === undefined) {
        const s = streamObject(pack, baseAt, files);
        if (s === undefined) {
          const o = pack.whole(baseAt);
          if (o === undefined) throw new Error("delta base missing from the pack");
          base = memoryBase(o.body);
        } else {
          file = new BaseFile(s.body, s.size);
          files.add(key, file);
          base = file;
        }
      } else base = file;
      if (file !== undefined) file.users++;
      try {
        yield* deltaChunks(pack.bytes, h, end, base, sizes);
      } finally {
        if (file !== undefined) file.users--;
      }
    })(),
  };
}

/** Applies the delta entry `h` to `base` as it is inflated, in chunks of one reused buffer. */
function* deltaChunks(
  p: PackBytes,
  h: EntryHeader,
  end: number,
  base: DeltaBase,
  sizes: { base: number; result: number },
): Generator<Uint8Array> {
  if (base.size !== sizes.base) throw new Error("delta base size mismatch");
  const d = new ChunkReader(entryChunks(p, h, end));
  const out = new Uint8Array(1 << 20);
  let fill = 0;
  let total = 0;
  const next = (): number => {
    const b = d.byte();
    if (b < 0) throw new Error("bad delta: truncated instruction");
    return b;
  };
  try {
    for (let k = 0; k < 2; k++) while (next() & 0x80) { /* the two sizes, read above */ }
    for (let op = d.byte(); op !== -1; op = d.byte()) {
      if (op & 0x80) {
        let off = 0;
        let len = 0;
        for (let k = 0; k < 4; k++) if (op & (1 << k)) off += next() * 2 ** (8 * k);
        for (let k = 0; k < 3; k++) if (op & (0x10 << k)) len += next() * 2 ** (8 * k);
        if (len === 0) len = 0x10000;
        if (off + len > base.size || total + len > sizes.result) throw new Error("bad delta copy");
        total += len;
        while (len > 0) {
          const k = Math.min(len, out.length - fill);
          base.read(off, out.subarray(fill, fill + k));
          off += k;
          fill += k;
          len -= k;
          if (fill === out.length) {
            yield out;
            fill = 0;
          }
        }
      } else if (op > 0) {
        if (total + op > sizes.result) throw new Error("bad delta insert");
        total += op;
        for (let len = op; len > 0;) {
          const k = d.read(out.subarray(fill, fill + Math.min(len, out.length - fill)));
          if (k === 0) throw new Error("bad delta insert");
          fill += k;
          len -= k;
          if (fill === out.length) {
            yield out;
            fill = 0;
          }
        }
      } else throw new Error("invalid delta opcode 0");
    }
    if (fill > 0) yield out.subarray(0, fill);
    if (total !== sizes.result) throw new Error("delta result size mismatch");
  } finally {
    d.close();
  }
}

/**
 * One pack, read by position, with its index kept as the `.idx` bytes and two typed arrays
 * (~12 bytes an object): Maps of hex oids held ~30 MB of heap at 38,000 objects.
 */
interface Pack {
  id: number;
  bytes: PackBytes;
  /** The `.idx` file (v2): fanout, sorted oid table, offsets. */
  idx: Uint8Array;
  /** Objects in the pack. */
  n: number;
  /** Entry offsets, ascending. */
  sorted: Float64Array;
  /** For `sorted[i]`, the object's position in the oid table. */
  order: Uint32Array;
  /** For each position in the oid table, the entry's offset. */
  offsetOf: Float64Array;
}

const IDX_OIDS = 8 + 256 * 4;

/** Parses a pack index v2. */
function loadPack(id: number, bytes: PackBytes, idx: Uint8Array): Pack {
  const v = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
  if (v.getUint32(0) !== 0xff744f63 || v.getUint32(4) !== 2) {
    throw new Error("unsupported pack index version");
  }
  const n = v.getUint32(8 + 255 * 4);
  const offsetsAt = IDX_OIDS + n * 24;
  const largeAt = offsetsAt + n * 4;
  const offsetOf = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let off = v.getUint32(offsetsAt + i * 4);
    if (off & 0x80000000) off = Number(v.getBigUint64(largeAt + (off & 0x7fffffff) * 8));
    offsetOf[i] = off;
  }
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  order.sort((a, b) => offsetOf[a]! - offsetOf[b]!);
  const sorted = new Float64Array(n);
  for (let i = 0; i < n; i++) sorted[i] = offsetOf[order[i]!]!;
  return { id, bytes, idx, n, sorted, order, offsetOf };
}

/** The position of `oid` (20 bytes) in the pack's oid table, or -1. */
function findOid(pack: Pack, oid: Uint8Array): number {
  const idx = pack.idx;
  const v = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
  const b0 = oid[0]!;
  let lo = b0 === 0 ? 0 : v.getUint32(8 + (b0 - 1) * 4);
  let hi = v.getUint32(8 + b0 * 4);
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const at = IDX_OIDS + mid * 20;
    let c = 0;
    for (let k = 0; k < 20 && c === 0; k++) c = idx[at + k]! - oid[k]!;
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/** The position of `offset` among the first `n` of the ascending `sorted` offsets, or -1. */
function offsetIndex(sorted: Float64Array, offset: number, n = sorted.length): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] === offset) return mid;
    if (sorted[mid]! < offset) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

/** The position of the entry at `offset` in `pack.sorted`, or -1. */
function entryAt(pack: Pack, offset: number): number {
  return offsetIndex(pack.sorted, offset);
}

/** Where the entry at `offset` ends (next entry's offset, or the trailer); `undefined` if none. */
function endOf(pack: Pack, offset: number): number | undefined {
  const i = entryAt(pack, offset);
  if (i < 0) return undefined;
  return i + 1 < pack.sorted.length ? pack.sorted[i + 1]! : pack.bytes.size - 20;
}

/** The oid of the entry at `offset`, or `undefined`. */
function oidAt(pack: Pack, offset: number): string | undefined {
  const i = entryAt(pack, offset);
  return i < 0 ? undefined : hexAt(pack.idx, IDX_OIDS + pack.order[i]! * 20);
}

/**
 * Opens a fast object reader over `gitdir`. Call `close()` when done. With `streams: false`
 * the reader has no `streamSync`/synchronous `stream` (for a caller reading a few small
 * objects, which then does not pay for checking the synchronous zlib engine they use).
 */
export function packReader(
  gitdir: string,
  options: { streams?: boolean } = {},
): Promise<PackedSource> {
  const packs: Pack[] = [];
  const files: PackBytes[] = [];
  const packDir = posix.join(gitdir, "objects", "pack");
  let id = 0;
  let names: string[] = [];
  try {
    for (const e of Deno.readDirSync(packDir)) {
      if (e.isFile && e.name.endsWith(".idx")) names.push(e.name);
    }
  } catch {
    // no pack dir
    names = [];
  }
  for (const name of names) {
    const base = name.slice(0, -4);
    let bytes: PackBytes | undefined;
    try {
      bytes = new PackFile(posix.join(packDir, `${base}.pack`));
      packs.push(loadPack(id++, bytes, readWholeFile(posix.join(packDir, name))));
      files.push(bytes);
    } catch {
      // unreadable pack: its objects come from the fallback
      bytes?.close();
    }
  }
  // Where an object is packed: the first pack (in directory order) that has it.
  const oidBytes = new Uint8Array(20);
  const locate = (oid: string): { pack: Pack; offset: number } | undefined => {
    if (packs.length === 0 || !hexInto(oid, oidBytes)) return undefined;
    for (const pack of packs) {
      const i = findOid(pack, oidBytes);
      if (i >= 0) return { pack, offset: pack.offsetOf[i]! };
    }
    return undefined;
  };
  const fallback = repoSource(gitdir);
  const cache = boundedCache(CACHE_BYTES);
  // One inflate engine for small loose objects (a new engine per object costs as much as the
  // inflating). Making it checks the engine first (~4 ms): a reader without streams (a caller
  // reading a few objects) makes it only if it reads in bulk (readView), and reads through
  // `inflateSync` until then.
  let engine: SyncZlib | undefined | null = null;
  const bulkInflater = (): SyncZlib | undefined =>
    engine === null ? (engine = syncZlibAvailable() ? new SyncZlib("inflate") : undefined) : engine;
  if (options.streams !== false) bulkInflater();
  const loosePath = (oid: string): string =>
    posix.join(gitdir, "objects", oid.slice(0, 2), oid.slice(2));

  /** A packed object; `undefined` when a ref delta's base must come from the fallback. */
  const readAt = (pack: Pack, offset: number): GitObject | undefined => {
    const key = `${pack.id}:${offset}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const h = parseEntryAt(pack.bytes, offset);
    const end = endOf(pack, offset);
    let result: GitObject;
    if (h.type === 6 || h.type === 7) {
      const base = h.type === 6 ? readAt(pack, h.baseOffset!) : readSync(h.baseOid!);
      if (base === undefined) return undefined;
      result = { type: base.type, body: applyDelta(base.body, inflateEntry(pack.bytes, h, end)) };
    } else {
      result = { type: TYPES[h.type]!, body: inflateEntry(pack.bytes, h, end) };
    }
    cache.set(key, result);
    return result;
  };

  /** A packed or loose object, read synchronously; `undefined` if neither can give it. */
  const readSync = (oid: string): GitObject | undefined => {
    const at = locate(oid);
    if (at !== undefined) return readAt(at.pack, at.offset);
    try {
      const z = Deno.readFileSync(loosePath(oid));
      const raw = z.byteLength < STREAM_LOOSE && engine
        ? engine.once(z)
        : inflateSync(z, z.byteLength >= STREAM_LOOSE ? { chunkSize: 1 << 20 } : {});
      const o = looseObject(raw);
      if (o !== undefined) return o;
    } catch {
      // not loose either
    }
    return undefined;
  };

  /**
   * {@linkcode readSync} without the copy of a small loose object's body: a view of the
   * inflater's output, valid until its next use (the bundle writer compresses each body at
   * once; a copy per object was as many bytes of short-lived buffers as the notes).
   */
  const readView = (oid: string): GitObject | undefined => {
    const inflater = bulkInflater();
    if (inflater === undefined || locate(oid) !== undefined) return readSync(oid);
    let z: Uint8Array;
    try {
      z = Deno.readFileSync(loosePath(oid));
    } catch {
      return readSync(oid);
    }
    if (z.byteLength >= STREAM_LOOSE) return readSync(oid);
    let raw: Uint8Array;
    try {
      raw = inflater.once(z);
    } catch {
      return readSync(oid);
    }
    return looseObject(raw, false) ?? readSync(oid);
  };

  const read = async (oid: string): Promise<GitObject> => readSync(oid) ?? await fallback.read(oid);

  const raw = (oid: string): RawEntry | undefined => {
    const at = locate(oid);
    if (at === undefined) return undefined;
    const { pack, offset } = at;
    const end = endOf(pack, offset)!;
    // The whole entry in one exact read: a bundle asks for entries in history order, not in
    // pack order, and a read-ahead window would mostly be thrown away.
    const entry = pack.bytes.copy?.(offset, end - offset) ??
      pack.bytes.bytes(offset, end - offset).slice();
    const h = parseEntry(entry, 0);
    const data = () => entry.subarray(Math.min(h.dataStart, entry.length));
    if (h.type === 6) {
      // (parsed at 0: the base offset is relative to the entry)
      const base = oidAt(pack, offset + h.baseOffset!);
      return base === undefined ? undefined : { kind: "delta", base, size: h.size, data: data() };
    }
    if (h.type === 7) return { kind: "delta", base: h.baseOid!, size: h.size, data: data() };
    return { kind: "whole", type: TYPES[h.type]!, size: h.size, data: data() };
  };

  // Large objects: streamed from their pack, delta bases written out to files when large.
  const baseFiles = new BaseFiles();
  const entriesOf = new Map<Pack, PackEntries>();
  const findBytes = new Uint8Array(20);
  const packEntries = (pack: Pack): PackEntries => {
    let e = entriesOf.get(pack);
    if (e === undefined) {
      e = {
        bytes: pack.bytes,
        id: pack.id,
        end: (offset) => endOf(pack, offset),
        find: (oid) => {
          if (!hexInto(oid, findBytes)) return undefined;
          const i = findOid(pack, findBytes);
          return i < 0 ? undefined : pack.offsetOf[i]!;
        },
        whole: (offset) => readAt(pack, offset),
      };
      entriesOf.set(pack, e);
    }
    return e;
  };
  const streamPacked = (oid: string): SyncObjectStream | undefined => {
    const at = locate(oid);
    return at === undefined ? undefined : streamObject(packEntries(at.pack), at.offset, baseFiles);
  };

  /**
   * A packed entry whose compressed data is {@linkcode RAW_CHUNKS} or more, its data in chunks
   * read from the pack (each valid until the next is pulled), never copied whole.
   */
  const rawChunks = (oid: string): RawChunks | undefined => {
    const at = locate(oid);
    if (at === undefined) return undefined;
    const { pack, offset } = at;
    const end = endOf(pack, offset);
    // (most entries are small: told from the index alone, without reading the pack)
    if (end === undefined || end - offset < RAW_CHUNKS) return undefined;
    const h = parseEntryAt(pack.bytes, offset);
    if (end - h.dataStart < RAW_CHUNKS) return undefined;
    const data = (function* (): Generator<Uint8Array> {
      for (let i = h.dataStart; i < end; i += WINDOW) {
        yield pack.bytes.bytes(i, Math.min(WINDOW, end - i));
      }
    })();
    if (h.type === 6 || h.type === 7) {
      const base = h.type === 6 ? oidAt(pack, h.baseOffset!) : h.baseOid!;
      return base === undefined ? undefined : { kind: "delta", base, size: h.size, data };
    }
    return { kind: "whole", type: TYPES[h.type]!, size: h.size, data };
  };

  const close = (): void => {
    baseFiles.close();
    for (const f of files.splice(0)) f.close();
    engine?.close();
  };

  const source: PackedSource = {
    read,
    readSync,
    readView,
    raw,
    rawChunks,
    hasRaw: (oid) => locate(oid) !== undefined,
    stream: (oid) => streamLoose(loosePath(oid), oid),
    close,
  };
  if (options.streams !== false && syncZlibAvailable()) {
    // A packed object is the one read (as `readSync` reads it), else a loose one.
    const streamSync = (oid: string): SyncObjectStream | undefined =>
      locate(oid) !== undefined ? streamPacked(oid) : streamLooseSync(loosePath(oid), oid);
    source.streamSync = streamSync;
    source.stream = (oid) => {
      const s = streamSync(oid);
      return Promise.resolve(
        s === undefined ? undefined : { type: s.type, size: s.size, body: toAsync(s.body) },
      );
    };
  }
  return Promise.resolve(source);
}

const LOOSE_TYPES = new Map<string, ObjectType>(
  (["commit", "tree", "blob", "tag"] as const).map((t) => [t, t]),
);

/**
 * A loose object from its inflated bytes (`"<type> <size>\0<body>"`), body copied (unless
 * `copy` is false: then a view of `raw`); `undefined` if the header is not a known type.
 */
function looseObject(raw: Uint8Array, copy = true): GitObject | undefined {
  const sp = raw.indexOf(0x20);
  const nul = raw.indexOf(0, sp + 1);
  if (sp < 0 || sp > 6 || nul < 0) return undefined;
  let name = "";
  for (let k = 0; k < sp; k++) name += String.fromCharCode(raw[k]!);
  const type = LOOSE_TYPES.get(name);
  if (type === undefined) return undefined;
  // A copy (a Buffer's slice() would be a view of the engine's buffer).
  const body = raw.subarray(nul + 1);
  return { type, body: copy ? new Uint8Array(body) : body };
}

/** An iterable as an async one. */
async function* toAsync<T>(it: Iterable<T>): AsyncGenerator<T> {
  yield* it;
}

/** Loose objects from this size (compressed) are streamed rather than read whole. */
const STREAM_LOOSE = 1 << 20;

/** Size of a loose object file, or `undefined` if there is none. */
function looseSize(path: string): number | undefined {
  try {
    return Deno.statSync(path).size;
  } catch {
    return undefined;
  }
}

/** Compressed input fed to a streamed loose object's engine per call. */
const STREAM_STEP = 1 << 16;

/**
 * A large loose object as a synchronous stream of body chunks (the file read 1 MiB at a time,
 * inflated {@linkcode STREAM_STEP} of input at a time), or `undefined` if `oid` is not a loose
 * object of at least {@linkcode STREAM_LOOSE} compressed bytes. The file is closed when the body
 * is read to its end or the iteration stops.
 *
 * Each chunk is a view of the engine's output buffer, valid until the next one is pulled: the
 * output of one step (a few hundred KiB of text) fits the engine's 1 MiB buffer, which is then
 * reused, so inflating allocates nothing per chunk. Feeding 1 MiB of input per call made the
 * engine allocate a new 1 MiB buffer per MiB of output, join them, and the copy handed out:
 * ~3x the object's size of short-lived buffers, which kept the process's heap high after the
 * large blobs of a redacted capture.
 */
function streamLooseSync(path: string, oid: string): SyncObjectStream | undefined {
  const size = looseSize(path);
  if (size === undefined || size < STREAM_LOOSE) return undefined;
  const file = Deno.openSync(path, { read: true });
  const z = new SyncZlib("inflate", 1 << 20);
  const buf = new Uint8Array(1 << 20);
  let fill = 0;
  let at = 0;
  let done = false;
  const close = (): void => {
    z.close();
    try {
      file.close();
    } catch {
      // closed already
    }
  };
  /**
   * Next inflated chunk (possibly empty; a view, see above), or `undefined` at the end of the
   * file.
   */
  const next = (): Uint8Array | undefined => {
    if (done) return undefined;
    if (at === fill) {
      const n = file.readSync(buf);
      if (n === null || n === 0) {
        done = true;
        return z.pushView(new Uint8Array(0), true);
      }
      fill = n;
      at = 0;
    }
    const step = buf.subarray(at, Math.min(fill, at + STREAM_STEP));
    at += step.length;
    return z.pushView(step);
  };
  try {
    // The header "<type> <size>\0" comes first.
    let head = new Uint8Array(0);
    let nul = -1;
    while (nul < 0) {
      const c = next();
      if (c === undefined) throw new Error(`loose object ${oid} is truncated`);
      head = Buffer.concat([head, c]);
      nul = head.indexOf(0);
      if (nul < 0 && head.length > 64) throw new Error(`loose object ${oid} has a bad header`);
    }
    const m = /^(commit|tree|blob|tag) (\d+)$/.exec(
      Buffer.from(head.subarray(0, nul)).toString("latin1"),
    );
    if (m === null) throw new Error(`loose object ${oid} has a bad header`);
    const total = Number(m[2]);
    const rest = head.subarray(nul + 1);
    return {
      type: m[1] as ObjectType,
      size: total,
      body: (function* (): Generator<Uint8Array> {
        try {
          let n = rest.length;
          if (rest.length > 0) yield rest;
          for (let c = next(); c !== undefined; c = next()) {
            n += c.length;
            if (c.length > 0) yield c;
          }
          if (n !== total) throw new Error(`loose object ${oid} size mismatch`);
        } finally {
          close();
        }
      })(),
    };
  } catch (e) {
    close();
    throw e;
  }
}

/**
 * A large loose object as a stream of body chunks (inflated 64 KiB at a time), or `undefined`
 * if `oid` is not a loose object of at least {@linkcode STREAM_LOOSE} compressed bytes. The
 * async path, for runtimes without {@linkcode SyncZlib}.
 */
async function streamLoose(path: string, oid: string): Promise<ObjectStream | undefined> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch {
    return undefined;
  }
  let ok = false;
  try {
    if ((await file.stat()).size < STREAM_LOOSE) return undefined;
    const z = createInflate({ chunkSize: 1 << 16 });
    const chunks = (async function* (): AsyncGenerator<Uint8Array> {
      try {
        const buf = new Uint8Array(1 << 20);
        const out: Uint8Array[] = [];
        let error: Error | undefined;
        let ended = false;
        z.on("data", (c: Uint8Array) => out.push(c));
        z.on("error", (e: Error) => (error = e));
        z.on("end", () => (ended = true));
        for (;;) {
          const n = await file.read(buf);
          if (n === null) break;
          await new Promise<void>((resolve, reject) =>
            z.write(buf.slice(0, n), (e) => (e ? reject(e) : resolve()))
          );
          if (error) throw error;
          yield* out.splice(0);
          if (ended) break;
        }
        z.end();
        if (!ended) {
          await new Promise<void>((resolve) => z.once("end", resolve).once("close", resolve));
        }
        if (error) throw error;
        yield* out.splice(0);
      } finally {
        try {
          file.close();
        } catch {
          // closed already
        }
      }
    })();
    // The header "<type> <size>\0" comes first.
    let head = new Uint8Array(0);
    let nul = -1;
    let rest: Uint8Array | undefined;
    while (nul < 0) {
      const r = await chunks.next();
      if (r.done) throw new Error(`loose object ${oid} is truncated`);
      head = Buffer.concat([head, r.value]);
      nul = head.indexOf(0);
      if (nul < 0 && head.length > 64) throw new Error(`loose object ${oid} has a bad header`);
    }
    rest = head.subarray(nul + 1);
    const m = /^(commit|tree|blob|tag) (\d+)$/.exec(
      Buffer.from(head.subarray(0, nul)).toString("latin1"),
    );
    if (m === null) throw new Error(`loose object ${oid} has a bad header`);
    const size = Number(m[2]);
    ok = true;
    return {
      type: m[1] as ObjectType,
      size,
      body: (async function* (): AsyncGenerator<Uint8Array> {
        let n = 0;
        if (rest!.length > 0) {
          n += rest!.length;
          yield rest!;
        }
        rest = undefined;
        for await (const c of chunks) {
          n += c.length;
          yield c;
        }
        if (n !== size) throw new Error(`loose object ${oid} size mismatch`);
      })(),
    };
  } finally {
    if (!ok) {
      try {
        file.close();
      } catch {
        // closed by the reader already
      }
    }
  }
}

const NAMES: Record<ObjectType, string> = {
  commit: "commit",
  tree: "tree",
  blob: "blob",
  tag: "tag",
};

/** Builds the `.idx` of a pack held in memory; see {@linkcode indexPack}. */
export function indexPackBytes(pack: Uint8Array): Promise<Uint8Array> {
  return indexPack(memoryPack(pack));
}

/** Whole objects from this size are inflated as a stream when a pack is indexed. */
const STREAM_INDEX = 8 << 20;

/**
 * Inflates the whole object whose entry starts its zlib data at `h.dataStart` as a stream,
 * hashing it on the way (never held whole). zlib stops at the end of the entry's stream and
 * counts the input it consumed, which gives the entry's end.
 */
/** Input fed to the synchronous engine per call: what it inflates to fits one output chunk. */
const COUNT_STEP = 1 << 16;

/** How {@linkcode indexPack} inflates large entries. Mutable for tests only. */
export const indexConfig: { syncEngine: boolean } = { syncEngine: true };

/**
 * {@linkcode inflateCounting} with the synchronous engine: the pack is fed 64 KiB at a time
 * from its read window and the output hashed from the engine's own buffer, so nothing is
 * allocated per chunk. (The stream path allocates a buffer per 16 KiB of output and copies
 * each MiB of input: a 2 GiB restore's ~100 MB history objects held 60-90 MB of such
 * buffers until V8 collected them.)
 */
function inflateCountingSync(
  pack: PackBytes,
  h: EntryHeader,
  limit: number,
): { oid: string; used: number } {
  const z = new SyncZlib("inflate", 1 << 20);
  const hash = createHash("sha1").update(`${NAMES[TYPES[h.type]!]} ${h.size}\0`);
  let total = 0;
  let at = h.dataStart;
  let ended = false;
  try {
    while (at < limit) {
      const input = pack.bytes(at, Math.min(COUNT_STEP, limit - at));
      const out = z.pushView(input);
      const used = z.bytesWritten;
      total += out.length;
      if (total > h.size) throw new Error("pack entry size mismatch");
      if (out.length > 0) hash.update(out);
      at += used;
      // Less taken than given: the zlib stream ended in this piece (nothing after its end is
      // taken, so a stream ending at a piece's end shows on the next piece).
      if (used < input.length) {
        ended = true;
        break;
      }
    }
    // At the end of the pack's entries: a stream that is whole ends cleanly, else zlib throws.
    if (!ended) z.pushView(new Uint8Array(0), true);
  } finally {
    z.close();
  }
  if (total !== h.size) throw new Error("pack entry size mismatch");
  return { oid: hash.digest("hex"), used: at - h.dataStart };
}

async function inflateCounting(
  pack: PackBytes,
  h: EntryHeader,
  limit: number,
): Promise<{ oid: string; used: number }> {
  const z = createInflate();
  const hash = createHash("sha1").update(`${NAMES[TYPES[h.type]!]} ${h.size}\0`);
  let total = 0;
  let ended = false;
  let error: Error | undefined;
  z.on("data", (c: Uint8Array) => {
    total += c.length;
    if (total <= h.size) hash.update(c);
    else z.destroy();
  });
  z.on("error", (e: Error) => (error ??= e));
  const done = new Promise<void>((resolve) => {
    z.on("end", () => {
      ended = true;
      resolve();
    });
    z.on("close", resolve);
  });
  for (let at = h.dataStart; at < limit && !ended && !error && !z.destroyed;) {
    const n = Math.min(WINDOW, limit - at);
    const chunk = pack.bytes(at, n).slice();
    at += n;
    await new Promise<void>((resolve) => z.write(chunk, () => resolve()));
  }
  if (!ended && !error && !z.destroyed) z.end();
  await done;
  if (error) throw error;
  if (total !== h.size || !ended) throw new Error("pack entry size mismatch");
  return { oid: hash.digest("hex"), used: z.bytesWritten };
}

/** A version 2 pack's header, checked: its object count, and where its entries end. */
function packHeader(pack: PackBytes): { head: Uint8Array; count: number; limit: number } {
  const head = pack.bytes(0, 12).slice();
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (pack.size < 32 || hexAt(head, 0).slice(0, 8) !== "5041434b" || v.getUint32(4) !== 2) {
    throw new Error("not a version 2 packfile");
  }
  const limit = pack.size - 20;
  const count = v.getUint32(8);
  // (an entry takes at least two bytes)
  if (count > (limit - 12) / 2) throw new Error("truncated pack");
  return { head, count, limit };
}

/**
 * Inflates the entry `h` whole (one under {@linkcode STREAM_INDEX}), with the input bounded by
 * deflate's worst case and doubled while the stream runs past it. Returns the body (with an
 * engine, a view its next call reuses), the input and how much of it the zlib stream took
 * (where the entry ends). Throws when the body is not the entry's size.
 */
function inflateBounded(
  pack: PackBytes,
  h: EntryHeader,
  limit: number,
  engine: SyncZlib | undefined,
): { body: Uint8Array; input: Uint8Array; used: number } {
  let bound = deflateBound(h.size);
  for (;;) {
    const input = pack.bytes(h.dataStart, Math.min(limit - h.dataStart, bound));
    let body: Uint8Array;
    let used: number;
    try {
      if (engine !== undefined) {
        body = engine.once(input, Math.max(h.size, 1));
        used = engine.bytesWritten;
      } else {
        const r = inflateSync(input, {
          info: true,
          maxOutputLength: Math.max(h.size, 1),
        }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
        body = r.buffer;
        used = r.engine.bytesWritten;
      }
    } catch (e) {
      if (h.dataStart + bound >= limit) throw e;
      bound *= 2;
      continue;
    }
    if (body.byteLength !== h.size) throw new Error("pack entry size mismatch");
    return { body, input, used };
  }
}

/**
 * Builds the `.idx` (version 2) of a complete pack (whole objects, ofs and ref deltas whose
 * bases are in the pack). Throws on a corrupt pack or a missing delta base. Reads the pack by
 * position: memory holds one entry per object (offset, crc, oid), one object under 8 MiB and a
 * bounded cache of delta bases; larger objects and delta results are hashed as they are
 * inflated or applied (a large base written out to a temporary file).
 */
export async function indexPack(pack: PackBytes): Promise<Uint8Array> {
  const { head, count, limit } = packHeader(pack);
  const trailer = pack.bytes(limit, 20).slice();
  const sha = createHash("sha1").update(head);
  // One row per entry in typed arrays (~45 bytes an object, against ~250 for an object per
  // entry with two maps): entries are contiguous, so an entry ends where the next starts.
  const offsets = new Float64Array(count + 1);
  const crcs = new Uint32Array(count);
  const oids = new Uint8Array(count * 20);
  const resolved = new Uint8Array(count);
  const byOid = new OidIndex(oids, count);
  /** The entry starting at `offset`, or -1. */
  const entryAt = (offset: number): number => offsetIndex(offsets, offset, count);
  const setOid = (e: number, oid: string): void => {
    hexInto(oid, oids.subarray(e * 20, e * 20 + 20));
    resolved[e] = 1;
    byOid.add(e);
  };
  // Reused engines (a new engine per entry costs as much as inflating a small one).
  const inflaterOf = (chunk: number) =>
    syncZlibAvailable() ? new SyncZlib("inflate", chunk) : undefined;
  const inflater = inflaterOf(1 << 16);
  let bigInflater: SyncZlib | undefined;
  let i = 12;
  const pace = pacer();
  let deltas = 0;
  try {
    for (let n = 0; n < count; n++) {
      await pace();
      if (i >= limit) throw new Error("truncated pack");
      const h = parseEntryAt(pack, i);
      if (h.dataStart > limit) throw new Error("truncated pack");
      offsets[n] = i;
      // The header's CRC at once (the bytes are a view a later read may move): no copy of
      // each header (an ArrayBuffer per object, ~211,000 at 200,000 notes).
      const headerCrc = crc32(pack.bytes(i, h.dataStart - i));
      const isDelta = h.type === 6 || h.type === 7;
      if (isDelta) deltas++;
      if (h.size >= STREAM_INDEX && !isDelta) {
        const { oid, used } = indexConfig.syncEngine && syncZlibAvailable()
          ? inflateCountingSync(pack, h, limit)
          : await inflateCounting(pack, h, limit);
        const end = h.dataStart + used;
        let crc = headerCrc;
        for (let at = h.dataStart; at < end; at += WINDOW) {
          crc = crc32(pack.bytes(at, Math.min(WINDOW, end - at)), crc);
        }
        crcs[n] = crc >>> 0;
        setOid(n, oid);
        i = end;
        continue;
      }
      // Objects from 1 MiB get an engine with 1 MiB output chunks.
      const engine = h.size >= 1 << 20 ? (bigInflater ??= inflaterOf(1 << 20)) : inflater;
      const { body, input, used } = inflateBounded(pack, h, limit, engine);
      // The entry's bytes are the header and the input inflated from (no second read).
      crcs[n] = crc32(input.subarray(0, used), headerCrc) >>> 0;
      if (!isDelta) {
        digestInto("sha1", oids, n * 20, `${NAMES[TYPES[h.type]!]} ${body.byteLength}\0`, body);
        resolved[n] = 1;
        byOid.add(n);
      }
      i = h.dataStart + used;
    }
  } finally {
    inflater?.close();
    bigInflater?.close();
  }
  if (i !== limit) throw new Error("trailing bytes in pack");
  offsets[count] = limit;
  // The pack's checksum, over its bytes in order (one pass, not two updates per entry).
  for (let at = 12; at < limit; at += WINDOW) {
    sha.update(pack.bytes(at, Math.min(WINDOW, limit - at)));
  }
  if (Buffer.compare(sha.digest(), trailer) !== 0) throw new Error("pack checksum mismatch");

  const baseBytes = new Uint8Array(20);
  /** The entry of a delta's base, or -1 when it is not (yet) known. */
  const baseOf = (h: EntryHeader): number => {
    if (h.type === 6) return entryAt(h.baseOffset!);
    return hexInto(h.baseOid!, baseBytes) ? byOid.find(baseBytes) : -1;
  };
  const cache = boundedCache(CACHE_BYTES);
  const resolve = (e: number): GitObject => {
    const key = String(offsets[e]);
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const h = parseEntryAt(pack, offsets[e]!);
    let result: GitObject;
    if (h.type === 6 || h.type === 7) {
      const b = baseOf(h);
      if (b < 0) throw new Error("delta base missing from the pack");
      const base = resolve(b);
      result = {
        type: base.type,
        body: applyDelta(base.body, inflateEntry(pack, h, offsets[e + 1]!)),
      };
    } else {
      result = { type: TYPES[h.type]!, body: inflateEntry(pack, h, offsets[e + 1]!) };
    }
    cache.set(key, result);
    return result;
  };
  // Large delta results are hashed as they are applied, never held whole (their bases written
  // out to files when large too).
  const baseFiles = new BaseFiles();
  const packEntries: PackEntries = {
    bytes: pack,
    id: 0,
    end: (offset) => {
      const e = entryAt(offset);
      return e < 0 ? undefined : offsets[e + 1]!;
    },
    find: (oid) => {
      if (!hexInto(oid, baseBytes)) return undefined;
      const e = byOid.find(baseBytes);
      return e < 0 ? undefined : offsets[e]!;
    },
    whole: (offset) => {
      const e = entryAt(offset);
      return e < 0 ? undefined : resolve(e);
    },
  };
  let pending = new Uint32Array(deltas);
  for (let e = 0, k = 0; e < count; e++) if (resolved[e] === 0) pending[k++] = e;
  try {
    while (pending.length > 0) {
      let left = 0;
      for (const e of pending) {
        const h = parseEntryAt(pack, offsets[e]!);
        const b = baseOf(h);
        if (b < 0 || resolved[b] === 0) {
          pending[left++] = e;
          continue;
        }
        await pace();
        // A pack to restore may be hostile: a delta's copies can repeat its base without end, and
        // streamed it would be hashed for as long as it claims. Past 1 GiB (where reading it
        // whole refused it before), a result may not outgrow four times its base and
        // instructions.
        const sizes = deltaSizes(pack, h, offsets[e + 1]!);
        if (sizes.result > Math.max(MAX_OBJECT, 4 * (sizes.base + h.size))) {
          throw new Error(
            `delta result of ${sizes.result} bytes is out of proportion to its base (${sizes.base}) and instructions (${h.size})`,
          );
        }
        const s = streamObject(packEntries, offsets[e]!, baseFiles);
        if (s !== undefined) {
          const hash = createHash("sha1").update(`${NAMES[s.type]} ${s.size}\0`);
          for (const c of s.body) hash.update(c);
          oids.set(hash.digest(), e * 20);
        } else {
          const o = resolve(e);
          digestInto("sha1", oids, e * 20, `${NAMES[o.type]} ${o.body.byteLength}\0`, o.body);
        }
        resolved[e] = 1;
        byOid.add(e);
      }
      if (left === pending.length) throw new Error("delta base missing from the pack");
      pending = pending.subarray(0, left);
    }
  } finally {
    baseFiles.close();
  }

  // Entries sorted by oid: an order of indexes, not a copy of the entries.
  const order = new Uint32Array(count);
  for (let e = 0; e < count; e++) order[e] = e;
  order.sort((a, b) => {
    for (let k = 0; k < 20; k++) {
      const d = oids[a * 20 + k]! - oids[b * 20 + k]!;
      if (d !== 0) return d;
    }
    return 0;
  });
  let large = 0;
  for (let e = 0; e < count; e++) if (offsets[e]! >= 0x80000000) large++;
  const out = new Uint8Array(8 + 256 * 4 + count * 28 + large * 8 + 40);
  const o = new DataView(out.buffer);
  o.setUint32(0, 0xff744f63);
  o.setUint32(4, 2);
  let k = 0;
  for (let b = 0; b < 256; b++) {
    while (k < count && oids[order[k]! * 20]! <= b) k++;
    o.setUint32(8 + b * 4, k);
  }
  let p = 8 + 256 * 4;
  for (const e of order) {
    out.set(oids.subarray(e * 20, e * 20 + 20), p);
    p += 20;
  }
  for (const e of order) {
    o.setUint32(p, crcs[e]!);
    p += 4;
  }
  let li = 0;
  const largeAt = p + count * 4;
  for (const e of order) {
    const off = offsets[e]!;
    if (off < 0x80000000) o.setUint32(p, off);
    else {
      o.setUint32(p, (0x80000000 | li) >>> 0);
      o.setBigUint64(largeAt + li * 8, BigInt(off));
      li++;
    }
    p += 4;
  }
  p = largeAt + large * 8;
  out.set(trailer, p);
  p += 20;
  out.set(createHash("sha1").update(out.subarray(0, p)).digest(), p);
  return out;
}

/**
 * The entries of a pack by object id, for {@linkcode indexPack}: an open-addressing table of
 * entry numbers (4 bytes a slot, two slots an entry) over the 20-byte ids in `oids`.
 */
class OidIndex {
  #oids: Uint8Array;
  #slots: Uint32Array;
  #mask: number;

  constructor(oids: Uint8Array, count: number) {
    this.#oids = oids;
    let n = 16;
    while (n < count * 2) n *= 2;
    this.#slots = new Uint32Array(n);
    this.#mask = n - 1;
  }

  #home(id: Uint8Array, at: number): number {
    return ((id[at]! << 24) | (id[at + 1]! << 16) | (id[at + 2]! << 8) | id[at + 3]!) &
      this.#mask;
  }

  #same(e: number, id: Uint8Array, at: number): boolean {
    const oids = this.#oids;
    for (let k = 0; k < 20; k++) if (oids[e * 20 + k] !== id[at + k]) return false;
    return true;
  }

  /** Adds entry `e` (its id in place in `oids`); an id already present keeps its first entry. */
  add(e: number): void {
    const oids = this.#oids;
    for (let s = this.#home(oids, e * 20);; s = (s + 1) & this.#mask) {
      const cur = this.#slots[s]!;
      if (cur === 0) {
        this.#slots[s] = e + 1;
        return;
      }
      if (this.#same(cur - 1, oids, e * 20)) return;
    }
  }

  /** The entry whose id is `id` (20 bytes), or -1. */
  find(id: Uint8Array): number {
    for (let s = this.#home(id, 0);; s = (s + 1) & this.#mask) {
      const cur = this.#slots[s]!;
      if (cur === 0) return -1;
      if (this.#same(cur - 1, id, 0)) return cur - 1;
    }
  }
}

/**
 * The commits and tags of a pack, readable by id, without indexing the pack: for a log (what
 * `diff` reads of a history). One pass inflates each entry, to find where the next one starts
 * (a pack does not record compressed lengths), and hashes only commits and tags; their offsets
 * are kept by id, nothing for the other objects. Indexing the whole pack instead (indexPack)
 * hashed and held every object: 211,000 at 200,000 notes, ~2 s and ~25 MB to read a few
 * commits.
 *
 * `undefined` when the pack has a delta entry (a commit or tag may be one: index it whole
 * instead), or where synchronous zlib is not available. The pack's own checksum is not
 * checked (the caller verified the bytes). Throws on a damaged or truncated pack.
 */
export async function packCommits(
  pack: PackBytes,
): Promise<(ObjectSource & { readonly count: number }) | undefined> {
  if (!syncZlibAvailable()) return undefined;
  const { count, limit } = packHeader(pack);
  const at = new Map<string, number>();
  const inflater = new SyncZlib("inflate", 1 << 16);
  const pace = pacer();
  let i = 12;
  try {
    for (let n = 0; n < count; n++) {
      await pace();
      if (i >= limit) throw new Error("truncated pack");
      const h = parseEntryAt(pack, i);
      if (h.type === 6 || h.type === 7) return undefined;
      if (h.dataStart > limit) throw new Error("truncated pack");
      const keep = h.type === 1 || h.type === 4;
      if (h.size >= STREAM_INDEX) {
        // A large blob (or a huge commit): inflated in pieces, never held.
        const { oid, used } = inflateCountingSync(pack, h, limit);
        if (keep) at.set(oid, i);
        i = h.dataStart + used;
        continue;
      }
      const { body, used } = inflateBounded(pack, h, limit, inflater);
      if (keep) {
        const oid = hexAt(
          digestInto("sha1", OID_OUT, 0, `${NAMES[TYPES[h.type]!]} ${h.size}\0`, body),
          0,
        );
        at.set(oid, i);
      }
      i = h.dataStart + used;
    }
  } finally {
    inflater.close();
  }
  if (i !== limit) throw new Error("trailing bytes in pack");
  const readSync = (oid: string): GitObject | undefined => {
    const offset = at.get(oid);
    if (offset === undefined) return undefined;
    const h = parseEntryAt(pack, offset);
    return { type: TYPES[h.type]!, body: inflateEntry(pack, h) };
  };
  return {
    count: at.size,
    readSync,
    read: (oid) => {
      try {
        const o = readSync(oid);
        return o ? Promise.resolve(o) : Promise.reject(new Error(`object ${oid} not found`));
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}

/** Where {@linkcode packCommits} takes each commit's id. */
const OID_OUT = new Uint8Array(20);
