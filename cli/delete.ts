/**
 * `memsnap delete`: delete a snapshot.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { STORE_HELP, storeFrom, str } from "./_context.ts";

/** The command. */
export const command: Command = {
  name: "delete",
  summary: "Delete a snapshot",
  usage: "delete <id> --store DIR [--force]",
  description: ["Refuses (exit 4) a pinned snapshot or the agent's last snapshot unless --force."],
  examples: ["memsnap delete --store ./snaps 20261125T195222123Z-1a2b3c4d"],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    force: { type: "boolean" },
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "agent",
    tenant: "tenant",
    force: "delete even a pinned or the agent's last snapshot",
  },
  positionals: [1, 1],
  async run(ctx) {
    const store = await storeFrom(ctx.flags, "delete");
    try {
      const agent = str(ctx.flags, "agent"), tenant = str(ctx.flags, "tenant");
      const info = await store.resolve(ctx.args[0]!, {
        ...(agent ? { agent } : {}),
        ...(tenant ? { tenant } : {}),
      });
      await store.delete(info.id, { force: ctx.flags.force === true });
      ctx.out.result({ id: info.id, deleted: true }, () => [`Deleted ${info.id}`]);
      return 0;
    } finally {
      await store.close();
    }
  },
};
