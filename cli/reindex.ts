/**
 * `memsnap reindex`: rebuild the catalog from the bundles.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { STORE_HELP, storeFrom } from "./_context.ts";

/** The command. */
export const command: Command = {
  name: "reindex",
  summary: "Rebuild the store's catalog from its bundles",
  usage: "reindex --store DIR",
  description: ["Bundles are the source of truth; the catalog is an index of their manifests."],
  examples: ["memsnap reindex --store ./snaps"],
  flags: { store: { type: "string" } },
  flagHelp: { ...STORE_HELP },
  positionals: [0, 0],
  async run(ctx) {
    const store = await storeFrom(ctx.flags, "reindex");
    try {
      const n = await store.reindex();
      ctx.out.result({ indexed: n }, () => [`Indexed ${n} bundle(s)`]);
      return 0;
    } finally {
      await store.close();
    }
  },
};
