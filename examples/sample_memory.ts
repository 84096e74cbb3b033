/**
 * Generates a realistic sample agent memory: a git-tracked notes directory, SQLite databases
 * (long-term facts with a full-text index, vectors) and JSON state. Used by the demo, the
 * example runtime and the end-to-end tests.
 *
 * @module
 */
import { join } from "node:path";
import * as fs from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { createHash } from "node:crypto";
import git from "isomorphic-git";

/** Paths of a generated sample memory. */
export interface SampleMemory {
  /** The agent's home. */
  home: string;
  /** The git-tracked memory dir. */
  memdir: string;
  /** Databases by name. */
  sqlite: Record<string, string>;
  /** State files by name. */
  state: Record<string, string>;
}

/** Options of {@linkcode generateSampleMemory}. */
export interface SampleMemoryOptions {
  /** Number of notes. @default {24} */
  notes?: number;
  /** Number of facts. @default {200} */
  facts?: number;
  /** Plant a fake credential and an email, to show redaction. @default {true} */
  plantSecrets?: boolean;
}

const TOPICS = [
  "project-atlas",
  "user-preferences",
  "meetings",
  "travel",
  "reading",
  "infra",
  "recipes",
  "health",
];
const WORDS = (
  "the user prefers concise answers and likes examples; remember to follow up on the migration plan, " +
  "the weekly sync moved to thursday, deploys happen after review, the staging database was resized, " +
  "book recommendations include systems design and distributed consensus, coffee order is a flat white"
).split(/\s+/);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 2 ** 32;
  };
}

function sentence(r: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  return out.join(" ");
}

const author = {
  name: "Agent",
  email: "agent@example.invalid",
  timestamp: 1764000000,
  timezoneOffset: 0,
};

/** Commits every change in the memory dir (like `git add -A && git commit`). */
export async function commitAll(
  dir: string,
  message: string,
  when = author.timestamp,
): Promise<string> {
  const matrix = await git.statusMatrix({ fs, dir });
  for (const [filepath, , work] of matrix) {
    if (work === 0) await git.remove({ fs, dir, filepath });
    else if (work === 2) await git.add({ fs, dir, filepath });
  }
  return await git.commit({ fs, dir, message, author: { ...author, timestamp: when } });
}

/**
 * Writes a sample memory under `home`.
 *
 * @param home Directory to create the memory in (must exist).
 * @param options Sizes.
 * @returns The paths.
 */
