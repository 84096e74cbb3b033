/**
 * Synchronous, chunked zlib for the git plugin: inflate and deflate objects larger than memory
 * should hold, without a promise and a callback per chunk.
 *
 * node:zlib has one-shot sync calls (`deflateSync`, whole input in memory) and async streams
 * (one callback per chunk). A stream's engine can also run synchronously, chunk by chunk, through
 * `_processChunk(chunk, flush)` without a callback; node:zlib closes the engine at the end of
 * such a call, so the engine's `close` is held off while it runs. This uses internals of
 * node:zlib (Node's `lib/zlib.js`, which Deno ports): {@linkcode syncZlibAvailable} says whether
 * they are there, and callers keep the stream path when they are not. The bytes are those of
 * the stream path (`_git_zlib_test.ts` checks it).
 *
 * @module
 */
import { constants, createDeflate, createInflate, deflateSync } from "node:zlib";

/** zlib level 1, the level of every object the git plugin compresses. */
const LEVEL = 1;

/** Deflate input is cut into blocks of this size, as {@linkcode deflateStream} does. */
export const DEFLATE_BLOCK = 1 << 16;

interface Engine {
  _processChunk(chunk: Uint8Array, flush: number): Uint8Array;
  _handle: { close(): void; reset(): void } | null;
  _maxOutputLength: number;
  close(): void;
  on(event: string, f: (...a: unknown[]) => void): unknown;
  removeAllListeners(event: string): unknown;
  bytesWritten: number;
}

const noop = (): void => {};

/** A zlib engine driven synchronously; see the module doc. */
export class SyncZlib {
  #z: Engine;
  #closed = false;
  #max: number;
  #make: () => Engine;

