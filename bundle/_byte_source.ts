/**
 * A pull reader of exact byte counts over an async iterable of chunks (private).
 *
 * @module
 */
import { corrupt } from "./_errors.ts";

/** Reads exact byte counts from chunks; counts bytes consumed. */
export class ByteSource {
  #it: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #off = 0;
  #done = false;
  /** Bytes consumed so far. */
  consumed = 0;
  /** Called after each pull with the total consumed; may throw to stop. */
  onConsume: ((consumed: number) => void) | undefined;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#it = source[Symbol.asyncIterator]();
  }

  async #fill(): Promise<boolean> {
    while (this.#off >= this.#buf.length) {
      if (this.#done) return false;
      const r = await this.#it.next();
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
    await this.#it.return?.().catch(() => {});
  }
}