export async function generateSampleMemory(
  home: string,
  options: SampleMemoryOptions = {},
): Promise<SampleMemory> {
  const r = rng(42);
  const memdir = join(home, "memory");
  await Deno.mkdir(join(memdir, "notes"), { recursive: true });
  await git.init({ fs, dir: memdir, defaultBranch: "main" });
  const notes = options.notes ?? 24;
  const index: string[] = ["# MEMORY", ""];
  for (let i = 0; i < notes; i++) {
    const topic = TOPICS[i % TOPICS.length]!;
    const name = `notes/${String(i).padStart(3, "0")}-${topic}.md`;
    index.push(`- [${topic} ${i}](${name})`);
    await Deno.writeTextFile(
      join(memdir, name),
      `# ${topic} ${i}\n\n${sentence(r, 40 + Math.floor(r() * 80))}\n`,
    );
  }
  await Deno.writeTextFile(join(memdir, "MEMORY.md"), index.join("\n") + "\n");
  await Deno.writeTextFile(join(memdir, ".gitignore"), "*.tmp\n");
  await commitAll(memdir, "Initial memory", author.timestamp);
  for (let c = 1; c <= 4; c++) {
    const i = Math.floor(r() * notes);
    const name = `notes/${String(i).padStart(3, "0")}-${TOPICS[i % TOPICS.length]}.md`;
    await Deno.writeTextFile(join(memdir, name), `\n${sentence(r, 30)}\n`, { append: true });
    await commitAll(memdir, `Remember more about note ${i}`, author.timestamp + c * 3600);
  }
  await git.branch({ fs, dir: memdir, ref: "drafts" });
  const bin = new Uint8Array(4096);
  for (let i = 0; i < bin.length; i++) bin[i] = Math.floor(r() * 256);
  await Deno.writeFile(join(memdir, "notes/diagram.bin"), bin);
  await commitAll(memdir, "Add a diagram", author.timestamp + 5 * 3600);
  if (options.plantSecrets ?? true) {
    // A pasted credential, uncommitted: it lives in the working tree only. (The token is a
    // well-formed fake, not a real key.)
    await Deno.writeTextFile(
      join(memdir, "notes/scratch.md"),
      "# scratch\n\nThe user pasted a deploy token: ghp_" + "R2d2C3p0BB8kX9qLmN4vT7wZ1yA5sE6uJ0hF" +
        "\nand asked to email ops at ops-team@acme-robotics.io.\n",
    );
  }
  await Deno.writeTextFile(join(memdir, "cache.tmp"), "ignored scratch\n");

  const dbDir = join(home, "db");
  await Deno.mkdir(dbDir, { recursive: true });
  const longTerm = join(dbDir, "long_term.sqlite");
  const lt = new DatabaseSync(longTerm);
  lt.exec(`PRAGMA journal_mode=WAL;
    CREATE TABLE facts(id INTEGER PRIMARY KEY, subject TEXT NOT NULL, fact TEXT NOT NULL, created_at INTEGER NOT NULL);
    CREATE VIRTUAL TABLE facts_fts USING fts5(fact, content='facts', content_rowid='id');
    CREATE TRIGGER facts_ai AFTER INSERT ON facts BEGIN INSERT INTO facts_fts(rowid, fact) VALUES (new.id, new.fact); END;
    CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN INSERT INTO facts_fts(facts_fts, rowid, fact) VALUES('delete', old.id, old.fact); END;
    CREATE TRIGGER facts_au AFTER UPDATE ON facts BEGIN
      INSERT INTO facts_fts(facts_fts, rowid, fact) VALUES('delete', old.id, old.fact);
      INSERT INTO facts_fts(rowid, fact) VALUES (new.id, new.fact);
    END;
    CREATE TABLE dream_runs(id INTEGER PRIMARY KEY, started_at INTEGER, notes_merged INTEGER);
    PRAGMA user_version=3;`);
  const ins = lt.prepare("INSERT INTO facts(subject, fact, created_at) VALUES (?, ?, ?)");
  lt.exec("BEGIN");
  for (let i = 0; i < (options.facts ?? 200); i++) {
    ins.run(TOPICS[i % TOPICS.length]!, sentence(r, 12), author.timestamp + i);
  }
  if (options.plantSecrets ?? true) {
    ins.run("contacts", "The user's personal email is jane.doe@fastmail.com", author.timestamp);
  }
  lt.exec("COMMIT");
  lt.close();
  const vector = join(dbDir, "vector.sqlite");
  const vdb = new DatabaseSync(vector);
  vdb.exec(
    "CREATE TABLE embeddings(id INTEGER PRIMARY KEY, note TEXT, vec BLOB); PRAGMA user_version=1;",
  );
  const vins = vdb.prepare("INSERT INTO embeddings(note, vec) VALUES (?, ?)");
  vdb.exec("BEGIN");
  for (let i = 0; i < notes; i++) {
    const v = new Float32Array(64);
    for (let k = 0; k < v.length; k++) v[k] = r() * 2 - 1;
    vins.run(`notes/${String(i).padStart(3, "0")}`, new Uint8Array(v.buffer));
  }
  vdb.exec("COMMIT");
  vdb.close();

  const stateDir = join(home, "state");
  await Deno.mkdir(stateDir, { recursive: true });
  const cursor = join(stateDir, "extract_cursor.json");
  await Deno.writeTextFile(
    cursor,
    JSON.stringify({ last_message_id: "msg_0412", updated_at: "2026-11-24T18:00:00Z" }, null, 2),
  );
  const lastDream = join(stateDir, "last_dream.json");
  await Deno.writeTextFile(
    lastDream,
    JSON.stringify({ run_id: 7, finished_at: "2026-11-24T03:00:00Z", notes_merged: 3 }),
  );
  return {
    home,
    memdir,
    sqlite: { long_term: longTerm, vector },
    state: { extract_cursor: cursor, last_dream: lastDream },
  };
}

