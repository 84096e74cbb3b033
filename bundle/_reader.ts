/**
 * The bundle reading pass shared by verifyBundle() and extractBundle() (private).
 *
 * One streaming pass: the outer tar's manifest entry, then the payload entry, hashed as it
 * is read and (when plaintext or a decipher is given) piped through decipher, zstd and the
 * inner tar reader, each artifact hashed; then the signature entry. Constant memory.
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import {
  CorruptBundleError,
  RefusedError,
  UnsafeBundleError,
  VerificationError,
  type VerificationFailure,
} from "../errors.ts";
import { noopProgress, type ProgressReporter } from "../progress.ts";
import type { Manifest, ManifestArtifact } from "./types.ts";
import type { ManifestVerifier, PayloadDecipher } from "./crypto_types.ts";
import type { BundleLimits } from "./bundle_limits.ts";
import { ByteSource } from "./_byte_source.ts";
import { type PathTracker, readTar, type TarEntry } from "./_tar_reader.ts";
import { outerEntries, readManifestWithBytes } from "./_outer.ts";
import { comparePaths, type PathProblem, PathSet, SortedPaths } from "./_paths.ts";
import { type ArtifactRows, lowerBoundRow, rowsOf } from "./_artifact_table.ts";
import { digestInto } from "./_digest.ts";
import { SIGNATURE_NAME } from "./_manifest.ts";
import { corrupt, unsafe } from "./_errors.ts";
import { pickDecoder } from "./_zstd.ts";
import { hex, throughTransform } from "./_io.ts";

/** Largest `manifest.json.minisig` accepted. */
const MAX_SIGNATURE = 65_536;

/**
 * Where an artifact's bytes go (extraction); verification only hashes them. `index` is the
 * artifact's place in the manifest (for {@linkcode SinkDigests}).
 */
export type ArtifactSink = (
  artifact: ManifestArtifact,
  chunks: AsyncIterable<Uint8Array>,
  index: number,
) => Promise<void>;

/**
 * A sink that hashes the bytes it writes, elsewhere than on the reading thread (the
 * extraction's writer workers hash what they write): the reader then does not hash what the
 * sink takes, and checks each digest as the sink reports it, before the pass ends.
 */
export interface SinkDigests {
  /** Called by the reader before the first artifact: where the sink reports each digest. */
  connect(report: (index: number, sha256: Uint8Array) => void): void;
  /**
   * Whether the sink, given this artifact next, will take every byte it is given and report
   * their SHA-256 with the artifact's index (once, before {@linkcode SinkDigests.drain}
   * resolves). Asked before the sink is called; the reader hashes the artifacts it declines.
   */
  takes(artifact: ManifestArtifact): boolean;
  /** Resolves once every artifact the sink took has been reported. */
  drain(): Promise<void>;
}

export interface ReadPassOptions {
  decipher?: PayloadDecipher | undefined;
  verifier?: ManifestVerifier | undefined;
  requireSignature?: boolean | undefined;
  limits: BundleLimits;
  progress?: ProgressReporter | undefined;
  signal?: AbortSignal | undefined;
  phase: string;
  /** The bundle's manifest, already read: compared as it streams in, not parsed again. */
  manifest?: Manifest | undefined;
  /** Called once the manifest is read, before any artifact (may throw to refuse). */
  onManifest?: (manifest: Manifest) => Promise<void> | void;
  sink?: ArtifactSink;
  /**
   * With `sink`: takes an artifact whose bytes are all in hand (a view valid until it returns
   * or its promise settles), instead of `sink` and a one-chunk stream. Returns a promise only
   * when it has to wait (no buffer free yet).
   */
  sinkBytes?: (
    artifact: ManifestArtifact,
    bytes: Uint8Array,
    index: number,
  ) => Promise<void> | void;
  /** With `sink`: a sink that hashes what it takes (see {@linkcode SinkDigests}). */
  sinkDigests?: SinkDigests | undefined;
}

export interface ReadPassResult {
  manifest: Manifest;
  signature: "valid" | "invalid" | "absent" | "not_checked";
  artifacts_checked: boolean;
  failures: VerificationFailure[];
}

