/**
 * `memsnap log`: show the store's audit log.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { STORE_HELP, storeFrom, str } from "./_context.ts";
import type { AuditFilter } from "../store/types.ts";

/** The command. */
export const command: Command = {
  name: "log",
  summary: "Show the store's audit log of restores",
  usage: "log --store DIR [--agent ID] [--tenant T] [--action A] [--json]",
  examples: [
    "memsnap log --store ./snaps --agent a1",
    "memsnap log --store ./snaps --action restore --json",
  ],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    action: { type: "string" },
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "only this agent",
    tenant: "only this tenant",
    action: "only this action (restore, recover, delete, prune)",
  },
  positionals: [0, 0],
  async run(ctx) {
    const store = await storeFrom(ctx.flags, "log");
    try {
      const f: AuditFilter = {};
      const agent = str(ctx.flags, "agent"),
        tenant = str(ctx.flags, "tenant"),
        action = str(ctx.flags, "action");
      if (agent) f.agent = agent;
      if (tenant) f.tenant = tenant;
      if (action) f.action = action;
      const rows = await store.auditLog(f);
      if (ctx.out.json) {
        ctx.out.data(rows);
        return 0;
      }
      if (rows.length === 0) ctx.out.text("No audit records.");
      for (const r of rows) {
        ctx.out.text(
          `${r.at}  ${r.action.padEnd(8)} ${r.result.padEnd(11)} ${r.tenant}/${r.agent_id} ${
            r.snapshot_id ?? "-"
          }  ${r.detail ?? ""}  (${r.host} pid ${r.pid})`,
        );
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
