/**
 * Parallel zstd compression of the payload (private).
 *
 * The inner tar is cut into segments of {@linkcode FRAME_BYTES} (the last one shorter) and each
 * segment is compressed, with the pinned parameters, into its own complete zstd frame; the
 * payload is the concatenation of the frames in order. Frames are independent, so they are
 * compressed concurrently while the main thread reads, hashes and writes, and the bytes do not
 * depend on the concurrency or on how the input is chunked.
 *
 * Two engines:
 * - the system libzstd through FFI ({@linkcode libzstd}), when it is available: each frame is one
 *   nonblocking `ZSTD_compress2` call on a native thread, {@linkcode DEFAULT_CALLS} in flight (no
 *   worker isolate). About 1.5x less CPU per byte than the built-in zstd.
 * - otherwise Deno's built-in zstd (`node:zlib`) in a worker (zero workers: on the calling
 *   thread). Deno 2.9.6's libzstd has no thread support (`ZSTD_c_nbWorkers` is refused), hence
 *   frames rather than zstd's own multithreading.
 *
 * The two engines may give different bytes (different libzstd versions); each is deterministic.
 *
 * Memory: with libzstd, `calls + 1` segments and `calls` frame buffers (`calls + 1` with
 * `reuseOutput`; ~24 MiB with 2 calls)
 * plus the contexts; with the worker, `workers + 1` segments in flight plus the one being
 * filled, and their frames (about 12 MiB with one worker), plus the worker's isolate (~19 MiB).
 *
 * @module
 */
import { zstdParams } from "./_zstd.ts";
import { compressFrame } from "./_zstd_frame.ts";
import { type LibZstd, libzstd } from "./_libzstd.ts";
import { release } from "./_io.ts";

/** Bytes of inner tar per zstd frame (4 MiB). Changing it changes the bundle bytes. */
export const FRAME_BYTES = 4 << 20;

/**
 * One compressor worker by default: with the main thread reading, hashing and writing, that
 * keeps two cores busy. A second worker measured no faster on the 2-core machines (the main
 * thread needs a core too) and cost ~40 MiB more peak RSS (an isolate plus its buffers).
 */
const DEFAULT_WORKERS = 1;

/**
 * Nonblocking libzstd calls in flight: on 2 cores, two calls compress while the main thread
 * (mostly waiting on them) fills the next segment.
 */
export const DEFAULT_CALLS = 2;

/** Options of {@linkcode zstdCompressFrames}. */
export interface CompressFramesOptions {
  /**
   * The libzstd to use, or `false` for the built-in zstd in workers.
   * @default {libzstd()} (the system libzstd when available)
   */
  libzstd?: LibZstd | false;
  /** libzstd calls in flight (at least 1). @default {DEFAULT_CALLS} */
  calls?: number;
  /** Built-in engine: compressor workers; 0 compresses on the calling thread. @default {1} */
  workers?: number;
  /** Bytes per frame. @default {FRAME_BYTES} */
  frameBytes?: number;
  /**
   * libzstd engine: yield views of reused output buffers instead of fresh copies. Only for a
   * consumer that is done with each frame when it asks for the one after the next: it may still
   * be writing a frame while it asks for the next one, not two. @default {false}
   */
  reuseOutput?: boolean;
}

interface Job {
  resolve: (out: Uint8Array<ArrayBuffer>) => void;
  reject: (e: Error) => void;
}

class Pool {
  #workers: Worker[] = [];
  #jobs = new Map<number, Job>();
  #next = 0;
  #failed: Error | undefined;
  /** Segment buffers the workers gave back, for reuse (fewer large allocations, less RSS). */
  readonly free: ArrayBuffer[] = [];

