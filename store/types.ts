/**
 * The store contract: where bundles live.
 *
 * @module
 */
import type { Manifest } from "../bundle/types.ts";

/** What the store knows of one snapshot (from the catalog; mirrors the manifest). */
export interface SnapshotInfo {
  /** Snapshot id. */
  id: string;
  /** Parent snapshot id or `null`. */
  parent: string | null;
  /** Agent id. */
  agent_id: string;
  /** Tenant. */
  tenant: string;
  /** ISO 8601 creation time. */
  created_at: string;
  /** What took it. */
  created_by: string;
  /** Label or `null`. */
  label: string | null;
  /** Bundle size in bytes. */
  size: number;
  /** Local path or URL of the bundle. */
  path: string;
  /** Whether the payload is encrypted. */
  encrypted: boolean;
  /** Whether redaction ran. */
  redacted: boolean;
  /** Whether the snapshot is pinned (never pruned). */
  pinned: boolean;
}

/** Filters for {@linkcode Store.list}. All given filters must match. */
export interface ListFilter {
  /** Agent id. */
  agent?: string;
  /** Tenant. */
  tenant?: string;
  /** Exact label. */
  label?: string;
  /** Exact `created_by`. */
  createdBy?: string;
  /** Created at or after (ISO 8601). */
  since?: string;
  /** Created before (ISO 8601). */
  until?: string;
}

/** A bundle being written into the store. */
export interface PendingBundle {
  /**
   * A local temporary file path the caller writes the whole bundle to. It is never listed
   * until {@linkcode PendingBundle.commit} succeeds.
   */
  readonly path: string;
  /**
   * Makes the bundle durable and visible: fsync, rename (or upload), then the catalog row.
   *
   * @param manifest The bundle's manifest.
   * @returns The stored snapshot.
   */
  commit(manifest: Manifest): Promise<SnapshotInfo>;
  /** Discards the pending bundle. Safe to call after a failed commit. */
  abort(): Promise<void>;
}

/** A held lock on one (store, tenant, agent). */
export interface StoreLock {
  /** Releases the lock. */
  release(): Promise<void>;
}

