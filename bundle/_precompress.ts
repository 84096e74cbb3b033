/**
 * Compressing large artifacts ahead of their turn (private).
 *
 * The writer cuts the inner tar at the data of every artifact of at least two frames (see
 * docs/FORMAT.md section 4), so such an artifact's whole frames depend on its bytes alone:
 * [k * FRAME_BYTES, (k + 1) * FRAME_BYTES) of it, for k below `floor(size / FRAME_BYTES)`. For
 * an artifact whose bytes cannot change until the bundle is written (`ArtifactSource.readAt`:
 * a held SQLite database, a copy in staging) those frames can be compressed before the writer
 * reaches them, and before the other captures have ended: on one more native thread, while this
 * thread lists files, reads and hashes small ones, when the compressor threads would otherwise
 * wait. Their output waits in a spill file until the writer takes it, so memory does not grow
 * with how far ahead they are.
 *
 * Each artifact's bytes are read and hashed in order, frame after frame, by whoever fills them:
 * the background here, or the writer's compressor when it reaches a frame not started yet.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { MemsnapError } from "../errors.ts";
import type { ArtifactSource } from "../capture/types.ts";
import { type LibZstd, libzstd, type ZstdCCtx } from "./_libzstd.ts";
import { libcrypto, type Sha256 } from "./_libcrypto.ts";
import { zstdParams } from "./_zstd.ts";
import { writeAll } from "./_io.ts";
import { CUT_BYTES, FRAME_BYTES, type FrameLookahead } from "./_zstd_frames.ts";

/** Frames compressed ahead and not taken yet, at most (a bound on the spill file). */
const MAX_AHEAD = 64;

/** The size error of the writer (same words): the source ended early or grew. */
export function sizeChanged(s: ArtifactSource, n: number): MemsnapError {
  return new MemsnapError(
    `Cannot pack artifact ${JSON.stringify(s.path)}: it yielded ${
      n > s.size ? `more than ${s.size}` : n
    } bytes but its declared size is ${s.size} (the file changed during capture)`,
    { hint: "Take the snapshot again." },
  );
}

/**
 * An artifact whose whole frames are compressed ahead, and its hash, built in order. With the
 * system libcrypto the frames compressed ahead are hashed on a native thread too, beside their
 * compression (this thread only reads them); otherwise with `node:crypto`, here.
 */
export class AheadArtifact {
  /** Bytes hashed so far, from the start. */
  hashed = 0;
  /** Frames filled (read and hashed) so far. */
  filled = 0;
  /** Its whole frames. */
  readonly frames: number;
  /** Frames compressed ahead, by index, until taken. */
  readonly ahead: (Promise<Spilled> | undefined)[] = [];
  /** Whether the writer's compressor fills its remaining frames (nothing more is started here). */
  engine = false;
  readonly #native: Sha256 | undefined;
  readonly #node: Hash | undefined;
  /** A hash update running off this thread. */
  #pending: Promise<void> | undefined;
  /** The error of a fill, raised again by any later one: its bytes cannot be read further. */
  #error: unknown;

  constructor(
    readonly source: ArtifactSource,
    readonly frameBytes: number,
    readonly owner: Precompressor,
  ) {
    this.frames = Math.floor(source.size / frameBytes);
    this.#native = libcrypto()?.sha256();
    if (this.#native === undefined) this.#node = createHash("sha256");
  }

  /** Settles when no hash update is running off this thread (`undefined`: none is). */
  settled(): Promise<void> | undefined {
    return this.#pending;
  }

  #update(bytes: Uint8Array): void {
    if (this.#pending !== undefined) {
      throw new MemsnapError(
        `Cannot pack artifact ${JSON.stringify(this.source.path)}: hashed while a hash update ` +
          "was running (a bug)",
      );
    }
    if (this.#native) this.#native.update(bytes);
    else this.#node!.update(bytes);
  }

  /** Reads all of `into` from `pos`, checking it is all there. */
  #readAt(into: Uint8Array, pos: number): void {
    let n = 0;
    while (n < into.length) {
      const k = this.source.readAt!(into.subarray(n), pos + n);
      if (!(k > 0)) break;
      n += k;
    }
    if (n !== into.length) throw sizeChanged(this.source, pos + n);
  }

