/**
 * zstd for the payload (private).
 *
 * Compression uses `node:zlib` (native libzstd). Decompression of untrusted bytes cannot use
 * it on the main thread: in Deno 2.9 the `node:zlib` zstd decompressor raises decode errors
 * found after the first write as uncaught exceptions (they kill the process) instead of
 * emitting `error`. Every untrusted stream first goes through a frame scanner of ours that
 * checks every frame header (window cap, no dictionary, no skippable frame) and every block
 * header, and re-cuts the stream into groups of whole blocks (each inflating to at most
 * 4 MiB: memory stays bounded even for a zstd bomb). The groups are then decoded either by
 * `fzstd` (pure JS, errors thrown synchronously; small payloads) or by `node:zlib` in a worker
 * whose global error handler contains those uncaught errors (large payloads, ~3x faster).
 * When the system libzstd is available through FFI (`_libzstd.ts`), the scanner instead hands
 * whole frames (bounded in size) to `ZSTD_decompressDCtx` on native threads, which is what
 * restore and verify use (see {@linkcode pickDecoder}).
 *
 * @module
 */
import { corrupt, unsafe } from "./_errors.ts";
import { concatBytes, release } from "./_io.ts";
import { type LibZstd, libzstd, ZSTD_d, type ZstdDCtx } from "./_libzstd.ts";

/**
 * zstd's `ZSTD_cParameter` values (zstd.h, stable API; equal to `node:zlib`'s
 * `constants.ZSTD_c_*`, checked by a test). Inlined so that reading a bundle loads neither
 * `node:zlib` nor `node:stream`: only compression and the fallback decoders need them, and
 * they load them when used.
 */
export const ZSTD_C = {
  compressionLevel: 100,
  windowLog: 101,
  contentSizeFlag: 200,
  checksumFlag: 201,
} as const;

/** The pinned compression parameters of format v1 (besides the level). */
export function zstdParams(level: number): Record<number, number> {
  return {
    [ZSTD_C.compressionLevel]: level,
    [ZSTD_C.checksumFlag]: 1,
    [ZSTD_C.contentSizeFlag]: 0,
    [ZSTD_C.windowLog]: 0, // 0 = level default (21 at level 3)
  };
}

/** Compresses a byte stream (one zstd frame). */
export async function* zstdCompress(
  input: AsyncIterable<Uint8Array>,
  level: number,
): AsyncGenerator<Uint8Array> {
  const [{ createZstdCompress }, { pipeline, Readable }] = await Promise.all([
    import("node:zlib"),
    import("node:stream"),
  ]);
  const z = createZstdCompress({ params: zstdParams(level), chunkSize: 1 << 17 });
  pipeline(Readable.from(input, { objectMode: false }), z, () => {});
  yield* z as AsyncIterable<Uint8Array>;
}

const BLOCK_MAX = 128 * 1024;
const PUSH_BLOCKS = 32;
const PUSH_BYTES = 1 << 20;
const PAYLOAD = "payload";

