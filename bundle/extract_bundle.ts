/**
 * Bundle extraction.
 *
 * @module
 */
import { join } from "node:path";
import { RefusedError, VerificationError } from "../errors.ts";
import type { ProgressReporter } from "../progress.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import type { ManifestVerifier, PayloadDecipher } from "./crypto_types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { oneChunk, release, resolveLimits } from "./_io.ts";
import { readPass } from "./_reader.ts";
import { rowsOf } from "./_artifact_table.ts";
import { digestInto } from "./_digest.ts";
import { unsafe } from "./_errors.ts";
import {
  APPEND,
  CLOSE,
  DIGEST_SIZE,
  FILE,
  OP_SIZE,
  OPEN,
  writerConfig,
  writerStats,
} from "./_extract_worker.ts";

/** Options of {@linkcode extractBundle}. */
export interface ExtractBundleOptions {
  /** Decrypts an encrypted payload (required for an encrypted bundle). */
  decipher?: PayloadDecipher;
  /** Reader caps; unset fields keep the defaults of `bundleLimits`. */
  limits?: Partial<BundleLimits>;
  /** Checks the manifest signature, if the bundle has one. */
  verifier?: ManifestVerifier;
  /** Fail if the bundle is unsigned (needs `verifier`). @default {false} */
  requireSignature?: boolean;
  /** Aborts the extraction (destDir is cleaned up). */
  signal?: AbortSignal;
  /** Receives `extract` progress (payload bytes read). */
  progress?: ProgressReporter;
  /**
   * Writes only the artifacts whose path it accepts; the others are read and verified all the
   * same (hash, size, nothing missing or extra), never written. @default {every artifact}
   */
  only?: (path: string) => boolean;
  /**
   * Of the artifacts `only` accepts, those the reader holds whole when it reaches them (most
   * small ones) are written only if this accepts their bytes; one that comes streamed in pieces
   * is written whatever it would say. Every artifact is verified all the same.
   * @default {every artifact}
   */
  keep?: (path: string, bytes: Uint8Array) => boolean;
  /**
   * Called with the manifest (valid, supported, not yet verified against the payload) before
   * any artifact is read; throwing refuses the bundle without reading further (`destDir` is
   * left as found). For checks that need only the manifest, made before a long extraction.
   */
  onManifest?: (manifest: Manifest) => void | Promise<void>;
  /**
   * The bundle's manifest, if it was read already (by `readManifest`): the bundle's is compared
   * with it byte for byte as it streams in instead of being parsed again (~200 bytes per
   * artifact), and this object is returned when they are the same. A bundle whose manifest
   * differs is read as without it.
   */
  manifest?: Manifest;
}

