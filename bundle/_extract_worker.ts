/**
 * Worker side of the extractor's file writer (private): creates the extracted files, in the
 * order each worker is given them, so that the kernel's file creation (most of a large
 * restore's time) runs beside the reading, decoding and hashing. The extractor runs
 * {@linkcode writerConfig}`.workers` of them and creates the directories itself, before any
 * file inside is handed out.
 *
 * Protocol, main → worker: batches `{ id, buf, ops, root, paths }`: `buf` an `ArrayBuffer`
 * holding the batch's bytes, `ops` a `Uint32Array` of {@linkcode OP_SIZE}-word operations
 * `[kind, path index, mode, offset, length]`, `paths` the paths the operations name, relative
 * to `root` (which ends in `/`), and `hash` when the worker is to hash what it writes (the
 * reading thread then does not: see `SinkDigests` in `_reader.ts`).
 * Kinds: `FILE` (create a new file with its mode and bytes), `OPEN` (create a new file, mode
 * 0600, for the `APPEND`s that follow), `APPEND` (write bytes to the open file), `CLOSE` (close
 * it and set its mode). Files are created exclusively, never through an existing path. Worker
 * → main, one answer per batch in order: `{ id, buf, digests }` (the buffer back, for reuse;
 * with `hash`, the SHA-256 of each file a `FILE` or `CLOSE` operation ends, 32 bytes per
 * operation) or, at the first failure, `{ id, buf, digests, error: { op, name, message } }`
 * (`op` the index of the failed operation in that batch; no digest from it on); every later
 * batch is answered `{ id, buf, skipped: true }` without touching anything. `{ id, stop: true }` closes a file left open and is answered `{ id }`.
 *
 * @module
 */
import { env } from "./_env.ts";
import { libWorkerSha256, nodeWorkerSha256, type WorkerSha256 } from "./_worker_digest.ts";

export const FILE = 1, OPEN = 2, APPEND = 3, CLOSE = 4;

const WRITER = env("MEMSNAP_EXTRACT_WRITER");
/**
 * When and how the extractor writes through these workers: from `workerMinArtifacts` artifacts
 * on (starting a worker costs ~20-40 ms and ~15 MiB), `startWorkers` of them at first and up to
 * `workers`: one more when, since the workers first answered, the reading thread has waited for
 * a batch buffer at least `growAfterMs` in all and at least `growWaitShare` of the time. File
 * creation is kernel time that two threads share out on ext4: on a filesystem slow to create
 * files (right after a large removal) one worker falls far behind; on a quick one the reading
 * thread waits for it a quarter to a third of the time, and a second worker only competes for
 * the cores (measured on 2 vCPUs). `MEMSNAP_EXTRACT_WRITER=sync` never uses them (writes
 * on the calling thread, as for small bundles); `MEMSNAP_EXTRACT_WRITER=1` (or another count)
 * runs that many from the start. Tests set them.
 */
export const writerConfig: {
  workerMinArtifacts: number;
  workers: number;
  startWorkers: number;
  growAfterMs: number;
  growWaitShare: number;
} = {
  workerMinArtifacts: WRITER === "sync" ? Infinity : 512,
  workers: /^[1-8]$/.test(WRITER ?? "") ? Number(WRITER) : 2,
  startWorkers: /^[1-8]$/.test(WRITER ?? "") ? Number(WRITER) : 1,
  growAfterMs: 200,
  growWaitShare: 0.5,
};

/**
 * What the last extraction through workers did (for tests and tuning): workers started and
 * added, and how long the reading thread waited for a batch buffer once they had answered.
 */
export const writerStats: { started: number; added: number; waitedMs: number } = {
  started: 0,
  added: 0,
  waitedMs: 0,
};

/** Words per operation in `ops`. */
export const OP_SIZE = 5;

/** One batch of operations. */
export interface WriteBatch {
  id: number;
  buf: ArrayBuffer;
  ops: Uint32Array;
  root: string;
  paths: string[];
  /**
   * Hash what is written: the answer then carries `digests`, 32 bytes per operation, the
   * SHA-256 of the file a `FILE` or `CLOSE` operation ends (zeros for the others, and from a
   * failed operation on).
   */
  hash?: boolean;
}