/** Options of {@linkcode Store.lock}. */
export interface LockOptions {
  /** How long to wait for the lock, in ms (default 60 000). `0` means fail at once. */
  timeoutMs?: number;
  /** Lease length in ms after which an unrefreshed lock counts as stale (default 120 000). */
  leaseMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

/** One restore recorded in the store's audit log. */
export interface AuditRecord {
  /** ISO 8601 time. */
  at: string;
  /** `"restore"`, `"rollback"`, `"recover"`, `"delete"`, `"prune"`, ... */
  action: string;
  /** Tenant. */
  tenant: string;
  /** Agent. */
  agent_id: string;
  /** Snapshot concerned. */
  snapshot_id: string | null;
  /** `"ok"` or `"failed"` or `"rolled_back"`. */
  result: string;
  /** Extra detail (never a secret). */
  detail?: string;
  /** Host and pid. */
  host: string;
  /** Process id. */
  pid: number;
}

/** Options of {@linkcode Store.delete}. */
export interface DeleteOptions {
  /**
   * Delete even a pinned snapshot or the agent's last snapshot.
   *
   * @default {false}
   */
  force?: boolean;
}

/** Filters for {@linkcode Store.auditLog}. All given filters must match. */
export interface AuditFilter {
  /** Tenant. */
  tenant?: string;
  /** Agent id. */
  agent?: string;
  /** Action, e.g. `"restore"`. */
  action?: string;
  /** Snapshot id. */
  snapshot?: string;
  /** At or after (ISO 8601). */
  since?: string;
  /** Before (ISO 8601). */
  until?: string;
}

/** The content of a lock file or lock object: who holds it and until when. */
export interface LockOwner {
  /** Host name of the holder. */
  host: string;
  /** Process id of the holder. */
  pid: number;
  /** ISO 8601 time the lock was taken. */
  created_at: string;
  /** ISO 8601 time the lease ends unless refreshed. */
  expires_at: string;
  /** Random token identifying this holding of the lock. */
  token: string;
}

/** A held lock that also tells whether it was lost (its lease taken over by another). */
export interface HeldLock extends StoreLock, AsyncDisposable {
  /** The token written in the lock. */
  readonly token: string;
  /**
   * `true` once a refresh found the lock no longer ours (the lease expired and another
   * process took it over). Release is then a no-op.
   */
  readonly lost: boolean;
}

/**
 * A retention policy, in restic's vocabulary. Counts are non-negative integers, or `-1` for
 * unlimited. Rules are applied per (tenant, agent); a snapshot is kept if any rule keeps it.
 */
export interface RetentionPolicy {
  /** Keep the newest N snapshots. */
  keepLast?: number;
  /** Keep the newest snapshot of each of the last N hours that have one. */
  keepHourly?: number;
  /** Keep the newest snapshot of each of the last N days that have one. */
  keepDaily?: number;
  /** Keep the newest snapshot of each of the last N ISO weeks that have one. */
  keepWeekly?: number;
  /** Keep the newest snapshot of each of the last N months that have one. */
  keepMonthly?: number;
  /** Keep the newest snapshot of each of the last N years that have one. */
  keepYearly?: number;
  /**
   * Keep every snapshot within this duration of the group's newest snapshot, e.g. `"2d3h"`,
   * `"1y2m"` (units y, m, d, h).
   */
  keepWithin?: string;
  /** Keep every snapshot with one of these labels. */
  keepLabel?: string[];
  /** Alias of {@linkcode RetentionPolicy.keepLabel} (restic's word). */
  keepTag?: string[];
}

/** A calendar duration as restic writes it: `1y2m3d4h`. */
export interface Duration {
  /** Years. */
  years: number;
  /** Months. */
  months: number;
  /** Days. */
  days: number;
  /** Hours. */
  hours: number;
}

/** What `planPrune()` decided. */
export interface PrunePlan {
  /** Snapshots kept, each with the rules that keep it. */
  keep: { id: string; reasons: string[] }[];
  /** Snapshots to remove. */
  remove: SnapshotInfo[];
}

/**
 * Where bundles live: a local directory (with a SQLite catalog) or S3-compatible storage.
 * Bundles are the source of truth; the catalog can be rebuilt from them.
 */
export interface Store {
  /** The store location as the user wrote it (a directory or `s3://bucket/prefix`). */
  readonly url: string;
  /** Lists snapshots, oldest first (newest last). */
  list(filter?: ListFilter): Promise<SnapshotInfo[]>;
  /**
   * Resolves a snapshot id (or a unique prefix of one, or `latest` with an agent filter).
   *
   * @throws {NotFoundError} when nothing or more than one snapshot matches.
   */
  resolve(id: string, filter?: ListFilter): Promise<SnapshotInfo>;
  /** Reads only the manifest (first tar entry; a ranged GET on S3). */
  readManifest(id: string): Promise<Manifest>;
  /** Opens the whole bundle as a byte stream. */
  open(id: string): Promise<ReadableStream<Uint8Array>>;
  /** A local file path of the bundle if it is on local disk, else `undefined`. */
  localPath(id: string): string | undefined;
  /** Starts writing a new bundle. */
  create(tenant: string, agentId: string, snapshotId: string): Promise<PendingBundle>;
  /** Adds an existing bundle file (already verified by the caller). */
  importFile(path: string, manifest: Manifest): Promise<SnapshotInfo>;
  /**
   * Deletes a snapshot (exact id). Refuses a pinned snapshot or the agent's last snapshot
   * unless `options.force`.
   *
   * @throws {NotFoundError} when no snapshot has that id.
   * @throws {RefusedError} when pinned or the agent's last, without `force`.
   */
  delete(id: string, options?: DeleteOptions): Promise<void>;
  /** Pins or unpins a snapshot. */
  pin(id: string, pinned: boolean): Promise<void>;
  /** Takes the lock of one agent. @throws {LockedError} when held past the timeout. */
  lock(tenant: string, agentId: string, options?: LockOptions): Promise<StoreLock>;
  /**
   * A local directory for this agent's restore journals (on local disk even for remote
   * stores, since the restored state is local).
   */
  stateDir(tenant: string, agentId: string): Promise<string>;
  /** Appends to the audit log. */
  audit(record: AuditRecord): Promise<void>;
  /** Reads the audit log, oldest first. */
  auditLog(filter?: AuditFilter): Promise<AuditRecord[]>;
  /** Rebuilds the catalog from the bundles. Returns how many bundles were indexed. */
  reindex(): Promise<number>;
  /** Releases resources (catalog handle). */
  close(): Promise<void>;
}
