/**
 * `deno task demo`: the main job end to end on generated sample memory.
 *
 * Generates an agent memory in a temp dir (git notes, SQLite databases, JSON state), takes a
 * snapshot, lets a "dream" pass rewrite the memory, verifies the bundle, shows what changed,
 * restores, and shows the memory is back. Every step runs the real CLI (`cli/main.ts`).
 *
 * @module
 */
import { join } from "node:path";
import { main } from "../cli/main.ts";
import { dream, fingerprint, generateSampleMemory } from "./sample_memory.ts";

const bold = (s: string): string => Deno.stdout.isTerminal() ? `\x1b[1m${s}\x1b[0m` : s;
const dim = (s: string): string => Deno.stdout.isTerminal() ? `\x1b[2m${s}\x1b[0m` : s;

async function memsnap(args: string[], show = true): Promise<number> {
  if (show) {
    console.log(
      dim(`$ memsnap ${args.map((a) => (a.includes(" ") ? JSON.stringify(a) : a)).join(" ")}`),
    );
  }
  const code = await main(args);
  if (code !== 0) throw new Error(`memsnap ${args[0]} exited ${code}`);
  return code;
}

async function captureJson(args: string[]): Promise<unknown> {
  // Runs a command with --json and returns its parsed stdout.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, ...args, "--json"],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = await child.output();
  if (!out.success) throw new Error(`memsnap ${args[0]} exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

const root = await Deno.makeTempDir({ prefix: "memsnap-demo-" });
const keep = Deno.args.includes("--keep");
try {
  console.log(bold("memsnap demo: snapshot, dream, verify, diff, restore\n"));
  const mem = await generateSampleMemory(join(root, "agent"));
  const store = join(root, "store");
  console.log(`Sample agent memory in ${mem.home}:`);
  console.log(
    `  memory/        git repo, notes on 2 branches, an untracked note with a pasted token`,
  );
  console.log(`  db/            long_term.sqlite (facts + full-text index, WAL), vector.sqlite`);
  console.log(`  state/         extract_cursor.json, last_dream.json\n`);
  const source = [
    "--store",
    store,
    "--agent",
    "demo-agent",
    "--memdir",
    mem.memdir,
    "--sqlite",
    `long_term=${mem.sqlite.long_term}`,
    "--sqlite",
    `vector=${mem.sqlite.vector}`,
    "--state",
    `extract_cursor=${mem.state.extract_cursor}`,
    "--state",
    `last_dream=${mem.state.last_dream}`,
  ];

  console.log(bold("1. Snapshot before the dream (secrets and PII redacted by default)"));
  await memsnap(["snapshot", ...source, "--label", "before-dream"]);
  const before = await fingerprint(mem);
  const snaps = await captureJson(["list", "--store", store, "--agent", "demo-agent"]) as {
    id: string;
  }[];
  const id = snaps.at(-1)!.id;
  console.log();
  await memsnap(["inspect", "--store", store, id]);

  console.log(bold("\n2. The agent dreams: notes consolidated, rows rewritten, cursor moved"));
  await dream(mem);
  const after = await fingerprint(mem);
  const changed = Object.keys({ ...before, ...after }).filter((k) => before[k] !== after[k]);
  console.log(`  ${changed.length} parts of the memory changed (files, git refs, tables, state)\n`);

  console.log(bold("3. Verify the bundle (manifest, payload hash, every artifact hash)"));
  await memsnap(["verify", "--store", store, id]);

  console.log(bold("\n4. What would a restore change? (dry run: nothing is touched)"));
  await memsnap(["restore", id, ...source, "--dry-run"]);

  console.log(bold("\n5. Restore (safety snapshot first, staged, swapped atomically)"));
  await memsnap(["restore", id, ...source]);

  console.log(bold("\n6. Is the memory back?"));
  const restored = await fingerprint(mem);
  const differ = Object.keys({ ...before, ...restored }).filter((k) => before[k] !== restored[k]);
  // The snapshot was redacted: the pasted token and the emails come back as redaction tokens.
  const redactedParts = (k: string): boolean =>
    k === "memdir/notes/scratch.md" || k.startsWith("sqlite/long_term/facts");
  const unexpected = differ.filter((k) => !redactedParts(k));
  for (const k of Object.keys(before).sort()) {
    const mark = before[k] === restored[k]
      ? "same    "
      : redactedParts(k)
      ? "redacted"
      : "DIFFERS ";
    if (
      mark !== "same    " || k.startsWith("git/") || k.startsWith("state/") || k.endsWith("/facts")
    ) console.log(`  ${mark} ${k}`);
  }
  const same = Object.keys(before).length - differ.length;
  console.log(
    `  ${same}/${
      Object.keys(before).length
    } parts identical to before the dream; the rest differ only by redaction`,
  );
  const scratch = await Deno.readTextFile(join(mem.memdir, "notes/scratch.md"));
  console.log(`  notes/scratch.md now reads: ${JSON.stringify(scratch.split("\n")[2])}`);
  if (unexpected.length > 0) {
    throw new Error(`restore did not bring back: ${unexpected.join(", ")}`);
  }

  console.log(
    bold("\n7. Undo is one command: the pre-restore snapshot holds the dreamed state exactly"),
  );
  await memsnap(["list", "--store", store]);
  const all = await captureJson(["list", "--store", store, "--agent", "demo-agent"]) as {
    id: string;
  }[];
  console.log(bold("\n8. What did the dream change? (diff of the two snapshots)"));
  await memsnap(["diff", "--store", store, id, all.at(-1)!.id]);
  console.log(bold("\nDone.") + (keep ? ` Files kept in ${root}` : ""));
} finally {
  if (!keep) await Deno.remove(root, { recursive: true }).catch(() => {});
}
