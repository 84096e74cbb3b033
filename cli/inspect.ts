/**
 * `memsnap inspect`: show a bundle's manifest.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { formatBytes } from "./_output.ts";
import {
  decipherFrom,
  READ_KEY_FLAGS,
  READ_KEY_HELP,
  REF_FLAGS,
  REF_HELP,
  verifierFrom,
} from "./_context.ts";
import { manifestOf, maybeStore, streamOf } from "./_ref.ts";
import { verifyBundle } from "../bundle/verify_bundle.ts";
import { ExitCode } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "inspect",
  summary: "Show a bundle's manifest",
  usage: "inspect <id|path> [--store DIR] [--json]",
  description: [
    "Reads only the manifest (the bundle's first entry); never the payload. With --pubkey it",
    "also checks the signature; with --identity, that the payload decrypts and every artifact",
    "hash matches (exit 3 if not).",
  ],
  examples: [
    "memsnap inspect --store ./snaps 20261125T195222123Z-1a2b3c4d",
    "memsnap inspect ./exported.msnap --json",
    "memsnap inspect --store ./snaps latest --agent a1",
  ],
  flags: { ...REF_FLAGS, ...READ_KEY_FLAGS },
  flagHelp: { ...REF_HELP, ...READ_KEY_HELP },
  positionals: [1, 1],
  async run(ctx) {
    const ref = ctx.args[0]!;
    const store = await maybeStore(ctx.flags, ref, "inspect");
    try {
      const m = await manifestOf(store, ref, ctx.flags);
      // With keys, also check what they unlock: the signature, and (with the identity) that the
      // payload decrypts and every artifact verifies. Without keys only the manifest is read.
      const decipher = await decipherFrom(ctx.flags);
      const verifier = await verifierFrom(ctx.flags);
      const check = decipher || verifier
        ? await verifyBundle(await streamOf(store, ref, ctx.flags), {
          ...(decipher ? { decipher } : {}),
          ...(verifier ? { verifier } : {}),
          requireSignature: ctx.flags["require-signature"] === true,
          progress: ctx.out.reporter(),
        })
        : undefined;
      const checkSummary = check && {
        ok: check.ok,
        signature: check.signature,
        artifacts_checked: check.artifacts_checked,
        failures: check.failures,
      };
      ctx.out.result(checkSummary ? { ...m, check: checkSummary } : m, () => {
        const lines = [
          `snapshot   ${m.snapshot_id}`,
          `agent      ${m.tenant}/${m.agent_id}`,
          `created    ${m.created_at} by ${m.created_by}`,
          `label      ${m.label ?? "(none)"}`,
          `parent     ${m.parent ?? "(none)"}`,
          `payload    ${m.payload.path} ${formatBytes(m.payload.size)} sha256:${m.payload.sha256}`,
          `encryption ${
            m.payload.encryption
              ? `age, ${m.payload.encryption.recipients.length} recipient(s)`
              : "none"
          }`,
          `redaction  ${
            m.redaction.redacted
              ? `${m.redaction.packs.map((p) => `${p.id}@${p.version}`).join(", ")}; ${
                m.redaction.rules.reduce((n, r) => n + r.count, 0)
              } replaced`
              : "off (NOT redacted)"
          }`,
        ];
        for (const r of m.redaction.rules) {
          lines.push(`  ${r.id}: ${r.count} in ${r.artifacts.length} artifact(s)`);
        }
        const git = m.captures.git as {
          head?: { oid?: string; ref?: string | null; subject?: string };
        } | null;
        if (git && git.head) {
          lines.push(
            `git HEAD   ${git.head.ref ?? "(detached)"} ${git.head.oid ?? ""} ${
              git.head.subject ?? ""
            }`,
          );
        }
        lines.push(`artifacts  ${m.artifacts.length}`);
        for (const a of m.artifacts) {
          lines.push(`  ${a.kind.padEnd(10)} ${String(a.size).padStart(10)}  ${a.path}`);
        }
        if (checkSummary) {
          lines.push(
            `check      ${
              checkSummary.ok ? "OK" : "FAILED"
            }: signature ${checkSummary.signature}, ${
              checkSummary.artifacts_checked
                ? "payload decrypts and every artifact hash matches"
                : "artifacts not checked"
            }`,
          );
          for (const f of checkSummary.failures) {
            lines.push(`  - ${f.check}${f.path ? ` ${f.path}` : ""}: ${f.detail}`);
          }
        }
        return lines;
      });
      return check && !check.ok ? ExitCode.VerificationFailed : ExitCode.Ok;
    } finally {
      await store?.close();
    }
  },
};