  /** Reads all of `into` from `pos`; hashes it when it is the next stretch in order. */
  read(into: Uint8Array, pos: number): void {
    this.#readAt(into, pos);
    if (pos === this.hashed) {
      this.#update(into);
      this.hashed += into.length;
    } else if (pos + into.length > this.hashed) {
      throw new MemsnapError(
        `Cannot pack artifact ${JSON.stringify(this.source.path)}: bytes ${pos}-${
          pos + into.length
        } were read before bytes from ${this.hashed} on were hashed (a bug)`,
      );
    }
  }

  #next(k: number): void {
    if (this.#error !== undefined) throw this.#error;
    if (k !== this.filled) {
      throw new MemsnapError(
        `Cannot pack artifact ${JSON.stringify(this.source.path)}: frame ${k} filled after ${
          this.filled - 1
        } (a bug)`,
      );
    }
  }

  /** Fills whole frame `k` (the next one in order) into `into`, hashing it here. */
  fill(k: number, into: Uint8Array): void {
    this.#next(k);
    try {
      this.read(into.subarray(0, this.frameBytes), k * this.frameBytes);
    } catch (e) {
      this.#error = e;
      throw e;
    }
    this.filled++;
  }

  /**
   * Fills whole frame `k` (the next one in order) into `into`; the promise settles once it is
   * hashed, off this thread when libcrypto is there (`into` must not change until then).
   */
  fillOffThread(k: number, into: Uint8Array): Promise<void> {
    if (this.#native === undefined) {
      this.fill(k, into);
      return Promise.resolve();
    }
    this.#next(k);
    const frame = into.subarray(0, this.frameBytes);
    const pos = k * this.frameBytes;
    try {
      this.#readAt(frame, pos);
      if (pos !== this.hashed || this.#pending !== undefined) {
        throw new MemsnapError(
          `Cannot pack artifact ${JSON.stringify(this.source.path)}: frame ${k} hashed out of ` +
            "order (a bug)",
        );
      }
    } catch (e) {
      this.#error = e;
      throw e;
    }
    this.hashed += frame.length;
    this.filled++;
    const p = this.#native.updateOffThread(frame).then(
      () => {
        this.#pending = undefined;
      },
      (e) => {
        this.#pending = undefined;
        this.#error = e;
        throw e;
      },
    );
    this.#pending = p;
    p.catch(() => {}); // raised through the frame's promise
    return p;
  }

  /** After the last byte: the source must end here, and every byte must have been hashed. */
  finish(): string {
    const s = this.source;
    if (this.#error !== undefined) throw this.#error;
    if (s.readAt!(new Uint8Array(1), s.size) > 0) throw sizeChanged(s, s.size + 1);
    if (this.hashed !== s.size || this.#pending !== undefined) {
      throw new MemsnapError(
        `Cannot pack artifact ${JSON.stringify(s.path)}: ${this.hashed} of its ${s.size} bytes ` +
          "were hashed (a bug)",
      );
    }
    return this.#native ? this.#native.digestHex() : this.#node!.digest("hex");
  }

  /** Frees the native hash context (after `finish()`, or when the bundle is not written). */
  dispose(): void {
    this.#native?.free();
  }
}

/** Where a frame compressed ahead waits in the spill file. */
interface Spilled {
  at: number;
  length: number;
}

/** Which precompressor took which artifact (so the writer finds the state of a source). */
const registry = new WeakMap<ArtifactSource, AheadArtifact>();

/** The ahead state of a source added to a precompressor, if any. */
export function aheadOf(source: ArtifactSource): AheadArtifact | undefined {
  return registry.get(source);
}

/**
 * Compresses the whole frames of stable artifacts ahead of time, one call at a time on its own
 * context, in path order of the artifacts added so far.
 */
