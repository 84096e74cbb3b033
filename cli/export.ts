/**
 * `memsnap export`: copy a bundle out of the store.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "./_spec.ts";
import { required, STORE_HELP, storeFrom, str } from "./_context.ts";
import { RefusedError, VerificationError } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "export",
  summary: "Copy a bundle out of the store",
  usage: "export <id> --store DIR --to FILE [--force]",
  description: [
    "Writes the bundle to FILE (temp name, fsync, rename). Warns loudly when it is not redacted.",
  ],
  examples: [
    "memsnap export --store ./snaps latest --agent a1 --to ./a1.msnap",
    "memsnap export --store s3://bucket/memsnap 20261125T195222123Z-1a2b3c4d --to /tmp/x.msnap",
  ],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    to: { type: "string" },
    force: { type: "boolean" },
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "agent (to resolve latest)",
    tenant: "tenant",
    to: "destination file",
    force: "overwrite FILE if it exists",
  },
  positionals: [1, 1],
  async run(ctx) {
    const to = resolve(required(ctx.flags, "to", "export"));
    const store = await storeFrom(ctx.flags, "export");
    try {
      const agent = str(ctx.flags, "agent"), tenant = str(ctx.flags, "tenant");
      const info = await store.resolve(ctx.args[0]!, {
        ...(agent ? { agent } : {}),
        ...(tenant ? { tenant } : {}),
      });
      if (!ctx.flags.force) {
        try {
          await Deno.lstat(to);
          throw new RefusedError(`Cannot export to ${to}: the file exists`, {
            hint: "pass --force to overwrite",
          });
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      if (!info.redacted) {
        ctx.out.warn(
          `snapshot ${info.id} is NOT redacted: the exported file holds the memory's secrets as they are`,
        );
      }
      const tmp = `${to}.partial-${crypto.randomUUID().slice(0, 8)}`;
      try {
        const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
        let written = 0;
        try {
          for await (const chunk of await store.open(info.id)) {
            for (let off = 0; off < chunk.length;) off += await file.write(chunk.subarray(off));
            written += chunk.length;
          }
          await file.sync();
        } finally {
          file.close();
        }
        if (written !== info.size) {
          throw new VerificationError(
            `Cannot export ${info.id}: read ${written} bytes, the store lists ${info.size}`,
          );
        }
        await Deno.rename(tmp, to);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw e;
      }
      ctx.out.result({ id: info.id, path: to, size: info.size, redacted: info.redacted }, () => [
        `Exported ${info.id} to ${to}`,
      ]);
      return 0;
    } finally {
      await store.close();
    }
  },
};
