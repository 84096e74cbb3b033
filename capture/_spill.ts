/**
 * One staging file that many small artifacts' bytes are appended to (private).
 *
 * A capture that must keep its own copy of many small files (redacted notes, or notes written to
 * so lately that the live file may change before it is packed) writes them one after another
 * into one file, and packs each from its offset: one file created instead of one per note (each
 * cost ~1 ms of system time on ext4, and its path and closures ~300 bytes of heap until packed:
 * ~60 MB for 200,000 notes).
 *
 * @module
 */
import type { ArtifactSource } from "./types.ts";
import { oneChunk } from "./_util.ts";

/** An append-only staging file, read back by offset. */
export class SpillFile {
  readonly path: string;
  #writer: Deno.FsFile | undefined;
  #reader: Deno.FsFile | undefined;
  #end = 0;

  /** `path` must not exist; it is created on the first append. */
  constructor(path: string) {
    this.path = path;
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.#end;
  }

  /** Appends `bytes`; returns their offset. */
  append(bytes: Uint8Array): number {
    const w = this.#writer ??= Deno.openSync(this.path, {
      write: true,
      append: true,
      createNew: true,
    });
    const at = this.#end;
    let n = 0;
    while (n < bytes.length) n += w.writeSync(bytes.subarray(n));
    this.#end += bytes.length;
    return at;
  }

  /** Reads the `length` bytes at `offset` into the start of `into`; returns `length`. */
  readAt(offset: number, length: number, into: Uint8Array): number {
    if (offset + length > this.#end || length > into.length) {
      throw new RangeError(`Spill read ${offset}+${length} out of range (${this.#end} bytes)`);
    }
    const r = this.#reader ??= Deno.openSync(this.path, { read: true });
    r.seekSync(offset, Deno.SeekMode.Start);
    let n = 0;
    while (n < length) {
      const k = r.readSync(into.subarray(n, length));
      if (k === null || k === 0) {
        throw new Error(
          `Spill file ${this.path} ended at ${offset + n}, before ${offset + length}`,
        );
      }
      n += k;
    }
    return length;
  }

  /** Closes the file (kept on disk: it is in the caller's staging dir). Idempotent. */
  close(): void {
    this.#writer?.close();
    this.#reader?.close();
    this.#writer = this.#reader = undefined;
  }
}

/** An artifact whose bytes are a range of a {@linkcode SpillFile}. */
export class SpilledArtifact implements ArtifactSource {
  readonly kind = "file";
  readonly mode?: number;
  readonly #spill: SpillFile;
  readonly #offset: number;

  constructor(
    readonly path: string,
    readonly size: number,
    spill: SpillFile,
    offset: number,
    mode?: number,
  ) {
    this.#spill = spill;
    this.#offset = offset;
    if (mode !== undefined) this.mode = mode;
  }

  readInto(into: Uint8Array): number {
    return this.#spill.readAt(this.#offset, this.size, into);
  }

  open(): Promise<ReadableStream<Uint8Array>> {
    try {
      const bytes = new Uint8Array(this.size);
      this.#spill.readAt(this.#offset, this.size, bytes);
      return Promise.resolve(oneChunk(bytes));
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
