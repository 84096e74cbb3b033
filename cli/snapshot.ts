/**
 * `memsnap snapshot`: take a snapshot of an agent's memory.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { formatBytes } from "./_output.ts";
import {
  LOCK_FLAGS,
  LOCK_HELP,
  snapshotterFrom,
  SOURCE_FLAGS,
  SOURCE_HELP,
  STORE_FLAGS,
  STORE_HELP,
  str,
} from "./_context.ts";
import { applyRetentionFromFlags, RETENTION_FLAGS, RETENTION_HELP } from "./_retention.ts";
import { artifactTotals } from "../bundle/_artifact_table.ts";

/** The command. */
export const command: Command = {
  name: "snapshot",
  summary: "Take a snapshot of an agent's memory",
  usage:
    "snapshot --store DIR --agent ID --memdir DIR [--sqlite NAME=PATH]... [--state NAME=FILE]... [flags]",
  description: [
    "Captures the memory dir (with its git history), SQLite databases (a consistent copy, even",
    "while the agent writes) and JSON state, redacts secrets and PII (on by default), and writes",
    "one bundle into the store. Redaction never touches live memory.",
  ],
  examples: [
    "memsnap snapshot --store ./snaps --agent a1 --memdir ./memory",
    "memsnap snapshot --store ./snaps --agent a1 --memdir ./memory --sqlite long_term=./lt.sqlite --state cursor=./cursor.json",
    "memsnap snapshot --store s3://bucket/memsnap --agent a1 --memdir ./memory --recipient age1... --sign ./memsnap.key",
    "memsnap snapshot --agent a1 --json     # store, memdir ... from ./memsnap.json",
  ],
  flags: {
    ...STORE_FLAGS,
    ...SOURCE_FLAGS,
    ...LOCK_FLAGS,
    label: { type: "string" },
    redact: { type: "string" },
    "no-redact": { type: "boolean" },
    recipient: { type: "string", multiple: true },
    "recipients-file": { type: "string", multiple: true },
    sign: { type: "string" },
    "skip-unchanged": { type: "boolean" },
    "created-by": { type: "string" },
    ...RETENTION_FLAGS,
  },
  flagHelp: {
    ...STORE_HELP,
    ...SOURCE_HELP,
    ...LOCK_HELP,
    label: "a label for the snapshot",
    redact: 'rule packs, e.g. "secrets,pii,./my_pack.ts,./gitleaks.toml" (default secrets,pii)',
    "no-redact": "do not redact (the bundle then holds secrets as they are)",
    recipient: "encrypt the payload for this age recipient (age1...)",
    "recipients-file": "encrypt for the recipients listed in this file",
    sign: "sign the manifest with this minisign secret key (passphrase: MEMSNAP_SIGN_PASSPHRASE)",
    "skip-unchanged": "do not write a bundle if nothing changed since the last snapshot",
    "created-by": 'what takes the snapshot (default "cli")',
    ...RETENTION_HELP,
  },
  positionals: [0, 0],
  async run(ctx) {
    const snap = await snapshotterFrom(ctx, "snapshot", { needCaptures: true });
    try {
      const label = str(ctx.flags, "label");
      const r = await snap.snapshot({
        createdBy: str(ctx.flags, "created-by") ?? "cli",
        ...(label ? { label } : {}),
        signal: ctx.signal,
      });
      const m = r.manifest;
      if (!m.redaction.redacted && !r.skipped) {
        ctx.out.warn(
          `snapshot ${m.snapshot_id} is NOT redacted: it holds any secrets in the memory as they are`,
        );
      }
      await applyRetentionFromFlags(ctx, snap.store, snap.tenant, snap.agent);
      const redactedCount = m.redaction.rules.reduce((n, x) => n + x.count, 0);
      // Counted without making the entries of a manifest just written (see ArtifactTable).
      const totals = artifactTotals(m);
      ctx.out.result(
        {
          id: r.info.id,
          path: r.info.path,
          parent: r.info.parent,
          agent_id: r.info.agent_id,
          tenant: r.info.tenant,
          created_at: r.info.created_at,
          created_by: r.info.created_by,
          label: r.info.label,
          size: r.info.size,
          artifacts: totals.count,
          skipped: r.skipped,
          redacted: m.redaction.redacted,
          redactions: redactedCount,
          encrypted: m.payload.encryption !== null,
        },
        () =>
          r.skipped ? [`Unchanged since ${r.info.id}; no new snapshot written (${r.info.path})`] : [
            `Created snapshot ${r.info.id}`,
            `  path       ${r.info.path}`,
            `  parent     ${r.info.parent ?? "(none)"}`,
            `  artifacts  ${totals.count} (${formatBytes(totals.bytes)})`,
            `  bundle     ${formatBytes(r.info.size)}${m.payload.encryption ? ", encrypted" : ""}`,
            `  redaction  ${m.redaction.redacted ? `${redactedCount} secret(s) replaced` : "off"}`,
          ],
      );
      return 0;
    } finally {
      await snap.store.close();
    }
  },
};