/** Bytes per operation in an answer's `digests`. */
export const DIGEST_SIZE = 32;

/**
 * The process umask, read from `/proc/self/status` (Linux) when readable without a prompt;
 * `undefined` elsewhere. (`Deno.umask()` cannot read it without setting it meanwhile.)
 */
export function currentUmask(): number | undefined {
  const path = "/proc/self/status";
  try {
    if (Deno.permissions.querySync({ name: "read", path }).state !== "granted") return undefined;
    const m = /^Umask:\s*([0-7]+)$/m.exec(Deno.readTextFileSync(path));
    return m === null ? undefined : parseInt(m[1]!, 8);
  } catch {
    return undefined;
  }
}

/** The worker scope's part used here (typed by hand: the main thread imports this module). */
interface Scope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((ev: MessageEvent) => void) | null;
}

/** Runs the worker's message loop (when this module is a worker's main module). */
function serve(self: Scope, [whole, across]: [WorkerSha256, WorkerSha256]): void {
  let open: { file: Deno.FsFile; path: string } | undefined;
  let failed = false;

  const closeOpen = (): void => {
    const o = open;
    open = undefined;
    o?.file.close();
  };

  const run = (b: WriteBatch): void => {
    const bytes = new Uint8Array(b.buf);
    const ops = b.ops;
    const digests = b.hash ? new Uint8Array((ops.length / OP_SIZE) * DIGEST_SIZE) : undefined;
    // A file whose mode is what creation gives under the umask (0644 under 022: nearly all)
    // is created without a mode: given one, writeFileSync also sets it exactly with a
    // fchmod per file. Read per batch: the umask is the process's, and may change.
    const umask = currentUmask();
    const plain = umask === undefined ? -1 : 0o666 & ~umask;
    for (let i = 0, k = 0; k < ops.length; i++, k += OP_SIZE) {
      const kind = ops[k]!, mode = ops[k + 2]!;
      const path = kind === APPEND ? "" : b.root + b.paths[ops[k + 1]!]!;
      const data = bytes.subarray(ops[k + 3]!, ops[k + 3]! + ops[k + 4]!);
      try {
        if (kind === FILE) {
          // The mode given to writeFile is applied exactly (not through the umask).
          if (mode === plain) Deno.writeFileSync(path, data, { createNew: true });
          else Deno.writeFileSync(path, data, { createNew: true, mode });
          if (digests) {
            whole.begin();
            whole.update(data);
            whole.end(digests, i * DIGEST_SIZE);
          }
        } else if (kind === OPEN) {
          closeOpen();
          open = {
            file: Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }),
            path,
          };
          // (Every batch of an extraction is hashed, or none: the APPENDs and the CLOSE that
          // follow hash with `across` too.)
          if (digests) across.begin();
        } else if (kind === APPEND) {
          const f = open!.file;
          for (let off = 0; off < data.length;) off += f.writeSync(data.subarray(off));
          if (digests) across.update(data);
        } else if (kind === CLOSE) {
          const p = open!.path;
          closeOpen();
          Deno.chmodSync(p, mode);
          if (digests) across.end(digests, i * DIGEST_SIZE);
        }
      } catch (e) {
        failed = true;
        closeOpen();
        const err = e as Error;
        self.postMessage(
          {
            id: b.id,
            buf: b.buf,
            digests,
            error: { op: i, name: err?.name ?? "Error", message: err?.message ?? String(e) },
          },
          digests ? [b.buf, digests.buffer] : [b.buf],
        );
        return;
      }
    }
    self.postMessage(
      { id: b.id, buf: b.buf, digests },
      digests ? [b.buf, digests.buffer] : [b.buf],
    );
  };

  self.onmessage = (ev: MessageEvent) => {
    const m = ev.data as WriteBatch | { id: number; stop: true };
    if ("stop" in m) {
      try {
        closeOpen();
      } catch { /* answered anyway: the extraction is ending */ }
      self.postMessage({ id: m.id });
      return;
    }
    if (failed) {
      self.postMessage({ id: m.id, buf: m.buf, skipped: true }, [m.buf]);
      return;
    }
    run(m);
  };
}

if (
  typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined" &&
  import.meta.main
) {
  serve(globalThis as unknown as Scope, libWorkerSha256() ?? await nodeWorkerSha256());
}
