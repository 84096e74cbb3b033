/**
 * Parallel zstd compression of the payload (private).
 *
 * The inner tar is cut into segments of {@linkcode FRAME_BYTES} (shorter ones at each
 * {@linkcode CUT} the writer puts in, and the last one) and each segment is compressed, with the pinned parameters, into its own complete zstd frame; the
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
 * Memory: with libzstd, `calls + 1` segments and `calls` frame buffers (~20 MiB with 2 calls)
 * plus the contexts; with the worker, `workers + 1` segments in flight plus the one being
 * filled, and their frames (about 12 MiB with one worker), plus the worker's isolate (~19 MiB).
 *
 * @module
 */
import { zstdParams } from "./_zstd.ts";
import { compressFrame } from "./_zstd_frame.ts";
import { type LibZstd, libzstd } from "./_libzstd.ts";

/** The payload's zstd level unless the writer is told otherwise (docs/FORMAT.md section 4). */
export const DEFAULT_LEVEL = 3;

/** Bytes of inner tar per zstd frame (4 MiB). Changing it changes the bundle bytes. */
export const FRAME_BYTES = 4 << 20;

/**
 * A frame starts at the data of every artifact of at least this size (8 MiB; docs/FORMAT.md
 * section 4). Each cut costs some compression (the frame before it ends short, the next starts
 * without history): only large artifacts, whose frames are worth compressing ahead, get one.
 */
export const CUT_BYTES = 2 * FRAME_BYTES;

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
   * consumer that is done with each frame when it asks for the next one. @default {false}
   */
  reuseOutput?: boolean;
  /**
   * Frames that the input leaves out, compressed elsewhere ahead of time or filled when the
   * input reaches them (see {@linkcode FrameLookahead}). The output is the same bytes as with
   * those frames in the input.
   */
  lookahead?: FrameLookahead;
}

/**
 * A forced frame boundary in the input: the segment being filled ends here (as a shorter
 * frame, unless it is empty) and the next one starts. The writer puts one before the data of
 * every artifact of at least one frame, so that its whole frames depend on its bytes alone.
 */
export const CUT: unique symbol = Symbol("cut");

/** What the compressor reads: bytes, and forced frame boundaries. */
export type FrameInput = Uint8Array | typeof CUT;

/**
 * Whole frames of the stream that the input leaves out, and how to get them: compressed ahead
 * (by a precompressor, see `_precompress.ts`), or filled now and compressed like the input's.
 */