/** A queue of input bytes with small peeks across chunk boundaries. */
class Queue {
  #chunks: Uint8Array[] = [];
  length = 0;
  push(c: Uint8Array): void {
    if (c.length === 0) return;
    this.#chunks.push(c);
    this.length += c.length;
  }
  /** The byte at i (i < length). */
  at(i: number): number {
    for (const c of this.#chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    throw new RangeError("Queue.at out of range");
  }
  /**
   * Copies what is left into `into` (which must be large enough) and keeps that instead, so
   * the queue holds no view of an input chunk. Returns whether anything was copied.
   */
  own(into: Uint8Array): boolean {
    if (this.length === 0) return false;
    let off = 0;
    for (const c of this.#chunks) {
      into.set(c, off);
      off += c.length;
    }
    this.#chunks = [into.subarray(0, off)];
    return true;
  }
  /** Removes n bytes from the front, returning them as segments. */
  take(n: number, into: Uint8Array[]): void {
    this.length -= n;
    while (n > 0) {
      const c = this.#chunks[0]!;
      if (c.length <= n) {
        into.push(c);
        this.#chunks.shift();
        n -= c.length;
      } else {
        into.push(c.subarray(0, n));
        this.#chunks[0] = c.subarray(n);
        n = 0;
      }
    }
  }
}

const enum State {
  Magic,
  Header,
  BlockHeader,
  BlockBody,
  Checksum,
}

/**
 * Scans an untrusted zstd stream of one or more frames without decoding it: checks each
 * frame header (window within `2 ** maxWindowLog`, no dictionary, not skippable) and each
 * block header, and yields the stream re-cut into groups of whole blocks (at most 32 blocks
 * or about 1 MiB each, so each group inflates to at most 4 MiB).
 *
 * @throws {UnsafeBundleError} rule `zstd_window` if a frame needs a larger window.
 * @throws {CorruptBundleError} rule `zstd` on malformed or truncated zstd framing.
 */
export async function* scanFrames(
  input: AsyncIterable<Uint8Array>,
  maxWindowLog: number,
): AsyncGenerator<Uint8Array[]> {
  for await (const g of scanGroups(input, maxWindowLog, PUSH_BLOCKS, PUSH_BYTES, true)) {
    yield g.parts;
  }
}

/** A group of whole blocks from {@linkcode scanGroups}. */
interface BlockGroup {
  /** The compressed bytes, in order. */
  parts: Uint8Array[];
  /** Their total length. */
  bytes: number;
  /** Whether the group starts with a frame header. */
  frameStart: boolean;
  /** Whether the group ends its frame (last block and checksum). */
  frameEnd: boolean;
  /** The most the group's blocks may inflate to (blocks times the frame's block size cap). */
  bound: number;
}

/**
 * The scanner behind {@linkcode scanFrames}: yields groups of at most `maxBlocks` blocks (or
 * about `maxBytes` bytes) that never cross a frame boundary, with what is known of them. With
 * `flushAtChunk`, whatever whole blocks an input chunk completes are yielded at once.
 *
 * It keeps no view of an input chunk once it asks for the next one (the reader's chunks are
 * valid until its next read): each group's bytes are copied into one buffer from `alloc`
 * (asked for at least the given length; the group's `parts` is then that one view, owned by
 * the consumer), and bytes left over at the end of a chunk (less than a block) are copied
 * into a scratch buffer.
 */
async function* scanGroups(
  input: AsyncIterable<Uint8Array>,
  maxWindowLog: number,
  maxBlocks: number,
  maxBytes: number,
  flushAtChunk: boolean,
  alloc: (min: number) => Uint8Array = (min) => new Uint8Array(Math.max(min, 1 << 17)),
): AsyncGenerator<BlockGroup> {
  const q = new Queue();
  /** Two scratch buffers for leftovers, used in turn (the queue holds at most one). */
  const scratch = [new Uint8Array(0), new Uint8Array(0)];
  let turn = 0;
  const views: Uint8Array[] = [];
  let group: Uint8Array | undefined;
  let state = State.Magic;
  let need = 4;
  let headerLen = 0;
  let windowSize = 0;
  let hasChecksum = false;
  let lastBlock = false;
  let frames = 0;
  let pendingBytes = 0;
  let pendingBlocks = 0;
  const bad = (state: string): never => {
    throw corrupt("zstd", PAYLOAD, `is not valid zstd: ${state}`);
  };
  let frameStart = false;
  const take = (frameEnd: boolean): BlockGroup => {
    const out: BlockGroup = {
      parts: pendingBytes > 0 ? [group!.subarray(0, pendingBytes)] : [],
      bytes: pendingBytes,
      frameStart,
      frameEnd,
      bound: pendingBlocks * Math.min(BLOCK_MAX, Math.max(windowSize, 1)),
    };
    group = undefined;
    pendingBytes = 0;
    pendingBlocks = 0;
    frameStart = false;
    return out;
  };
  const move = (n: number): void => {
    const want = pendingBytes + n;
    if (group === undefined || group.length < want) {
      const grown = alloc(group === undefined ? want : Math.max(want, group.length * 2));
      if (group !== undefined) grown.set(group.subarray(0, pendingBytes));
      group = grown;
    }
    q.take(n, views);
    let at = pendingBytes;
    for (const v of views) {
      group.set(v, at);
      at += v.length;
    }
    views.length = 0;
    pendingBytes = want;
  };

  for await (const chunk of input) {
    q.push(chunk);
    while (q.length >= need) {
      switch (state) {
        case State.Magic: {
          const m = (q.at(0) | (q.at(1) << 8) | (q.at(2) << 16) | (q.at(3) << 24)) >>> 0;
          if (m !== 0xfd2fb528) {
            bad(
              (m & 0xfffffff0) === 0x184d2a50
                ? "skippable frames are not allowed"
                : "bad frame magic",
            );
          }
          state = State.Header;
          need = 5;
          break;
        }
        case State.Header: {
          const fhd = q.at(4);
          const fcsFlag = fhd >> 6;
          const single = (fhd >> 5) & 1;
          if (fhd & 0x08) bad("reserved frame header bit set");
          hasChecksum = ((fhd >> 2) & 1) === 1;
          const didSize = [0, 1, 2, 4][fhd & 3]!;
          const fcsSize = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
          headerLen = 4 + 1 + (single ? 0 : 1) + didSize + fcsSize;
          if (q.length < headerLen) {
            need = headerLen;
            break;
          }
          let pos = 5;
          if (!single) {
            const wd = q.at(pos++);
            const base = 2 ** (10 + (wd >> 3));
            windowSize = base + (base / 8) * (wd & 7);
          }
          let did = 0;
          for (let i = 0; i < didSize; i++) did += q.at(pos++) * 2 ** (8 * i);
          if (did !== 0) bad("frames with a dictionary are not allowed");
          if (single) {
            let fcs = 0;
            for (let i = 0; i < fcsSize; i++) fcs += q.at(pos++) * 2 ** (8 * i);
            if (fcsSize === 2) fcs += 256;
            windowSize = fcs;
          }
          if (windowSize > 2 ** maxWindowLog) {
            throw unsafe(
              "zstd_window",
              PAYLOAD,
              `needs a zstd window of ${windowSize} bytes, over the cap of 2^${maxWindowLog}`,
            );
          }
          move(headerLen);
          frameStart = true;
          frames++;
          state = State.BlockHeader;
          need = 3;
          break;
        }
        case State.BlockHeader: {
          const v = q.at(0) | (q.at(1) << 8) | (q.at(2) << 16);
          const type = (v >> 1) & 3;
          const size = v >>> 3;
          if (type === 3) bad("reserved block type");
          if (size > Math.min(BLOCK_MAX, Math.max(windowSize, 1))) bad("block larger than allowed");
          move(3);
          pendingBlocks++;
          lastBlock = (v & 1) === 1;
          state = State.BlockBody;
          need = type === 1 ? 1 : size;
          break;
        }
        case State.BlockBody: {
          move(need);
          if (lastBlock) {
            state = hasChecksum ? State.Checksum : State.Magic;
          } else {
            state = State.BlockHeader;
          }
          need = state === State.BlockHeader ? 3 : 4;
          if (state === State.Magic) {
            yield take(true);
          } else if (pendingBlocks >= maxBlocks || pendingBytes >= maxBytes) {
            yield take(false);
          }
          break;
        }
        case State.Checksum: {
          move(4);
          yield take(true);
          state = State.Magic;
          need = 4;
          break;
        }
      }
    }
    // Less than a block (or a frame header) is left: copy it before the next chunk is read.
    if (q.length > 0) {
      turn ^= 1;
      if (scratch[turn]!.length < q.length) scratch[turn] = new Uint8Array(Math.max(q.length, 256));
      q.own(scratch[turn]!);
    }
    if (flushAtChunk && pendingBlocks > 0) yield take(false);
  }
  if (state !== State.Magic || q.length > 0 || frames === 0) {
    throw corrupt("zstd", PAYLOAD, "is truncated zstd data");
  }
  if (pendingBytes > 0) yield take(true);
}

/**
 * Decompresses an untrusted zstd stream (see {@linkcode scanFrames} for the checks) with the
 * pure-JS decoder.
 */
export async function* zstdDecompress(
  input: AsyncIterable<Uint8Array>,
  maxWindowLog: number,
): AsyncGenerator<Uint8Array> {
  const { Decompress } = await import("fzstd");
  const out: Uint8Array[] = [];
  const d = new Decompress((blk: Uint8Array) => {
    if (blk.length > 0) out.push(blk);
  });
  for await (const group of scanFrames(input, maxWindowLog)) {
    try {
      for (const seg of group) d.push(seg, false);
    } catch (e) {
      throw corrupt("zstd", PAYLOAD, `is not valid zstd: ${(e as Error).message}`, e);
    }
    if (out.length > 0) yield* out.splice(0);
  }
}

const MAX_INFLIGHT = 4;

/**
 * Which decoder reads a payload. With the system libzstd (see `_libzstd.ts`) and `useLib`,
 * {@linkcode zstdDecompressLib}. Otherwise, payloads from `nativeThreshold` bytes (compressed)
 * are decoded by {@linkcode zstdDecompressNative}: starting its worker costs about 0.3 s, and
 * it decodes 1.5-3x faster than fzstd (measured 41-83 MB/s against 28-53 MB/s on a loaded
 * 2-core machine), so it pays off from ~16 MiB; smaller ones by {@linkcode zstdDecompress}.
 * Mutable for tests only.
 */
export const decoderConfig: { nativeThreshold: number; useLib: boolean } = {
  nativeThreshold: 16 * 2 ** 20,
  useLib: true,
};

/** The payload decoder {@linkcode decoderConfig} picks for a compressed size. */
export function pickDecoder(
  compressedSize: number,
  options: DecodeOptions = {},
): (input: AsyncIterable<Uint8Array>, maxWindowLog: number) => AsyncGenerator<Uint8Array> {
  const lib = decoderConfig.useLib ? libzstd() : undefined;
  const large = compressedSize >= decoderConfig.nativeThreshold
    ? zstdDecompressNative
    : zstdDecompress;
  if (lib !== undefined) return (input, w) => zstdDecompressLib(input, w, lib, large, options);
  return large;
}

/** Options of the payload decoders. */
export interface DecodeOptions {
  /**
   * Yield views of reused output buffers (libzstd engine): a frame's buffer is written again
   * once the caller has asked for the next chunk. Only for a caller that is done with each
   * chunk (keeps no view of it) when it asks for the next one, like `ByteSource`. Saves a
   * fresh 4 MiB buffer per frame, which V8 frees only at its next full collection (external
   * memory). @default {false}
   */
  reuseOutput?: boolean;
}

/** A frame is decoded whole by libzstd when it is at most this many compressed bytes... */
const LIB_GROUP_BYTES = 16 << 20;
/** ...and inflates to at most this many bytes. */
const LIB_FRAME_MAX = 16 << 20;
/** The output buffer tried first: the writer's frame size (docs/FORMAT.md section 4). */
const LIB_FIRST_TRY = 4 << 20;
/** The input buffer of a frame: a 4 MiB frame that did not compress fits (with room). */
const LIB_INPUT_BYTES = LIB_FIRST_TRY + (64 << 10);
/** Frames read ahead and decoded at once on libzstd's native threads. */
const LIB_INFLIGHT = 3;
/** `ZSTD_error_dstSize_tooSmall`. */
const DST_TOO_SMALL = 70n;

/**
 * Decompresses like {@linkcode zstdDecompress} (same checks, by the same scanner) with the
 * system libzstd: each frame of up to 16 MiB, compressed and inflated (the writer's frames
 * inflate to 4 MiB), is decoded whole by `ZSTD_decompressDCtx` on a native thread, up to three
 * ahead of the caller while it works, into a 4 MiB buffer, doubled while too small up to the
 * frame's bound (its blocks times their size cap) and 16 MiB, so memory stays bounded; the
 * window cap is also set on the context. A larger frame (another writer's single frame, a
 * zstd bomb) is decoded in pieces of at most 128 KiB by `decodeLarge` ({@linkcode zstdDecompress},
 * or {@linkcode zstdDecompressNative} which {@linkcode pickDecoder} gives large payloads).
 */
export async function* zstdDecompressLib(
  input: AsyncIterable<Uint8Array>,
  maxWindowLog: number,
  lib: LibZstd,
  decodeLarge: (
    input: AsyncIterable<Uint8Array>,
    maxWindowLog: number,
  ) => AsyncGenerator<Uint8Array> = zstdDecompress,
  options: DecodeOptions = {},
): AsyncGenerator<Uint8Array> {
  const reuseOutput = options.reuseOutput ?? false;
  /** Input buffers of decoded frames, reused (a fresh zeroed buffer per frame costs GC). */
  const spare: Uint8Array[] = [];
  // The scanner copies each frame's bytes into one of these buffers as it scans. They hold a
  // frame of incompressible data too (4 MiB stored in raw blocks, a few hundred bytes more):
  // buffers of exactly 4 MiB were too small for those, so each such frame got a new one.
  const alloc = (min: number): Uint8Array => {
    const at = spare.findIndex((b) => b.length >= min);
    return at === -1 ? new Uint8Array(Math.max(min, LIB_INPUT_BYTES)) : spare.splice(at, 1)[0]!;
  };
  const groups = scanGroups(input, maxWindowLog, Infinity, LIB_GROUP_BYTES, false, alloc);
  const idle: ZstdDCtx[] = [];
  const all: ZstdDCtx[] = [];
  /** Each frame's content, or its compressed bytes when it inflates to more than the cap. */
  const pending: Promise<Uint8Array | Uint8Array[]>[] = [];
  /**
   * With `reuseOutput`: output buffers of LIB_FIRST_TRY bytes whose frame the caller is done
   * with. At most LIB_INFLIGHT + 1 exist (the frames decoding ahead and the one yielded).
   */
  const outFree: Uint8Array<ArrayBuffer>[] = [];
  const decodeFrame = async (g: BlockGroup): Promise<Uint8Array | Uint8Array[]> => {
    // A whole frame: one view of a buffer the scanner filled (see scanGroups).
    const src = g.parts[0] ?? new Uint8Array(0);
    const buf = new Uint8Array(src.buffer, 0, src.buffer.byteLength);
    let reuse = true;
    let ctx = idle.pop();
    if (ctx === undefined) {
      ctx = lib.createDCtx({ [ZSTD_d.windowLogMax]: maxWindowLog });
      all.push(ctx);
    }
    try {
      const cap = Math.max(1, Math.min(g.bound, LIB_FRAME_MAX));
      let dst: Uint8Array = reuseOutput
        ? (outFree.pop() ?? new Uint8Array(LIB_FIRST_TRY)).subarray(0, Math.min(cap, LIB_FIRST_TRY))
        : new Uint8Array(Math.min(cap, LIB_FIRST_TRY));
      for (;;) {
        try {
          return dst.subarray(0, await ctx.decompress(src, dst));
        } catch (e) {
          const code = (e as { code?: bigint }).code;
          const tooSmall = code !== undefined && -BigInt.asIntN(64, code) === DST_TOO_SMALL;
          if (!tooSmall) {
            throw corrupt("zstd", PAYLOAD, `is not valid zstd: ${(e as Error).message}`, e);
          }
          if (dst.length >= cap) {
            if (cap < g.bound) {
              reuse = false;
              return [src];
            }
            throw corrupt("zstd", PAYLOAD, "is not valid zstd: a frame inflates past its blocks");
          }
          dst = new Uint8Array(Math.min(cap, dst.length * 2));
        }
      }
    } finally {
      idle.push(ctx);
      if (reuse) {
        if (spare.length < LIB_INFLIGHT) spare.push(buf);
        else {
          // Keep the larger buffers (a larger frame is likely to come again).
          const small = spare.reduce((m, b, k) => (b.length < spare[m]!.length ? k : m), 0);
          if (spare[small]!.length < buf.length) spare[small] = buf;
        }
      }
    }
  };
  // Reading and scanning run ahead of the caller (up to LIB_INFLIGHT frames), so the input's
  // reads are in flight while the caller works.
  let inputDone = false;
  let large: BlockGroup | undefined;
  let filling: Promise<void> | undefined;
  let failed: { error: unknown } | undefined;
  const fill = async (): Promise<void> => {
    while (!inputDone && large === undefined && pending.length < LIB_INFLIGHT) {
      let r: IteratorResult<BlockGroup>;
      try {
        r = await groups.next();
      } catch (error) {
        failed = { error }; // thrown once the frames before it are out
        inputDone = true;
        return;
      }
      if (r.done) {
        inputDone = true;
      } else if (r.value.frameStart && r.value.frameEnd) {
        const p = decodeFrame(r.value);
        p.catch(() => {}); // awaited in order below
        pending.push(p);
      } else {
        large = r.value;
      }
    }
  };
  const kick = (): void => {
    if (filling !== undefined) return;
    const f = fill().finally(() => {
      if (filling === f) filling = undefined;
    });
    filling = f;
  };
  try {
    for (;;) {
      kick();
      if (pending.length === 0) {
        if (filling !== undefined) await filling;
        if (pending.length > 0) continue;
        if (failed !== undefined) throw failed.error;
        if (large !== undefined) {
          // A frame over the compressed cap (everything before it is out): in pieces.
          const g = large;
          yield* decodeLarge(restOfFrame(g, groups), maxWindowLog);
          large = undefined;
          continue;
        }
        if (inputDone) break;
        continue;
      }
      const out = await pending.shift()!;
      kick();
      if (out instanceof Uint8Array) {
        yield out;
        // The caller asked for more: by the contract of `reuseOutput`, it is done with `out`.
        if (reuseOutput && out.buffer.byteLength === LIB_FIRST_TRY) {
          outFree.push(new Uint8Array(out.buffer as ArrayBuffer));
        }
      } else yield* decodeLarge(fromParts(out), maxWindowLog);
    }
  } finally {
    await filling;
    await Promise.allSettled(pending);
    for (const c of all) c.free();
    await groups.return(undefined);
    // Nothing views these any more: give their memory back now (V8 frees an unreachable
    // buffer's memory only at its next full collection, ~30 MiB here).
    for (const b of spare) release(b.buffer);
    for (const b of outFree) release(b.buffer);
    spare.length = 0;
    outFree.length = 0;
  }
}

async function* fromParts(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* parts;
}

/** The compressed bytes of one frame: group `first`, then the others up to the frame's end. */
async function* restOfFrame(
  first: BlockGroup,
  groups: AsyncGenerator<BlockGroup>,
): AsyncGenerator<Uint8Array> {
  for (let g = first;;) {
    yield* g.parts;
    if (g.frameEnd) return;
    const r = await groups.next();
    if (r.done) return; // the scanner has thrown on truncation before this
    g = r.value;
  }
}

/**
 * Decompresses like {@linkcode zstdDecompress} (same checks, by the same scanner) with native
 * zstd running in a worker: about 4 times faster, and the decoding overlaps the caller's
 * hashing. The worker is terminated when the generator ends, fails or is closed.
 */
export async function* zstdDecompressNative(
  input: AsyncIterable<Uint8Array>,
  maxWindowLog: number,
): AsyncGenerator<Uint8Array> {
  const worker = new Worker(new URL("./_zstd_worker.ts", import.meta.url), { type: "module" });
  const outputs: Uint8Array[] = [];
  let inflight = 0;
  let done = false;
  let error: Error | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  worker.onmessage = (ev: MessageEvent) => {
    const m = ev.data;
    if (m.out) outputs.push(m.out);
    else if (m.consumed) inflight--;
    else if (m.done) done = true;
    else if (m.error) error ??= corrupt("zstd", PAYLOAD, `is not valid zstd: ${m.error}`);
    notify();
  };
  worker.onerror = (ev: ErrorEvent) => {
    ev.preventDefault();
    error ??= corrupt("zstd", PAYLOAD, `cannot be decoded: ${ev.message}`);
    notify();
  };
  worker.postMessage({ windowLogMax: maxWindowLog });
  const groups = scanFrames(input, maxWindowLog);
  let inputDone = false;
  try {
    for (;;) {
      if (error) throw error;
      if (outputs.length > 0) {
        const out = outputs.shift()!;
        worker.postMessage("ack");
        yield out;
        continue;
      }
      if (done) break;
      if (!inputDone && inflight < MAX_INFLIGHT) {
        const r = await groups.next();
        if (r.done) {
          inputDone = true;
          worker.postMessage("end");
        } else {
          const bytes = concatBytes(r.value);
          inflight++;
          worker.postMessage(bytes, [bytes.buffer]);
        }
        continue;
      }
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    worker.terminate();
    await groups.return(undefined);
  }
}
