/**
 * A realistic agent memory of a chosen size, for `bench/compare.ts` (private).
 *
 * Layout under `home`:
 *
 * - `memory/`: a git repository (git CLI, three commits) holding many small markdown notes
 *   (1-32 KiB), a few large text files (transcripts, logs) and a few binary files (half random,
 *   half structured, like packed embeddings or images). About 55% of the bytes.
 * - `long_term.sqlite`: facts with text rows (about 25% of the bytes).
 * - `vectors.sqlite`: blob rows of float32 vectors plus a text column (about 15%).
 * - `state/cursor.json`, `state/session.json`: small JSON state.
 *
 * Text comes from a deterministic generator of notes with occasional planted secrets and PII
 * (about one line in 500), so redaction has something to do. Generation is deterministic for a
 * size and seed, except for git object timestamps (fixed too, through the environment).
 *
 * @module
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";

/** Paths and facts of a generated fixture. */
export interface Fixture {
  /** The agent's home (what the native pipeline tars). */
  home: string;
  /** The git-tracked memory dir. */
  memdir: string;
  /** Databases by name. */
  sqlite: Record<string, string>;
  /** State files by name. */
  state: Record<string, string>;
  /** Bytes of live files, excluding `.git`. */
  bytes: number;
  /** Bytes of text files (notes, transcripts, JSON). */
  textBytes: number;
  /** Number of files in the memory dir's working tree. */
  files: number;
  /** A text sample (the notes generator), for in-process redaction throughput. */
  sample: string;
}

const WORDS = (
  "the agent remembered that user prefers short answers and we deployed version on meeting " +
  "notes about config database migration review pull request commit deploy staging production " +
  "logs error timeout retry cache memory index query token password key secret api auth login " +
  "followed up with the team about latency budget dashboards alerts runbook incident postmortem " +
  "customer asked for export of conversation history summarize tomorrow schedule calendar " +
  "travel plans flight hotel conference talk slides draft feedback reading list paper chapter"
).split(" ");
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A small deterministic PRNG. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/** Deterministic notes text of about `bytes` bytes, with occasional secrets and PII. */
export function notesText(bytes: number, seed: number): string {
  const rnd = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const rs = (n: number, alpha: string): string => {
    let o = "";
    for (let i = 0; i < n; i++) o += alpha[Math.floor(rnd() * alpha.length)];
    return o;
  };
  const secretLines = [
    () => `aws key AKIA${rs(16, B32)} for backups`,
    () => `export GITHUB_TOKEN=ghp_${rs(36, ALNUM)}`,
    () => `DATABASE_URL=postgres://app:${rs(14, ALNUM)}@db.internal:5432/app`,
    () => `reach me at ${rs(6, "abcdefghij")}.${rs(5, "klmnopqrs")}@acme-mail.com`,
    () => `call +1 415 555 ${String(1000 + Math.floor(rnd() * 8999))}`,
  ];
  const lines: string[] = [];
  let size = 0;
  while (size < bytes) {
    let line: string;
    const x = rnd();
    if (x < 0.002) line = pick(secretLines)();
    else if (x < 0.04) {
      line = `- ${new Date(1700000000000 + Math.floor(rnd() * 1e10)).toISOString()} commit ${
        rs(40, "0123456789abcdef")
      }`;
    } else if (x < 0.07) line = `## ${pick(WORDS)} ${pick(WORDS)}`;
    else {
      const n = 6 + Math.floor(rnd() * 14);
      const w: string[] = [];
      for (let i = 0; i < n; i++) w.push(pick(WORDS));
      line = w.join(" ") + (rnd() < 0.3 ? `: ${pick(WORDS)} ${Math.floor(rnd() * 1000)}` : ".");
    }
    lines.push(line);
    size += line.length + 1;
  }
  return lines.join("\n") + "\n";
}