export interface FrameLookahead {
  /** Indices of the frames the input leaves out, strictly ascending. */
  readonly frames: readonly number[];
  /**
   * Claims frame `index` if it was compressed ahead (or is being): resolves to a function that
   * gives its bytes (valid until the next such function is called). `undefined` when it was
   * not started; then {@linkcode fill} is called for it at once, and it is never started ahead.
   */
  take(index: number): Promise<() => Uint8Array> | undefined;
  /**
   * Optional: settles when frame `index` may be filled (work on the bytes before it has ended);
   * `undefined` when it may be now. Called after `take` gave `undefined`, before `fill`.
   */
  ready?(index: number): Promise<void> | undefined;
  /** Fills frame `index` (all of `into`, one frame long). May throw: the stream ends with it. */
  fill(index: number, into: Uint8Array<ArrayBuffer>): void;
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
 * input (and one more at each {@linkcode CUT}), in order. An empty input gives one empty frame.
 * Each input chunk is copied before the next one is asked for: the producer may reuse a chunk's
 * buffer once it is resumed.
 */
export async function* zstdCompressFrames(
  input: AsyncIterable<FrameInput>,
  level: number,
  options: CompressFramesOptions = {},
): AsyncGenerator<Uint8Array> {
  const frameBytes = options.frameBytes ?? FRAME_BYTES;
  const lib = options.libzstd ?? libzstd();
  if (lib) {
    yield* libzstdFrames(input, level, lib, frameBytes, {
      calls: Math.max(1, options.calls ?? DEFAULT_CALLS),
      reuse: options.reuseOutput ?? false,
      lookahead: options.lookahead,
    });
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
    let buf = pool?.free.pop();
    // (a shorter frame's segment was a copy: its buffer, given back, is too small)
    while (buf !== undefined && buf.byteLength < frameBytes) buf = pool!.free.pop();
    buf ??= spare ?? new ArrayBuffer(frameBytes);
    spare = undefined;
    return new Uint8Array(buf);
  };
  const submit = (segment: Uint8Array<ArrayBuffer>, whole: boolean): void => {
    frames++;
    // Without workers the segment is consumed right here, so its buffer is reused at once.
    const p = pool
      ? pool.compress(segment, params)
      : new Promise<Uint8Array>((resolve) => resolve(compressFrame(segment, params)));
    if (!pool && whole) spare = segment.buffer;
    p.catch(() => {}); // awaited in order below; never an unhandled rejection meanwhile
    pending.push(p);
  };
  try {
    // This engine fills the lookahead's frames when the input reaches them.
    const all = withLookahead(segments(input, frameBytes, fresh), options.lookahead, fresh);
    for await (const { segment, used, last } of all) {
      if (used === frameBytes) {
        submit(segment, true);
        while (pending.length >= maxInFlight) yield await pending.shift()!;
      } else if (used > 0 || (last && frames === 0)) {
        submit(segment.slice(0, used), false);
        if (!last) spare ??= segment.buffer; // a cut: the buffer was copied
      }
    }
    while (pending.length > 0) yield await pending.shift()!;
  } finally {
    pool?.terminate();
  }
}

/** A segment of the input: `used` bytes of `segment`; `last` for the input's end. */
interface Segment {
  segment: Uint8Array<ArrayBuffer>;
  used: number;
  last: boolean;
}

/**
 * Cuts `input` into segments of exactly `frameBytes`, each filled into a buffer from `fresh()`
 * (asked for only when the previous segment has been handed out and the consumer resumed),
 * and shorter ones at each {@linkcode CUT} (`used` may then be 0: nothing since the last
 * boundary). The last one is always yielded, `last` set (`used` 0 when the input is empty or
 * ends on a boundary). The output does not depend on how `input` is chunked.
 */
async function* segments(
  input: AsyncIterable<FrameInput>,
  frameBytes: number,
  fresh: () => Uint8Array<ArrayBuffer>,
): AsyncGenerator<Segment> {
  let segment = fresh();
  let used = 0;
  for await (const chunk of input) {
    if (chunk === CUT) {
      yield { segment, used, last: false };
      if (used > 0) {
        used = 0;
        segment = fresh();
      }
      continue;
    }
    let off = 0;
    while (off < chunk.length) {
      const k = Math.min(frameBytes - used, chunk.length - off);
      segment.set(chunk.subarray(off, off + k), used);
      used += k;
      off += k;
      if (used === frameBytes) {
        yield { segment, used, last: false };
        used = 0;
        segment = fresh();
      }
    }
  }
  yield { segment, used, last: true };
}

/**
 * The segments of `input` with the lookahead's frames filled in where they belong: before the
 * first segment and after each boundary, while the next frame index is the lookahead's.
 */
async function* withLookahead(
  input: AsyncIterable<Segment>,
  la: FrameLookahead | undefined,
  fresh: () => Uint8Array<ArrayBuffer>,
): AsyncGenerator<Segment> {
  if (!la) return yield* input;
  let frame = 0;
  let i = 0;
  async function* gap(): AsyncGenerator<Segment> {
    while (i < la!.frames.length && la!.frames[i] === frame) {
      const r = la!.ready?.(frame);
      if (r !== undefined) await r;
      const segment = fresh();
      la!.fill(frame, segment);
      i++;
      frame++;
      yield { segment, used: segment.length, last: false };
    }
  }
  yield* gap();
  for await (const s of input) {
    if (s.last) {
      if (i < la.frames.length) throw lookaheadLeft(la.frames[i]!);
      yield s;
      return;
    }
    if (s.used > 0) frame++;
    yield s;
    yield* gap();
  }
}

function lookaheadLeft(frame: number): Error {
  return new Error(
    `Cannot compress the payload: the input ended before lookahead frame ${frame} (a bug)`,
  );
}

/** Options of the libzstd engine. */
interface LibOptions {
  calls: number;
  reuse: boolean;
  lookahead: FrameLookahead | undefined;
}

/**
 * The libzstd engine: `calls` nonblocking `ZSTD_compress2` calls in flight for the input's
 * frames, frames yielded in order. A lookahead frame the output reaches is taken as compressed
 * ahead, or filled now and compressed like an input frame.
 */
async function* libzstdFrames(
  input: AsyncIterable<FrameInput>,
  level: number,
  lib: LibZstd,
  frameBytes: number,
  { calls, reuse, lookahead: la }: LibOptions,
): AsyncGenerator<Uint8Array> {
  const params = zstdParams(level);
  const bound = lib.compressBound(frameBytes);
  const ctxs: ReturnType<LibZstd["createCCtx"]>[] = [];
  const outs: Uint8Array<ArrayBuffer>[] = [];
  const free: Uint8Array<ArrayBuffer>[] = [];
  // In order: compressed frames (views of `outs`), or frames compressed ahead.
  const pending: Promise<Uint8Array | (() => Uint8Array)>[] = [];
  let inflight = 0; // input frames in `pending` (each holds a context and an output buffer)
  let submitted = 0; // input frames submitted so far
  let frame = 0; // index of the next frame in the output
  let li = 0; // la.frames[li] is the next lookahead frame
  const submit = (segment: Uint8Array<ArrayBuffer>, whole: Uint8Array<ArrayBuffer>): void => {
    // The s-th input frame uses context and output buffer s % calls: their previous user, the
    // (s - calls)-th, has been yielded and the consumer has asked for the next one since.
    const j = submitted++ % calls;
    if (ctxs.length <= j) {
      ctxs.push(lib.createCCtx(params));
      outs.push(new Uint8Array(bound));
    }
    const out = outs[j]!;
    const p = ctxs[j]!.compress(segment, out).then((n) => {
      free.push(whole);
      return reuse ? out.subarray(0, n) : out.slice(0, n);
    });
    p.catch(() => {}); // awaited in order below; never an unhandled rejection meanwhile
    pending.push(p);
    inflight++;
    frame++;
  };
  async function* emit(): AsyncGenerator<Uint8Array> {
    const v = await pending.shift()!;
    if (v instanceof Uint8Array) {
      inflight--;
      yield v;
    } else {
      const bytes = v();
      yield reuse ? bytes : bytes.slice();
    }
  }
  // Lookahead frames the output has reached: compressed ahead, or filled and submitted now.
  async function* gap(): AsyncGenerator<Uint8Array> {
    while (la && li < la.frames.length && la.frames[li] === frame) {
      while (inflight >= calls) yield* emit();
      const p = la.take(frame);
      li++;
      if (p !== undefined) {
        p.catch(() => {}); // awaited in order
        pending.push(p);
        frame++;
        continue;
      }
      const r = la.ready?.(frame);
      if (r !== undefined) await r;
      const segment = free.pop() ?? new Uint8Array(frameBytes);
      la.fill(frame, segment);
      submit(segment, segment);
    }
  }
  const fresh = (): Uint8Array<ArrayBuffer> => free.pop() ?? new Uint8Array(frameBytes);
  try {
    yield* gap();
    for await (const { segment, used, last } of segments(input, frameBytes, fresh)) {
      if (used > 0 || (last && frame === 0)) {
        while (inflight >= calls) yield* emit();
        submit(segment.subarray(0, used), segment);
      } else if (!last) continue; // a cut right after a boundary: nothing to end
      if (last) break;
      yield* gap();
    }
    if (la && li < la.frames.length) throw lookaheadLeft(la.frames[li]!);
    while (pending.length > 0) yield* emit();
  } finally {
    // A native call still running owns its context and buffers: let it end before freeing.
    await Promise.allSettled(pending);
    for (const c of ctxs) c.free();
  }
}