/**
 * Extracts every artifact of a bundle (or those `only` accepts) into `destDir` (artifact `p` at
 * `join(destDir, p)`), verifying every one as it goes: payload hash, every artifact hash,
 * nothing missing or extra, and the signature when a verifier is given. `destDir` must be
 * absent or empty; it is created. Files are created exclusively (never through an existing
 * path or symlink), with mode 0644 or the artifact's mode. On any failure the function throws
 * and `destDir` is left as it was found (removed if it did not exist, else empty); nothing
 * outside it is ever written.
 *
 * @param source The bundle's bytes.
 * @param destDir The directory to extract into.
 * @param options Decipher, verifier, caps, cancellation, progress.
 * @returns The manifest.
 * @throws {VerificationError} If a check fails (carries every failure).
 * @throws {UnsafeBundleError} If the bundle breaks a reader safety rule.
 * @throws {RefusedError} If the bundle is unsupported, encrypted without a decipher, or
 * `destDir` is not empty.
 *
 * @example
 * ```ts
 * import { extractBundle } from "./extract_bundle.ts";
 * import { openBundleFile } from "./open_bundle_file.ts";
 * import { writeBundle } from "./write_bundle.ts";
 * const header = {
 *   snapshot_id: "20261125T195222123Z-1a2b3c4d", agent_id: "a", tenant: "default",
 *   label: null, created_at: "2026-11-25T19:52:22.123Z", created_by: "api", parent: null,
 *   captures: {}, tools: {},
 *   redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
 * };
 * const bytes = new TextEncoder().encode("hello");
 * const dir = await Deno.makeTempDir();
 * await writeBundle(`${dir}/snap.memsnap`, header, [{
 *   path: "memdir/a.md", kind: "file", size: bytes.length,
 *   open: () => Promise.resolve(new Blob([bytes]).stream()),
 * }]);
 * await extractBundle(await openBundleFile(`${dir}/snap.memsnap`), `${dir}/out`);
 * console.log(await Deno.readTextFile(`${dir}/out/memdir/a.md`)); // hello
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function extractBundle(
  source: ReadableStream<Uint8Array>,
  destDir: string,
  options: ExtractBundleOptions = {},
): Promise<Manifest> {
  const limits = resolveLimits(options.limits);
  const only = options.only;
  const keep = options.keep;
  let created = false;
  try {
    const entries = [];
    for await (const e of Deno.readDir(destDir)) {
      entries.push(e.name);
      break;
    }
    if (entries.length > 0) {
      await source.cancel().catch(() => {});
      throw new RefusedError(`Cannot extract the bundle: ${destDir} is not empty`);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      await source.cancel().catch(() => {});
      throw e;
    }
    await Deno.mkdir(destDir, { recursive: true });
    created = true;
  }
  const dirs = new Set<string>();
  // Entry paths are checked by the reader before they reach the sink (relative, normalized: no
  // empty, "." or ".." segment), so joining them by hand gives what `join` would, without
  // normalizing each path again.
  const root = join(destDir, ".");
  const prefix = root.endsWith("/") ? root : `${root}/`;
  let writer: FileWriter = syncWriter(prefix);
  /** Where the writer workers' digests go: the reader's checks (see SinkDigests). */
  let report: ((index: number, sha256: Uint8Array) => void) | undefined;
  const makeParents = (artifact: ManifestArtifact): void => {
    const path = artifact.path;
    // Most artifacts go into a directory made for an earlier one (its parents were too).
    const parent = path.lastIndexOf("/");
    if (parent !== -1 && !dirs.has(path.slice(0, parent))) {
      for (let slash = path.indexOf("/"); slash !== -1; slash = path.indexOf("/", slash + 1)) {
        const rel = path.slice(0, slash);
        if (dirs.has(rel)) continue;
        writer.mkdir(prefix + rel, rel, artifact);
        dirs.add(rel);
      }
    }
  };
  try {
    const r = await readPass(source, {
      decipher: options.decipher,
      verifier: options.verifier,
      requireSignature: options.requireSignature,
      limits,
      progress: options.progress,
      signal: options.signal,
      manifest: options.manifest,
      phase: "extract",
      async onManifest(m) {
        if (m.payload.encryption !== null && !options.decipher) {
          throw new RefusedError(
            "Cannot extract the bundle: its payload is encrypted and no identity was given",
            { hint: "Pass the age identity that the bundle was encrypted to." },
          );
        }
        await options.onManifest?.(m);
        // By rows: the entries of a large manifest read from the bundle are not made here.
        const rows = rowsOf(m);
        let n = rows.length;
        if (only) {
          n = 0;
          for (let i = 0; i < rows.length; i++) if (only(rows.path(i))) n++;
        }
        if (n >= writerConfig.workerMinArtifacts) {
          writer = WorkerWriter.start(prefix, (index, sha256) => report?.(index, sha256));
        }
      },
      // The workers hash what they write (the reader's thread does not): ~0.1 s of the 100 MiB
      // restore's main thread, which reads, decodes and hands out everything else.
      sinkDigests: {
        connect(r) {
          report = r;
        },
        takes: (artifact) => writer.hashes && (!only || only(artifact.path)),
        drain: () => writer.drain(),
      },
      async sink(artifact, chunks, index) {
        writer.check();
        if (only && !only(artifact.path)) return; // the reader hashes what is left
        makeParents(artifact);
        await writer.file(artifact, chunks, index);
      },
      sinkBytes(artifact, data, index) {
        writer.check();
        if (only && !only(artifact.path)) return undefined;
        if (keep && !keep(artifact.path, data)) {
          // Taken (`takes` cannot see the bytes), so its digest is reported from here.
          if (writer.hashes) report?.(index, digestInto("sha256", new Uint8Array(32), 0, data));
          return undefined;
        }
        makeParents(artifact);
        return writer.bytes(artifact, data, index);
      },
    });
    await writer.finish();
    if (r.failures.length > 0) {
      const f = r.failures[0]!;
      throw new VerificationError(
        `Cannot extract the bundle: ${f.check}${
          f.path === undefined ? "" : ` (${f.path})`
        }: ${f.detail}${r.failures.length > 1 ? ` and ${r.failures.length - 1} more` : ""}`,
        r.failures,
      );
    }
    return r.manifest;
  } catch (e) {
    // Nothing is written once this returns; a write that failed first is the cause to report
    // (the reader may have gone on a little past it).
    const first = await writer.abort();
    if (created) {
      await Deno.remove(destDir, { recursive: true }).catch(() => {});
    } else {
      for await (const entry of Deno.readDir(destDir)) {
        await Deno.remove(join(destDir, entry.name), { recursive: true }).catch(() => {});
      }
    }
    throw first ?? e;
  }
}