  /**
   * @param mode `"deflate"` (level 1) or `"inflate"`.
   * @param chunkSize Output chunk size of the engine.
   */
  constructor(mode: "deflate" | "inflate", chunkSize = 1 << 16) {
    this.#make = () => {
      const z =
        (mode === "deflate"
          ? createDeflate({ level: LEVEL, chunkSize })
          : createInflate({ chunkSize })) as unknown as Engine;
      z.on("error", noop);
      return z;
    };
    this.#z = this.#make();
    this.#max = this.#z._maxOutputLength;
  }

  /** Input the last call consumed (for inflate: up to the end of the zlib stream at most). */
  get bytesWritten(): number {
    return this.#z.bytesWritten;
  }

  #run(chunk: Uint8Array, flush: number): Uint8Array {
    if (this.#closed) throw new Error("zlib engine is closed");
    const z = this.#z;
    const handle = z._handle!;
    const close = z.close;
    const closeHandle = handle.close;
    z.close = noop;
    handle.close = noop;
    try {
      return z._processChunk(chunk, flush);
    } catch (e) {
      z._handle = handle;
      handle.close = closeHandle;
      z.close = close;
      this.close();
      throw e;
    } finally {
      z._handle = handle;
      handle.close = closeHandle;
      z.close = close;
      z.removeAllListeners("error");
      z.on("error", noop);
    }
  }

  /**
   * Feeds `chunk`; `finish` ends the stream and closes the engine. Returns the output
   * produced, copied (the engine reuses its buffer). Throws zlib's error (the engine is then
   * closed).
   */
  push(chunk: Uint8Array, finish = false): Uint8Array {
    const out = new Uint8Array(
      this.#run(chunk, finish ? constants.Z_FINISH : constants.Z_NO_FLUSH),
    );
    if (finish) this.close();
    return out;
  }

  /**
   * Like {@linkcode push}, without the copy: the output as the engine hands it out, a view of
   * its output buffer that a later call may overwrite (use it, or copy it, before the next
   * call). `finish` ends the stream and closes the engine.
   */
  pushView(chunk: Uint8Array, finish = false): Uint8Array {
    const out = this.#run(chunk, finish ? constants.Z_FINISH : constants.Z_NO_FLUSH);
    if (finish) this.close();
    return out;
  }

  /**
   * One whole stream: compresses or decompresses `input` at once, then resets the engine for
   * the next one (reusing its memory: the bytes are those of a fresh engine). For inflate,
   * input after the end of the zlib stream is left (`bytesWritten` tells how much was used),
   * and `maxOutput` bounds the output (zlib's "buffer too large" error past it). The result is
   * a view the next call may overwrite: use it or copy it at once. After an error (thrown) the
   * engine is replaced, so the next call works.
   */
  once(input: Uint8Array, maxOutput?: number): Uint8Array {
    this.#z._maxOutputLength = maxOutput ?? this.#max;
    let out: Uint8Array;
    try {
      out = this.#run(input, constants.Z_FINISH);
    } catch (e) {
      this.#z = this.#make();
      this.#closed = false;
      throw e;
    }
    this.#z._handle!.reset();
    return out;
  }

  /**
   * Starts a new stream on the engine, dropping what is left of the current one: after
   * {@linkcode pushView} of a stream's first bytes only (to read its start).
   */
  reset(): void {
    if (this.#closed) throw new Error("zlib engine is closed");
    this.#z._handle!.reset();
  }

  /** Releases the engine. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#z.close();
    } catch {
      // closed already
    }
  }
}

let available: boolean | undefined;

/**
 * Whether {@linkcode SyncZlib} works on this runtime and gives the stream path's bytes (checked
 * once, on a small input).
 */
export function syncZlibAvailable(): boolean {
  if (available !== undefined) return available;
  try {
    const input = new TextEncoder().encode("memsnap ".repeat(2000));
    const d = new SyncZlib("deflate");
    const parts = [d.push(input), d.push(new Uint8Array(0), true)];
    const whole = new Uint8Array(parts[0]!.length + parts[1]!.length);
    whole.set(parts[0]!);
    whole.set(parts[1]!, parts[0]!.length);
    const i = new SyncZlib("inflate");
    const back = [...[whole, whole].map((p) => new Uint8Array(i.once(p, input.length)))];
    const bytesWritten = i.bytesWritten;
    i.close();
    const d2 = new SyncZlib("deflate");
    const again = d2.once(input);
    d2.close();
    const ref = deflateSync(input, { level: LEVEL });
    available = bytesWritten === whole.length &&
      again.length === ref.length && again.every((b, k) => b === ref[k]) &&
      back.every((b) => b.length === input.length && b.every((x, k) => x === input[k]));
  } catch {
    available = false;
  }
  return available;
}

/**
 * zlib level 1 over chunks, synchronously: the input is re-cut into {@linkcode DEFLATE_BLOCK}
 * blocks, as {@linkcode deflateStream} does, so both give the same bytes.
 *
 * With `views`, each output chunk is a view of the engine's buffer that the next one may reuse
 * (use it before pulling the next): nothing is allocated per block, where a copy per block was
 * (for incompressible data, as many bytes of short-lived buffers as the input). The engine's
 * output buffer is then 1 MiB, so that a block's output fits it.
 */
export function* deflateBlocksSync(
  body: Iterable<Uint8Array>,
  views = false,
): Generator<Uint8Array> {
  const z = views ? new SyncZlib("deflate", 1 << 20) : new SyncZlib("deflate");
  const push = (c: Uint8Array, finish = false): Uint8Array =>
    views ? z.pushView(c, finish) : z.push(c, finish);
  try {
    const block = new Uint8Array(DEFLATE_BLOCK);
    let fill = 0;
    for (const c of body) {
      let at = 0;
      while (at < c.length) {
        const k = Math.min(DEFLATE_BLOCK - fill, c.length - at);
        block.set(c.subarray(at, at + k), fill);
        fill += k;
        at += k;
        if (fill === DEFLATE_BLOCK) {
          const out = push(block);
          fill = 0;
          if (out.length > 0) yield out;
        }
      }
    }
    if (fill > 0) {
      const out = push(block.subarray(0, fill));
      if (out.length > 0) yield out;
    }
    yield push(new Uint8Array(0), true);
  } finally {
    z.close();
  }
}
