/**
 * `memsnap prune`: remove snapshots by a retention policy.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { STORE_HELP, storeFrom, str } from "./_context.ts";
import { policyFrom, RETENTION_FLAGS, RETENTION_HELP } from "./_retention.ts";
import { prune } from "../store/prune.ts";
import { UsageError } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "prune",
  summary: "Remove snapshots by a retention policy",
  usage: "prune --store DIR [--agent ID] [--tenant T] --keep-... [--dry-run] [--json]",
  description: [
    "Applies restic-style keep rules per tenant and agent. A snapshot is kept if any rule keeps",
    "it; pinned snapshots and each agent's newest snapshot are never removed. The `retention`",
    "config key gives the same rules.",
  ],
  examples: [
    "memsnap prune --store ./snaps --keep-last 10 --keep-daily 7 --dry-run",
    "memsnap prune --store ./snaps --agent a1 --keep-within 2d --keep-label release",
  ],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    "dry-run": { type: "boolean" },
    ...RETENTION_FLAGS,
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "only this agent",
    tenant: "only this tenant",
    "dry-run": "list what would be removed; remove nothing",
    ...RETENTION_HELP,
  },
  positionals: [0, 0],
  async run(ctx) {
    const policy = policyFrom(ctx.flags);
    if (!policy) {
      throw new UsageError("Cannot prune: no keep rule given", {
        hint:
          'pass at least one --keep-* flag (e.g. --keep-last 10) or set "retention" in memsnap.json',
      });
    }
    const store = await storeFrom(ctx.flags, "prune");
    try {
      const agent = str(ctx.flags, "agent"), tenant = str(ctx.flags, "tenant");
      const dryRun = ctx.flags["dry-run"] === true;
      const plan = await prune(store, policy, {
        dryRun,
        filter: { ...(agent ? { agent } : {}), ...(tenant ? { tenant } : {}) },
      });
      ctx.out.result({
        dry_run: dryRun,
        keep: plan.keep,
        remove: plan.remove.map((s) => ({
          id: s.id,
          agent_id: s.agent_id,
          tenant: s.tenant,
          created_at: s.created_at,
        })),
      }, () => [
        `${
          dryRun ? "Would remove" : "Removed"
        } ${plan.remove.length} snapshot(s), keeping ${plan.keep.length}`,
        ...plan.remove.map((s) =>
          `  ${dryRun ? "would remove" : "removed"} ${s.id} (${s.tenant}/${s.agent_id})`
        ),
        ...plan.keep.map((k) => `  keep ${k.id} (${k.reasons.join(", ")})`),
      ]);
      return 0;
    } finally {
      await store.close();
    }
  },
};
