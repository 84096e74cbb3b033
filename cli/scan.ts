/**
 * `memsnap scan`: show what redaction would remove from live memory, without a snapshot.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { resolve } from "node:path";
import type { Command } from "./_spec.ts";
import { list, packsFrom, str } from "./_context.ts";
import { parseMapFlag } from "./_config.ts";
import { type Finding, scanPaths, scanText } from "../redact/scan.ts";
import { UsageError } from "../errors.ts";

/** The command. */
export const command: Command = {
  name: "scan",
  summary: "Show what redaction would remove from live memory",
  usage:
    "scan [--memdir DIR] [--sqlite NAME=PATH]... [--state NAME=FILE]... [--redact PACKS] [--json]",
  description: [
    "Runs the rule packs over the memory dir's text files, every text value of the databases",
    "(read-only) and the state files, and prints each finding with a masked preview (never the",
    "secret). Writes nothing.",
  ],
  examples: [
    "memsnap scan --memdir ./memory --sqlite long_term=./lt.sqlite",
    "memsnap scan --memdir ./memory --redact secrets,./gitleaks.toml --json",
  ],
  flags: {
    memdir: { type: "string" },
    sqlite: { type: "string", multiple: true },
    state: { type: "string", multiple: true },
    redact: { type: "string" },
  },
  flagHelp: {
    memdir: "the memory directory",
    sqlite: "a database as NAME=PATH",
    state: "a JSON state file as NAME=PATH",
    redact: 'rule packs (default "secrets,pii")',
  },
  positionals: [0, 0],
  async run(ctx) {
    const spec = str(ctx.flags, "redact");
    const packs = await packsFrom(spec, (m) => ctx.out.warn(m));
    const findings: Finding[] = [];
    const skipped: string[] = [];
    const paths: string[] = [];
    const memdir = str(ctx.flags, "memdir");
    if (memdir) paths.push(resolve(memdir));
    for (const p of Object.values(parseMapFlag("state", list(ctx.flags, "state")))) {
      paths.push(resolve(p));
    }
    const dbs = parseMapFlag("sqlite", list(ctx.flags, "sqlite"));
    if (paths.length === 0 && Object.keys(dbs).length === 0) {
      throw new UsageError('Cannot run "scan": nothing to scan', {
        hint: "pass --memdir DIR, --sqlite NAME=PATH or --state NAME=FILE",
      });
    }
    for (const p of paths) {
      try {
        await Deno.stat(p);
      } catch {
        throw new UsageError(`Cannot scan ${p}: it does not exist`);
      }
    }
    for await (
      const f of scanPaths(paths, packs, { onSkip: (p, why) => skipped.push(`${p} (${why})`) })
    ) {
      findings.push(f);
    }
    for (const [name, path] of Object.entries(dbs)) {
      let db: DatabaseSync;
      try {
        db = new DatabaseSync(resolve(path), { readOnly: true });
      } catch (e) {
        throw new UsageError(`Cannot open database ${name} (${path}): ${(e as Error).message}`);
      }
      try {
        const tables = db.prepare(
          "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE VIRTUAL%'",
        ).all() as { name: string }[];
        for (const { name: table } of tables) {
          if (/_(data|idx|content|docsize|config|segments|segdir|stat)$/.test(table)) continue; // FTS shadow tables
          const q = `SELECT rowid AS __rowid, * FROM "${table.replaceAll('"', '""')}"`;
          let rows: Iterable<Record<string, unknown>>;
          try {
            rows = db.prepare(q).iterate() as Iterable<Record<string, unknown>>;
          } catch {
            rows = db.prepare(`SELECT * FROM "${table.replaceAll('"', '""')}"`)
              .iterate() as Iterable<Record<string, unknown>>;
          }
          for (const row of rows) {
            for (const [col, v] of Object.entries(row)) {
              if (typeof v !== "string" || col === "__rowid") continue;
              for (const f of scanText(v, packs)) {
                findings.push({
                  ...f,
                  path: `sqlite/${name}: ${table}.${col} rowid ${row.__rowid ?? "?"}`,
                });
              }
            }
          }
        }
      } finally {
        db.close();
      }
    }
    const byRule = new Map<string, number>();
    for (const f of findings) byRule.set(f.rule, (byRule.get(f.rule) ?? 0) + 1);
    ctx.out.result({ findings, skipped, by_rule: Object.fromEntries(byRule) }, () => [
      ...findings.map((f) => `${f.path ?? ""}:${f.line}:${f.column}  ${f.rule}  ${f.preview}`),
      ...(skipped.length
        ? [
          `skipped ${skipped.length} file(s): ${skipped.slice(0, 5).join(", ")}${
            skipped.length > 5 ? ", …" : ""
          }`,
        ]
        : []),
      findings.length
        ? `${findings.length} finding(s): ${[...byRule].map(([r, n]) => `${r} ${n}`).join(", ")}`
        : "No findings.",
    ]);
    return 0;
  },
};
