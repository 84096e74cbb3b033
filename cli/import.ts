/**
 * `memsnap import`: verify a bundle file and add it to the store.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "./_spec.ts";
import {
  decipherFrom,
  READ_KEY_FLAGS,
  READ_KEY_HELP,
  STORE_HELP,
  storeFrom,
  verifierFrom,
} from "./_context.ts";
import { verifyBundle } from "../bundle/verify_bundle.ts";
import { NotFoundError, VerificationError } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "import",
  summary: "Verify a bundle file and add it to the store",
  usage: "import <file> --store DIR [--identity FILE] [--pubkey KEY] [--require-signature]",
  description: [
    "Verifies the bundle first (exit 3 if it fails); the store never holds an unverified bundle.",
  ],
  examples: [
    "memsnap import ./a1.msnap --store ./snaps",
    "memsnap import ./a1.msnap --store ./snaps --pubkey ./memsnap.pub",
  ],
  flags: { store: { type: "string" }, ...READ_KEY_FLAGS },
  flagHelp: { ...STORE_HELP, ...READ_KEY_HELP },
  positionals: [1, 1],
  async run(ctx) {
    const path = resolve(ctx.args[0]!);
    const store = await storeFrom(ctx.flags, "import");
    try {
      const decipher = await decipherFrom(ctx.flags);
      const verifier = await verifierFrom(ctx.flags);
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true });
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) {
          throw new NotFoundError(`Cannot import ${path}: it does not exist`);
        }
        throw e;
      }
      const report = await verifyBundle(file.readable, {
        ...(decipher ? { decipher } : {}),
        ...(verifier ? { verifier } : {}),
        requireSignature: ctx.flags["require-signature"] === true,
        progress: ctx.out.reporter(),
      });
      if (!report.ok || !report.manifest) {
        throw new VerificationError(
          `Cannot import ${path}: the bundle failed verification`,
          report.failures,
        );
      }
      if (!report.artifacts_checked) {
        ctx.out.warn(
          "the payload is encrypted: artifact hashes were not checked (pass --identity to check them)",
        );
      }
      const info = await store.importFile(path, report.manifest);
      if (!info.redacted) ctx.out.warn(`imported snapshot ${info.id} is NOT redacted`);
      ctx.out.result(
        { id: info.id, path: info.path },
        () => [`Imported ${info.id} into ${info.path}`],
      );
      return 0;
    } finally {
      await store.close();
    }
  },
};
