/**
 * A pull reader of exact byte counts over an async iterable of chunks (private).
 *
 * @module
 */
import { corrupt } from "./_errors.ts";

/** Bytes per read from a byte stream (see {@linkcode ByteSource}). */
export const BYOB_READ_SIZE = 512 << 10;

/**
 * Reads exact byte counts from chunks; counts bytes consumed.
 *
 * From a byte stream (`ReadableStream` of type `"bytes"`, such as `Deno.FsFile.readable`) it
 * reads into one buffer of its own, {@linkcode BYOB_READ_SIZE} bytes at a time, reused for
 * every read: no allocation per chunk. Any other source is iterated. Either way, the views it
 * hands out are valid until its next read (with a byte stream, the next read detaches them).
 */
export class ByteSource {
  #it: AsyncIterator<Uint8Array> | undefined;
  #byob: ReadableStreamBYOBReader | undefined;
  #spare: ArrayBuffer | undefined;
  #buf: Uint8Array = new Uint8Array(0);
  #off = 0;
  #done = false;
  /** Bytes consumed so far. */
  consumed = 0;
  /** Called after each pull with the total consumed; may throw to stop. */
  onConsume: ((consumed: number) => void) | undefined;

  constructor(source: AsyncIterable<Uint8Array>) {
    if (source instanceof ReadableStream) {
      try {
        this.#byob = source.getReader({ mode: "byob" });
        this.#spare = new ArrayBuffer(BYOB_READ_SIZE);
        return;
      } catch {
        // not a byte stream: iterate it
      }
    }
    this.#it = source[Symbol.asyncIterator]();
  }

  async #next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#byob === undefined) return await this.#it!.next();
    // The previous chunk is done with (views are valid until the next read): read into it.
    const buf = this.#spare ?? this.#buf.buffer as ArrayBuffer;
    this.#spare = undefined;
    const r = await this.#byob.read(new Uint8Array(buf));
    if (r.value !== undefined && r.value.length === 0) {
      this.#spare = r.value.buffer as ArrayBuffer; // keep the buffer for a read after a pause
    }
    return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
  }

  async #fill(): Promise<boolean> {
    while (this.#off >= this.#buf.length) {
      if (this.#done) return false;
      const r = await this.#next();
      if (r.done) {
        this.#done = true;
        return false;
      }
      this.#buf = r.value;
      this.#off = 0;
    }
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.subarray(this.#off, this.#off + n);
    this.#off += out.length;
    this.consumed += out.length;
    this.onConsume?.(this.consumed);
    return out;
  }

  /**
   * The next `n` bytes as a view, when the current chunk holds all of them (valid until the
   * next read, as every view handed out); `undefined`, and nothing taken, when it does not.
   * No promise: the tar reader takes most small entries whole this way.
   */
  takeBuffered(n: number): Uint8Array | undefined {
    if (this.#buf.length - this.#off < n) return undefined;
    return this.#take(n);
  }

  /**
   * Reads exactly n bytes. Returns `null` at a clean end (no byte left); throws a truncation
   * error naming `entry` if the stream ends part way.
   */
  async readExact(n: number, entry?: string): Promise<Uint8Array | null> {
    if (!(await this.#fill())) {
      if (n === 0) return new Uint8Array(0);
      return null;
    }
    if (this.#buf.length - this.#off >= n) return this.#take(n).slice();
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (!(await this.#fill())) throw corrupt("truncated", entry, "is truncated");
      const part = this.#take(n - got);
      out.set(part, got);
      got += part.length;
    }
    return out;
  }

  /** Yields exactly n bytes in chunks (views, valid until the next read). */
  async *stream(n: number, entry?: string): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (!(await this.#fill())) throw corrupt("truncated", entry, "is truncated");
      const part = this.#take(Math.min(left, 1 << 20));
      left -= part.length;
      yield part;
    }
  }

  /** Skips exactly n bytes. */
  async skip(n: number, entry?: string): Promise<void> {
    for await (const _ of this.stream(n, entry)) { /* discard */ }
  }

  /** Consumes the rest; throws unless it is all zero bytes. */
  async expectZeros(rule: string, state: string): Promise<void> {
    while (await this.#fill()) {
      const part = this.#take(this.#buf.length - this.#off);
      for (let i = 0; i < part.length; i++) {
        if (part[i] !== 0) throw corrupt(rule, undefined, state);
      }
    }
  }

  /** Stops reading, releasing the underlying source. */
  async cancel(): Promise<void> {
    this.#done = true;
    if (this.#byob !== undefined) await this.#byob.cancel().catch(() => {});
    else await this.#it!.return?.().catch(() => {});
  }
}
