/**
 * The Snapshotter wires capture plugins, redaction, the bundle core and a store for one agent.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { createHash } from "node:crypto";
import os from "node:os";
import type {
  ArtifactSource,
  CapturePlugin,
  CaptureResult,
  RestorePlanEntry,
  RestoreTarget,
} from "./capture/types.ts";
import { existsSync, isNotFound } from "./capture/_util.ts";
import type { JsonValue, Manifest, ManifestArtifact, RedactionReport } from "./bundle/types.ts";
import type {
  ManifestSigner,
  ManifestVerifier,
  PayloadCipher,
  PayloadDecipher,
} from "./bundle/crypto_types.ts";
import type { ListFilter, RetentionPolicy, SnapshotInfo, Store, StoreLock } from "./store/types.ts";
import { prune } from "./store/prune.ts";
import { validateRetentionPolicy } from "./store/validate_retention_policy.ts";
import type { RulePack } from "./redact/types.ts";
import { writeBundle } from "./bundle/write_bundle.ts";
import { unchangedManifest } from "./bundle/read_manifest.ts";
import { extractBundle } from "./bundle/extract_bundle.ts";
import { rowsOf } from "./bundle/_artifact_table.ts";
import { verifyBundle, type VerifyReport } from "./bundle/verify_bundle.ts";
import { newSnapshotId } from "./bundle/new_snapshot_id.ts";
import { createRedactor } from "./redact/create_redactor.ts";
import { CancelledError, MemsnapError, NotFoundError, RefusedError, UsageError } from "./errors.ts";
import { noopProgress, type ProgressReporter } from "./progress.ts";
import { MEMSNAP_VERSION } from "./version.ts";
import type { BuiltinHooks, Hooks } from "./hooks/types.ts";
import {
  type Journal,
  JOURNAL_TMP,
  type JournalTarget,
  planTarget,
  realSwapFs,
  type RecoverResult,
  recoverSwap,
  runSwap,
  stagedPath,
  type SwapFs,
  writeJournal,
} from "./_swap.ts";
import { fileByteStream } from "./bundle/_file_stream.ts";
import { whileTrimming } from "./_malloc_trim.ts";
import { phaseEnded } from "./_gc_hint.ts";

/** Redaction settings of a Snapshotter. */
export interface RedactSettings {
  /** The rule packs to apply. */
  packs: RulePack[];
  /** The per-store HMAC key of replacement tokens. */
  key: Uint8Array;
}

/** Options of {@linkcode createSnapshotter}. */
export interface SnapshotterOptions {
  /** Where bundles live. */
  store: Store;
  /** The agent id. */
  agent: string;
  /** The tenant. @default {"default"} */
  tenant?: string;
  /** Capture plugins, in order. */
  captures: CapturePlugin[];
  /** Redaction applied to snapshots by default (never to pre-restore snapshots). */
  redact?: RedactSettings;
  /** Encrypts payloads for these recipients. */
  cipher?: PayloadCipher;
  /** Decrypts payloads (restore, verify). */
  decipher?: PayloadDecipher;
  /** Signs manifests. */
  signer?: ManifestSigner;
  /** Checks manifest signatures on verify and restore. */
  verifier?: ManifestVerifier;
  /** Refuse unsigned bundles on verify and restore. @default {false} */
  requireSignature?: boolean;
  /** Skip a snapshot whose artifacts equal the previous one's, reporting that one. @default {false} */
  skipUnchanged?: boolean;
  /** Lock wait in ms. @default {60000} */
  lockTimeoutMs?: number;
  /** The clock; `SOURCE_DATE_EPOCH` wins when set. */
  clock?: () => Date;
  /** Progress and warnings. */
  progress?: ProgressReporter;
  /** Called after each snapshot this Snapshotter takes. */
  afterSnapshot?: (result: SnapshotResult) => Promise<void>;
  /**
   * A retention policy applied to this agent after each snapshot (hooks included); pinned
   * snapshots and the newest are never removed.
   */
  retention?: RetentionPolicy;
  /** Filesystem layer of the restore swap (tests inject faults). */
  swapFs?: SwapFs;
}

/** Options of {@linkcode Snapshotter.snapshot}. */
export interface SnapshotOptions {
  /** A label. */
  label?: string;
  /** What takes the snapshot. @default {"api"} */
  createdBy?: string;
  /** Whether to redact (when the Snapshotter has redaction settings). @default {true} */
  redact?: boolean;
  /** Explicit snapshot id (deterministic builds). */
  id?: string;
  /** Explicit creation time (deterministic builds). */
  createdAt?: Date;
  /** Aborts the snapshot. */
  signal?: AbortSignal;
}

/** Result of a snapshot. */
export interface SnapshotResult {
  /** The stored snapshot (the previous one when skipped). */
  info: SnapshotInfo;
  /** Its manifest. */
  manifest: Manifest;
  /** Whether it was skipped because nothing changed. */
  skipped: boolean;
}

/** Options of {@linkcode Snapshotter.restore}. */
export interface RestoreOptions {
  /** Print the plan, change nothing. */
  dryRun?: boolean;
  /**
   * The most plan entries one plugin contributes to the result as they are; past it, its
   * entries are summarized, one per action, with a `count` and the directory they share as
   * `target` (a memory dir of 200,000 notes restored into a fresh place is one "add file"
   * entry, not 200,000). @default {1000; every entry with `dryRun`}
   */
  planLimit?: number;
  /** Do not take the pre-restore safety snapshot. @default {false} */
  noPreSnapshot?: boolean;
  /** Restore a bundle of another agent. @default {false} */
  allowAgentMismatch?: boolean;
  /** Restore a bundle of another tenant. @default {false} */
  allowTenantMismatch?: boolean;
  /** Aborts before the swap starts. */
  signal?: AbortSignal;
  /** Called after staging, just before the swap (tests inject crashes here). */
  beforeSwap?: () => Promise<void> | void;
}