/** Artifacts up to this size are gathered and written with one `writeFileSync`. */
const SMALL_ARTIFACT = 1 << 20;

/** Creates `path` exclusively (never through an existing path or symlink), or refuses. */
function conflict(e: unknown, artifact: ManifestArtifact): unknown {
  return e instanceof Deno.errors.AlreadyExists
    ? unsafe("path_conflict", artifact.path, "already exists in the destination")
    : e;
}

/** A parent directory that exists already (it cannot: `destDir` starts empty), or refuses. */
function parentConflict(e: unknown, artifact: ManifestArtifact, rel: string): unknown {
  return e instanceof Deno.errors.AlreadyExists
    ? unsafe("path_conflict", artifact.path, `has a parent ${rel} that already exists`)
    : e;
}

/**
 * Creates the extracted directories and files, in the order they are given. The first failure
 * is thrown as the same error either way: an unsafe `path_conflict` for a path that exists, or
 * the filesystem's error.
 */
interface FileWriter {
  /**
   * Whether it hashes every file it writes and reports each digest with the artifact's index
   * (the workers do; see SinkDigests).
   */
  readonly hashes: boolean;
  /** Throws the first failure so far (the worker's are known late). */
  check(): void;
  /** Creates one directory, `rel` in the extraction (for the refusal's message). */
  mkdir(path: string, rel: string, artifact: ManifestArtifact): void;
  /**
   * Creates the artifact's file with its mode and the bytes of `chunks` (`index`: the
   * artifact's place in the manifest, with which its digest is reported).
   */
  file(artifact: ManifestArtifact, chunks: AsyncIterable<Uint8Array>, index: number): Promise<void>;
  /**
   * As {@linkcode file}, for bytes all in hand (a view valid until this returns or its
   * promise settles); a promise only when it has to wait.
   */
  bytes(artifact: ManifestArtifact, data: Uint8Array, index: number): Promise<void> | void;
  /** Resolves once everything given so far is written (and, hashing, reported). */
  drain(): Promise<void>;
  /** Waits until everything is written; throws the first failure. */
  finish(): Promise<void>;
  /** Waits until nothing more is being written; returns the first failure, if any. */
  abort(): Promise<unknown>;
}

/** Writes under `root` (ending in `/`) on the calling thread (small extractions). */
function syncWriter(root: string): FileWriter {
  return {
    hashes: false,
    check() {},
    mkdir(path, rel, artifact) {
      try {
        Deno.mkdirSync(path);
      } catch (e) {
        throw parentConflict(e, artifact, rel);
      }
    },
    file: (artifact, chunks) => writeArtifact(root + artifact.path, artifact, chunks),
    bytes(artifact, data) {
      if (artifact.size > SMALL_ARTIFACT || data.length > artifact.size) {
        return writeArtifact(root + artifact.path, artifact, oneChunk(data));
      }
      writeSmall(root + artifact.path, artifact, data);
      return undefined;
    },
    drain: () => Promise.resolve(),
    finish: () => Promise.resolve(),
    abort: () => Promise.resolve(undefined),
  };
}

