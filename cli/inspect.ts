/**
 * `memsnap inspect`: show a bundle's manifest.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { formatBytes } from "./_output.ts";
import { READ_KEY_FLAGS, READ_KEY_HELP, STORE_HELP } from "./_context.ts";
import { manifestOf, maybeStore } from "./_ref.ts";

/** The command. */
export const command: Command = {
  name: "inspect",
  summary: "Show a bundle's manifest",
  usage: "inspect <id|path> [--store DIR] [--json]",
  description: ["Reads only the manifest (the bundle's first entry); never the payload."],
  examples: [
    "memsnap inspect --store ./snaps 20261125T195222123Z-1a2b3c4d",
    "memsnap inspect ./exported.msnap --json",
    "memsnap inspect --store ./snaps latest --agent a1",
  ],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    ...READ_KEY_FLAGS,
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "agent (to resolve latest)",
    tenant: "tenant",
    ...READ_KEY_HELP,
  },
  positionals: [1, 1],
  async run(ctx) {
    const ref = ctx.args[0]!;
    const store = await maybeStore(ctx.flags, ref, "inspect");
    try {
      const m = await manifestOf(store, ref, ctx.flags);
      ctx.out.result(m, () => {
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
        return lines;
      });
      return 0;
    } finally {
      await store?.close();
    }
  },
};