export class Precompressor {
  readonly level: number;
  readonly frameBytes: number;
  /** Artifacts from this size on are cut, and taken. */
  readonly cutBytes: number;
  readonly #lib: LibZstd;
  readonly #spillPath: string;
  readonly #maxAhead: number;
  readonly #queue: AheadArtifact[] = [];
  #ctx: ZstdCCtx | undefined;
  #in: Uint8Array<ArrayBuffer> | undefined;
  #out: Uint8Array<ArrayBuffer> | undefined;
  #back: Uint8Array<ArrayBuffer> | undefined;
  #spill: Deno.FsFile | undefined;
  #reader: Deno.FsFile | undefined;
  #spillEnd = 0;
  #call: Promise<unknown> | undefined;
  #waiting = 0; // compressed ahead, not taken
  #failed = false;
  #sealed = false;
  #closed = false;

  /**
   * A precompressor over the system libzstd, or `undefined` when there is none (the built-in
   * engine compresses every frame when the writer reaches it).
   */
  static open(
    level: number,
    spillPath: string,
    options: { lib?: LibZstd | false; frameBytes?: number; maxAhead?: number } = {},
  ): Precompressor | undefined {
    const lib = options.lib ?? libzstd();
    if (!lib) return undefined;
    return new Precompressor(lib, level, spillPath, options.frameBytes, options.maxAhead);
  }

  private constructor(
    lib: LibZstd,
    level: number,
    spillPath: string,
    frameBytes = FRAME_BYTES,
    maxAhead = MAX_AHEAD,
  ) {
    this.#lib = lib;
    this.level = level;
    this.#spillPath = spillPath;
    this.frameBytes = frameBytes;
    this.cutBytes = frameBytes === FRAME_BYTES ? CUT_BYTES : 2 * frameBytes;
    this.#maxAhead = maxAhead;
  }

  /**
   * Takes a source whose bytes cannot change until the bundle is written (it has `readAt`) and
   * that the writer cuts a frame before (two frames or more); returns whether it did. Starts compressing at once.
   */
  add(source: ArtifactSource): boolean {
    if (
      this.#closed || this.#sealed || source.readAt === undefined ||
      !(Number.isSafeInteger(source.size) && source.size >= this.cutBytes) ||
      registry.has(source)
    ) {
      return false;
    }
    const a = new AheadArtifact(source, this.frameBytes, this);
    registry.set(source, a);
    // In path order, the order the writer needs them in.
    let i = this.#queue.length;
    while (i > 0 && this.#queue[i - 1]!.source.path > source.path) i--;
    this.#queue.splice(i, 0, a);
    this.#pump();
    return true;
  }

  /**
   * The writer's lookahead: `first` gives, for each artifact it packs with whole frames cut
   * out, the index of its first frame in the payload. No source is added after this.
   */
  lookahead(first: ReadonlyMap<AheadArtifact, number>): FrameLookahead {
    this.#sealed = true;
    const frames: number[] = [];
    const owners: AheadArtifact[] = [];
    for (const [a, f] of [...first].sort((x, y) => x[1] - y[1])) {
      for (let k = 0; k < a.frames; k++) {
        frames.push(f + k);
        owners.push(a);
      }
    }
    let o = 0; // frames are reached in ascending order
    const find = (index: number): [AheadArtifact, number] => {
      while (o < frames.length && frames[o]! < index) o++;
      const a = owners[o];
      if (a === undefined || frames[o] !== index) {
        throw new MemsnapError(`Cannot pack: frame ${index} is not planned (a bug)`);
      }
      return [a, index - first.get(a)!];
    };
    this.#release();
    return {
      frames,
      take: (index) => {
        const [a, k] = find(index);
        const p = a.ahead[k];
        if (p === undefined) {
          a.engine = true; // the compressor fills this frame and the rest of the artifact's
          return undefined;
        }
        a.ahead[k] = undefined;
        return p.then((s) => {
          this.#waiting--;
          this.#pump();
          return () => this.#readBack(s);
        });
      },
      ready: (index) => find(index)[0].settled(),
      fill: (index, into) => {
        const [a, k] = find(index);
        a.fill(k, into);
      },
    };
  }

  /** Waits for the call in flight, frees the context, removes the spill file. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#call;
    for (const a of this.#queue) {
      await a.settled()?.catch(() => {});
      a.dispose();
      // The source may be packed again (another writer): from scratch, not from this state.
      if (registry.get(a.source) === a) registry.delete(a.source);
    }
    this.#ctx?.free();
    this.#ctx = undefined;
    this.#in = this.#out = this.#back = undefined;
    this.#reader?.close();
    this.#reader = undefined;
    if (this.#spill) {
      this.#spill.close();
      this.#spill = undefined;
      try {
        Deno.removeSync(this.#spillPath);
      } catch {
        // already gone
      }
    }
  }

  /** The next frame to compress ahead: the first unfilled one in path order. */
  #next(): AheadArtifact | undefined {
    return this.#queue.find((a) => !a.engine && a.filled < a.frames);
  }

