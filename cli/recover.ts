/**
 * `memsnap recover`: complete or roll back an interrupted restore.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { LOCK_FLAGS, LOCK_HELP, snapshotterFrom, STORE_FLAGS, STORE_HELP } from "./_context.ts";

/** The command. */
export const command: Command = {
  name: "recover",
  summary: "Complete or roll back an interrupted restore",
  usage: "recover --store DIR --agent ID [--tenant T]",
  description: [
    "A restore cut short (crash, kill, power loss) leaves a journal. recover completes it when",
    "every target was already swapped, and rolls every target back otherwise, so live memory is",
    "entirely the old or entirely the restored state. Every other command on the agent does",
    "this first too.",
  ],
  examples: ["memsnap recover --store ./snaps --agent a1"],
  flags: { ...STORE_FLAGS, ...LOCK_FLAGS },
  flagHelp: { ...STORE_HELP, ...LOCK_HELP },
  positionals: [0, 0],
  async run(ctx) {
    const snap = await snapshotterFrom(ctx, "recover", { needCaptures: false });
    try {
      const r = await snap.recover();
      ctx.out.result({
        outcome: r.outcome,
        snapshot_id: r.journal?.snapshot_id ?? null,
        restore_id: r.journal?.restore_id ?? null,
        aside: r.aside,
      }, () =>
        r.outcome === "none" ? ["Nothing to recover."] : [
          `Interrupted restore of ${r.journal!.snapshot_id} ${
            r.outcome === "completed" ? "completed" : "rolled back"
          }.`,
        ]);
      return 0;
    } finally {
      await snap.store.close();
    }
  },
};