/** A "dream" pass: consolidates notes (deletes, rewrites, commits), rewrites rows, moves the cursor. */
export async function dream(mem: SampleMemory, round = 1): Promise<void> {
  const notesDir = join(mem.memdir, "notes");
  const names = [...Deno.readDirSync(notesDir)].map((e) => e.name).filter((n) => n.endsWith(".md"))
    .sort();
  for (const n of names.slice(0, 3)) await Deno.remove(join(notesDir, n));
  await Deno.writeTextFile(
    join(notesDir, `consolidated-${round}.md`),
    `# consolidated ${round}\n\nMerged ${names.slice(0, 3).join(", ")}.\n`,
  );
  await Deno.writeTextFile(join(mem.memdir, "MEMORY.md"), `# MEMORY (dreamed ${round})\n`, {
    append: true,
  });
  await commitAll(
    mem.memdir,
    `Dream ${round}: consolidate notes`,
    author.timestamp + 86400 * round,
  );
  const db = new DatabaseSync(mem.sqlite.long_term!);
  db.exec("BEGIN");
  db.exec("DELETE FROM facts WHERE id % 5 = 0");
  db.exec("UPDATE facts SET fact = fact || ' (consolidated)' WHERE id % 7 = 0");
  db.prepare("INSERT INTO dream_runs(started_at, notes_merged) VALUES (?, ?)").run(
    author.timestamp + round,
    3,
  );
  db.exec("COMMIT");
  db.close();
  await Deno.writeTextFile(
    mem.state.extract_cursor!,
    JSON.stringify({ last_message_id: `msg_${500 + round}`, updated_at: "2026-11-25T03:00:00Z" }),
  );
}

/** A fingerprint of everything the agent keeps: files, git refs, database rows, state. */
export async function fingerprint(mem: SampleMemory): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (r === ".git" || r.endsWith(".tmp")) continue; // git-ignored scratch is not memory
      if (e.isDirectory) await walk(join(dir, e.name), r);
      else if (e.isFile) {
        out[`memdir/${r}`] = createHash("sha256").update(await Deno.readFile(join(dir, e.name)))
          .digest("hex");
      }
    }
  };
  await walk(mem.memdir, "");
  const refs = await git.listBranches({ fs, dir: mem.memdir });
  for (const b of refs.sort()) {
    out[`git/refs/heads/${b}`] = await git.resolveRef({ fs, dir: mem.memdir, ref: b });
  }
  out["git/HEAD"] = await git.resolveRef({ fs, dir: mem.memdir, ref: "HEAD" });
  for (const [name, path] of Object.entries(mem.sqlite)) {
    const db = new DatabaseSync(path, { readOnly: true });
    const tables = db.prepare(
      "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    ).all() as {
      name: string;
    }[];
    for (const { name: t } of tables) {
      const h = createHash("sha256");
      for (const row of db.prepare(`SELECT * FROM "${t}"`).iterate()) {
        h.update(
          JSON.stringify(
            row,
            (_k, v) => v instanceof Uint8Array ? [...v] : typeof v === "bigint" ? String(v) : v,
          ),
        );
      }
      out[`sqlite/${name}/${t}`] = h.digest("hex");
    }
    out[`sqlite/${name}/user_version`] = String(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
    db.close();
  }
  for (const [name, path] of Object.entries(mem.state)) {
    // State is kept as canonical JSON: compare values, not formatting.
    out[`state/${name}`] = canonical(JSON.parse(await Deno.readTextFile(path)));
  }
  return out;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}
