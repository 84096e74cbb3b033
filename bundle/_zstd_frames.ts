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
 * Memory: with libzstd, `calls + 1` segments and `calls` frame buffers (~20 MiB with 2 calls)
 * plus the contexts; with the worker, `workers + 1` segments in flight plus the one being
 * filled, and their frames (about 12 MiB with one worker), plus the worker's isolate (~19 MiB).
 *
 * @module
 */
import { zstdParams } from "./_zstd.ts";
import { compressFrame } from "./_zstd_frame.ts";
import { type LibZstd, libzstd } from "./_libzstd.ts";

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
   * consumer that is done with each frame when it asks for the next one. @default {false}
   */
  reuseOutput?: boolean;
  /**
   * Frames that the input leaves out and that are filled on demand instead, possibly long
   * before the input reaches them: the libzstd engine compresses them on a spare native thread
   * while the input is slow to come (see {@linkcode FrameLookahead}). The output is the same
   * bytes as with those frames in the input.
   */
  lookahead?: FrameLookahead;
  /** Lookahead: at most this many frames ahead of the input's position. @default {64} */
  lookaheadFrames?: number;
}

/**
 * Whole frames of the stream that the input leaves out, and how to fill them. The writer uses
 * it for artifacts whose bytes cannot change while the bundle is written (a held SQLite
 * database): their frames are compressed while the main thread is still reading small files,
 * when the compressor threads have room, instead of after them.
 */
export interface FrameLookahead {
  /** Indices of the frames the input leaves out, strictly ascending. */
  readonly frames: readonly number[];
  /**
   * Fills frame `index`: all of `into`, which is one frame long. Called once per frame, in
   * ascending order, possibly before the input reaches the frame. An error it throws is raised
   * when the stream reaches that frame (no later frame is filled ahead after it).
   */
  fill(index: number, into: Uint8Array<ArrayBuffer>): void;
  /**
   * A path for a temporary file holding frames compressed ahead of their turn (created when
   * needed, removed at the end), so that memory does not grow with how far ahead they are.
   */
  spillPath: string;
}

