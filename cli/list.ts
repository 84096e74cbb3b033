/**
 * `memsnap list`: list snapshots in a store.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { formatBytes } from "./_output.ts";
import { STORE_HELP, storeFrom, str } from "./_context.ts";
import type { ListFilter } from "../store/types.ts";
import { UsageError } from "../errors.ts";

/** Parses a `--since`/`--until` value: ISO date/time, or a duration ago like `2h`, `3d`. */
export function parseTimeFlag(flag: string, v: string, now = new Date()): string {
  const m = /^(\d+)([smhdw])$/.exec(v);
  if (m) {
    const mult = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7, w: 6.048e8 }[m[2] as "s"]!;
    return new Date(now.getTime() - Number(m[1]) * mult).toISOString();
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) {
    throw new UsageError(
      `Cannot parse --${flag} "${v}": expected an ISO date like 2026-11-25 or a duration like 3d`,
    );
  }
  return new Date(t).toISOString();
}

/** The command. */
export const command: Command = {
  name: "list",
  summary: "List snapshots in a store",
  usage:
    "list --store DIR [--agent ID] [--tenant T] [--label L] [--created-by X] [--since T] [--until T] [--json]",
  examples: [
    "memsnap list --store ./snaps",
    "memsnap list --store ./snaps --agent a1 --since 2d --json",
    "memsnap list --store s3://bucket/memsnap --created-by pre-restore",
  ],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    label: { type: "string" },
    "created-by": { type: "string" },
    since: { type: "string" },
    until: { type: "string" },
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "only this agent",
    tenant: "only this tenant",
    label: "only snapshots with this label",
    "created-by": "only snapshots taken by this (cli, pre-dream, pre-restore, shutdown, ...)",
    since: "created at or after (ISO date/time or a duration ago, e.g. 3d)",
    until: "created before (ISO date/time or a duration ago)",
  },
  positionals: [0, 0],
  async run(ctx) {
    const store = await storeFrom(ctx.flags, "list");
    try {
      const f: ListFilter = {};
      const agent = str(ctx.flags, "agent"),
        tenant = str(ctx.flags, "tenant"),
        label = str(ctx.flags, "label");
      const createdBy = str(ctx.flags, "created-by"),
        since = str(ctx.flags, "since"),
        until = str(ctx.flags, "until");
      if (agent) f.agent = agent;
      if (tenant) f.tenant = tenant;
      if (label) f.label = label;
      if (createdBy) f.createdBy = createdBy;
      if (since) f.since = parseTimeFlag("since", since);
      if (until) f.until = parseTimeFlag("until", until);
      const rows = await store.list(f);
      if (ctx.out.json) {
        ctx.out.data(rows.map((r) => ({
          id: r.id,
          parent: r.parent,
          agent_id: r.agent_id,
          tenant: r.tenant,
          created_at: r.created_at,
          created_by: r.created_by,
          label: r.label,
          size: r.size,
          path: r.path,
          encrypted: r.encrypted,
          redacted: r.redacted,
          pinned: r.pinned,
        })));
        return 0;
      }
      if (rows.length === 0) {
        ctx.out.text("No snapshots.");
        return 0;
      }
      const table = rows.map((r) => [
        r.id + (r.pinned ? " *" : ""),
        `${r.tenant}/${r.agent_id}`,
        r.created_by,
        r.label ?? "",
        formatBytes(r.size),
        [r.encrypted ? "enc" : "", r.redacted ? "" : "unredacted"].filter(Boolean).join(","),
      ]);
      const head = ["ID", "AGENT", "BY", "LABEL", "SIZE", "FLAGS"];
      const w = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i]!.length)));
      ctx.out.text(head.map((h, i) => h.padEnd(w[i]!)).join("  ").trimEnd());
      for (const r of table) ctx.out.text(r.map((c, i) => c.padEnd(w[i]!)).join("  ").trimEnd());
      return 0;
    } finally {
      await store.close();
    }
  },
};