/** Whether another plugin also owns one of `paths` (a loop: no closure per path). */
function sharedWith(paths: readonly string[], others: CapturePlugin[]): boolean {
  for (const path of paths) {
    for (const o of others) if (o.owns(path)) return true;
  }
  return false;
}

/** Plan entries per plugin kept as they are in a restore's result (see `planLimit`). */
const DEFAULT_PLAN_LIMIT = 1000;

/**
 * A plugin's plan entries, or past `limit` of them one summary entry per action (in the order
 * actions first appear): its `count`, and as `target` the deepest directory holding every
 * target of the action (a lone entry of an action is kept as it is; a detail is kept when all
 * the action's entries have the same one).
 */
export function summarizePlan(entries: RestorePlanEntry[], limit: number): RestorePlanEntry[] {
  if (entries.length <= limit) return entries;
  const groups = new Map<
    string,
    { first: RestorePlanEntry; dir: string; count: number; detail: string | undefined }
  >();
  for (const e of entries) {
    const g = groups.get(e.action);
    if (g === undefined) {
      groups.set(e.action, { first: e, dir: e.target, count: 1, detail: e.detail });
      continue;
    }
    g.count++;
    g.dir = commonDir(g.dir, e.target);
    if (g.detail !== e.detail) g.detail = undefined;
  }
  return [...groups.values()].map((g) =>
    g.count === 1 ? g.first : {
      target: g.dir,
      action: g.first.action,
      ...(g.detail === undefined ? {} : { detail: g.detail }),
      count: g.count,
    }
  );
}

/** The deepest directory holding both paths (`/` for absolute paths with nothing in common). */
function commonDir(a: string, b: string): string {
  if (a === b) return a;
  let i = 0;
  const n = Math.min(a.length, b.length);
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // Back to the last separator within the common part, unless one path ends there and the
  // other goes on into it (`/m/notes` and `/m/notes/a.md` share `/m/notes`).
  if (i === n && (a.length === n ? b[n] === "/" : a[n] === "/")) return a.length === n ? a : b;
  const cut = a.lastIndexOf("/", i - 1);
  return cut <= 0 ? "/" : a.slice(0, cut);
}

/** Result of a restore. */
export interface RestoreResult {
  /** The restored snapshot id. */
  snapshotId: string;
  /** The pre-restore safety snapshot, if one was taken. */
  preSnapshot: SnapshotInfo | null;
  /** What changed (or would change with `dryRun`). */
  plan: RestorePlanEntry[];
  /** Where old state was kept. */
  aside: string[];
  /** Whether this was a dry run. */
  dryRun: boolean;
}

/** Events memsnap reports for runtimes to observe. */
export type SnapshotterEvent =
  | { type: "snapshot-created"; info: SnapshotInfo; manifest: Manifest; skipped: boolean }
  | { type: "snapshot-failed"; createdBy: string; error: unknown }
  | { type: "restored"; snapshotId: string; preSnapshotId: string | null }
  | { type: "restore-failed"; snapshotId: string; error: unknown }
  | { type: "recovered"; outcome: RecoverResult["outcome"]; snapshotId: string | null };

/** Per-hook settings of {@linkcode Snapshotter.attach}. */
export interface AttachHookOptions {
  /** Take a snapshot on this hook. @default {true} */
  enabled?: boolean;
  /** Redact this hook's snapshots (never for `pre-restore`). @default {true when configured} */
  redact?: boolean;
  /** Label of this hook's snapshots. */
  label?: string;
  /** Handler timeout in ms (default: the hook's policy). */
  timeoutMs?: number;
}

/** Options of {@linkcode Snapshotter.attach}. */
export interface AttachOptions {
  /** `pre-dream`: a snapshot before a dream pass rewrites memory. */
  preDream?: AttachHookOptions;
  /** `pre-restore`: an unredacted safety snapshot; fail-closed (its failure blocks the restore). */
  preRestore?: AttachHookOptions;
  /** `pre-compaction`: a snapshot before context compaction. */
  preCompaction?: AttachHookOptions;
  /** `shutdown`: a final snapshot within the shutdown deadline. */
  shutdown?: AttachHookOptions;
  /** `scheduled`: a periodic snapshot. */
  scheduled?: AttachHookOptions;
  /** Plugin name the handlers register under. @default {"memsnap"} */
  plugin?: string;
}

/** A Snapshotter for one agent. */
export interface Snapshotter {
  /** The agent id. */
  readonly agent: string;
  /** The tenant. */
  readonly tenant: string;
  /** The store. */
  readonly store: Store;
  /** Takes a snapshot. Concurrent calls in one process share the one in flight. */
  snapshot(options?: SnapshotOptions): Promise<SnapshotResult>;
  /** Restores a snapshot (id, unique prefix, `latest`, or a bundle file path). */
  restore(ref: string, options?: RestoreOptions): Promise<RestoreResult>;
  /** Lists this agent's snapshots, oldest first. */
  list(filter?: Omit<ListFilter, "agent" | "tenant">): Promise<SnapshotInfo[]>;
  /** Verifies a bundle (id, prefix, `latest`, or file path). */
  verify(ref: string): Promise<VerifyReport>;
  /** Completes or rolls back an interrupted restore of this agent. */
  recover(): Promise<RecoverResult>;
  /** Observes memsnap's own events. Returns an unsubscribe function. */
  on(listener: (event: SnapshotterEvent) => void): () => void;
  /**
   * Registers snapshot handlers on a runtime's hooks: `pre-dream`, `pre-restore` (unredacted
   * safety snapshot), `pre-compaction`, `shutdown` (final snapshot within the deadline) and
   * `scheduled`. Returns a function that unregisters them all.
   */
  attach<H extends BuiltinHooks>(hooks: Hooks<H>, options?: AttachOptions): () => void;
}

