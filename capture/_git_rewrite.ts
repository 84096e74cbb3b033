/**
 * Git history redaction: rewrites every object reachable from the given tips with a redactor,
 * bottom-up (blobs, then trees, then commits parents-first, then tags), into an overlay kept
 * in a temporary file (compressed, as pack entries), not in memory. The live repository is only
 * read, never written.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { deflateSync, inflateSync } from "node:zlib";
import type { Redactor } from "../redact/types.ts";
import {
  deflateStream,
  formatTree,
  type GitObject,
  joinHeaders,
  objectId,
  type ObjectSource,
  parseTree,
  type RawChunks,
  type RawEntry,
  splitHeaders,
  type TreeEntry,
} from "./_git_objects.ts";
import { pacer } from "../_pace.ts";
import { deflateBlocksSync, SyncZlib, syncZlibAvailable } from "./_git_zlib.ts";
import { readFullyAt } from "./_util.ts";
import { OidMap } from "./_oid_map.ts";

/** The outcome of {@linkcode rewriteHistory}. */
export interface RewriteResult {
  /** Old object id to new object id, for every object visited (unchanged ones map to themselves). */
  map: OidMap;
  /** The new objects, by new id. */
  objects: SpilledObjects;
  /** How many objects changed. */
  changed: number;
}

/** The file's bytes from its position on, read into `buf` (each chunk a view of it). */
export function* readChunks(file: Deno.FsFile, buf: Uint8Array): Generator<Uint8Array> {
  for (;;) {
    const n = file.readSync(buf);
    if (n === null || n === 0) return;
    yield buf.subarray(0, n);
  }
}

/** Rewritten entries from this size are handed to the bundle writer in chunks of this size. */
const RAW_CHUNK = 1 << 20;

/** Blobs from this size are redacted through files, in blocks. */
const LARGE_BLOB = 4 << 20;

/** The artifact name under which history redactions are reported. */
export const BUNDLE_ARTIFACT = "git/memdir.bundle";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Objects written to a file as zlib data (level 1, as the bundle writer stores whole objects),
 * with only their ids, types, sizes and places in memory. `raw()` hands the compressed data out
 * as a whole pack entry, so the bundle does not compress them again.
 */
export class SpilledObjects {
  #file: Deno.FsFile;
  #path: string;
  #end = 0;
  // Reused engines: the bytes are deflateSync's, without a new engine per object.
  #deflater = syncZlibAvailable() ? new SyncZlib("deflate") : undefined;
  #inflater = syncZlibAvailable() ? new SyncZlib("inflate") : undefined;
  #chunk: Uint8Array | undefined;
  #at = new Map<
    string,
    { type: GitObject["type"]; size: number; offset: number; length: number }
  >();

  constructor(path: string) {
    this.#path = path;
    this.#file = Deno.openSync(path, { read: true, write: true, create: true, truncate: true });
  }

  get size(): number {
    return this.#at.size;
  }

  has(oid: string): boolean {
    return this.#at.has(oid);
  }

