// Copyright memsnap authors. MIT license.
// Private: id resolution and audit filtering shared by the stores.
import { NotFoundError } from "../errors.ts";
import type { AuditFilter, AuditRecord, ListFilter, SnapshotInfo } from "./types.ts";
import type { CatalogQuery } from "./_catalog.ts";

/** Resolves a full id, a unique prefix, or `latest` among the snapshots a query returns. */
export function resolveIn(
  id: string,
  filter: ListFilter,
  query: (q: CatalogQuery) => SnapshotInfo[],
): SnapshotInfo {
  const where = describe(filter);
  if (id === "latest") {
    const all = query(filter);
    const last = all.at(-1);
    if (!last) {
      throw new NotFoundError(`Cannot resolve "latest": no snapshot${where}`);
    }
    const groups = new Set(all.map((s) => `${s.tenant}\0${s.agent_id}`));
    if (groups.size > 1) {
      throw new NotFoundError(
        `Cannot resolve "latest": snapshots of ${groups.size} agents match${where}`,
        { hint: "Name the agent (--agent)." },
      );
    }
    return last;
  }
  if (!id) throw new NotFoundError("Cannot resolve an empty snapshot id");
  const exact = query({ ...filter, id });
  if (exact[0]) return exact[0];
  const hits = query({ ...filter, idPrefix: id });
  if (hits.length === 1 && hits[0]) return hits[0];
  if (hits.length === 0) {
    throw new NotFoundError(`Cannot find snapshot ${id}: no snapshot id starts with it${where}`, {
      hint: "Run `memsnap list` to see the snapshots.",
    });
  }
  const shown = hits.slice(0, 5).map((s) => s.id).join(", ");
  throw new NotFoundError(
    `Cannot resolve snapshot ${id}: the prefix matches ${hits.length} snapshots (${shown}${
      hits.length > 5 ? ", ..." : ""
    })`,
    { hint: "Give more characters of the id." },
  );
}

function describe(f: ListFilter): string {
  const parts = Object.entries(f).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

/** Whether an audit record matches the filter. */
export function matchesAudit(r: AuditRecord, f: AuditFilter): boolean {
  return (f.tenant === undefined || r.tenant === f.tenant) &&
    (f.agent === undefined || r.agent_id === f.agent) &&
    (f.action === undefined || r.action === f.action) &&
    (f.snapshot === undefined || r.snapshot_id === f.snapshot) &&
    (f.since === undefined || r.at >= f.since) &&
    (f.until === undefined || r.at < f.until);
}