/** Creates a small artifact's file with its bytes and mode, in one call. */
function writeSmall(path: string, artifact: ManifestArtifact, data: Uint8Array): void {
  try {
    // The mode given to writeFile is applied exactly (not through the umask).
    Deno.writeFileSync(path, data, { createNew: true, mode: artifact.mode ?? 0o644 });
  } catch (e) {
    throw conflict(e, artifact);
  }
}

/**
 * Writes one artifact's bytes to a new file with its mode, using synchronous calls: the
 * decoder runs off the main thread, and for small files one `writeFileSync` (create, write,
 * mode, close) costs a fraction of the async open/write/close/chmod sequence. A size that
 * disagrees with the manifest is reported by the reader (which hashes what the sink leaves);
 * the file's content then does not matter, since the extraction fails.
 */
async function writeArtifact(
  path: string,
  artifact: ManifestArtifact,
  chunks: AsyncIterable<Uint8Array>,
): Promise<void> {
  const mode = artifact.mode ?? 0o644;
  const want = artifact.size;
  const it = chunks[Symbol.asyncIterator]();
  if (want <= SMALL_ARTIFACT) {
    // Chunks are views valid until the next read: one whole chunk is written as it is, else
    // each is copied on arrival.
    let r = await it.next();
    let data: Uint8Array = r.done ? new Uint8Array(0) : r.value;
    if (!r.done && data.length < want) {
      const buf = new Uint8Array(want);
      let got = 0;
      for (; !r.done; r = await it.next()) {
        if (got + r.value.length > want) break; // oversized: the size check fails
        buf.set(r.value, got);
        got += r.value.length;
        if (got === want) break;
      }
      data = buf.subarray(0, got);
    }
    writeSmall(path, artifact, data);
    return;
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { createNew: true, write: true, mode: 0o600 });
  } catch (e) {
    throw conflict(e, artifact);
  }
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const c = r.value;
      for (let off = 0; off < c.length;) off += file.writeSync(c.subarray(off));
    }
  } finally {
    file.close();
  }
  Deno.chmodSync(path, mode);
}

/** Bytes per batch sent to a writer worker (at least {@linkcode SMALL_ARTIFACT}). */
const BATCH_BYTES = 1 << 20;
/** Operations per batch at most (a batch of tiny files goes before its buffer is full). */
const BATCH_OPS = 1024;
/** Batch buffers at most per worker, in flight or being filled (plus two). */
const BUFFERS_PER_WORKER = 2;

/** A failure a worker reported, rebuilt as the error the synchronous calls throw. */
function workerError(
  err: { name: string; message: string },
  kind: number,
  artifact: ManifestArtifact,
): unknown {
  const ctor = (Deno.errors as unknown as Record<string, (new (m: string) => Error) | undefined>)[
    err.name
  ];
  const e = ctor
    ? new ctor(err.message)
    : Object.assign(new Error(err.message), { name: err.name });
  if (kind === FILE || kind === OPEN) return conflict(e, artifact);
  return e;
}

/** One writer worker and how many of its messages are not answered yet. */
interface Lane {
  worker: Worker;
  inflight: number;
  dead: boolean;
}

/**
 * Writes in workers (`_extract_worker.ts`, {@linkcode writerConfig}`.startWorkers` of them,
 * up to `.workers` when they fall behind): the artifacts' bytes are copied into batches of up
 * to 1 MiB, each handed whole to the worker with the fewest batches pending, while this thread
 * reads, decodes and hashes what follows. Creating tens of thousands of files is kernel time
 * that otherwise runs on this thread between those steps, and that two threads share out when
 * the filesystem is slow to create them. Directories are created here, in
 * order, before any file inside them is handed out; the batches of a file larger than a batch
 * go to one worker, in order. At most {@linkcode BUFFERS_PER_WORKER} batches per worker (plus
 * two) exist at once, reused. A failure is known when its worker answers that batch (that
 * worker then skips every later batch); the one reported is the earliest in the extraction's
 * order once every worker has answered, as a single writer in order would report it.
 */
