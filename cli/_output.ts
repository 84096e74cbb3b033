/**
 * CLI output: human text or JSON, and progress rendering (a bar on a TTY, JSON lines with
 * `--json`, nothing when piped).
 *
 * @module
 */
import type { ProgressEvent, ProgressReporter } from "../progress.ts";

const enc = new TextEncoder();

/** Text gathered per write when a result is long (a restore's plan of 100,000 files). */
const WRITE_CHUNK = 64 << 10;
/** Arrays longer than this are serialized element by element. */
const LONG_ARRAY = 256;

/**
 * `JSON.stringify(value)` in pieces: plain objects field by field and long arrays element by
 * element, so a result with a long list is never one string (nor its bytes) whole. The pieces
 * join to exactly what `JSON.stringify` gives.
 */
export function* jsonPieces(value: unknown): Generator<string> {
  if (Array.isArray(value) && value.length > LONG_ARRAY) {
    yield "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ",";
      yield* jsonPieces(value[i]);
    }
    yield "]";
    return;
  }
  if (
    value !== null && typeof value === "object" && !Array.isArray(value) &&
    Object.getPrototypeOf(value) === Object.prototype &&
    typeof (value as { toJSON?: unknown }).toJSON !== "function"
  ) {
    let first = true;
    yield "{";
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined || typeof v === "function" || typeof v === "symbol") continue;
      yield `${first ? "" : ","}${JSON.stringify(k)}:`;
      yield* jsonPieces(v);
      first = false;
    }
    yield "}";
    return;
  }
  // (in an array, what JSON has no value for is null, as JSON.stringify writes it)
  yield JSON.stringify(value) ?? "null";
}

/** Output helpers of one CLI invocation. */
export class Output {
  /** Whether `--json` was given. */
  readonly json: boolean;
  #lastDraw = 0;
  #barShown = false;
  readonly #tty: boolean;
  readonly #quiet: boolean;
  readonly #closed = new Set<object>();

  /**
   * @param json Whether to print JSON.
   * @param quiet Whether to suppress progress.
   */
  constructor(json: boolean, quiet = false) {
    this.json = json;
    this.#quiet = quiet;
    this.#tty = Deno.stderr.isTerminal() && !Deno.env.get("NO_PROGRESS");
  }

  /** Prints a line of text to stdout (ignored in JSON mode). */
  text(line = ""): void {
    this.#clearBar();
    if (!this.json) this.#write(Deno.stdout, line + "\n");
  }

  /** Prints a JSON value as one line to stdout, written in pieces when it is long. */
  data(value: unknown): void {
    this.#clearBar();
    this.#writeAll(Deno.stdout, jsonPieces(value), "\n");
  }

  /**
   * Prints a result: JSON in JSON mode, else the human lines (written a batch at a time, so
   * a long list need not be held whole).
   */
  result(value: unknown, human: () => Iterable<string>): void {
    if (this.json) this.data(value);
    else {
      this.#clearBar();
      this.#writeAll(
        Deno.stdout,
        (function* () {
          for (const l of human()) yield l + "\n";
        })(),
      );
    }
  }

  /** Writes the pieces, gathered into writes of about {@linkcode WRITE_CHUNK}, then `end`. */
  #writeAll(f: { writeSync(p: Uint8Array): number }, pieces: Iterable<string>, end = ""): void {
    let text = "";
    for (const p of pieces) {
      text += p;
      if (text.length >= WRITE_CHUNK) {
        this.#write(f, text);
        text = "";
      }
    }
    this.#write(f, text + end);
  }

  /** Prints a warning to stderr. */
  warn(message: string): void {
    this.#clearBar();
    if (this.json) this.#write(Deno.stderr, JSON.stringify({ type: "warning", message }) + "\n");
    else this.#write(Deno.stderr, `warning: ${message}\n`);
  }

  /** A progress reporter rendering to stderr. */
  reporter(): ProgressReporter {
    return {
      progress: (e) => this.#progress(e),
      warn: (m) => this.warn(m),
    };
  }

  /** Removes the progress bar, if shown. */
  done(): void {
    this.#clearBar();
  }

  #progress(e: ProgressEvent): void {
    if (this.#quiet) return;
    if (this.json) {
      const now = Date.now();
      if (now - this.#lastDraw < 200 && e.total !== e.done) return;
      this.#lastDraw = now;
      this.#write(Deno.stderr, JSON.stringify({ type: "progress", ...e }) + "\n");
      return;
    }
    if (!this.#tty) return;
    const now = Date.now();
    if (now - this.#lastDraw < 80 && e.total !== e.done) return;
    this.#lastDraw = now;
    const width = 28;
    let bar = "";
    if (e.total && e.total > 0) {
      const frac = Math.min(1, e.done / e.total);
      const fill = Math.round(frac * width);
      bar = `[${"#".repeat(fill)}${".".repeat(width - fill)}] ${
        (frac * 100).toFixed(0).padStart(3)
      }% `;
    }
    const amount = e.total ? `${formatBytes(e.done)}/${formatBytes(e.total)}` : formatBytes(e.done);
    const item = e.item ? ` ${e.item.length > 40 ? "…" + e.item.slice(-39) : e.item}` : "";
    this.#write(Deno.stderr, `\r\x1b[2K${e.phase.padEnd(8)} ${bar}${amount}${item}`);
    this.#barShown = true;
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.#write(Deno.stderr, "\r\x1b[2K");
      this.#barShown = false;
    }
  }

  #write(f: { writeSync(p: Uint8Array): number }, s: string): void {
    if (this.#closed.has(f)) return;
    const bytes = enc.encode(s);
    let off = 0;
    try {
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
    } catch (e) {
      // The reader went away (`memsnap list | head`): stop writing there, like other CLIs.
      if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
      this.#closed.add(f);
    }
  }
}

/** Formats a byte count, e.g. `1.5 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