/** Where a frame compressed ahead waits in the spill file. */
interface Spilled {
  at: number;
  length: number;
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
    yield* libzstdFrames(input, level, lib, frameBytes, {
      calls: Math.max(1, options.calls ?? DEFAULT_CALLS),
      reuse: options.reuseOutput ?? false,
      lookahead: options.lookahead,
      maxAhead: Math.max(1, options.lookaheadFrames ?? DEFAULT_LOOKAHEAD_FRAMES),
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
    // This engine fills the lookahead's frames when the input reaches them.
    const all = options.lookahead
      ? withLookahead(segments(input, frameBytes, fresh), options.lookahead, fresh)
      : segments(input, frameBytes, fresh);
    for await (const { segment, used } of all) {
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

/** Frames compressed ahead at most this far beyond the input's position (256 MiB of input). */
const DEFAULT_LOOKAHEAD_FRAMES = 64;

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
 * The segments of `input` with the lookahead's frames filled in where they belong: before the
 * first segment and after each full one, while the next frame index is the lookahead's.
 */
async function* withLookahead(
  input: AsyncIterable<{ segment: Uint8Array<ArrayBuffer>; used: number }>,
  la: FrameLookahead,
  fresh: () => Uint8Array<ArrayBuffer>,
): AsyncGenerator<{ segment: Uint8Array<ArrayBuffer>; used: number }> {
  let frame = 0;
  let i = 0;
  function* gap(): Generator<{ segment: Uint8Array<ArrayBuffer>; used: number }> {
    while (i < la.frames.length && la.frames[i] === frame) {
      const segment = fresh();
      la.fill(frame, segment);
      i++;
      frame++;
      yield { segment, used: segment.length };
    }
  }
  yield* gap();
  for await (const s of input) {
    if (s.used < s.segment.length) {
      if (i < la.frames.length) throw lookaheadLeft(la.frames[i]!);
      yield s;
      return;
    }
    yield s;
    frame++;
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
  maxAhead: number;
}

/**
 * The libzstd engine: `calls` nonblocking `ZSTD_compress2` calls in flight for the input's
 * frames, frames yielded in order. With a lookahead, one more context compresses the
 * lookahead's frames ahead of the input, one call at a time, whenever it is free and the next
 * such frame is within `maxAhead` frames of the input's position; their output waits in the
 * spill file until its turn. A lookahead frame that the input reaches before it was started is
 * filled and compressed like an input frame.
 */
async function* libzstdFrames(
  input: AsyncIterable<Uint8Array>,
  level: number,
  lib: LibZstd,
  frameBytes: number,
  { calls, reuse, lookahead: la, maxAhead }: LibOptions,
): AsyncGenerator<Uint8Array> {
  const params = zstdParams(level);
  const bound = lib.compressBound(frameBytes);
  const ctxs: ReturnType<LibZstd["createCCtx"]>[] = [];
  const outs: Uint8Array<ArrayBuffer>[] = [];
  const free: Uint8Array<ArrayBuffer>[] = [];
  // In order: compressed frames (views of `outs`), or frames waiting in the spill file.
  const pending: Promise<Uint8Array | Spilled>[] = [];
  let inflight = 0; // input frames in `pending` (each holds a context and an output buffer)
  let submitted = 0; // input frames submitted so far
  let frame = 0; // index of the next frame in the output
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

  // Lookahead state.
  let next = 0; // la.frames[next] is the next lookahead frame to start
  const ahead = new Map<number, Promise<Spilled>>();
  let aheadCall: Promise<unknown> | undefined;
  let aheadFailed = false;
  let done = false;
  let laCtx: ReturnType<LibZstd["createCCtx"]> | undefined;
  let laIn: Uint8Array<ArrayBuffer> | undefined;
  let laOut: Uint8Array<ArrayBuffer> | undefined;
  let spill: Deno.FsFile | undefined;
  let spillEnd = 0;
  let back: Uint8Array<ArrayBuffer> | undefined;
  const startAhead = (): void => {
    if (!la || done || aheadFailed || aheadCall || next >= la.frames.length) return;
    const k = la.frames[next]!;
    if (k - frame > maxAhead) return;
    next++;
    let p: Promise<Spilled>;
    try {
      laCtx ??= lib.createCCtx(params);
      laIn ??= new Uint8Array(frameBytes);
      laOut ??= new Uint8Array(bound);
      la.fill(k, laIn);
      const out = laOut;
      p = laCtx.compress(laIn, out).then((n) => {
        spill ??= Deno.openSync(la.spillPath, { createNew: true, read: true, write: true });
        spill.seekSync(spillEnd, Deno.SeekMode.Start);
        writeAllSync(spill, out.subarray(0, n));
        const at = spillEnd;
        spillEnd += n;
        return { at, length: n };
      });
    } catch (e) {
      p = Promise.reject(e);
    }
    p.catch(() => {}); // raised when the output reaches frame k
    ahead.set(k, p);
    const call: Promise<unknown> = p.then(
      () => {
        aheadCall = undefined;
        startAhead();
        if (aheadFinished()) {
          // Nothing more to start: the context and input buffer go now (their memory would add
          // to the run's peak), the output buffer serves to read the frames back.
          laCtx?.free();
          laCtx = undefined;
          laIn = undefined;
        }
      },
      () => {
        aheadCall = undefined;
        aheadFailed = true;
      },
    );
    aheadCall = call;
  };
  const aheadFinished = (): boolean =>
    aheadCall === undefined && (aheadFailed || next >= la!.frames.length);
  const readBack = (s: Spilled): Uint8Array => {
    if (back === undefined || back.length < s.length) {
      back = aheadFinished() && laOut !== undefined ? laOut : new Uint8Array(bound);
    }
    spill!.seekSync(s.at, Deno.SeekMode.Start);
    const view = back.subarray(0, s.length);
    for (let n = 0; n < s.length;) {
      const k = spill!.readSync(view.subarray(n));
      if (k === null || k === 0) {
        throw new Error("Cannot compress the payload: the lookahead spill file is short");
      }
      n += k;
    }
    return reuse ? view : view.slice();
  };
  async function* emit(): AsyncGenerator<Uint8Array> {
    const v = await pending.shift()!;
    if (v instanceof Uint8Array) {
      inflight--;
      yield v;
    } else yield readBack(v);
  }
  // Lookahead frames the output has reached: compressed ahead, or filled and submitted now.
  async function* gap(): AsyncGenerator<Uint8Array> {
    while (la) {
      const p = ahead.get(frame);
      if (p !== undefined) {
        ahead.delete(frame);
        pending.push(p);
        frame++;
      } else if (next < la.frames.length && la.frames[next] === frame) {
        while (inflight >= calls) yield* emit();
        if (la.frames[next] !== frame) continue; // started ahead meanwhile
        next++;
        const segment = free.pop() ?? new Uint8Array(frameBytes);
        la.fill(frame, segment);
        submit(segment, segment);
      } else break;
    }
    startAhead();
  }
  const fresh = (): Uint8Array<ArrayBuffer> => free.pop() ?? new Uint8Array(frameBytes);
  try {
    startAhead();
    yield* gap();
    for await (const { segment, used } of segments(input, frameBytes, fresh)) {
      if (used === 0 && frame > 0) break; // input ended on a frame boundary
      while (inflight >= calls) yield* emit();
      submit(segment.subarray(0, used), segment);
      if (used < frameBytes) break;
      yield* gap();
    }
    if (la) {
      const left = Math.min(...ahead.keys(), la.frames[next] ?? Infinity);
      if (left !== Infinity) throw lookaheadLeft(left);
    }
    while (pending.length > 0) yield* emit();
  } finally {
    done = true;
    // A native call still running owns its context and buffers: let it end before freeing.
    await Promise.allSettled([...pending, ...ahead.values()]);
    await aheadCall;
    for (const c of ctxs) c.free();
    laCtx?.free();
    if (spill) {
      spill.close();
      try {
        Deno.removeSync(la!.spillPath);
      } catch {
        // already gone
      }
    }
  }
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  for (let n = 0; n < bytes.length;) n += file.writeSync(bytes.subarray(n));
}