class WorkerWriter implements FileWriter {
  readonly #lanes: Lane[] = [];
  readonly #free: ArrayBuffer[] = [];
  readonly #maxLanes: number;
  /** Answers received; since they came (`#since`), how long this thread waited for a buffer. */
  #answers = 0;
  #since = 0;
  #waited = 0;
  #made = 0;
  #buf: Uint8Array<ArrayBuffer> | undefined;
  #used = 0;
  readonly #root: string;
  readonly #report: ((index: number, sha256: Uint8Array) => void) | undefined;
  #ops: number[] = [];
  /**
   * The artifact of each operation, its place in the extraction (the bundle's order), and its
   * index in the manifest.
   */
  #artifacts: ManifestArtifact[] = [];
  #seqs: number[] = [];
  #indexes: number[] = [];
  #nextId = 0;
  #seq = 0;
  /** A file larger than a batch is open: the next batch goes to the lane of this one. */
  #open = false;
  #pinned: number | undefined;
  #last = 0;
  /** Batches not answered yet: what their operations were for, to report a failure. */
  readonly #inflight = new Map<
    number,
    { ops: Uint32Array; artifacts: ManifestArtifact[]; seqs: number[]; indexes: number[] }
  >();
  #error: unknown;
  #errorSeq = Infinity;
  #stopped = false;
  #wake: (() => void) | undefined;

  private constructor(
    root: string,
    start: number,
    max: number,
    report: ((index: number, sha256: Uint8Array) => void) | undefined,
  ) {
    this.#root = root;
    this.#report = report;
    this.#maxLanes = max;
    for (let i = 0; i < start; i++) this.#addLane();
    writerStats.started = start;
    writerStats.added = 0;
    writerStats.waitedMs = 0;
  }