  #pump(): void {
    if (this.#closed || this.#failed || this.#call || this.#waiting >= this.#maxAhead) return;
    const a = this.#next();
    if (a === undefined) return this.#release();
    const k = a.filled;
    let p: Promise<Spilled>;
    try {
      this.#ctx ??= this.#lib.createCCtx(zstdParams(this.level));
      this.#in ??= new Uint8Array(this.frameBytes);
      this.#out ??= new Uint8Array(this.#lib.compressBound(this.frameBytes));
      const hashed = a.fillOffThread(k, this.#in);
      const out = this.#out;
      p = Promise.all([this.#ctx.compress(this.#in, out), hashed]).then(([n]) =>
        this.#write(out.subarray(0, n))
      );
    } catch (e) {
      p = Promise.reject(e);
    }
    p.catch(() => {}); // raised when the writer takes frame k
    a.ahead[k] = p;
    this.#waiting++;
    this.#call = p.then(
      () => {
        this.#call = undefined;
        this.#pump();
      },
      () => {
        this.#call = undefined;
        this.#failed = true;
      },
    );
  }

  /** Once sealed with nothing left to start: the context and input buffer go. */
  #release(): void {
    if (!this.#sealed || this.#call || this.#next() !== undefined) return;
    this.#ctx?.free();
    this.#ctx = undefined;
    this.#in = undefined;
  }

  /**
   * Appends a frame to the spill file, on the I/O threads (one call at a time: the next frame
   * is started once this has been written). Frames are read back through another handle, whose
   * position this does not move.
   */
  async #write(bytes: Uint8Array): Promise<Spilled> {
    this.#spill ??= Deno.openSync(this.#spillPath, { createNew: true, append: true });
    const at = this.#spillEnd;
    this.#spillEnd += bytes.length;
    await writeAll(this.#spill, bytes);
    return { at, length: bytes.length };
  }

  /** A frame from the spill file, in a buffer reused by the next read back. */
  #readBack(s: Spilled): Uint8Array {
    if (this.#back === undefined || this.#back.length < s.length) {
      // The output buffer is free once nothing is left to compress ahead.
      this.#back = this.#call === undefined && this.#next() === undefined &&
          this.#out !== undefined && this.#out.length >= s.length
        ? this.#out
        : new Uint8Array(Math.max(s.length, this.#lib.compressBound(this.frameBytes)));
    }
    const view = this.#back.subarray(0, s.length);
    this.#reader ??= Deno.openSync(this.#spillPath, { read: true });
    this.#reader.seekSync(s.at, Deno.SeekMode.Start);
    for (let n = 0; n < s.length;) {
      const k = this.#reader.readSync(view.subarray(n));
      if (k === null || k === 0) {
        throw new Error("Cannot compress the payload: the precompressed spill file is short");
      }
      n += k;
    }
    return view;
  }
}
