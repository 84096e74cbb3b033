/**
 * `memsnap verify`: verify a bundle.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import {
  decipherFrom,
  READ_KEY_FLAGS,
  READ_KEY_HELP,
  REF_FLAGS,
  REF_HELP,
  verifierFrom,
} from "./_context.ts";
import { maybeStore, streamOf } from "./_ref.ts";
import { verifyBundle } from "../bundle/verify_bundle.ts";
import { artifactTotals } from "../bundle/_artifact_table.ts";
import { ExitCode } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "verify",
  summary: "Verify a bundle's hashes and signature",
  usage:
    "verify <id|path> [--store DIR] [--identity FILE] [--pubkey KEY] [--require-signature] [--json]",
  description: [
    "Checks the manifest, the payload hash and the signature (with --pubkey). For plaintext",
    "bundles, or with --identity for encrypted ones, also every artifact's hash and that no",
    "entry is missing or extra. Exit 3 when anything fails.",
  ],
  examples: [
    "memsnap verify --store ./snaps latest --agent a1",
    "memsnap verify ./exported.msnap --pubkey ./memsnap.pub --require-signature",
    "memsnap verify --store ./snaps 20261125T195222123Z-1a2b3c4d --identity ./age.key --json",
  ],
  flags: { ...REF_FLAGS, ...READ_KEY_FLAGS },
  flagHelp: { ...REF_HELP, ...READ_KEY_HELP },
  positionals: [1, 1],
  async run(ctx) {
    const ref = ctx.args[0]!;
    const store = await maybeStore(ctx.flags, ref, "verify");
    try {
      const decipher = await decipherFrom(ctx.flags);
      const verifier = await verifierFrom(ctx.flags);
      const stream = await streamOf(store, ref, ctx.flags);
      const report = await verifyBundle(stream, {
        ...(decipher ? { decipher } : {}),
        ...(verifier ? { verifier } : {}),
        requireSignature: ctx.flags["require-signature"] === true,
        progress: ctx.out.reporter(),
      });
      const m = report.manifest;
      // Counted without making the entries of the manifest read (see ArtifactTable).
      const count = m ? artifactTotals(m).count : 0;
      ctx.out.result({
        ok: report.ok,
        id: m?.snapshot_id ?? null,
        signature: report.signature,
        artifacts_checked: report.artifacts_checked,
        artifacts: count,
        failures: report.failures,
      }, () => {
        if (!report.ok) {
          return [
            `FAILED ${m?.snapshot_id ?? ref}: ${report.failures.length} check(s) failed`,
            ...report.failures.map((f) =>
              `  - ${f.check}${f.path ? ` ${f.path}` : ""}: ${f.detail}`
            ),
          ];
        }
        const parts = ["manifest", "payload hash"];
        if (report.artifacts_checked) parts.push(`${count} artifact hashes`);
        if (report.signature === "valid") parts.push("signature");
        const notes = [];
        if (!report.artifacts_checked) {
          notes.push("artifacts not checked: payload is encrypted (pass --identity)");
        }
        if (report.signature === "not_checked") {
          notes.push("signature present but not checked (pass --pubkey)");
        }
        if (report.signature === "absent") notes.push("unsigned");
        return [
          `OK ${m!.snapshot_id}: ${parts.join(", ")} verified`,
          ...notes.map((n) => `  note: ${n}`),
        ];
      });
      return report.ok ? ExitCode.Ok : ExitCode.VerificationFailed;
    } finally {
      await store?.close();
    }
  },
};
