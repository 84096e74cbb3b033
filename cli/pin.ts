/**
 * `memsnap pin`: pin a snapshot so prune never removes it.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { STORE_HELP, storeFrom, str } from "./_context.ts";

/** The command. */
export const command: Command = {
  name: "pin",
  summary: "Pin a snapshot so prune never removes it",
  usage: "pin <id> --store DIR",
  examples: ["memsnap pin --store ./snaps 20261125T195222123Z-1a2b3c4d"],
  flags: { store: { type: "string" }, agent: { type: "string" }, tenant: { type: "string" } },
  flagHelp: { ...STORE_HELP, agent: "agent (to resolve latest)", tenant: "tenant" },
  positionals: [1, 1],
  async run(ctx) {
    const store = await storeFrom(ctx.flags, "pin");
    try {
      const agent = str(ctx.flags, "agent"), tenant = str(ctx.flags, "tenant");
      const info = await store.resolve(ctx.args[0]!, {
        ...(agent ? { agent } : {}),
        ...(tenant ? { tenant } : {}),
      });
      await store.pin(info.id, true);
      ctx.out.result({ id: info.id, pinned: true }, () => [`Pinned ${info.id}`]);
      return 0;
    } finally {
      await store.close();
    }
  },
};