/**
 * Test-only: `MEMSNAP_TEST_SWAP_DELAY_MS` (read once, at load) slows the restore swap down:
 * a pause after each journal write and each rename of the default swap filesystem, so crash
 * tests can SIGKILL a process inside the swap window. Unset (the default) changes nothing.
 */
const TEST_SWAP_DELAY_MS: number = (() => {
  try {
    const v = Number(Deno.env.get("MEMSNAP_TEST_SWAP_DELAY_MS") ?? "");
    return Number.isFinite(v) && v > 0 ? v : 0;
  } catch {
    return 0; // no env permission
  }
})();

function delayedSwapFs(fs: SwapFs, ms: number): SwapFs {
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, ms));
  return {
    ...fs,
    rename: async (from, to) => {
      await fs.rename(from, to);
      await pause();
    },
    writeFileAtomic: async (path, data) => {
      await fs.writeFileAtomic(path, data);
      await pause();
    },
  };
}

/** Time from `SOURCE_DATE_EPOCH` if set and valid. */
export function sourceDateEpoch(): Date | undefined {
  const v = Deno.env.get("SOURCE_DATE_EPOCH");
  if (v === undefined || v === "") return undefined;
  if (!/^\d+$/.test(v)) {
    throw new UsageError(`Cannot use SOURCE_DATE_EPOCH: "${v}" is not a whole number of seconds`);
  }
  return new Date(Number(v) * 1000);
}

/**
 * Restore reads a local bundle in chunks of this size when read by a default reader: the 64
 * KiB chunks of `FsFile.readable` cost a read op and a stream step each (extracting the 165 MiB
 * fixture: 2.25 -> 2.12 CPU-s, medians of 5 alternating runs, load 4). The bundle reader reads
 * it with a BYOB reader into its own reused buffer, whose size sets the reads.
 */
const RESTORE_READ_SIZE = 256 << 10;

/**
 * Opens a bundle reference as a stream: a file path, or an id/prefix/`latest` in the store.
 * `readSize` sets the chunk size of a local file (default: `FsFile.readable`'s).
 */
export async function openBundleRef(
  store: Store,
  ref: string,
  filter: ListFilter = {},
  readSize?: number,
): Promise<{ stream: ReadableStream<Uint8Array>; info: SnapshotInfo | undefined; path: string }> {
  const streamOf = (file: Deno.FsFile): ReadableStream<Uint8Array> =>
    readSize === undefined ? file.readable : fileByteStream(file, readSize);
  if (ref.includes("/") || ref.endsWith(".msnap")) {
    const path = resolve(ref);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new NotFoundError(`Cannot open the bundle: ${path} does not exist`);
      }
      throw e;
    }
    return { stream: streamOf(file), info: undefined, path };
  }
  // Filters only disambiguate `latest`; an explicit id or prefix names one snapshot anywhere.
  const info = await store.resolve(ref, ref === "latest" ? filter : {});
  const local = store.localPath(info.id);
  if (local) {
    const file = await Deno.open(local, { read: true });
    return { stream: streamOf(file), info, path: local };
  }
  return { stream: await store.open(info.id), info, path: info.path };
}

const EMPTY_REPORT: RedactionReport = { redacted: false, packs: [], rules: [], skipped_binary: [] };

/**
 * Creates a Snapshotter for one agent.
 *
 * @param options Store, agent, capture plugins, redaction, keys.
 * @returns The Snapshotter.
 */
