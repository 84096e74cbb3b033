// Copyright memsnap authors. MIT license.
// Private: the SQLite catalog that indexes manifests so list() stays fast.
import { DatabaseSync } from "node:sqlite";
import type { Manifest } from "../bundle/types.ts";
import type { ListFilter } from "./types.ts";

/** One catalog row. `rel` is the bundle's path (or key) relative to the store root. */
export interface CatalogRow {
  id: string;
  parent: string | null;
  tenant: string;
  agent_id: string;
  created_at: string;
  created_by: string;
  label: string | null;
  size: number;
  rel: string;
  encrypted: number;
  redacted: number;
  pinned: number;
}

/** Builds a catalog row from a manifest. */
export function rowOf(manifest: Manifest, size: number, rel: string, pinned: boolean): CatalogRow {
  return {
    id: manifest.snapshot_id,
    parent: manifest.parent ?? null,
    tenant: manifest.tenant,
    agent_id: manifest.agent_id,
    created_at: manifest.created_at,
    created_by: manifest.created_by,
    label: manifest.label ?? null,
    size,
    rel,
    encrypted: manifest.payload?.encryption ? 1 : 0,
    redacted: manifest.redaction?.redacted ? 1 : 0,
    pinned: pinned ? 1 : 0,
  };
}

const COLUMNS =
  "id, parent, tenant, agent_id, created_at, created_by, label, size, rel, encrypted, redacted, pinned";
const PARAMS =
  ":id, :parent, :tenant, :agent_id, :created_at, :created_by, :label, :size, :rel, :encrypted, :redacted, :pinned";

/** Extra query conditions used inside the store. */
export interface CatalogQuery extends ListFilter {
  id?: string;
  idPrefix?: string;
}

/** The catalog: a SQLite database in WAL mode with a busy timeout. */
export class Catalog {
  #db: DatabaseSync;

  constructor(path: string, busyTimeoutMs = 15_000) {
    this.#db = new DatabaseSync(path);
    this.#db.exec(`PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
    // Switching a new catalog to WAL needs an exclusive lock, and SQLite answers "database is
    // locked" at once, without its busy handler, when another process opening the same new store
    // is mid-switch too (seen with three processes opening one fresh store): retry until the
    // busy timeout.
    const deadline = Date.now() + busyTimeoutMs;
    for (let wait = 5;; wait = Math.min(wait * 2, 100)) {
      try {
        this.#db.exec("PRAGMA journal_mode = WAL");
        break;
      } catch (e) {
        if (!/locked|busy/i.test(String((e as Error)?.message)) || Date.now() >= deadline) throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);
      }
    }
    this.#db.exec("PRAGMA synchronous = NORMAL");
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS snapshots (
        id TEXT PRIMARY KEY,
        parent TEXT,
        tenant TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        label TEXT,
        size INTEGER NOT NULL,
        rel TEXT NOT NULL,
        encrypted INTEGER NOT NULL DEFAULT 0,
        redacted INTEGER NOT NULL DEFAULT 0,
        pinned INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS snapshots_tenant_agent_created
        ON snapshots (tenant, agent_id, created_at);
      CREATE INDEX IF NOT EXISTS snapshots_agent_created ON snapshots (agent_id, created_at);
      CREATE INDEX IF NOT EXISTS snapshots_created ON snapshots (created_at);
    `);
  }

  /** Inserts a row; throws if the id exists. */
  insert(row: CatalogRow): void {
    this.#db.prepare(`INSERT INTO snapshots (${COLUMNS}) VALUES (${PARAMS})`).run({ ...row });
  }

  /** Inserts or replaces rows in one transaction. */
  upsertMany(rows: CatalogRow[]): void {
    const st = this.#db.prepare(`INSERT OR REPLACE INTO snapshots (${COLUMNS}) VALUES (${PARAMS})`);
    this.#tx(() => {
      for (const row of rows) st.run({ ...row });
    });
  }

  /** Rows matching the query, oldest first. */
  query(q: CatalogQuery = {}): CatalogRow[] {
    const where: string[] = [];
    const args: Record<string, string> = {};
    const add = (sql: string, name: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(sql);
      args[name] = value;
    };
    add("id = :id", "id", q.id);
    if (q.idPrefix !== undefined) {
      where.push("id >= :lo AND id < :hi");
      args.lo = q.idPrefix;
      args.hi = q.idPrefix + "\uffff";
    }
    add("tenant = :tenant", "tenant", q.tenant);
    add("agent_id = :agent", "agent", q.agent);
    add("label = :label", "label", q.label);
    add("created_by = :created_by", "created_by", q.createdBy);
    add("created_at >= :since", "since", q.since);
    add("created_at < :until", "until", q.until);
    const sql = `SELECT ${COLUMNS} FROM snapshots` +
      (where.length ? ` WHERE ${where.join(" AND ")}` : "") + " ORDER BY created_at, id";
    return this.#db.prepare(sql).all(args) as unknown as CatalogRow[];
  }

  /** The row of one id. */
  get(id: string): CatalogRow | undefined {
    return this.query({ id })[0];
  }

  /** Number of snapshots of one agent. */
  count(tenant: string, agentId: string): number {
    const r = this.#db.prepare(
      "SELECT count(*) AS n FROM snapshots WHERE tenant = ? AND agent_id = ?",
    ).get(tenant, agentId) as { n: number };
    return r.n;
  }

  /** Deletes rows by id. */
  delete(ids: string[]): void {
    const st = this.#db.prepare("DELETE FROM snapshots WHERE id = ?");
    this.#tx(() => {
      for (const id of ids) st.run(id);
    });
  }

  /** Sets the pinned flag. */
  setPinned(id: string, pinned: boolean): void {
    this.#db.prepare("UPDATE snapshots SET pinned = ? WHERE id = ?").run(pinned ? 1 : 0, id);
  }

  /** All ids with their relative paths. */
  all(): { id: string; rel: string; size: number; pinned: number }[] {
    return this.#db.prepare("SELECT id, rel, size, pinned FROM snapshots").all() as unknown as {
      id: string;
      rel: string;
      size: number;
      pinned: number;
    }[];
  }

  /** Closes the database. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #tx(fn: () => void): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      fn();
      this.#db.exec("COMMIT");
    } catch (e) {
      this.#db.exec("ROLLBACK");
      throw e;
    }
  }
}
