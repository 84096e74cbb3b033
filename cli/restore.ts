/**
 * `memsnap restore`: restore a snapshot atomically.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import {
  LOCK_FLAGS,
  LOCK_HELP,
  READ_KEY_FLAGS,
  READ_KEY_HELP,
  snapshotterFrom,
  SOURCE_FLAGS,
  SOURCE_HELP,
  STORE_FLAGS,
  STORE_HELP,
  str,
} from "./_context.ts";
import { identityOf, maybeStore } from "./_ref.ts";
import { UsageError } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "restore",
  summary: "Restore a snapshot atomically",
  usage:
    "restore <id|path> --store DIR --memdir DIR [--sqlite NAME=PATH]... [--state NAME=FILE]... [flags]",
  description: [
    "Verifies every artifact first (exit 3 on failure), checks the gates (exit 4: unsupported",
    "version, other agent or tenant, newer database schema), takes a pre-restore safety snapshot",
    "of the current state, stages everything, then swaps each target into place under a journal.",
    "Any failure rolls every target back. Files absent from the snapshot are moved aside into",
    "<parent>/.memsnap-aside/<restore-id>/, never deleted. Restoring the pre-restore snapshot",
    "undoes a restore. The agent defaults to the bundle's.",
  ],
  examples: [
    "memsnap restore --store ./snaps latest --agent a1 --memdir ./memory --dry-run",
    "memsnap restore --store ./snaps 20261125T195222123Z-1a2b3c4d --memdir ./memory --sqlite long_term=./lt.sqlite",
    "memsnap restore --store ./snaps ./exported.msnap --memdir ./memory --identity ./age.key",
  ],
  flags: {
    ...STORE_FLAGS,
    ...SOURCE_FLAGS,
    ...LOCK_FLAGS,
    ...READ_KEY_FLAGS,
    "dry-run": { type: "boolean" },
    "no-pre-snapshot": { type: "boolean" },
    "allow-agent-mismatch": { type: "boolean" },
    "allow-tenant-mismatch": { type: "boolean" },
  },
  flagHelp: {
    ...STORE_HELP,
    ...SOURCE_HELP,
    ...LOCK_HELP,
    ...READ_KEY_HELP,
    "dry-run": "print the plan and change nothing",
    "no-pre-snapshot": "do not take the pre-restore safety snapshot",
    "allow-agent-mismatch": "restore a bundle taken of another agent",
    "allow-tenant-mismatch": "restore a bundle taken of another tenant",
  },
  positionals: [1, 1],
  async run(ctx) {
    const ref = ctx.args[0]!;
    const store = await maybeStore(ctx.flags, ref, "restore");
    if (!store) {
      throw new UsageError(
        `Cannot restore: --store is required (the pre-restore snapshot, lock and journal live there)`,
      );
    }
    try {
      const flags = { ...ctx.flags };
      if (!str(flags, "agent") || !str(flags, "tenant")) {
        const who = await identityOf(store, ref, flags);
        if (!str(flags, "agent")) flags.agent = who.agent;
        if (!str(flags, "tenant")) flags.tenant = who.tenant;
      }
      const snap = await snapshotterFrom({ ...ctx, flags }, "restore", {
        needCaptures: true,
        store,
      });
      const r = await snap.restore(ref, {
        dryRun: flags["dry-run"] === true,
        noPreSnapshot: flags["no-pre-snapshot"] === true,
        allowAgentMismatch: flags["allow-agent-mismatch"] === true,
        allowTenantMismatch: flags["allow-tenant-mismatch"] === true,
        signal: ctx.signal,
      });
      ctx.out.result({
        id: r.snapshotId,
        dry_run: r.dryRun,
        pre_snapshot: r.preSnapshot ? { id: r.preSnapshot.id, path: r.preSnapshot.path } : null,
        plan: r.plan,
        aside: r.aside,
      }, function* () {
        yield r.dryRun
          ? `Plan to restore ${r.snapshotId} (dry run, nothing changed):`
          : `Restored ${r.snapshotId}`;
        if (r.plan.length === 0) yield "  no changes";
        for (const p of r.plan) {
          const what = p.count === undefined ? p.target : `${p.count} under ${p.target}`;
          yield `  ${p.action}: ${what}${p.detail ? ` (${p.detail})` : ""}`;
        }
        if (r.preSnapshot) {
          yield `Pre-restore snapshot ${r.preSnapshot.id} holds the previous state; to undo:`;
          yield `  memsnap restore --store ${store.url} ${r.preSnapshot.id} ...same flags...`;
        }
        for (const a of r.aside) yield `Previous state kept at ${a}`;
      });
      return 0;
    } finally {
      await store.close();
    }
  },
};
