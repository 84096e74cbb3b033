/**
 * `memsnap unpin`: unpin a snapshot.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { STORE_HELP, storeFrom, str } from "./_context.ts";

/** The command. */
export const command: Command = {
  name: "unpin",
  summary: "Unpin a snapshot",
  usage: "unpin <id> --store DIR",
  examples: ["memsnap unpin --store ./snaps 20261125T195222123Z-1a2b3c4d"],
  flags: { store: { type: "string" }, agent: { type: "string" }, tenant: { type: "string" } },
  flagHelp: { ...STORE_HELP, agent: "agent (to resolve latest)", tenant: "tenant" },
  positionals: [1, 1],
  async run(ctx) {
    const store = await storeFrom(ctx.flags, "unpin");
    try {
      const agent = str(ctx.flags, "agent"), tenant = str(ctx.flags, "tenant");
      const info = await store.resolve(ctx.args[0]!, {
        ...(agent ? { agent } : {}),
        ...(tenant ? { tenant } : {}),
      });
      await store.pin(info.id, false);
      ctx.out.result({ id: info.id, pinned: false }, () => [`Unpinned ${info.id}`]);
      return 0;
    } finally {
      await store.close();
    }
  },
};