  /** Batch buffers at most: two plus {@linkcode BUFFERS_PER_WORKER} per worker. */
  get #maxBuffers(): number {
    return 2 + BUFFERS_PER_WORKER * this.#lanes.length;
  }

  #addLane(): void {
    const lane: Lane = {
      worker: new Worker(new URL("./_extract_worker.ts", import.meta.url), { type: "module" }),
      inflight: 0,
      dead: false,
    };
    lane.worker.onmessage = (ev: MessageEvent) => {
      const m = ev.data as {
        id: number;
        buf?: ArrayBuffer;
        digests?: Uint8Array;
        error?: { op: number; name: string; message: string };
      };
      lane.inflight--;
      this.#answers++;
      const sent = this.#inflight.get(m.id);
      this.#inflight.delete(m.id);
      if (m.buf !== undefined && m.buf.byteLength === BATCH_BYTES) this.#free.push(m.buf);
      if (m.digests !== undefined && sent !== undefined && this.#report !== undefined) {
        // The digest of each file the batch ended, up to a failed operation.
        const end = m.error?.op ?? sent.indexes.length;
        for (let op = 0; op < end; op++) {
          const kind = sent.ops[op * OP_SIZE]!;
          if (kind !== FILE && kind !== CLOSE) continue;
          const at = op * DIGEST_SIZE;
          this.#report(sent.indexes[op]!, m.digests.subarray(at, at + DIGEST_SIZE));
        }
      }
      if (m.error !== undefined && sent !== undefined) {
        const { op } = m.error;
        const kind = sent.ops[op * OP_SIZE]!;
        this.#fail(workerError(m.error, kind, sent.artifacts[op]!), sent.seqs[op]!);
      }
      this.#notify();
    };
    lane.worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      lane.dead = true;
      this.#fail(
        new Error(`Cannot write the extracted files: ${ev.message}`),
        Number.MAX_SAFE_INTEGER,
      );
      this.#notify();
    };
    this.#lanes.push(lane);
  }

  /**
   * Starts the workers writing under `root` (ending in `/`); they load while a batch fills.
   * With `report`, they hash each file they write, and each digest is given to it with the
   * artifact's index.
   */
  static start(
    root: string,
    report?: (index: number, sha256: Uint8Array) => void,
  ): WorkerWriter {
    const max = Math.max(1, writerConfig.workers);
    return new WorkerWriter(
      root,
      Math.min(max, Math.max(1, writerConfig.startWorkers)),
      max,
      report,
    );
  }

  get hashes(): boolean {
    return this.#report !== undefined;
  }

  /** Keeps the failure of the earliest operation. */
  #fail(e: unknown, seq: number): void {
    if (seq < this.#errorSeq) {
      this.#error = e;
      this.#errorSeq = seq;
    }
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #waitAnswer(): Promise<void> {
    return new Promise((r) => (this.#wake = r));
  }

  check(): void {
    if (this.#errorSeq !== Infinity) throw this.#error;
  }

  #op(
    kind: number,
    artifact: ManifestArtifact,
    seq: number,
    index: number,
    mode = 0,
    off = 0,
    len = 0,
  ): void {
    this.#ops.push(kind, this.#artifacts.length, mode, off, len);
    this.#artifacts.push(artifact);
    this.#seqs.push(seq);
    this.#indexes.push(index);
  }

  /** The live lane with the fewest batches pending, the one after the last used on a tie. */
  #pick(): number {
    const n = this.#lanes.length;
    let best = -1;
    for (let k = 1; k <= n; k++) {
      const i = (this.#last + k) % n;
      const lane = this.#lanes[i]!;
      if (!lane.dead && (best === -1 || lane.inflight < this.#lanes[best]!.inflight)) best = i;
    }
    return best === -1 ? this.#last : best;
  }

  /** Sends the batch being filled, if it holds anything. */
  #flush(): void {
    if (this.#ops.length === 0) return;
    // The operations are copied, not moved: their kinds name a failure's cause.
    const ops = new Uint32Array(this.#ops);
    const buf = this.#buf?.buffer ?? new ArrayBuffer(0);
    const id = this.#nextId++;
    const at = this.#pinned ?? this.#pick();
    const lane = this.#lanes[at]!;
    const artifacts = this.#artifacts;
    this.#inflight.set(id, { ops, artifacts, seqs: this.#seqs, indexes: this.#indexes });
    // Relative paths (the manifest's own strings) and the root, joined by the worker.
    const paths = artifacts.map((a) => a.path);
    lane.inflight++;
    const hash = this.#report !== undefined;
    lane.worker.postMessage({ id, buf, ops, root: this.#root, paths, hash }, [buf]);
    this.#last = at;
    this.#pinned = this.#open ? at : undefined;
    this.#buf = undefined;
    this.#used = 0;
    this.#ops = [];
    this.#artifacts = [];
    this.#seqs = [];
    this.#indexes = [];
  }

  /** A batch buffer to fill: a free one, a new one, or the next one a worker hands back. */
  async #take(): Promise<Uint8Array<ArrayBuffer>> {
    while (this.#takeNow() === undefined) {
      const t0 = performance.now();
      await this.#waitAnswer();
      // Waiting while the workers start is not falling behind: counted once each has answered.
      if (this.#answers < this.#lanes.length) continue;
      const now = performance.now();
      if (this.#since === 0) this.#since = t0;
      this.#waited += now - t0;
      writerStats.waitedMs += now - t0;
      if (
        this.#waited >= writerConfig.growAfterMs &&
        this.#waited >= (now - this.#since) * writerConfig.growWaitShare &&
        this.#lanes.length < this.#maxLanes && !this.#stopped
      ) {
        this.#waited = 0;
        this.#since = now;
        this.#addLane(); // its buffers are free to fill at once
        writerStats.added++;
      }
    }
    return this.#buf!;
  }

  /** The batch buffer being filled, a free one or a new one; `undefined` if all are taken. */
  #takeNow(): Uint8Array<ArrayBuffer> | undefined {
    if (this.#buf !== undefined) return this.#buf;
    this.check();
    const free = this.#free.pop();
    if (free !== undefined) {
      this.#buf = new Uint8Array(free);
    } else if (this.#made < this.#maxBuffers) {
      this.#made++;
      this.#buf = new Uint8Array(BATCH_BYTES);
    }
    return this.#buf;
  }

  bytes(artifact: ManifestArtifact, data: Uint8Array, index: number): Promise<void> | void {
    const want = artifact.size;
    if (want > BATCH_BYTES || data.length > want) {
      return this.file(artifact, oneChunk(data), index);
    }
    if (this.#used + want > BATCH_BYTES || this.#ops.length >= BATCH_OPS * OP_SIZE) {
      this.#flush();
    }
    if (this.#takeNow() === undefined) {
      return this.#take().then(() => this.#put(artifact, data, index));
    }
    this.#put(artifact, data, index);
    return undefined;
  }

  /** Copies a small file's bytes into the batch being filled (which has room for them). */
  #put(artifact: ManifestArtifact, data: Uint8Array, index: number): void {
    const seq = this.#seq++;
    const start = this.#used;
    this.#buf!.set(data, start);
    this.#op(FILE, artifact, seq, index, artifact.mode ?? 0o644, start, data.length);
    this.#used += data.length;
  }

  mkdir(path: string, rel: string, artifact: ManifestArtifact): void {
    const seq = this.#seq++;
    try {
      Deno.mkdirSync(path);
    } catch (e) {
      const err = parentConflict(e, artifact, rel);
      this.#fail(err, seq);
      // The files before it are written still (not discarded): one may fail first.
      this.#flush();
      throw err;
    }
  }

  async file(
    artifact: ManifestArtifact,
    chunks: AsyncIterable<Uint8Array>,
    index: number,
  ): Promise<void> {
    const mode = artifact.mode ?? 0o644;
    const want = artifact.size;
    const seq = this.#seq++;
    const it = chunks[Symbol.asyncIterator]();
    if (want <= BATCH_BYTES) {
      if (this.#used + want > BATCH_BYTES || this.#ops.length >= BATCH_OPS * OP_SIZE) {
        this.#flush();
      }
      const buf = await this.#take();
      const start = this.#used;
      let got = 0;
      for (let r = await it.next(); !r.done; r = await it.next()) {
        if (got + r.value.length > want) break; // oversized: the size check fails
        buf.set(r.value, start + got);
        got += r.value.length;
        if (got === want) break;
      }
      this.#op(FILE, artifact, seq, index, mode, start, got);
      this.#used += got;
      return;
    }
    this.#op(OPEN, artifact, seq, index);
    this.#open = true;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      // The chunk stays valid until the next read, across the waits for a buffer.
      const c = r.value;
      for (let off = 0; off < c.length;) {
        if (this.#used === BATCH_BYTES) this.#flush();
        const buf = await this.#take();
        const n = Math.min(BATCH_BYTES - this.#used, c.length - off);
        buf.set(c.subarray(off, off + n), this.#used);
        this.#op(APPEND, artifact, seq, index, 0, this.#used, n);
        this.#used += n;
        off += n;
      }
    }
    this.#op(CLOSE, artifact, seq, index, mode);
    this.#open = false;
  }

  async drain(): Promise<void> {
    this.#flush();
    while (this.#lanes.some((l) => l.inflight > 0 && !l.dead)) await this.#waitAnswer();
    this.check();
  }

  /** Sends what is pending (unless `discard`), then the stops, and waits for every answer. */
  async #end(discard: boolean): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      if (discard) {
        this.#ops = [];
        this.#artifacts = [];
        this.#seqs = [];
        this.#indexes = [];
      }
      this.#flush();
      for (const lane of this.#lanes) {
        lane.inflight++;
        lane.worker.postMessage({ id: this.#nextId++, stop: true });
      }
    }
    while (this.#lanes.some((l) => l.inflight > 0 && !l.dead)) await this.#waitAnswer();
    for (const lane of this.#lanes) lane.worker.terminate();
    for (const b of this.#free) release(b);
    this.#free.length = 0;
  }

  async finish(): Promise<void> {
    await this.#end(false);
    this.check();
  }

  async abort(): Promise<unknown> {
    await this.#end(true);
    return this.#error;
  }
}
