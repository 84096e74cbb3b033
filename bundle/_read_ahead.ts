/**
 * The writer's side of the small-file reader thread (private; see `_read_worker.ts`).
 *
 * @module
 */
import type { ReadItem } from "./_read_worker.ts";

export type { ReadItem };

/** Batch buffers: a small file (up to 1 MiB) with its header and padding fits in one. */
export const READ_BATCH_BYTES = (1 << 20) + (64 << 10);
/** Batches read ahead of the writer, at most. */
const BATCHES = 4;

/** A batch of consecutive items laid out as inner tar. */
export interface ReadBatch {
  /** The inner tar bytes of the batch's items. */
  bytes: Uint8Array<ArrayBuffer>;
  /** Index of its first item. */
  first: number;
  /** Where each item's data starts in `bytes`. */
  at: Int32Array;
  /** Whether the item after these could not be read as declared (the writer reads it). */
  failed: boolean;
}

const warm: Worker[] = [];

function spawn(): Worker {
  return new Worker(new URL("./_read_worker.ts", import.meta.url), { type: "module" });
}

/**
 * Starts a reader thread now, for a writer that will run soon (its start-up, ~50-90 ms, then
 * overlaps other work). Returns a function that ends it if no writer took it.
 */
export function warmReader(): () => void {
  const w = spawn();
  warm.push(w);
  return () => {
    const i = warm.indexOf(w);
    if (i >= 0) {
      warm.splice(i, 1);
      w.terminate();
    }
  };
}

/** Reads `items` in order on a reader thread (a warm one when there is one), batch by batch. */
export class ReadAhead {
  readonly #worker: Worker;
  readonly #ready: ReadBatch[] = [];
  #waiter: { resolve: (b: ReadBatch) => void; reject: (e: Error) => void } | undefined;
  #error: Error | undefined;

  constructor(items: ReadItem[], mtime: number) {
    this.#worker = warm.pop() ?? spawn();
    this.#worker.onmessage = (ev: MessageEvent) => {
      const { buf, used, first, at, failed } = ev.data;
      const b: ReadBatch = { bytes: new Uint8Array(buf, 0, used), first, at, failed };
      if (this.#waiter) {
        this.#waiter.resolve(b);
        this.#waiter = undefined;
      } else this.#ready.push(b);
    };
    this.#worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      this.#error = new Error(`Cannot read the artifacts: the reader thread failed: ${ev.message}`);
      this.#waiter?.reject(this.#error);
      this.#waiter = undefined;
    };
    const bufs = Array.from({ length: BATCHES }, () => new ArrayBuffer(READ_BATCH_BYTES));
    this.#worker.postMessage({ op: "start", items, mtime, bufs }, bufs);
  }

  /** The next batch, in order. */
  next(): Promise<ReadBatch> {
    const b = this.#ready.shift();
    if (b) return Promise.resolve(b);
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => this.#waiter = { resolve, reject });
  }

  /** Gives a batch's buffer back, once its bytes have been used. */
  give(b: ReadBatch): void {
    this.#worker.postMessage({ op: "buf", buf: b.bytes.buffer }, [b.bytes.buffer]);
  }

  /** Ends the thread. */
  close(): void {
    this.#worker.terminate();
  }
}