  set(oid: string, o: GitObject): void {
    if (this.#at.has(oid)) return;
    // (a view of the engine's buffer, written at once)
    const data = this.#deflater?.once(o.body) ?? deflateSync(o.body, { level: 1 });
    this.#file.seekSync(this.#end, Deno.SeekMode.Start);
    let off = 0;
    while (off < data.length) off += this.#file.writeSync(data.subarray(off));
    this.#at.set(oid, {
      type: o.type,
      size: o.body.byteLength,
      offset: this.#end,
      length: data.length,
    });
    this.#end += data.length;
  }

  /**
   * Adds an object whose body is the file at `path`, compressed in blocks (never whole). With
   * the synchronous engine, the file is read into one reused buffer (`buf`) and compressed
   * block by block, letting other tasks run every 16 ms; the bytes are those of the stream
   * path, which read the file as a stream of new 64 KiB chunks and copied each block again.
   */
  async setFile(
    oid: string,
    type: GitObject["type"],
    size: number,
    path: string,
    buf: Uint8Array = new Uint8Array(1 << 20),
  ): Promise<void> {
    if (this.#at.has(oid)) return;
    const start = this.#end;
    const append = (c: Uint8Array): void => {
      this.#file.seekSync(this.#end, Deno.SeekMode.Start);
      let off = 0;
      while (off < c.length) off += this.#file.writeSync(c.subarray(off));
      this.#end += c.length;
    };
    if (this.#deflater !== undefined) {
      const pace = pacer();
      using input = Deno.openSync(path, { read: true });
      for (const c of deflateBlocksSync(readChunks(input, buf), true)) {
        append(c);
        await pace();
      }
    } else {
      using input = await Deno.open(path, { read: true });
      for await (const c of deflateStream(input.readable)) append(c);
    }
    this.#at.set(oid, { type, size, offset: start, length: this.#end - start });
  }

  #data(offset: number, length: number): Uint8Array {
    const buf = new Uint8Array(length);
    readFullyAt(this.#file, buf, offset, "rewritten object file is truncated");
    return buf;
  }

  get(oid: string): GitObject | undefined {
    const e = this.#at.get(oid);
    if (e === undefined) return undefined;
    const data = this.#data(e.offset, e.length);
    if (this.#inflater !== undefined) {
      return { type: e.type, body: new Uint8Array(this.#inflater.once(data, Math.max(e.size, 1))) };
    }
    const body = inflateSync(data);
    return { type: e.type, body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) };
  }

  /**
   * The entry of `oid` as {@linkcode raw} gives it, its data read in chunks into one reused
   * buffer, when it is at least {@linkcode RAW_CHUNK} long (a redacted large blob); else
   * `undefined`.
   */
  rawChunks(oid: string): RawChunks | undefined {
    const e = this.#at.get(oid);
    if (e === undefined || e.length < RAW_CHUNK) return undefined;
    const file = this.#file;
    const buf = this.#chunk ??= new Uint8Array(RAW_CHUNK);
    return {
      kind: "whole",
      type: e.type,
      size: e.size,
      data: (function* (): Generator<Uint8Array> {
        let at = e.offset;
        const end = e.offset + e.length;
        while (at < end) {
          const want = buf.subarray(0, Math.min(buf.length, end - at));
          readFullyAt(file, want, at, "rewritten object file is truncated");
          at += want.length;
          yield want;
        }
      })(),
    };
  }

  raw(oid: string): RawEntry | undefined {
    const e = this.#at.get(oid);
    if (e === undefined) return undefined;
    return { kind: "whole", type: e.type, size: e.size, data: this.#data(e.offset, e.length) };
  }

  /** Closes and removes the file. */
  async dispose(): Promise<void> {
    this.#deflater?.close();
    this.#inflater?.close();
    try {
      this.#file.close();
    } catch {
      // closed already
    }
    await Deno.remove(this.#path).catch(() => {});
  }
}

/**
 * Rewrites the history reachable from `tips` with `redactor`: blob contents via `redactBytes`
 * (binary blobs are kept), commit and tag messages and identities via `redactString`. A
 * rewritten commit or tag loses its signature (it no longer holds). The new objects go to the
 * file `spill` (created; the caller disposes of it through `objects.dispose()`).
 */
export async function rewriteHistory(
  source: ObjectSource,
  tips: string[],
  redactor: Redactor,
  spill: string,
  signal?: AbortSignal,
): Promise<RewriteResult> {
  const map = new OidMap();
  const objects = new SpilledObjects(spill);
  let changed = 0;

  const put = (old: string, type: GitObject["type"], body: Uint8Array): string => {
    const oid = objectId(type, body);
    if (oid !== old) {
      objects.set(oid, { type, body });
      changed++;
    }
    map.set(old, oid);
    return oid;
  };

  const redactText = (bytes: Uint8Array, artifact: string): Uint8Array => {
    const text = decoder.decode(bytes);
    const out = redactor.redactString(text, artifact);
    return out === text ? bytes : encoder.encode(out);
  };

  const redactIdent = (line: string, artifact: string): string => {
    const m = /^(author|committer|tagger) (.*) <(.*)> (\d+ [+-]\d{4})$/.exec(line);
    if (m === null) return line;
    const name = redactor.redactString(m[2]!, artifact);
    const email = redactor.redactString(m[3]!, artifact);
    return `${m[1]} ${name} <${email}> ${m[4]}`;
  };

  // Reading and redacting is synchronous: let other plugins' I/O run every 16 ms.
  const pace = pacer();

  // One read buffer for the large blobs' files (hashing and compressing them).
  let blockBuf: Uint8Array | undefined;

  /**
   * A large blob goes through a file and `redactFile` (1 MiB blocks) rather than through
   * strings: decoding, redacting and encoding a 50 MiB blob whole costs several times its size.
   * A synchronous body (a loose object inflated in steps, its chunks reused) is written as it
   * comes, and the redacted file is hashed and compressed through one reused buffer, letting
   * other tasks run every 16 ms: no buffer is allocated per chunk (async writes kept each
   * chunk alive until written, and a file's stream hands out a new one per read).
   */
  const largeBlob = async (
    oid: string,
    artifact: string,
    body: Iterable<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array,
  ): Promise<string> => {
    const src = `${spill}.in`;
    const dest = `${spill}.out`;
    const buf = blockBuf ??= new Uint8Array(1 << 20);
    try {
      {
        using f = Deno.openSync(src, { write: true, create: true, truncate: true });
        const write = (b: Uint8Array): void => {
          let off = 0;
          while (off < b.length) off += f.writeSync(b.subarray(off));
        };
        if (body instanceof Uint8Array) write(body);
        else if (Symbol.iterator in body) {
          for (const c of body) {
            write(c);
            await pace();
          }
        } else for await (const c of body) write(c);
      }
      if (!(await redactor.redactFile(src, dest, artifact))) {
        map.set(oid, oid);
        return oid;
      }
      const size = Deno.statSync(dest).size;
      const hash = createHash("sha1").update(`blob ${size}\0`);
      {
        using f = Deno.openSync(dest, { read: true });
        for (const c of readChunks(f, buf)) {
          hash.update(c);
          await pace();
        }
      }
      const next = hash.digest("hex");
      if (next !== oid) {
        await objects.setFile(next, "blob", size, dest, buf);
        changed++;
      }
      map.set(oid, next);
      return next;
    } finally {
      await Deno.remove(src).catch(() => {});
      await Deno.remove(dest).catch(() => {});
    }
  };

  const blob = async (oid: string, path: string): Promise<string> => {
    const done = map.get(oid);
    if (done !== undefined) return done;
    await pace();
    const artifact = `${BUNDLE_ARTIFACT}:${path}`;
    const streamed = source.streamSync !== undefined
      ? source.streamSync(oid)
      : await source.stream?.(oid);
    if (streamed !== undefined) {
      if (streamed.type !== "blob") throw new Error(`object ${oid} is not a blob`);
      return await largeBlob(oid, artifact, streamed.body);
    }
    // (a view at most until the next read: redacted, hashed and stored before any other)
    const o = source.readView?.(oid) ?? await source.read(oid);
    if (o.body.byteLength >= LARGE_BLOB) return await largeBlob(oid, artifact, o.body);
    const out = redactor.redactBytes(o.body, artifact);
    return put(oid, "blob", out ?? o.body);
  };

  const tree = async (oid: string, prefix: string): Promise<string> => {
    const done = map.get(oid);
    if (done !== undefined) return done;
    signal?.throwIfAborted();
    const o = await source.read(oid);
    const entries = parseTree(o.body);
    let dirty = false;
    const next: TreeEntry[] = [];
    for (const e of entries) {
      const path = prefix + decoder.decode(e.name);
      let oid2 = e.oid;
      if (e.mode === "40000") oid2 = await tree(e.oid, `${path}/`);
      else if (e.mode !== "160000") oid2 = await blob(e.oid, path);
      if (oid2 !== e.oid) dirty = true;
      next.push({ ...e, oid: oid2 });
    }
    return put(oid, "tree", dirty ? formatTree(next) : o.body);
  };

  /** Rewrites header lines; drops a signature when anything else changed. */
  const rewriteHeaders = async (
    headers: string[],
    message: Uint8Array,
    artifact: string,
    point: (kind: string, oid: string) => Promise<string>,
  ): Promise<{ body: Uint8Array; original: boolean }> => {
    const out: string[] = [];
    const sigStart: number[] = [];
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      const ref = /^(tree|parent|object) ([0-9a-f]{40})$/.exec(h);
      if (ref) out.push(`${ref[1]} ${await point(ref[1]!, ref[2]!)}`);
      else if (/^(author|committer|tagger) /.test(h)) out.push(redactIdent(h, artifact));
      else {
        if (/^gpgsig(-sha256)? /.test(h)) sigStart.push(out.length);
        out.push(h);
      }
    }
    const msg = redactText(message, artifact);
    const same = out.every((h, i) => h === headers[i]) && msg === message;
    if (same) return { body: joinHeaders(headers, message), original: true };
    // drop signature headers and their continuation lines
    const kept: string[] = [];
    for (let i = 0; i < out.length; i++) {
      if (sigStart.includes(i)) {
        while (i + 1 < out.length && out[i + 1]!.startsWith(" ")) i++;
        continue;
      }
      kept.push(out[i]!);
    }
    return { body: joinHeaders(kept, msg), original: false };
  };

  // Commits, parents first, without recursion (histories can be long).
  const commit = async (tip: string): Promise<string> => {
    const stack: { oid: string; expanded: boolean }[] = [{ oid: tip, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (map.has(top.oid)) {
        stack.pop();
        continue;
      }
      signal?.throwIfAborted();
      const o = await source.read(top.oid);
      const { headers, message } = splitHeaders(o.body);
      if (!top.expanded) {
        top.expanded = true;
        for (const h of headers) {
          const m = /^parent ([0-9a-f]{40})$/.exec(h);
          if (m && !map.has(m[1]!)) stack.push({ oid: m[1]!, expanded: false });
        }
        continue;
      }
      stack.pop();
      const { body, original } = await rewriteHeaders(
        headers,
        message,
        `${BUNDLE_ARTIFACT}:commit`,
        (kind, oid) => (kind === "tree" ? tree(oid, "") : Promise.resolve(map.get(oid) ?? oid)),
      );
      put(top.oid, "commit", original ? o.body : body);
    }
    return map.get(tip)!;
  };

  const any = async (oid: string): Promise<string> => {
    const done = map.get(oid);
    if (done !== undefined) return done;
    const o = await source.read(oid);
    switch (o.type) {
      case "commit":
        return await commit(oid);
      case "tree":
        return await tree(oid, "");
      case "blob":
        return await blob(oid, "");
      case "tag": {
        const { headers, message } = splitHeaders(o.body);
        const { body, original } = await rewriteHeaders(
          headers,
          message,
          `${BUNDLE_ARTIFACT}:tag`,
          (_kind, target) => any(target),
        );
        return put(oid, "tag", original ? o.body : body);
      }
    }
  };

  try {
    for (const tip of tips) await any(tip);
  } catch (e) {
    await objects.dispose();
    throw e;
  }
  return { map, objects, changed };
}
