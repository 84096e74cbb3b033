/**
 * `memsnap diff`: what changed between two snapshots.
 *
 * @module
 */
import type { Command } from "./_spec.ts";
import { decipherFrom, STORE_HELP } from "./_context.ts";
import { manifestOf, maybeStore, streamOf } from "./_ref.ts";
import { diffSnapshots, type SnapshotDiff } from "../diff.ts";

function human(d: SnapshotDiff): string[] {
  const lines = [`Changes from ${d.a} to ${d.b}:`];
  const sec = (title: string, xs: string[], mark: string): void => {
    for (const x of xs) lines.push(`  ${mark} ${title}${x}`);
  };
  sec("", d.memdir.added, "+");
  sec("", d.memdir.removed, "-");
  sec("", d.memdir.changed, "~");
  // Git object files (the "objects" layout) are summed up: the commits are listed below.
  const objects = (xs: string[]): number => xs.filter((p) => p.startsWith("git/objects/")).length;
  const other = (xs: string[]): string[] =>
    xs.filter((p) => !p.startsWith("memdir/") && !p.startsWith("git/objects/"));
  const plural = (n: number): string => `${n} git object file${n === 1 ? "" : "s"}`;
  for (const [xs, mark] of [[d.artifacts.added, "+"], [d.artifacts.removed, "-"]] as const) {
    if (objects(xs) > 0) lines.push(`  ${mark} ${plural(objects(xs))}`);
  }
  sec("", other(d.artifacts.added), "+");
  sec("", other(d.artifacts.removed), "-");
  sec("", other(d.artifacts.changed), "~");
  for (const db of d.databases) {
    const note = db.change === "changed" && db.tables.length === 0
      ? " (file bytes differ; every table is identical)"
      : "";
    lines.push(`  database ${db.name}: ${db.change}${note}`);
    for (const t of db.tables) {
      lines.push(`    ${t.change} table ${t.table}: rows ${t.rows_a ?? "-"} -> ${t.rows_b ?? "-"}`);
    }
  }
  if (d.git && d.git.head_a !== d.git.head_b) {
    lines.push(
      `  git HEAD ${d.git.head_a?.slice(0, 12) ?? "(none)"} -> ${
        d.git.head_b?.slice(0, 12) ?? "(none)"
      }`,
    );
    for (const c of d.git.commits) lines.push(`    + ${c.oid.slice(0, 12)} ${c.subject}`);
    for (const c of d.git.removed_commits) lines.push(`    - ${c.oid.slice(0, 12)} ${c.subject}`);
  }
  for (const s of d.state) {
    lines.push(
      `  state ${s.name}: ${
        [
          ...s.added.map((k) => "+" + k),
          ...s.removed.map((k) => "-" + k),
          ...s.changed.map((k) => "~" + k),
        ].join(" ")
      }`,
    );
  }
  if (lines.length === 1) lines.push("  no changes");
  return lines;
}

/** The command. */
export const command: Command = {
  name: "diff",
  summary: "Show what changed between two snapshots",
  usage: "diff <A> <B> --store DIR [--identity FILE] [--json]",
  description: [
    "Artifacts and memory-dir files added/removed/changed; per database, tables and row counts",
    "changed; git commits between the two HEADs; state keys changed. A and B are ids, unique",
    "prefixes, `latest`, or bundle paths.",
  ],
  examples: [
    "memsnap diff --store ./snaps 20261125T1952 latest --agent a1",
    "memsnap diff ./before.msnap ./after.msnap --identity ./age.key --json",
  ],
  flags: {
    store: { type: "string" },
    agent: { type: "string" },
    tenant: { type: "string" },
    identity: { type: "string", multiple: true },
  },
  flagHelp: {
    ...STORE_HELP,
    agent: "agent (to resolve latest)",
    tenant: "tenant",
    identity: "age identity file for encrypted bundles",
  },
  positionals: [2, 2],
  async run(ctx) {
    const [ra, rb] = ctx.args as [string, string];
    const store = await maybeStore(ctx.flags, ra.includes("/") ? rb : ra, "diff");
    try {
      const decipher = await decipherFrom(ctx.flags);
      const side = async (ref: string) => ({
        manifest: await manifestOf(store, ref, ctx.flags),
        open: () => streamOf(store, ref, ctx.flags),
      });
      const d = await diffSnapshots(await side(ra), await side(rb), decipher ? { decipher } : {});
      ctx.out.result(d, () => human(d));
      return 0;
    } finally {
      await store?.close();
    }
  },
};