export function createSnapshotter(options: SnapshotterOptions): Snapshotter {
  const tenant = options.tenant ?? "default";
  const agent = options.agent;
  validateName("agent", agent);
  validateName("tenant", tenant);
  const store = options.store;
  const progress = options.progress ?? noopProgress;
  const swapFs = options.swapFs ??
    (TEST_SWAP_DELAY_MS > 0 ? delayedSwapFs(realSwapFs, TEST_SWAP_DELAY_MS) : realSwapFs);
  if (options.retention) validateRetentionPolicy(options.retention);
  const listeners = new Set<(e: SnapshotterEvent) => void>();
  let inFlight: Promise<SnapshotResult> | undefined;
  let exclusive: Promise<unknown> = Promise.resolve();

  const emit = (e: SnapshotterEvent): void => {
    for (const l of listeners) {
      try {
        l(e);
      } catch {
        // A listener's failure is not the snapshot's.
      }
    }
  };

  /** Runs `fn` exclusively within this process. */
  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = exclusive.then(fn, fn);
    exclusive = run.catch(() => {});
    return run;
  };

  const withLock = async <T>(fn: (lock: StoreLock) => Promise<T>): Promise<T> => {
    const lock = await store.lock(tenant, agent, { timeoutMs: options.lockTimeoutMs ?? 60_000 });
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  };

  const recoverLocked = async (): Promise<RecoverResult> => {
    const stateDir = await store.stateDir(tenant, agent);
    const r = await recoverSwap(swapFs, stateDir, async (jj) => {
      await keepAbsentFiles(jj);
    });
    // A restore killed before it could clean up leaves its extraction here, as large as the
    // snapshot, and a snapshot its capture staging (copies of databases, redacted files).
    // Nothing reads them again (a restore's staging is beside the targets, its state in the
    // journal), and under the lock no restore or snapshot of this agent is running.
    const stale = await removeStaleWork(stateDir);
    if (stale > 0) {
      progress.warn(
        `Removed what ${stale} interrupted restore(s) or snapshot(s) of this agent left behind`,
      );
    }
    if (r.outcome !== "none" && r.journal) {
      await store.audit({
        at: new Date().toISOString(),
        action: "recover",
        tenant,
        agent_id: agent,
        snapshot_id: r.journal.snapshot_id,
        result: r.outcome,
        detail: `interrupted restore ${r.journal.restore_id} ${r.outcome.replace("_", " ")}`,
        host: os.hostname(),
        pid: Deno.pid,
      });
      emit({ type: "recovered", outcome: r.outcome, snapshotId: r.journal.snapshot_id });
      progress.warn(
        `Recovered an interrupted restore of ${r.journal.snapshot_id}: ${
          r.outcome.replace("_", " ")
        }`,
      );
    }
    return r;
  };

  const snapshotLocked = async (opts: SnapshotOptions): Promise<SnapshotResult> => {
    const createdBy = opts.createdBy ?? "api";
    const signal = opts.signal ?? new AbortController().signal;
    const createdAt = opts.createdAt ?? sourceDateEpoch() ??
      (options.clock ?? (() => new Date()))();
    const previous = (await store.list({ agent, tenant })).at(-1);
    const useRedact = opts.redact !== false && options.redact !== undefined;
    const redactor = useRedact
      ? createRedactor({ packs: options.redact!.packs, key: options.redact!.key })
      : undefined;
    // The capture's staging dir, in the system's temp dir, noted first in the state dir: a
    // snapshot killed before its clean-up (below) leaves the note, and recovery removes both.
    const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    const staging = join(os.tmpdir(), STAGING_PREFIX + suffix);
    const stagingMarker = join(await store.stateDir(tenant, agent), STAGING_MARKER + suffix);
    await Deno.writeTextFile(stagingMarker, staging);
    try {
      await Deno.mkdir(staging, { mode: 0o700 });
    } catch (e) {
      await Deno.remove(stagingMarker).catch(() => {});
      throw e;
    }
    /** What captures keep for their artifacts until the bundle is written (see release). */
    const releases: (() => Promise<void> | void)[] = [];
    try {
      // Plugins capture concurrently: one plugin's file and database I/O (thread pool) and
      // SQLite's copy overlap another's CPU work. Results are taken in plugin order, and the
      // artifacts are sorted by path below, so the bundle does not depend on timing. The first
      // failure aborts the others, and all of them have ended before staging is removed.
      const captures: Record<string, JsonValue> = {};
      const captureAbort = new AbortController();
      const onAbort = (): void => captureAbort.abort(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      // The failure that came first is the one reported: the others were cancelled by it.
      let firstError: unknown;
      const runCapture = async (plugin: CapturePlugin) => {
        try {
          if (captureAbort.signal.aborted) {
            throw new CancelledError("Cannot take the snapshot: cancelled");
          }
          const dir = join(staging, plugin.name);
          await Deno.mkdir(dir);
          return await plugin.capture({
            staging: dir,
            redactor,
            signal: captureAbort.signal,
            progress,
          });
        } catch (e) {
          const error = e instanceof MemsnapError ? e : new MemsnapError(
            `Cannot capture with plugin "${plugin.name}": ${(e as Error)?.message ?? e}`,
            { cause: e },
          );
          if (!captureAbort.signal.aborted) {
            firstError = error;
            captureAbort.abort(error);
          }
          throw error;
        }
      };
      let settled: PromiseSettledResult<CaptureResult>[] | undefined;
      try {
        settled = await Promise.allSettled(options.captures.map(runCapture));
      } finally {
        signal.removeEventListener("abort", onAbort);
      }
      for (const s of settled) {
        if (s.status === "fulfilled" && s.value.release) {
          const r = s.value;
          releases.push(() => r.release!());
        }
      }
      if (settled.some((s) => s.status === "rejected")) {
        if (signal.aborted) throw new CancelledError("Cannot take the snapshot: cancelled");
        throw firstError;
      }
      const artifacts = collectArtifacts(options.captures, settled, captures);
      // The captures' listings and walks are garbage now (see _gc_hint.ts).
      phaseEnded();
      settled = undefined;
      const id = opts.id ?? newSnapshotId(
        createdAt,
        sourceDateEpoch() || opts.createdAt
          ? idSuffix([tenant, agent, createdBy, opts.label ?? null], artifacts)
          : undefined,
      );
      const pending = await store.create(tenant, agent, id);
      let manifest: Manifest;
      let unchanged: Manifest | undefined;
      try {
        manifest = await writeBundle(
          pending.path,
          {
            snapshot_id: id,
            agent_id: agent,
            tenant,
            label: opts.label ?? null,
            created_at: createdAt.toISOString(),
            created_by: createdBy,
            parent: previous?.id ?? null,
            captures,
            redaction: redactor ? redactor.report() : EMPTY_REPORT,
            tools: { memsnap: MEMSNAP_VERSION, deno: Deno.version.deno },
          },
          // Emptied as it is read: the writer then lets go of each artifact once packed.
          drain(artifacts),
          {
            ...(options.cipher ? { cipher: options.cipher } : {}),
            ...(options.signer ? { signer: options.signer } : {}),
            signal,
            progress,
            // The store fsyncs the bundle when it commits it: start the writeback early.
            flushEvery: 16 << 20,
          },
        );
        // Compared as it streams in; the previous manifest is not parsed beside the new one:
        // when they agree, it is the new one's artifact list with the previous one's header.
        if (options.skipUnchanged && previous) {
          unchanged = await unchangedManifest(await store.open(previous.id), manifest);
        }
      } catch (e) {
        await pending.abort();
        throw e;
      }
      if (unchanged && unchanged.snapshot_id === previous!.id) {
        await pending.abort();
        return { info: previous!, manifest: unchanged, skipped: true };
      }
      const info = await pending.commit(manifest);
      return { info, manifest, skipped: false };
    } finally {
      for (const release of releases) await Promise.resolve().then(release).catch(() => {});
      await Deno.remove(staging, { recursive: true }).catch(() => {});
      await Deno.remove(stagingMarker).catch(() => {});
    }
  };

  const snapshot = (opts: SnapshotOptions = {}): Promise<SnapshotResult> => {
    if (inFlight) return inFlight;
    const p = serialize(() =>
      withLock(() =>
        whileTrimming(async () => {
          await recoverLocked();
          return await snapshotLocked(opts);
        })
      )
    ).then(async (r) => {
      emit({ type: "snapshot-created", info: r.info, manifest: r.manifest, skipped: r.skipped });
      if (options.retention && !r.skipped) {
        try {
          await prune(store, options.retention, { filter: { agent, tenant } });
        } catch (e) {
          progress.warn(`Cannot apply the retention policy: ${(e as Error)?.message ?? e}`);
        }
      }
      if (options.afterSnapshot) await options.afterSnapshot(r);
      return r;
    }, (error) => {
      emit({ type: "snapshot-failed", createdBy: opts.createdBy ?? "api", error });
      throw error;
    });
    inFlight = p;
    const clear = (): void => {
      if (inFlight === p) inFlight = undefined;
    };
    p.then(clear, clear);
    return p;
  };

  const restoreLocked = async (ref: string, opts: RestoreOptions): Promise<RestoreResult> => {
    const signal = opts.signal ?? new AbortController().signal;
    const stateDir = await store.stateDir(tenant, agent);
    const restoreId = `${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
    const work = join(stateDir, `restore-${restoreId}`);
    await Deno.mkdir(work, { recursive: true });
    let payloadDir = join(work, "payload");
    let journal: Journal | undefined;
    try {
      payloadDir = await payloadDirFor(
        work,
        restoreId,
        options.captures.find((p) => p.restoresInto !== undefined)?.restoresInto,
      );
      // 1. Gates, from the manifest alone, before the payload is read: a bundle of another
      //    agent, or one a plugin refuses, is refused at once rather than after its extraction
      //    (75 s for a memory of 200,000 notes).
      let involved: CapturePlugin[] = [];
      const gates = (manifest: Manifest): void => {
        const reasons: string[] = [];
        if (manifest.agent_id !== agent && !opts.allowAgentMismatch) {
          reasons.push(
            `the bundle belongs to agent "${manifest.agent_id}", not "${agent}" (use --allow-agent-mismatch to override)`,
          );
        }
        if (manifest.tenant !== tenant && !opts.allowTenantMismatch) {
          reasons.push(
            `the bundle belongs to tenant "${manifest.tenant}", not "${tenant}" (use --allow-tenant-mismatch to override)`,
          );
        }
        // By rows: the artifact entries of a large manifest are made only after the
        // extraction, which holds the compact list alone (see ArtifactTable).
        const rows = rowsOf(manifest);
        const owning = new Set<CapturePlugin>();
        let orphans = 0;
        let orphan: string | undefined;
        for (let i = 0; i < rows.length; i++) {
          const path = rows.path(i);
          let owned = false;
          for (const p of options.captures) {
            if (p.owns(path)) {
              owning.add(p);
              owned = true;
            }
          }
          if (!owned && orphans++ === 0) orphan = path;
        }
        involved = options.captures.filter((p) => p.name in manifest.captures || owning.has(p));
        for (const p of involved) for (const r of p.check?.(manifest) ?? []) reasons.push(r);
        if (orphans > 0) {
          reasons.push(
            `no configured capture plugin restores ${orphans} artifact(s), e.g. "${orphan}"`,
          );
        }
        if (reasons.length > 0) {
          throw new RefusedError(`Cannot restore ${manifest.snapshot_id}: ${reasons.join("; ")}`);
        }
      };
      // 2. Verify everything: extraction checks every hash, nothing missing or extra.
      const { stream } = await openBundleRef(store, ref, { agent, tenant }, RESTORE_READ_SIZE);
      const manifest = await extractBundle(stream, payloadDir, {
        ...(options.decipher ? { decipher: options.decipher } : {}),
        ...(options.verifier ? { verifier: options.verifier } : {}),
        ...(options.requireSignature ? { requireSignature: true } : {}),
        signal,
        progress,
        onManifest: gates,
      });
      // Each phase below makes and drops a large set of objects at 200,000 notes: the
      // extraction's, the plans', each plugin's entries (see _gc_hint.ts).
      phaseEnded();
      // Each plugin gets entries for its own artifacts, made from the manifest's compact table
      // (see ArtifactTable) when it plans and again when it restores, and let go after: not
      // an entry per artifact for the whole restore (~136 bytes each; at 200,000 notes the
      // memory dir's 27 MB stayed through the git history's restore, its peak).
      const rows = rowsOf(manifest);
      /** The plugin's artifacts: paths now, entries made when the plugin first reads them. */
      const ownedBy = (
        p: CapturePlugin,
      ): { readonly artifacts: ManifestArtifact[]; artifactPaths: string[] } => {
        const at: number[] = [];
        const artifactPaths: string[] = [];
        for (let i = 0; i < rows.length; i++) {
          const path = rows.path(i);
          if (p.owns(path)) {
            at.push(i);
            artifactPaths.push(path);
          }
        }
        let made: ManifestArtifact[] | undefined;
        return {
          get artifacts(): ManifestArtifact[] {
            return made ??= at.map((i) => rows.entry(i));
          },
          artifactPaths,
        };
      };
      const plan: RestorePlanEntry[] = [];
      const planLimit = opts.planLimit ?? (opts.dryRun ? Infinity : DEFAULT_PLAN_LIMIT);
      for (const p of involved) {
        if (p.plan) {
          const owned = ownedBy(p);
          const entries = await p.plan({
            manifest,
            get artifacts(): ManifestArtifact[] {
              return owned.artifacts;
            },
            artifactPaths: owned.artifactPaths,
            payloadDir,
            signal,
            progress,
          });
          // One push per entry: spread as arguments, a plan of ~120,000 files or more (one
          // entry per file) overflows the call stack.
          for (const e of summarizePlan(entries, planLimit)) plan.push(e);
        }
      }
      phaseEnded();
      if (opts.dryRun) {
        return {
          snapshotId: manifest.snapshot_id,
          preSnapshot: null,
          plan,
          aside: [],
          dryRun: true,
        };
      }
      // 3. Safety snapshot of the current state, never redacted.
      let preSnapshot: SnapshotInfo | null = null;
      if (!opts.noPreSnapshot) {
        try {
          preSnapshot =
            (await snapshotLocked({ createdBy: "pre-restore", redact: false, signal })).info;
        } catch (e) {
          throw new RefusedError(
            `Cannot restore ${manifest.snapshot_id}: the pre-restore safety snapshot failed (${
              (e as Error)?.message ?? e
            }); fix it or pass --no-pre-snapshot`,
            { cause: e },
          );
        }
      }
      // 4. Stage every artifact next to its target, under a journal.
      journal = {
        version: 1,
        restore_id: restoreId,
        tenant,
        agent_id: agent,
        snapshot_id: manifest.snapshot_id,
        pre_snapshot_id: preSnapshot?.id ?? null,
        started_at: new Date().toISOString(),
        phase: "staging",
        keep_old: preSnapshot === null,
        targets: [],
      };
      await writeJournal(swapFs, stateDir, journal);
      const j = journal;
      const stage = async (target: RestoreTarget): Promise<string> => {
        if (!isAbsolute(target.path)) {
          throw new TypeError(`Cannot stage ${target.path}: path must be absolute`);
        }
        const existing = j.targets.find((t) => t.path === target.path);
        if (existing) {
          if (existing.type !== target.type) {
            throw new TypeError(
              `Cannot stage ${target.path}: staged both as ${existing.type} and ${target.type}`,
            );
          }
          return stagedPath(existing);
        }
        const planned = planTarget(target, restoreId, j.targets.length);
        const t: JournalTarget = { ...planned, existed: await swapFs.exists(target.path) };
        j.targets.push(t);
        await writeJournal(swapFs, stateDir, j);
        await Deno.mkdir(t.stageDir, { recursive: true });
        if (t.type === "dir") await Deno.mkdir(stagedPath(t));
        return stagedPath(t);
      };
      for (const p of involved) {
        const owned = ownedBy(p);
        await p.restore({
          manifest,
          get artifacts(): ManifestArtifact[] {
            return owned.artifacts;
          },
          artifactPaths: owned.artifactPaths,
          payloadDir,
          // The payload dir is this restore's own extraction: a plugin may move out what only
          // it owns.
          payloadMovable: !sharedWith(owned.artifactPaths, involved.filter((o) => o !== p)),
          stage,
          signal,
          progress,
        });
        phaseEnded();
      }
      if (signal.aborted) throw new CancelledError("Cannot restore: cancelled before the swap");
      if (opts.beforeSwap) await opts.beforeSwap();
      // 5. Swap; any failure rolls every target back.
      const absentAside: string[] = [];
      const swapped = await runSwap(swapFs, stateDir, journal, async (jj) => {
        for (const f of await keepAbsentFiles(jj)) absentAside.push(f);
      });
      journal = undefined;
      await store.audit({
        at: new Date().toISOString(),
        action: "restore",
        tenant,
        agent_id: agent,
        snapshot_id: manifest.snapshot_id,
        result: "ok",
        detail: `pre-restore snapshot ${preSnapshot?.id ?? "none"}; ${plan.length} change(s)`,
        host: os.hostname(),
        pid: Deno.pid,
      });
      return {
        snapshotId: manifest.snapshot_id,
        preSnapshot,
        plan,
        aside: [...absentAside, ...swapped.aside],
        dryRun: false,
      };
    } catch (e) {
      if (journal) {
        // Failed while staging: nothing live was touched; drop staging and the journal.
        await recoverSwap(swapFs, stateDir, async (jj) => {
          await keepAbsentFiles(jj);
        }).catch(() => {});
      }
      await store.audit({
        at: new Date().toISOString(),
        action: "restore",
        tenant,
        agent_id: agent,
        snapshot_id: ref,
        result: "failed",
        detail: (e as Error)?.message ?? String(e),
        host: os.hostname(),
        pid: Deno.pid,
      }).catch(() => {});
      throw e;
    } finally {
      if (dirname(payloadDir) !== work) {
        await Deno.remove(payloadDir, { recursive: true }).catch(() => {});
      }
      await Deno.remove(work, { recursive: true }).catch(() => {});
    }
  };

  return {
    agent,
    tenant,
    store,
    snapshot,
    restore(ref: string, opts: RestoreOptions = {}): Promise<RestoreResult> {
      return serialize(() =>
        withLock(() =>
          whileTrimming(async () => {
            await recoverLocked();
            return await restoreLocked(ref, opts);
          })
        )
      ).then((r) => {
        if (!r.dryRun) {
          emit({
            type: "restored",
            snapshotId: r.snapshotId,
            preSnapshotId: r.preSnapshot?.id ?? null,
          });
        }
        return r;
      }, (error) => {
        emit({ type: "restore-failed", snapshotId: ref, error });
        throw error;
      });
    },
    list(filter = {}): Promise<SnapshotInfo[]> {
      return store.list({ ...filter, agent, tenant });
    },
    verify(ref: string): Promise<VerifyReport> {
      return whileTrimming(async () => {
        const { stream } = await openBundleRef(store, ref, { agent, tenant });
        return await verifyBundle(stream, {
          ...(options.decipher ? { decipher: options.decipher } : {}),
          ...(options.verifier ? { verifier: options.verifier } : {}),
          ...(options.requireSignature ? { requireSignature: true } : {}),
          progress,
        });
      });
    },
    recover(): Promise<RecoverResult> {
      return serialize(() => withLock(() => recoverLocked()));
    },
    on(listener: (event: SnapshotterEvent) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    attach<H extends BuiltinHooks>(hooks: Hooks<H>, attachOptions: AttachOptions = {}): () => void {
      const plugin = attachOptions.plugin ?? "memsnap";
      const offs: (() => void)[] = [];
      const table: [keyof BuiltinHooks, AttachHookOptions | undefined, boolean][] = [
        ["pre-dream", attachOptions.preDream, true],
        ["pre-restore", attachOptions.preRestore, false],
        ["pre-compaction", attachOptions.preCompaction, true],
        ["shutdown", attachOptions.shutdown, true],
        ["scheduled", attachOptions.scheduled, true],
      ];
      for (const [name, o, mayRedact] of table) {
        if (o?.enabled === false) continue;
        const handler = async (
          ctx: { signal?: AbortSignal; deadline?: number },
          signal: AbortSignal,
        ) => {
          const signals = [signal, ...(ctx.signal ? [ctx.signal] : [])];
          await snapshot({
            createdBy: name,
            redact: mayRedact && o?.redact !== false,
            ...(o?.label ? { label: o.label } : {}),
            signal: AbortSignal.any(signals),
          });
        };
        const timeout = o?.timeoutMs;
        offs.push(
          (hooks as Hooks).on(name, handler, {
            plugin,
            ...(timeout !== undefined ? { timeout } : {}),
          }),
        );
      }
      return () => {
        for (const off of offs.splice(0)) off();
      };
    },
  };
}

/**
 * Every capture's artifacts, sorted by path (a path produced twice is refused), with each
 * plugin's meta put in `captures`. A function of its own so that the plugins' results, and
 * their arrays of artifacts, are not kept by the snapshot while the bundle is written.
 */
function collectArtifacts(
  plugins: readonly CapturePlugin[],
  settled: readonly PromiseSettledResult<CaptureResult>[],
  captures: Record<string, JsonValue>,
): ArtifactSource[] {
  const artifacts: ArtifactSource[] = [];
  for (const [i, plugin] of plugins.entries()) {
    const result = (settled[i] as PromiseFulfilledResult<CaptureResult>).value;
    for (const a of result.artifacts) artifacts.push(a);
    captures[plugin.name] = result.meta ?? null;
  }
  artifacts.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Sorted, a path produced twice is next to itself (no set of every path: ~30 bytes each).
  for (let i = 1; i < artifacts.length; i++) {
    if (artifacts[i]!.path === artifacts[i - 1]!.path) {
      throw new UsageError(
        `Cannot take the snapshot: artifact path "${artifacts[i]!.path}" is produced twice`,
      );
    }
  }
  return artifacts;
}

/** The id suffix of a reproducible snapshot: a hash of who took it and of every path and size. */
function idSuffix(who: JsonValue[], artifacts: readonly ArtifactSource[]): string {
  return createHash("sha256")
    .update(JSON.stringify([...who, artifacts.map((a) => [a.path, a.size])]))
    .digest("hex").slice(0, 8);
}

/** Yields `items` in order, then empties the array, so that only the consumer holds them. */
function* drain<T>(items: T[]): Generator<T> {
  for (const item of items) yield item;
  items.length = 0;
}

/** A restore's work directory in the state dir: `restore-<ms in base 36>-<8 hex>`. */
const WORK_DIR = /^restore-[0-9a-z]+-[0-9a-f]{8}$/;
/**
 * A restore's payload dir when it is not in its work dir: `.memsnap-payload-<restore id>`, next
 * to what the first plugin restores into; named by a file `payload-dir` in the work dir.
 */
const PAYLOAD_PREFIX = ".memsnap-payload-";
const PAYLOAD_MARKER = "payload-dir";

/**
 * Where a restore extracts its payload: in its work dir (`work/payload`), or next to `near`
 * (what the first plugin restores into) when that is on another filesystem than the work dir,
 * so that plugins move the extracted files into staging (one rename each, or one per top-level
 * entry) instead of copying each one: restoring the 100 MiB fixture's memory from a store on
 * another filesystem took 1.59 s so against 0.74 s from one on the same. The marker is written
 * before the dir is made, so that recovery removes the dir after a crash; anything that fails
 * (no parent yet, not writable) keeps the payload in the work dir.
 */
async function payloadDirFor(
  work: string,
  restoreId: string,
  near: string | undefined,
): Promise<string> {
  const inWork = join(work, "payload");
  if (near === undefined) return inWork;
  const parent = dirname(resolve(near));
  try {
    if (Deno.statSync(parent).dev === Deno.statSync(work).dev) return inWork;
    const dir = join(parent, PAYLOAD_PREFIX + restoreId);
    await Deno.writeTextFile(join(work, PAYLOAD_MARKER), dir);
    await Deno.mkdir(dir, { mode: 0o700 });
    return dir;
  } catch {
    return inWork;
  }
}

/** A snapshot's capture staging dir, in the system's temp dir: `memsnap-capture-<suffix>`. */
const STAGING_PREFIX = "memsnap-capture-";
/**
 * A snapshot's note of its staging dir in the state dir, `staging-<suffix>` holding the path,
 * removed with it: one left behind names the staging dir of a snapshot that was killed.
 */
const STAGING_MARKER = "staging-";

/**
 * Removes what killed restores and snapshots of this agent left (run under its lock, when
 * none of them can be running, and after the journal's recovery): restores' work dirs (and the
 * payload dirs their markers name) and journal writes cut short in `stateDir`, and the staging
 * dirs that snapshots' markers there name (only a directory whose name matches its marker's, so a damaged marker cannot name
 * anything else). Returns how many were removed.
 */
async function removeStaleWork(stateDir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(stateDir)) {
    const path = join(stateDir, e.name);
    if (e.isDirectory && WORK_DIR.test(e.name)) {
      // Its payload dir first, when it was extracted elsewhere (only a dir of the name it must
      // have, so that a damaged marker cannot name anything else).
      const payload = (await Deno.readTextFile(join(path, PAYLOAD_MARKER)).catch(() => "")).trim();
      if (
        isAbsolute(payload) &&
        basename(payload) === PAYLOAD_PREFIX + e.name.slice("restore-".length)
      ) {
        await Deno.remove(payload, { recursive: true }).catch((err) => {
          if (!isNotFound(err)) throw err;
        });
      }
      await Deno.remove(path, { recursive: true });
      n++;
    } else if (e.isFile && JOURNAL_TMP.test(e.name)) {
      await Deno.remove(path);
    } else if (e.isFile && e.name.startsWith(STAGING_MARKER)) {
      const suffix = e.name.slice(STAGING_MARKER.length);
      const staging = (await Deno.readTextFile(path).catch(() => "")).trim();
      if (
        suffix !== "" && isAbsolute(staging) && basename(staging) === STAGING_PREFIX + suffix
      ) {
        const gone = await Deno.remove(staging, { recursive: true }).then(() => true, (err) => {
          if (isNotFound(err)) return false;
          throw err;
        });
        if (gone) n++;
      }
      await Deno.remove(path);
    }
  }
  return n;
}

/**
 * When a pre-restore snapshot holds the old state, old dirs are removed after commit, except
 * memory-dir files absent from the restored snapshot: those are kept aside (never deleted).
 */
async function keepAbsentFiles(j: Journal): Promise<string[]> {
  const kept: string[] = [];
  if (j.keep_old) return kept; // everything is kept anyway
  for (const t of j.targets) {
    if (t.type !== "dir") continue;
    const oldRoot = join(t.oldDir, "t");
    const absent: string[] = [];
    // Synchronous calls: one async readDir and lstat per file cost 1.8-2.5 s for the 36,182
    // files of the 1 GiB fixture's memory dir, these 0.43-0.49 s. Paths below the roots are
    // joined by concatenation (directory entry names are single path segments).
    const walk = (dir: string, rel: string): void => {
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(dir)];
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) return;
        throw e;
      }
      for (const e of entries) {
        const r = rel === "" ? e.name : `${rel}/${e.name}`;
        if (r === ".git") continue; // history is in the pre-restore snapshot
        if (e.isDirectory) walk(`${dir}/${e.name}`, r);
        else if (!existsSync(`${t.path}/${r}`)) absent.push(r);
      }
    };
    walk(oldRoot, "");
    if (absent.length === 0) continue;
    const dest = join(
      dirname(t.path),
      ".memsnap-aside",
      j.restore_id,
      relative(dirname(t.path), t.path),
    );
    for (const rel of absent) {
      await Deno.mkdir(dirname(join(dest, rel)), { recursive: true });
      await Deno.rename(join(oldRoot, rel), join(dest, rel));
    }
    kept.push(dest);
  }
  return kept;
}

/** The store's rule for names that become path segments and object keys (store/_names.ts). */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,127}$/;

/** Validates an agent or tenant name, early, with the same rule the store applies. */
export function validateName(what: string, value: string): void {
  if (!NAME_RE.test(value) || value.includes("..")) {
    throw new UsageError(
      `Cannot use ${what} "${value}": use 1-128 letters, digits and ._@+=-, starting with a letter or digit`,
    );
  }
}