/** Hashes the payload entry as it is pulled; return() does not close it, so it can be drained. */
class PayloadTap implements AsyncIterable<Uint8Array> {
  readonly hash: Hash = createHash("sha256");
  size = 0;
  #it: AsyncIterator<Uint8Array>;
  #lock: Promise<unknown> = Promise.resolve();
  #onChunk: (size: number) => void;

  constructor(body: AsyncIterable<Uint8Array>, onChunk: (size: number) => void) {
    this.#it = body[Symbol.asyncIterator]();
    this.#onChunk = onChunk;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const run = this.#lock.then(async () => {
      const r = await this.#it.next();
      if (!r.done) {
        this.hash.update(r.value);
        this.size += r.value.length;
        this.#onChunk(this.size);
        // Views of upstream chunks, which nobody mutates: no copy needed.
        return r;
      }
      return r;
    });
    this.#lock = run.catch(() => {});
    return run;
  }

  async drain(): Promise<void> {
    while (!(await this.next()).done) { /* hash the rest */ }
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => this.next(),
      return: () => Promise.resolve({ done: true, value: undefined }),
    };
  }
}

function isRefusal(e: unknown): boolean {
  return e instanceof UnsafeBundleError || e instanceof RefusedError;
}

/** Runs the reading pass. Throws refusals and I/O errors; returns verification failures. */
export async function readPass(
  source: ReadableStream<Uint8Array>,
  opts: ReadPassOptions,
): Promise<ReadPassResult> {
  const { limits, decipher, verifier, signal } = opts;
  const progress = opts.progress ?? noopProgress;
  if (opts.requireSignature && !verifier) {
    throw new TypeError("Cannot verify the bundle: requireSignature needs a verifier");
  }
  signal?.throwIfAborted();
  const outer = new ByteSource(source);
  try {
    const entries = outerEntries(outer, limits);
    // The manifest's bytes are kept only when a signature is to be checked with them at the
    // end of the pass: ~170 bytes per artifact (25 MB for 147,000) held for the whole pass
    // otherwise.
    const { manifest, bytes: manifestBytes } = await readManifestWithBytes(
      entries,
      limits,
      verifier !== undefined,
      opts.manifest,
    );
    const failures: VerificationFailure[] = [];
    const encrypted = manifest.payload.encryption !== null;
    const checkArtifacts = !encrypted || decipher !== undefined;
    await opts.onManifest?.(manifest);

    // Payload.
    const next = await entries.next();
    if (next.done || next.value.path !== manifest.payload.path) {
      throw corrupt(
        "outer_layout",
        next.done ? manifest.payload.path : next.value.path,
        next.done
          ? "is missing"
          : `comes where ${JSON.stringify(manifest.payload.path)} is expected`,
      );
    }
    const payloadEntry = next.value;
    const total = payloadEntry.size;
    const tap = new PayloadTap(payloadEntry.body(), (done) => {
      signal?.throwIfAborted();
      progress.progress({ phase: opts.phase, done, total, item: manifest.payload.path });
    });
    if (checkArtifacts) {
      try {
        await readArtifacts(tap, manifest, opts, failures);
      } catch (e) {
        if (isRefusal(e) || !(e instanceof VerificationError)) throw e;
        for (const f of failuresOf(e)) failures.push(f);
      }
    }
    await tap.drain();
    const sha = tap.hash.digest("hex");
    if (tap.size !== manifest.payload.size) {
      failures.unshift({
        check: "payload_size",
        path: manifest.payload.path,
        detail: `payload is ${tap.size} bytes, manifest says ${manifest.payload.size}`,
      });
    }
    if (sha !== manifest.payload.sha256) {
      failures.unshift({
        check: "payload_hash",
        path: manifest.payload.path,
        detail: `payload sha256 is ${sha}, manifest says ${manifest.payload.sha256}`,
      });
    }

    // Signature.
    let sig: Uint8Array | undefined;
    const third = await entries.next();
    if (!third.done) {
      const e = third.value;
      if (e.path !== SIGNATURE_NAME) {
        throw corrupt("outer_layout", e.path, "is not an entry a bundle may contain");
      }
      if (e.size > MAX_SIGNATURE) {
        throw unsafe("max_signature_size", e.path, `is larger than ${MAX_SIGNATURE} bytes`);
      }
      sig = await readAll(e);
      const end = await entries.next();
      if (!end.done) {
        throw corrupt("outer_layout", end.value.path, "is not an entry a bundle may contain");
      }
    }
    let signature: ReadPassResult["signature"];
    if (!sig) {
      signature = "absent";
      if (opts.requireSignature) {
        failures.push({
          check: "signature_missing",
          path: SIGNATURE_NAME,
          detail: "the bundle is not signed and a signature is required",
        });
      }
    } else if (!verifier) {
      signature = "not_checked";
    } else {
      try {
        await verifier.verify(manifestBytes!, sig);
        signature = "valid";
      } catch (e) {
        if (!(e instanceof VerificationError)) throw e;
        signature = "invalid";
        failures.push({
          check: "signature",
          path: SIGNATURE_NAME,
          detail: e.message,
        });
      }
    }
    return { manifest, signature, artifacts_checked: checkArtifacts, failures };
  } finally {
    await outer.cancel();
  }
}