/** A text pool sliced into files: varied enough for zstd, cheap to generate at 1 GiB. */
class TextPool {
  #bytes: Uint8Array;
  #rnd: () => number;
  constructor(size: number, seed: number) {
    this.#bytes = new TextEncoder().encode(notesText(size, seed));
    this.#rnd = rng(seed ^ 0x5bd1e995);
  }
  get text(): Uint8Array {
    return this.#bytes;
  }
  /** `n` bytes from a random line start, wrapping around; ends with a newline. */
  take(n: number, title: string): Uint8Array {
    const head = new TextEncoder().encode(`# ${title}\n\n`);
    const out = new Uint8Array(Math.max(n, head.length + 1));
    out.set(head);
    let off = head.length;
    let at = Math.floor(this.#rnd() * this.#bytes.length);
    while (at > 0 && this.#bytes[at - 1] !== 10) at--;
    while (off < out.length) {
      const k = Math.min(out.length - off, this.#bytes.length - at);
      out.set(this.#bytes.subarray(at, at + k), off);
      off += k;
      at = 0;
    }
    out[out.length - 1] = 10;
    return out;
  }
}

/** Binary bytes: alternating random and structured (float-like) 4 KiB pages. */
function binaryBytes(n: number, rnd: () => number): Uint8Array {
  const out = new Uint8Array(n);
  const view = new DataView(out.buffer);
  for (let page = 0; page < n; page += 4096) {
    const end = Math.min(n, page + 4096);
    if ((page / 4096) % 2 === 0) {
      crypto.getRandomValues(out.subarray(page, end));
    } else {
      for (let i = page; i + 4 <= end; i += 4) view.setFloat32(i, Math.round(rnd() * 64) / 64);
    }
  }
  return out;
}

/**
 * `git init` of a fixture's memory dir, without automatic gc: a detached `git gc --auto` after
 * a commit would repack the objects while a benchmark reads them (tar fails with "file removed
 * before we read it"), and the fixture would differ from run to run. Objects stay loose, as an
 * agent's recent commits are, unless the fixture packs them itself.
 */
async function gitInit(memdir: string): Promise<void> {
  await run("git", ["init", "-q", "-b", "main"], memdir);
  await run("git", ["config", "gc.auto", "0"], memdir);
  await run("git", ["config", "maintenance.auto", "false"], memdir);
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
    env: {
      GIT_AUTHOR_NAME: "Agent",
      GIT_AUTHOR_EMAIL: "agent@example.invalid",
      GIT_COMMITTER_NAME: "Agent",
      GIT_COMMITTER_EMAIL: "agent@example.invalid",
      GIT_AUTHOR_DATE: "2026-11-01T00:00:00Z",
      GIT_COMMITTER_DATE: "2026-11-01T00:00:00Z",
    },
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/**
 * Generates a fixture of about `size` bytes of live files in `home` (which must not exist).
 *
 * @param home Where to create it.
 * @param size Target bytes (memory dir working tree + databases + state).
 * @param seed Generator seed.
 */
export async function generateFixture(home: string, size: number, seed = 7): Promise<Fixture> {
  const rnd = rng(seed);
  const memdir = join(home, "memory");
  await Deno.mkdir(join(memdir, "notes"), { recursive: true });
  await Deno.mkdir(join(home, "state"), { recursive: true });
  const pool = new TextPool(Math.min(16 << 20, Math.max(2 << 20, size >> 4)), seed);
  let bytes = 0, textBytes = 0, files = 0;

  // Small notes: 30% of the bytes, 1-32 KiB each (mean ~12 KiB), in topic dirs.
  const notePaths: string[] = [];
  let budget = size * 0.30;
  for (let i = 0; budget > 0; i++) {
    const n = Math.floor(1024 + rnd() * rnd() * 31 * 1024);
    const dir = `notes/topic-${String(i % 40).padStart(2, "0")}`;
    if (i < 40) await Deno.mkdir(join(memdir, dir), { recursive: true });
    const rel = `${dir}/note-${String(i).padStart(6, "0")}.md`;
    await Deno.writeFile(join(memdir, rel), pool.take(n, rel));
    notePaths.push(rel);
    budget -= n;
    bytes += n;
    textBytes += n;
    files++;
  }
  // Large text: 15% in 3 files (transcripts, an append-only log).
  await Deno.mkdir(join(memdir, "transcripts"));
  for (let i = 0; i < 3; i++) {
    const n = Math.floor(size * 0.05);
    const rel = `transcripts/session-${i}.md`;
    await Deno.writeFile(join(memdir, rel), pool.take(n, rel));
    bytes += n;
    textBytes += n;
    files++;
  }
  // Binary: 10% in 2 files.
  await Deno.mkdir(join(memdir, "attachments"));
  for (let i = 0; i < 2; i++) {
    const n = Math.floor(size * 0.05);
    await Deno.writeFile(join(memdir, `attachments/blob-${i}.bin`), binaryBytes(n, rnd));
    bytes += n;
    files++;
  }

  // Git: commit 1 = first 60% of the notes; commit 2 = everything; commit 3 edits 5% of notes.
  await gitInit(memdir);
  const first = notePaths.slice(0, Math.floor(notePaths.length * 0.6));
  for (let i = 0; i < first.length; i += 2000) {
    await run("git", ["add", "--", ...first.slice(i, i + 2000)], memdir);
  }
  await run("git", ["commit", "-q", "-m", "notes"], memdir);
  await run("git", ["add", "-A"], memdir);
  await run("git", ["commit", "-q", "-m", "more notes, transcripts, attachments"], memdir);
  const edited = new TextEncoder().encode("\n- follow up: reviewed during the dream pass\n");
  for (let i = 0; i < notePaths.length; i += 20) {
    using f = await Deno.open(join(memdir, notePaths[i]!), { append: true });
    await f.write(edited);
    bytes += edited.length;
    textBytes += edited.length;
  }
  await run("git", ["commit", "-q", "-a", "-m", "dream pass"], memdir);

  // SQLite: facts (text, 25%) and vectors (blobs + text, 15%); state.
  return await finish(home, memdir, size, 0.25, pool, rnd, { bytes, textBytes, files });
}

/** `long_term.sqlite`: ~`budget` bytes of text facts, in WAL mode. */
function writeFacts(path: string, budget: number, pool: TextPool, rnd: () => number): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=WAL; PRAGMA user_version=3;");
  db.exec("CREATE TABLE facts (id INTEGER PRIMARY KEY, topic TEXT, body TEXT, at TEXT)");
  const ins = db.prepare("INSERT INTO facts (topic, body, at) VALUES (?, ?, ?)");
  db.exec("BEGIN");
  let b = budget;
  const dec = new TextDecoder();
  for (let i = 0; b > 0; i++) {
    const n = 200 + Math.floor(rnd() * 3000);
    ins.run(`topic-${i % 40}`, dec.decode(pool.take(n, `fact ${i}`)), "2026-11-01T00:00:00Z");
    b -= n;
  }
  db.exec("COMMIT");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
}

/** `vectors.sqlite`: ~`budget` bytes of float32 embeddings with a text column. */
function writeVectors(path: string, budget: number, rnd: () => number): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA user_version=1;");
  db.exec("CREATE TABLE vectors (id INTEGER PRIMARY KEY, note TEXT, embedding BLOB)");
  const ins = db.prepare("INSERT INTO vectors (note, embedding) VALUES (?, ?)");
  db.exec("BEGIN");
  let b = budget;
  const vec = new Uint8Array(1536 * 4);
  const view = new DataView(vec.buffer);
  for (let i = 0; b > 0; i++) {
    for (let k = 0; k < 1536; k++) view.setFloat32(k * 4, (rnd() - 0.5) * 0.2, true);
    ins.run(`notes/note-${i}.md`, vec);
    b -= vec.length + 20;
  }
  db.exec("COMMIT");
  db.close();
}

/**
 * Writes what every fixture has beside its memory dir (`long_term.sqlite` with `factsShare` of
 * `size` in text facts, `vectors.sqlite` with 15% in embeddings, the two state files) and
 * returns the fixture, `counts` (of the memory dir) brought up to date.
 */
async function finish(
  home: string,
  memdir: string,
  size: number,
  factsShare: number,
  pool: TextPool,
  rnd: () => number,
  counts: { bytes: number; textBytes: number; files: number },
): Promise<Fixture> {
  let { bytes, textBytes } = counts;
  const sqlite = {
    long_term: join(home, "long_term.sqlite"),
    vectors: join(home, "vectors.sqlite"),
  };
  writeFacts(sqlite.long_term, size * factsShare, pool, rnd);
  writeVectors(sqlite.vectors, size * 0.15, rnd);
  for (const p of Object.values(sqlite)) bytes += (await Deno.stat(p)).size;
  const { state, bytes: stateBytes } = await writeState(home, pool);
  bytes += stateBytes;
  textBytes += stateBytes;
  return {
    home,
    memdir,
    sqlite,
    state,
    bytes,
    textBytes,
    files: counts.files,
    sample: new TextDecoder().decode(pool.text),
  };
}

/** The two state files; returns their paths and bytes. */
async function writeState(
  home: string,
  pool: TextPool,
): Promise<{ state: Record<string, string>; bytes: number }> {
  const state = {
    cursor: join(home, "state", "cursor.json"),
    session: join(home, "state", "session.json"),
  };
  const cursor = JSON.stringify({ extract_cursor: 123456, last_dream: "2026-11-24T03:00:00Z" });
  const session = JSON.stringify({
    turns: Array.from({ length: 200 }, (_, i) => ({
      i,
      role: i % 2 ? "assistant" : "user",
      text: new TextDecoder().decode(pool.take(300, `turn ${i}`)),
    })),
  });
  await Deno.writeTextFile(state.cursor, cursor);
  await Deno.writeTextFile(state.session, session);
  return { state, bytes: cursor.length + session.length };
}

/** Pieces `large` shapes are written in: no buffer of a whole large file. */
const PIECE = 8 << 20;

/**
 * A memory of few, large objects, for the peak-memory benchmark (`bench/memory.ts`): memory
 * must not grow with their size. Under `home`:
 *
 * - `memory/`: a git repository with 40 small notes, a transcript that grew over four commits
 *   (35% of the bytes at the end, each commit appending ~5%) and a half-random attachment
 *   (10%), then `git gc`: the objects are packed, the older transcripts as deltas of the newest
 *   (under git's 512 MiB `core.bigFileThreshold`; above it each version is stored whole);
 * - `long_term.sqlite`: text facts (35%); `vectors.sqlite`: embeddings (15%);
 * - `state/cursor.json`, `state/session.json`.
 *
 * @param home Where to create it (must not exist).
 * @param size Target bytes of live files.
 * @param seed Generator seed.
 */
export async function generateLargeFixture(
  home: string,
  size: number,
  seed = 11,
): Promise<Fixture> {
  const rnd = rng(seed);
  const memdir = join(home, "memory");
  await Deno.mkdir(join(memdir, "notes"), { recursive: true });
  await Deno.mkdir(join(home, "state"), { recursive: true });
  const pool = new TextPool(Math.min(16 << 20, Math.max(2 << 20, size >> 4)), seed);
  let bytes = 0, textBytes = 0, files = 0;
  for (let i = 0; i < 40; i++) {
    const rel = `notes/note-${String(i).padStart(2, "0")}.md`;
    const n = 2048 + Math.floor(rnd() * 8192);
    await Deno.writeFile(join(memdir, rel), pool.take(n, rel));
    bytes += n;
    textBytes += n;
    files++;
  }
  const append = async (rel: string, n: number, piece: (k: number) => Uint8Array) => {
    using f = await Deno.open(join(memdir, rel), { create: true, append: true });
    for (let left = n; left > 0;) {
      const b = piece(Math.min(PIECE, left));
      for (let off = 0; off < b.length;) off += await f.write(b.subarray(off));
      left -= b.length;
    }
  };
  await append("attachment.bin", Math.floor(size * 0.10), (k) => binaryBytes(k, rnd));
  bytes += Math.floor(size * 0.10);
  files++;
  await gitInit(memdir);
  const transcript = Math.floor(size * 0.35);
  const grow = Math.floor(transcript * 0.05);
  for (let c = 0; c < 4; c++) {
    const n = c === 0 ? transcript - 3 * grow : grow;
    await append("transcript.md", n, (k) => pool.take(k, `transcript, commit ${c}`));
    bytes += n;
    textBytes += n;
    await run("git", ["add", "-A"], memdir);
    await run("git", ["commit", "-q", "-m", `session ${c}`], memdir);
  }
  files++;
  await run("git", ["gc", "-q"], memdir);

  return await finish(home, memdir, size, 0.35, pool, rnd, { bytes, textBytes, files });
}

/**
 * A memory of many small files, for the peak-memory benchmark (`bench/memory.ts --files N`):
 * memory must not grow much with their number. Under `home`:
 *
 * - `memory/`: a git repository of `files` notes of 200 bytes to 2 KiB in 1,000 directories
 *   (`notes/dNNN/`), committed in one commit, then 5% of them edited in a second commit (so the
 *   history has ~1.05 blobs per note);
 * - the usual databases (a few MiB each) and state files.
 *
 * @param home Where to create it (must not exist).
 * @param files Number of notes.
 * @param seed Generator seed.
 */
export async function generateManyFilesFixture(
  home: string,
  files: number,
  seed = 13,
): Promise<Fixture> {
  const rnd = rng(seed);
  const memdir = join(home, "memory");
  await Deno.mkdir(join(home, "state"), { recursive: true });
  const pool = new TextPool(4 << 20, seed);
  const dirs = Math.min(1000, Math.max(1, Math.ceil(files / 100)));
  for (let d = 0; d < dirs; d++) {
    await Deno.mkdir(join(memdir, "notes", `d${String(d).padStart(3, "0")}`), { recursive: true });
  }
  const rel = (i: number): string =>
    `notes/d${String(i % dirs).padStart(3, "0")}/note-${String(i).padStart(7, "0")}.md`;
  let bytes = 0;
  for (let i = 0; i < files; i++) {
    const n = 200 + Math.floor(rnd() * rnd() * 1848);
    // Synchronous: 100,000 awaited writes would take several times longer.
    Deno.writeFileSync(join(memdir, rel(i)), pool.take(n, rel(i)));
    bytes += n;
  }
  await gitInit(memdir);
  await run("git", ["add", "-A"], memdir);
  await run("git", ["commit", "-q", "-m", "notes"], memdir);
  const edited = new TextEncoder().encode("\n- follow up: reviewed during the dream pass\n");
  for (let i = 0; i < files; i += 20) {
    using f = await Deno.open(join(memdir, rel(i)), { append: true });
    await f.write(edited);
    bytes += edited.length;
  }
  await run("git", ["commit", "-q", "-a", "-m", "dream pass"], memdir);
  // Databases of a fixed ~16 MiB: the files are what grows here.
  return await finish(home, memdir, 16 << 20, 0.5, pool, rnd, {
    bytes,
    textBytes: bytes,
    files,
  });
}
