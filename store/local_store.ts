// Copyright memsnap authors. MIT license.
/**
 * The local directory store with its SQLite catalog.
 *
 * @module
 */
import { dirname, join, resolve as resolvePath } from "node:path";
import { NotFoundError, RefusedError } from "../errors.ts";
import type { Manifest } from "../bundle/types.ts";
import type {
  AuditFilter,
  AuditRecord,
  DeleteOptions,
  HeldLock,
  ListFilter,
  LockOptions,
  PendingBundle,
  SnapshotInfo,
  Store,
} from "./types.ts";
import { Catalog, type CatalogRow, rowOf } from "./_catalog.ts";
import { checkManifest, pendingBundle } from "./_pending.ts";
import { checkName, describeAgent, isName, randomHex } from "./_names.ts";
import { readManifestFile } from "./_read_manifest.ts";
import { lockFile } from "./lock_file.ts";
import { matchesAudit, resolveIn } from "./_resolve.ts";

/** Options of {@linkcode LocalStore.open}. */
export interface LocalStoreOptions {
  /**
   * How long a catalog write waits for another process's write, in ms.
   *
   * @default {15000}
   */
  busyTimeoutMs?: number;
}

const PARTIAL_MAX_AGE_MS = 60 * 60 * 1000;

async function fsyncPath(path: string): Promise<void> {
  const f = await Deno.open(path, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

async function mkdirDurable(dir: string, root: string): Promise<void> {
  // Create each missing level and fsync its parent so the new entry survives a crash.
  const missing: string[] = [];
  let d = dir;
  while (d.length > root.length) {
    try {
      await Deno.stat(d);
      break;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      missing.unshift(d);
      d = dirname(d);
    }
  }
  for (const m of missing) {
    await Deno.mkdir(m, { recursive: true });
    await fsyncPath(dirname(m));
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A store in a local directory: bundles at `<store>/<tenant>/<agent>/<snapshot-id>.msnap`,
 * indexed by a SQLite catalog `<store>/catalog.sqlite` (WAL). Bundles are the source of
 * truth: {@linkcode LocalStore.reindex} rebuilds the catalog from their manifests.
 *
 * Writes are crash-safe: the bundle is written to `<store>/.tmp/<id>.<random>.partial`,
 * fsynced, linked into place (never overwriting), the directory fsynced, and only then the
 * catalog row inserted. A bundle without a row is found by reindex; a row without a bundle is
 * dropped by list and reindex; `.partial` files are never listed.
 *
 * @example Write a snapshot, list it
 * ```ts ignore
 * import { LocalStore } from "./local_store.ts";
 * const store = await LocalStore.open("/var/lib/memsnap");
 * const pending = await store.create("default", "a1", manifest.snapshot_id);
 * await writeBundle(pending.path, ...); // the caller writes the bundle
 * const info = await pending.commit(manifest);
 * console.log((await store.list({ agent: "a1" })).at(-1)?.id === info.id);
 * await store.close();
 * ```
 */
export class LocalStore implements Store, AsyncDisposable {
  /** The store location as given. */
  readonly url: string;
  /** The absolute directory. */
  readonly root: string;
  #catalog: Catalog;

  private constructor(url: string, root: string, catalog: Catalog) {
    this.url = url;
    this.root = root;
    this.#catalog = catalog;
  }

  /**
   * Opens (creating if missing) a store directory. A missing catalog is rebuilt from the
   * bundles.
   *
   * @param dir The store directory.
   * @param options Catalog options.
   * @returns The opened store.
   */
  static async open(dir: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
    const root = resolvePath(dir);
    await Deno.mkdir(join(root, ".tmp"), { recursive: true });
    const catalogPath = join(root, "catalog.sqlite");
    const fresh = !exists(catalogPath);
    const store = new LocalStore(dir, root, new Catalog(catalogPath, options.busyTimeoutMs));
    if (fresh) await store.reindex();
    return store;
  }

  #info(row: CatalogRow): SnapshotInfo {
    return {
      id: row.id,
      parent: row.parent,
      agent_id: row.agent_id,
      tenant: row.tenant,
      created_at: row.created_at,
      created_by: row.created_by,
      label: row.label,
      size: row.size,
      path: join(this.root, row.rel),
      encrypted: row.encrypted === 1,
      redacted: row.redacted === 1,
      pinned: row.pinned === 1,
    };
  }

  /**
   * Rows whose bundle exists; rows whose bundle is gone are dropped from the catalog. Few
   * rows are checked with one stat each, many with one directory read per agent directory.
   */
  #live(rows: CatalogRow[]): SnapshotInfo[] {
    const gone: string[] = [];
    const out: SnapshotInfo[] = [];
    const dirs = new Map<string, Set<string>>();
    const present = (rel: string): boolean => {
      if (rows.length <= 16) return exists(join(this.root, rel));
      const dir = dirname(rel);
      let names = dirs.get(dir);
      if (!names) {
        names = new Set();
        try {
          for (const e of Deno.readDirSync(join(this.root, dir))) names.add(e.name);
        } catch {
          // no directory: nothing present
        }
        dirs.set(dir, names);
      }
      return names.has(rel.slice(dir.length + 1));
    };
    for (const row of rows) {
      if (present(row.rel)) out.push(this.#info(row));
      else gone.push(row.id);
    }
    if (gone.length) this.#catalog.delete(gone);
    return out;
  }

  /**
   * Lists snapshots, oldest first.
   *
   * @param filter Filters; all given must match.
   * @returns The snapshots.
   */
  list(filter: ListFilter = {}): Promise<SnapshotInfo[]> {
    return Promise.resolve(this.#live(this.#catalog.query(filter)));
  }

  /**
   * Resolves a full id, a unique prefix, or `latest` (within the filter).
   *
   * @param id The id, prefix or `latest`.
   * @param filter Filters the candidates.
   * @returns The snapshot.
   * @throws {NotFoundError} when nothing or more than one snapshot matches.
   */
  resolve(id: string, filter: ListFilter = {}): Promise<SnapshotInfo> {
    return Promise.resolve(resolveIn(id, filter, (q) => this.#live(this.#catalog.query(q))));
  }

  #row(id: string): CatalogRow {
    const row = this.#catalog.get(id);
    if (!row || !exists(join(this.root, row.rel))) {
      if (row) this.#catalog.delete([row.id]);
      throw new NotFoundError(`Cannot find snapshot ${id}: not in store ${this.url}`, {
        hint: "Run `memsnap list` to see the snapshots, or reindex the store.",
      });
    }
    return row;
  }

  /**
   * Reads only the manifest of a snapshot.
   *
   * @param id The exact snapshot id.
   * @returns The manifest.
   * @throws {NotFoundError} when no snapshot has that id.
   */
  readManifest(id: string): Promise<Manifest> {
    return readManifestFile(join(this.root, this.#row(id).rel));
  }

  /**
   * Opens a snapshot's bundle as a byte stream.
   *
   * @param id The exact snapshot id.
   * @returns The stream.
   * @throws {NotFoundError} when no snapshot has that id.
   */
  async open(id: string): Promise<ReadableStream<Uint8Array>> {
    const f = await Deno.open(join(this.root, this.#row(id).rel), { read: true });
    return f.readable;
  }

  /**
   * The bundle's file path.
   *
   * @param id The exact snapshot id.
   * @returns The path, or `undefined` when not in the store.
   */
  localPath(id: string): string | undefined {
    const row = this.#catalog.get(id);
    return row ? join(this.root, row.rel) : undefined;
  }

  #relOf(tenant: string, agentId: string, id: string): string {
    return join(tenant, agentId, `${id}.msnap`);
  }

  #checkFree(tenant: string, agentId: string, id: string): void {
    const row = this.#catalog.get(id);
    if (
      (row && exists(join(this.root, row.rel))) ||
      exists(join(this.root, this.#relOf(tenant, agentId, id)))
    ) {
      throw new RefusedError(`Cannot add snapshot ${id}: it is already in store ${this.url}`);
    }
  }

  /** fsync, link into place (never overwriting), fsync dir, then the catalog row. */
  async #place(tmp: string, manifest: Manifest, pinned = false): Promise<SnapshotInfo> {
    const { tenant, agent_id: agentId, snapshot_id: id } = manifest;
    const rel = this.#relOf(tenant, agentId, id);
    const dest = join(this.root, rel);
    this.#checkFree(tenant, agentId, id);
    await fsyncPath(tmp);
    await mkdirDurable(dirname(dest), this.root);
    try {
      await Deno.link(tmp, dest);
    } catch (e) {
      if (e instanceof Deno.errors.AlreadyExists) {
        throw new RefusedError(`Cannot add snapshot ${id}: it is already in store ${this.url}`);
      }
      // No hard links here: check-then-rename (same file system, same directory tree).
      if (exists(dest)) throw e;
      await Deno.rename(tmp, dest);
    }
    await Deno.remove(tmp).catch(() => {});
    await fsyncPath(dirname(dest));
    const size = (await Deno.stat(dest)).size;
    const row = rowOf(manifest, size, rel, pinned);
    this.#catalog.upsertMany([row]);
    return this.#info(row);
  }

  async #tempPath(id: string): Promise<string> {
    const dir = join(this.root, ".tmp");
    await Deno.mkdir(dir, { recursive: true });
    return join(dir, `${id}.${randomHex()}.partial`);
  }

  /**
   * Starts writing a bundle: the caller writes the whole bundle to `pending.path`, then
   * commits.
   *
   * @param tenant The tenant.
   * @param agentId The agent id.
   * @param snapshotId The new snapshot's id.
   * @returns The pending bundle.
   * @throws {UsageError} when a name is not a safe path segment.
   * @throws {RefusedError} when the snapshot id is already in the store.
   */
  async create(tenant: string, agentId: string, snapshotId: string): Promise<PendingBundle> {
    checkName("tenant", tenant);
    checkName("agent id", agentId);
    checkName("snapshot id", snapshotId);
    this.#checkFree(tenant, agentId, snapshotId);
    const path = await this.#tempPath(snapshotId);
    return await pendingBundle(path, tenant, agentId, snapshotId, (p, m) => this.#place(p, m));
  }

  /**
   * Copies an existing bundle (already verified by the caller) into the store.
   *
   * @param path The bundle file.
   * @param manifest Its manifest.
   * @returns The stored snapshot.
   * @throws {RefusedError} when the snapshot id is already in the store.
   */
  async importFile(path: string, manifest: Manifest): Promise<SnapshotInfo> {
    checkManifest(manifest);
    this.#checkFree(manifest.tenant, manifest.agent_id, manifest.snapshot_id);
    const tmp = await this.#tempPath(manifest.snapshot_id);
    try {
      await Deno.copyFile(path, tmp);
      return await this.#place(tmp, manifest);
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  }

  /**
   * Deletes a snapshot: the bundle, its pin marker, then the catalog row.
   *
   * @param id The exact snapshot id.
   * @param options `force` deletes even a pinned or the agent's last snapshot.
   * @throws {NotFoundError} when no snapshot has that id.
   * @throws {RefusedError} when pinned or the agent's last, without `force`.
   */
  async delete(id: string, options: DeleteOptions = {}): Promise<void> {
    const row = this.#row(id);
    if (!options.force) {
      if (row.pinned) {
        throw new RefusedError(`Cannot delete snapshot ${id}: it is pinned`, {
          hint: "Unpin it first, or force.",
        });
      }
      if (this.#catalog.count(row.tenant, row.agent_id) <= 1) {
        throw new RefusedError(
          `Cannot delete snapshot ${id}: it is the last snapshot of ${
            describeAgent(row.tenant, row.agent_id)
          }`,
          { hint: "Force to delete it anyway." },
        );
      }
    }
    const path = join(this.root, row.rel);
    await Deno.remove(path).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    await Deno.remove(`${path.slice(0, -".msnap".length)}.pin`).catch(() => {});
    await fsyncPath(dirname(path));
    this.#catalog.delete([id]);
  }

  /**
   * Pins or unpins a snapshot. The pin is a marker file `<id>.pin` beside the bundle (so it
   * survives a reindex) mirrored in the catalog's `pinned` column.
   *
   * @param id The exact snapshot id.
   * @param pinned Pin or unpin.
   * @throws {NotFoundError} when no snapshot has that id.
   */
  async pin(id: string, pinned: boolean): Promise<void> {
    const row = this.#row(id);
    const marker = join(this.root, `${row.rel.slice(0, -".msnap".length)}.pin`);
    if (pinned) await Deno.writeTextFile(marker, "");
    else {
      await Deno.remove(marker).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
    this.#catalog.setPinned(id, pinned);
  }

  /**
   * Takes the lock of one agent: `<store>/<tenant>/<agent>/.lock` (see `lockFile()`).
   *
   * @param tenant The tenant.
   * @param agentId The agent id.
   * @param options Timeout (default 60 000 ms, `0` fails at once), lease, abort signal.
   * @returns The held lock.
   * @throws {LockedError} when another live process holds it past the timeout.
   */
  lock(tenant: string, agentId: string, options: LockOptions = {}): Promise<HeldLock> {
    checkName("tenant", tenant);
    checkName("agent id", agentId);
    return lockFile(join(this.root, tenant, agentId, ".lock"), {
      ...options,
      what: describeAgent(tenant, agentId),
    });
  }

  /**
   * The agent's state directory `<store>/<tenant>/<agent>/.state` (created).
   *
   * @param tenant The tenant.
   * @param agentId The agent id.
   * @returns The directory path.
   */
  async stateDir(tenant: string, agentId: string): Promise<string> {
    checkName("tenant", tenant);
    checkName("agent id", agentId);
    const dir = join(this.root, tenant, agentId, ".state");
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Appends one JSON line to `<store>/audit.log` (opened with `O_APPEND`, one write per
   * record, so concurrent writers never interleave within a line on a local file system).
   *
   * @param record The record.
   */
  async audit(record: AuditRecord): Promise<void> {
    const line = new TextEncoder().encode(JSON.stringify(record) + "\n");
    const f = await Deno.open(join(this.root, "audit.log"), { append: true, create: true });
    try {
      let off = 0;
      while (off < line.length) off += await f.write(line.subarray(off));
    } finally {
      f.close();
    }
  }

  /**
   * Reads the audit log, oldest first.
   *
   * @param filter Filters; all given must match.
   * @returns The records.
   */
  async auditLog(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    let text: string;
    try {
      text = await Deno.readTextFile(join(this.root, "audit.log"));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    const out: AuditRecord[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      let r: AuditRecord;
      try {
        r = JSON.parse(line);
      } catch {
        continue; // a torn last line after a crash
      }
      if (matchesAudit(r, filter)) out.push(r);
    }
    return out;
  }

  /**
   * Rebuilds the catalog from the bundles' manifests (reading only the manifests), keeps
   * pins from their marker files, drops rows whose bundle is gone, and removes `.partial`
   * files older than an hour.
   *
   * @returns How many bundles were indexed.
   */
  async reindex(): Promise<number> {
    await this.cleanPartials();
    const rows: CatalogRow[] = [];
    for await (const t of Deno.readDir(this.root)) {
      if (!t.isDirectory || !isName(t.name)) continue;
      for await (const a of Deno.readDir(join(this.root, t.name))) {
        if (!a.isDirectory || !isName(a.name)) continue;
        const dir = join(this.root, t.name, a.name);
        const names = new Set<string>();
        for await (const f of Deno.readDir(dir)) if (f.isFile) names.add(f.name);
        for (const name of names) {
          if (!name.endsWith(".msnap")) continue;
          const id = name.slice(0, -".msnap".length);
          if (!isName(id)) continue;
          const path = join(dir, name);
          let manifest: Manifest;
          try {
            manifest = await readManifestFile(path);
          } catch {
            continue; // unreadable: not indexed (verify reports it)
          }
          if (
            manifest.snapshot_id !== id || manifest.tenant !== t.name ||
            manifest.agent_id !== a.name
          ) continue;
          const size = (await Deno.stat(path)).size;
          rows.push(rowOf(manifest, size, join(t.name, a.name, name), names.has(`${id}.pin`)));
        }
      }
    }
    this.#catalog.upsertMany(rows);
    const found = new Set(rows.map((r) => r.id));
    const gone = this.#catalog.all()
      .filter((r) => !found.has(r.id) && !exists(join(this.root, r.rel)))
      .map((r) => r.id);
    this.#catalog.delete(gone);
    return rows.length;
  }

  /**
   * Removes `.partial` files in `<store>/.tmp` older than `maxAgeMs` (a crashed writer's).
   *
   * @param maxAgeMs Minimum age of a removed file, in ms.
   * @returns The removed paths.
   */
  async cleanPartials(maxAgeMs: number = PARTIAL_MAX_AGE_MS): Promise<string[]> {
    const dir = join(this.root, ".tmp");
    const removed: string[] = [];
    try {
      for await (const e of Deno.readDir(dir)) {
        if (!e.isFile || !e.name.endsWith(".partial")) continue;
        const p = join(dir, e.name);
        try {
          const st = await Deno.stat(p);
          if (Date.now() - (st.mtime?.getTime() ?? Date.now()) > maxAgeMs) {
            await Deno.remove(p);
            removed.push(p);
          }
        } catch {
          // gone meanwhile
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return removed;
  }

  /** Closes the catalog. */
  close(): Promise<void> {
    this.#catalog.close();
    return Promise.resolve();
  }

  /** Closes the store (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