function failuresOf(e: VerificationError): VerificationFailure[] {
  if (e.failures.length > 0) return e.failures;
  return [{ check: e instanceof CorruptBundleError ? e.rule : "payload", detail: e.message }];
}

async function readAll(e: TarEntry): Promise<Uint8Array> {
  const out = new Uint8Array(e.size);
  let off = 0;
  for await (const c of e.body()) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** The digest of the artifact being checked (one at a time). */
const DIGEST = new Uint8Array(32);

/**
 * What is wrong with row `at`'s artifact read as `n` bytes, if anything: its size, else its
 * SHA-256 (`digest` writes it into its argument, and is called only when the size is right).
 * Compared as bytes: no entry or hex string is made for an artifact that is right.
 */
function artifactProblem(
  rows: ArtifactRows,
  at: number,
  n: number,
  digest: (into: Uint8Array) => void,
): VerificationFailure | undefined {
  const size = rows.size(at);
  if (n !== size) {
    return {
      check: "artifact_size",
      path: rows.path(at),
      detail: `artifact is ${n} bytes, manifest says ${size}`,
    };
  }
  digest(DIGEST);
  if (rows.hasSha256(at, DIGEST)) return undefined;
  return {
    check: "artifact_hash",
    path: rows.path(at),
    detail: `artifact sha256 is ${hex(DIGEST)}, manifest says ${rows.sha256(at)}`,
  };
}

/**
 * The checks of the artifacts a sink hashes ({@linkcode SinkDigests}): the size when the
 * reader has read one, the SHA-256 when the sink reports it. Failures go into the pass's list
 * where the reader would have put them had it hashed each artifact as it read it (in the
 * payload's order, among the others); a digest that never comes is a failure too.
 */
class DeferredDigests {
  readonly #rows: ArtifactRows;
  readonly #failures: VerificationFailure[];
  /** Per artifact: 0 not expected, 1 waiting for its digest, 2 done (checked or failed). */
  readonly #state: Uint8Array;
  /** Per artifact: how many failures the list held when the reader reached it. */
  readonly #place: Uint32Array;
  /** Per artifact: when the reader reached it (among those expected). */
  readonly #order: Uint32Array;
  #reached = 0;
  /** Digests reported before the reader had counted their artifact's bytes. */
  readonly #early = new Map<number, Uint8Array>();
  /** Digest failures, with the place each goes. */
  #late: { place: number; order: number; failure: VerificationFailure }[] = [];

  constructor(rows: ArtifactRows, failures: VerificationFailure[]) {
    this.#rows = rows;
    this.#failures = failures;
    this.#state = new Uint8Array(rows.length);
    this.#place = new Uint32Array(rows.length);
    this.#order = new Uint32Array(rows.length);
  }

  /** The reader has read artifact `at` as `n` bytes and given them to the sink. */
  expect(at: number, n: number): void {
    const size = this.#rows.size(at);
    if (n !== size) {
      // The size is what is wrong: the digest of those bytes does not matter.
      this.#state[at] = 2;
      this.#early.delete(at);
      this.#failures.push({
        check: "artifact_size",
        path: this.#rows.path(at),
        detail: `artifact is ${n} bytes, manifest says ${size}`,
      });
      return;
    }
    this.#state[at] = 1;
    this.#place[at] = this.#failures.length;
    this.#order[at] = this.#reached++;
    const early = this.#early.get(at);
    if (early !== undefined) {
      this.#early.delete(at);
      this.report(at, early);
    }
  }

  /** The sink's digest of artifact `at` (before or after the reader is done with it). */
  report(at: number, digest: Uint8Array): void {
    if (!(at >= 0 && at < this.#state.length) || this.#state[at] === 2) return;
    if (this.#state[at] === 0) {
      // Before the reader has counted its bytes (it was waiting for the sink): kept until then.
      this.#early.set(at, digest.slice());
      return;
    }
    this.#state[at] = 2;
    if (this.#rows.hasSha256(at, digest)) return;
    this.#hashFailure(
      at,
      `artifact sha256 is ${hex(digest)}, manifest says ${this.#rows.sha256(at)}`,
    );
  }

  /** Artifact `at`'s hash failure, kept for its place in the list. */
  #hashFailure(at: number, detail: string): void {
    this.#state[at] = 2;
    this.#late.push({
      place: this.#place[at]!,
      order: this.#order[at]!,
      failure: { check: "artifact_hash", path: this.#rows.path(at), detail },
    });
  }

  /** Every digest is in (or never will be): the failures, in place. */
  end(): void {
    for (let at = 0; at < this.#state.length; at++) {
      if (this.#state[at] !== 1) continue;
      this.#hashFailure(at, "artifact sha256 was not checked: the extraction did not report it");
    }
    if (this.#late.length === 0) return;
    // Those of one place in the order the reader reached their artifacts.
    const late = this.#late.sort((a, b) => a.place - b.place || a.order - b.order);
    const merged: VerificationFailure[] = [];
    let k = 0;
    for (let i = 0; i <= this.#failures.length; i++) {
      while (k < late.length && late[k]!.place === i) merged.push(late[k++]!.failure);
      if (i < this.#failures.length) merged.push(this.#failures[i]!);
    }
    this.#failures.length = 0;
    for (const f of merged) this.#failures.push(f);
    this.#late = [];
  }
}

async function readArtifacts(
  tap: PayloadTap,
  manifest: Manifest,
  opts: ReadPassOptions,
  failures: VerificationFailure[],
): Promise<void> {
  const { limits } = opts;
  let stage: AsyncIterable<Uint8Array> = tap;
  if (manifest.payload.encryption !== null) stage = throughTransform(tap, opts.decipher!.decrypt());
  // ByteSource takes the next chunk only once it has handed out all of the previous one, and
  // its views are valid until the next read: the decoder may reuse its output buffers.
  const decode = pickDecoder(manifest.payload.size, { reuseOutput: true });
  const inner = new ByteSource(decode(stage, limits.maxZstdWindowLog));
  inner.onConsume = (n) => {
    if (n > limits.maxTotalSize) {
      throw unsafe(
        "max_total_size",
        manifest.payload.path,
        `inflates to more than the cap of ${limits.maxTotalSize} bytes`,
      );
    }
  };
  // Rows, not entries: a manifest read from a bundle holds a compact table (ArtifactTable),
  // and an entry is made for one artifact at a time, as it is reached.
  const rows = rowsOf(manifest);
  const paths = new ManifestPaths(rows);
  const sinkDigests = opts.sink ? opts.sinkDigests : undefined;
  // Made when the sink first takes an artifact (its lists are as long as the manifest's): a
  // sink that writes on this thread takes none. It reports only what it took.
  let deferred: DeferredDigests | undefined;
  const taking = (): DeferredDigests => deferred ??= new DeferredDigests(rows, failures);
  sinkDigests?.connect((at, digest) => taking().report(at, digest));
  try {
    for await (const entry of readTar(inner, limits, paths)) {
      const at = paths.index;
      if (at === -1) {
        failures.push({
          check: "extra",
          path: entry.path,
          detail: `payload entry ${JSON.stringify(entry.path)} is not in the manifest`,
        });
        continue; // skipped by the reader
      }
      const data = entry.data;
      if (data !== undefined) {
        // The whole body in hand (most small files): no stream, generator or promise.
        let taken = false;
        if (opts.sink) {
          const want = rows.entry(at);
          taken = sinkDigests?.takes(want) === true;
          // Counted before the sink has it: a sink that hashes on this thread reports at once,
          // and a digest before its count is held aside (a copy and a map entry per artifact).
          if (taken) taking().expect(at, data.length);
          const p = opts.sinkBytes
            ? opts.sinkBytes(want, data, at)
            : opts.sink(want, entry.body(), at);
          if (p !== undefined) await p;
        }
        if (taken) continue;
        const problem = artifactProblem(
          rows,
          at,
          data.length,
          (into) => digestInto("sha256", into, 0, data),
        );
        if (problem) failures.push(problem);
        continue;
      }
      const want = opts.sink ? rows.entry(at) : undefined;
      // What the sink takes it hashes; the rest is hashed here.
      const taken = want !== undefined && sinkDigests?.takes(want) === true;
      const hash = taken ? undefined : createHash("sha256");
      let n = 0;
      const chunks = (async function* (): AsyncGenerator<Uint8Array> {
        for await (const c of entry.body()) {
          hash?.update(c);
          n += c.length;
          yield c;
        }
      })();
      if (want !== undefined) await opts.sink!(want, chunks, at);
      for await (const _ of chunks) { /* hash what the sink left */ }
      if (taken) {
        taking().expect(at, n);
        continue;
      }
      const problem = artifactProblem(rows, at, n, (into) => into.set(hash!.digest()));
      if (problem) failures.push(problem);
    }
    if (deferred) {
      await sinkDigests!.drain();
      deferred.end();
    }
  } finally {
    await inner.cancel();
  }
  for (let i = 0; i < rows.length; i++) {
    if (paths.found[i] === 0) {
      const path = rows.path(i);
      failures.push({
        check: "missing",
        path,
        detail: `artifact ${JSON.stringify(path)} is not in the payload`,
      });
    }
  }
}

/**
 * The payload's paths checked for duplicates and file/directory conflicts (as a `PathSet`
 * does) without a set of every path (~180 bytes apiece, 70 MB at 400,000): the manifest's
 * artifacts are sorted and unique (parseManifest checks it), and a bundle lists its payload in
 * the same order, so each entry is the next artifact (a binary search finds it otherwise), a
 * flag per artifact records what was seen, and sorted paths need only `SortedPaths`. A payload
 * in another order switches to a `PathSet` of what was seen so far.
 */
export class ManifestPaths implements PathTracker {
  /** Per artifact, whether the payload had it. */
  readonly found: Uint8Array;
  /** The artifact the last path added is, or -1 (not in the manifest). */
  index = -1;
  readonly #rows: ArtifactRows;
  #next = 0;
  #sorted: SortedPaths | undefined = new SortedPaths();
  #last: string | undefined;
  /** Paths not in the manifest, while sorted (few: each is a verification failure). */
  #extras: string[] = [];
  #set: PathSet | undefined;

  constructor(rows: ArtifactRows) {
    this.#rows = rows;
    this.found = new Uint8Array(rows.length);
  }

  add(path: string): PathProblem | undefined {
    const at = this.#indexOf(path);
    this.index = at;
    if (this.#sorted !== undefined) {
      const last = this.#last;
      if (last === undefined || path === last || comparePaths(path, last) > 0) {
        const problem = this.#sorted.add(path);
        if (problem === undefined) this.#accept(at, path);
        return problem;
      }
      this.#toSet();
    }
    const problem = this.#set!.add(path);
    if (problem === undefined) this.#accept(at, path);
    return problem;
  }

  #accept(at: number, path: string): void {
    this.#last = path;
    if (at !== -1) this.found[at] = 1;
    else if (this.#sorted !== undefined) this.#extras.push(path);
  }

  /** Out of order: every path seen so far goes into a set, which checks the rest. */
  #toSet(): void {
    const set = new PathSet();
    for (let i = 0; i < this.#rows.length; i++) if (this.found[i]) set.add(this.#rows.path(i));
    for (const p of this.#extras) set.add(p);
    this.#set = set;
    this.#sorted = undefined;
    this.#extras = [];
  }

  #indexOf(path: string): number {
    const rows = this.#rows;
    const next = this.#next;
    if (next < rows.length && rows.path(next) === path) return this.#next++;
    const at = lowerBoundRow(rows, path);
    if (at >= rows.length || rows.path(at) !== path) return -1;
    this.#next = at + 1;
    return at;
  }
}