  constructor(n: number) {
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./_zstd_frames_worker.ts", import.meta.url), {
        type: "module",
      });
      w.onmessage = (ev: MessageEvent) => {
        const { id, out, buf, error } = ev.data as {
          id: number;
          out?: Uint8Array<ArrayBuffer>;
          buf?: ArrayBuffer;
          error?: string;
        };
        if (buf) this.free.push(buf);
        const job = this.#jobs.get(id);
        if (!job) return;
        this.#jobs.delete(id);
        if (out) job.resolve(out);
        else job.reject(new Error(`Cannot compress the payload: ${error}`));
      };
      w.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        this.#fail(new Error(`Cannot compress the payload: ${ev.message}`));
      };
      this.#workers.push(w);
    }
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    for (const job of this.#jobs.values()) job.reject(e);
    this.#jobs.clear();
  }

  compress(
    segment: Uint8Array<ArrayBuffer>,
    params: Record<number, number>,
  ): Promise<Uint8Array<ArrayBuffer>> {
    const id = this.#next++;
    const p = new Promise<Uint8Array<ArrayBuffer>>((resolve, reject) => {
      if (this.#failed) return reject(this.#failed);
      this.#jobs.set(id, { resolve, reject });
    });
    if (!this.#failed) {
      const w = this.#workers[id % this.#workers.length]!;
      w.postMessage({ id, buf: segment.buffer, len: segment.length, params }, [segment.buffer]);
    }
    return p;
  }

  terminate(): void {
    for (const w of this.#workers) w.terminate();
    this.#fail(new Error("Cannot compress the payload: the compressor stopped"));
  }
}

/**
 * Compresses a byte stream into a sequence of zstd frames, one per {@linkcode FRAME_BYTES} of
 * input, in order. An empty input gives one empty frame. Each input chunk is copied before the
 * next one is asked for: the producer may reuse a chunk's buffer once it is resumed.
 */
export async function* zstdCompressFrames(
  input: AsyncIterable<Uint8Array>,
  level: number,
  options: CompressFramesOptions = {},
): AsyncGenerator<Uint8Array> {
  const frameBytes = options.frameBytes ?? FRAME_BYTES;
  const lib = options.libzstd ?? libzstd();
  if (lib) {
    yield* libzstdFrames(
      input,
      level,
      lib,
      frameBytes,
      Math.max(1, options.calls ?? DEFAULT_CALLS),
      options.reuseOutput ?? false,
    );
    return;
  }
  const nWorkers = options.workers ?? DEFAULT_WORKERS;
  const params = zstdParams(level);
  const pool = nWorkers > 0 ? new Pool(nWorkers) : undefined;
  const maxInFlight = nWorkers + 1;
  const pending: Promise<Uint8Array>[] = [];
  let frames = 0;
  let spare: ArrayBuffer | undefined;
  const fresh = (): Uint8Array<ArrayBuffer> => {
    const buf = pool?.free.pop() ?? spare ?? new ArrayBuffer(frameBytes);
    spare = undefined;
    return new Uint8Array(buf);
  };
  const submit = (segment: Uint8Array<ArrayBuffer>): void => {
    frames++;
    // Without workers the segment is consumed right here, so its buffer is reused at once.
    const p = pool
      ? pool.compress(segment, params)
      : new Promise<Uint8Array>((resolve) => resolve(compressFrame(segment, params)));
    if (!pool) spare = segment.buffer;
    p.catch(() => {}); // awaited in order below; never an unhandled rejection meanwhile
    pending.push(p);
  };
  try {
    for await (const { segment, used } of segments(input, frameBytes, fresh)) {
      if (used === frameBytes) {
        submit(segment);
        while (pending.length >= maxInFlight) yield await pending.shift()!;
      } else if (used > 0 || frames === 0) submit(segment.slice(0, used));
    }
    while (pending.length > 0) yield await pending.shift()!;
  } finally {
    pool?.terminate();
  }
}

/**
 * Cuts `input` into segments of exactly `frameBytes`, each filled into a buffer from `fresh()`
 * (asked for only when the previous segment has been handed out and the consumer resumed).
 * Every full segment is yielded with `used === frameBytes`; the last one is always yielded, with
 * `used < frameBytes` (0 when the input is empty or ends on a boundary). The output does not
 * depend on how `input` is chunked.
 */
async function* segments(
  input: AsyncIterable<Uint8Array>,
  frameBytes: number,
  fresh: () => Uint8Array<ArrayBuffer>,
): AsyncGenerator<{ segment: Uint8Array<ArrayBuffer>; used: number }> {
  let segment = fresh();
  let used = 0;
  for await (const chunk of input) {
    let off = 0;
    while (off < chunk.length) {
      const k = Math.min(frameBytes - used, chunk.length - off);
      segment.set(chunk.subarray(off, off + k), used);
      used += k;
      off += k;
      if (used === frameBytes) {
        yield { segment, used };
        used = 0;
        segment = fresh();
      }
    }
  }
  yield { segment, used };
}

/**
 * The libzstd engine: `calls` nonblocking `ZSTD_compress2` calls in flight, frames in order. With
 * `reuse`, `calls + 1` output buffers are taken in turn: the consumer may still be using the
 * frame before the one it asks for (see {@linkcode CompressFramesOptions.reuseOutput}).
 */
async function* libzstdFrames(
  input: AsyncIterable<Uint8Array>,
  level: number,
  lib: LibZstd,
  frameBytes: number,
  calls: number,
  reuse: boolean,
): AsyncGenerator<Uint8Array> {
  const params = zstdParams(level);
  const bound = lib.compressBound(frameBytes);
  const ctxs: ReturnType<LibZstd["createCCtx"]>[] = [];
  const outs: Uint8Array<ArrayBuffer>[] = [];
  const free: Uint8Array<ArrayBuffer>[] = [];
  const pending: Promise<Uint8Array>[] = [];
  /** The output buffer of each frame in `pending`. */
  const pendingOut: number[] = [];
  let frames = 0;
  /** The output buffer of the last frame handed out (the consumer may still be using it). */
  let lastOut = -1;
  const submit = (segment: Uint8Array<ArrayBuffer>, whole: Uint8Array<ArrayBuffer>): void => {
    // Frame f uses context f % calls: frame f - calls, its previous user, has been awaited
    // before frame f is submitted. It uses output buffer f % (calls + 1): its previous user,
    // frame f - calls - 1, is one the consumer is done with, since it asked for the frame
    // after frame f - calls (handed out before frame f is submitted).
    const j = frames % calls;
    const o = frames++ % (calls + 1);
    if (ctxs.length <= j) ctxs.push(lib.createCCtx(params));
    if (outs.length <= o) outs.push(new Uint8Array(bound));
    const out = outs[o]!;
    const p = ctxs[j]!.compress(segment, out).then((n) => {
      free.push(whole);
      return reuse ? out.subarray(0, n) : out.slice(0, n);
    });
    p.catch(() => {}); // awaited in order below; never an unhandled rejection meanwhile
    pending.push(p);
    pendingOut.push(o);
  };
  /** The oldest frame in flight, once compressed: the next to hand out. */
  const next = (): Promise<Uint8Array> => {
    lastOut = pendingOut.shift()!;
    return pending.shift()!;
  };
  try {
    const fresh = (): Uint8Array<ArrayBuffer> => free.pop() ?? new Uint8Array(frameBytes);
    for await (const { segment, used } of segments(input, frameBytes, fresh)) {
      if (used === 0 && frames > 0) continue; // input ended on a frame boundary
      while (pending.length >= calls) yield await next();
      submit(segment.subarray(0, used), segment);
    }
    while (pending.length > 0) yield await next();
  } finally {
    // A native call still running owns its context and buffers: let it end before freeing.
    await Promise.allSettled(pending);
    for (const c of ctxs) c.free();
    // The frame and segment buffers (~24 MiB with 2 calls) go now, not at the collector's next
    // full pass: what follows the payload (the manifest, at 411,000 artifacts ~60 MB of text
    // in pieces) would otherwise be written beside them. All but the last frame's: the
    // consumer may still be writing it (it goes with the collector).
    for (let k = 0; k < outs.length; k++) if (!reuse || k !== lastOut) release(outs[k]!.buffer);
    for (const b of free) release(b.buffer);
  }
}
