/**
 * `memsnap keygen`: create signing and encryption keys.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Command } from "./_spec.ts";
import { required } from "./_context.ts";
import { generateKeys } from "../bundle/keys.ts";

/** The command. */
export const command: Command = {
  name: "keygen",
  summary: "Create signing and encryption keys",
  usage: "keygen --out DIR",
  description: [
    "Writes memsnap.key/memsnap.pub (a minisign key pair) and age.key/age.pub (an age identity",
    "and its recipient). With MEMSNAP_SIGN_PASSPHRASE set, the signing key is encrypted with it.",
    "Never overwrites existing files. A write-only host needs only age.pub (and memsnap.key).",
  ],
  examples: [
    "memsnap keygen --out ./keys",
    "MEMSNAP_SIGN_PASSPHRASE=... memsnap keygen --out ./keys",
  ],
  flags: { out: { type: "string" } },
  flagHelp: { out: "directory to write the key files into (created if missing)" },
  positionals: [0, 0],
  usesConfig: false,
  async run(ctx) {
    const out = resolve(required(ctx.flags, "out", "keygen"));
    const passphrase = Deno.env.get("MEMSNAP_SIGN_PASSPHRASE");
    const r = await generateKeys(out, passphrase ? { passphrase } : {});
    ctx.out.result(r, () => [
      `Wrote keys to ${out}:`,
      ...Object.entries(r.files ?? {}).map(([k, v]) => `  ${k.padEnd(10)} ${v}`),
      `age recipient: ${r.recipient}`,
    ]);
    return 0;
  },
};
