/**
 * Planted secrets of every family, in memory-dir files, database rows (with a full-text
 * index), state, and an old commit whose file was deleted later, never appear in the bundle:
 * not in any extracted artifact (raw bytes), not in `git log -p --all` of the cloned bundle,
 * not in `sqlite3 .dump`. Look-alikes are left alone.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import * as fs from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import git from "isomorphic-git";
import { createSnapshotter } from "../snapshotter.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { loadPacks } from "../redact/load_pack.ts";
import { openStore } from "../store/open_store.ts";
import { extractBundle } from "../bundle/extract_bundle.ts";
import { interopTest, run } from "./_tools.ts";

const b64url = (s: string): string =>
  btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");

/** Secrets by family: [family, the text planted, the secret part that must vanish]. */
function secrets(): [string, string, string][] {
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    type: "pkcs8",
    format: "pem",
  }) as string;
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({
    type: "pkcs1",
    format: "pem",
  }) as string;
  const jwt = `${b64url('{"alg":"HS256","typ":"JWT"}')}.${
    b64url('{"sub":"agent-7","iat":1764000000}')
  }.q9Xv2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ0kL2mN4o`;
  return [
    ["aws-access-key-id", "aws key AKIAQ3ZJ7RWX2M5TB4NY here", "AKIAQ3ZJ7RWX2M5TB4NY"],
    [
      "aws-secret",
      "aws_secret_access_key = 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",
      "wJa7rXUtnFEMI/K7MDENG/bPxRfiCY9k3zQ2hLp5",
    ],
    [
      "github",
      "token ghp_R2d2C3p0BB8kX9qLmN4vT7wZ1yA5sE6uJ0hF",
      "ghp_R2d2C3p0BB8kX9qLmN4vT7wZ1yA5sE6uJ0hF",
    ],
    [
      "github-fine-grained",
      "pat github_pat_11ABCDEFG0123456789abc_9xYz8WvU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6xW5vU4tS3rQ2pO1nM",
      "github_pat_11ABCDEFG0123456789abc_9xYz8WvU7tS6rQ5pO4nM3lK2jI1hG0fE9dC8bA7zY6xW5vU4tS3rQ2pO1nM",
    ],
    ["gitlab", "glpat-x7Kq2LmN9pR4sT6vW8yZ", "glpat-x7Kq2LmN9pR4sT6vW8yZ"],
    [
      "slack-token",
      "xoxb-2847261938-4829174628193-AbCdEfGhIjKlMnOpQrStUvWx",
      "xoxb-2847261938-4829174628193-AbCdEfGhIjKlMnOpQrStUvWx",
    ],
    [
      "slack-webhook",
      "https://hooks.slack.com/services/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",
      "T0123ABCD/B0456EFGH/x9Kq2LmN7pR4sT6vW8yZ1aB3",
    ],
    ["stripe", "sk_live_51Hx9Kq2LmN7pR4sT6vW8yZ1a", "sk_live_51Hx9Kq2LmN7pR4sT6vW8yZ1a"],
    [
      "openai",
      "OPENAI sk-proj-Xa9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ0kL2mN4oP6qR8",
      "sk-proj-Xa9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ0kL2mN4oP6qR8",
    ],
    [
      "anthropic",
      "sk-ant-api03-Xa9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ0kL2mN4o-AA",
      "sk-ant-api03-Xa9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ0kL2mN4o-AA",
    ],
    [
      "google",
      "maps AIzaSyA9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9 key",
      "AIzaSyA9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9",
    ],
    [
      "npm",
      "//registry.npmjs.org/:_authToken=npm_Xa9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ",
      "npm_Xa9Kq2LmN7pR4sT6vW8yZ1aB3cD5eF7gH9iJ",
    ],
    ["pem-ec", ec, ec.split("\n")[1]!],
    ["pem-rsa", rsa, rsa.split("\n")[2]!],
    ["jwt", `Authorization: Bearer ${jwt}`, jwt],
    [
      "url-credentials",
      "postgres://app:Sup3rS3cretPassw0rd@db.internal:5432/mem",
      "Sup3rS3cretPassw0rd",
    ],
    ["generic", 'password = "Tr0ub4dor&3xyzzy"', "Tr0ub4dor&3xyzzy"],
    ["email", "write to jane.doe@fastmail.com", "jane.doe@fastmail.com"],
    ["card", "card 4929 4512 3456 7894 exp 12/29", "4929 4512 3456 7894"],
    ["phone", "call +1 646-381-7245 tomorrow", "646-381-7245"],
  ];
}

const LOOKALIKES = [
  "commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904",
  "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "id 123e4567-e89b-12d3-a456-426614174000",
  "blob aGVsbG8gd29ybGQgdGhpcyBpcyBhIGJhc2U2NCBibG9i",
  "api_key: YOUR_API_KEY",
  "docs key AKIAIOSFODNN7EXAMPLE",
];

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...await allFiles(p));
    else if (e.isFile) out.push(p);
  }
  return out;
}

interopTest(
  "redaction removes planted secrets of every family from files, rows, state and git history",
  ["git", "sqlite3"],
  async () => {
    const root = await Deno.makeTempDir({ prefix: "memsnap-redact-e2e-" });
    try {
      const planted = secrets();
      const memdir = join(root, "memory");
      await Deno.mkdir(memdir);
      await git.init({ fs, dir: memdir, defaultBranch: "main" });
      const author = { name: "A", email: "a@x.invalid", timestamp: 1764000000, timezoneOffset: 0 };
      // An old commit holds secrets in a file deleted later: only history has them.
      await Deno.writeTextFile(
        join(memdir, "old.md"),
        planted.slice(0, 6).map((s) => s[1]).join("\n") + "\n",
      );
      await Deno.writeTextFile(join(memdir, "keep.md"), "keep\n");
      await git.add({ fs, dir: memdir, filepath: "old.md" });
      await git.add({ fs, dir: memdir, filepath: "keep.md" });
      await git.commit({ fs, dir: memdir, message: `add creds ${planted[2]![2]}`, author });
      await git.remove({ fs, dir: memdir, filepath: "old.md" });
      await Deno.remove(join(memdir, "old.md"));
      await git.commit({
        fs,
        dir: memdir,
        message: "remove creds",
        author: { ...author, timestamp: author.timestamp + 60 },
      });
      // The working tree: every family, plus look-alikes.
      await Deno.writeTextFile(
        join(memdir, "notes.md"),
        [
          "# notes",
          ...planted.map((s) => s[1]),
          ...LOOKALIKES,
        ].join("\n\n") + "\n",
      );
      // A database with text rows and an FTS index.
      const dbPath = join(root, "long_term.sqlite");
      const db = new DatabaseSync(dbPath);
      db.exec(`PRAGMA journal_mode=WAL;
      CREATE TABLE facts(id INTEGER PRIMARY KEY, fact TEXT);
      CREATE VIRTUAL TABLE facts_fts USING fts5(fact, content='facts', content_rowid='id');
      CREATE TRIGGER facts_ai AFTER INSERT ON facts BEGIN INSERT INTO facts_fts(rowid, fact) VALUES (new.id, new.fact); END;`);
      const ins = db.prepare("INSERT INTO facts(fact) VALUES (?)");
      for (const [, text] of planted) ins.run(`remembered: ${text}`);
      for (const l of LOOKALIKES) ins.run(l);
      db.close();
      const statePath = join(root, "state.json");
      await Deno.writeTextFile(
        statePath,
        JSON.stringify({
          cursor: 7,
          last_prompt: planted[5]![1],
          nested: { webhook: planted[6]![1], list: [planted[10]![1]] },
        }),
      );

      const store = await openStore(join(root, "store"));
      const snap = createSnapshotter({
        store,
        agent: "a1",
        captures: [
          memdirPlugin({ dir: memdir }),
          gitPlugin({ dir: memdir }),
          sqlitePlugin({ databases: { long_term: dbPath } }),
          statePlugin({ files: { s: statePath } }),
        ],
        redact: { packs: await loadPacks("secrets,pii"), key: new Uint8Array(32).fill(7) },
      });
      const { info, manifest } = await snap.snapshot();
      const out = join(root, "extracted");
      await extractBundle((await Deno.open(info.path)).readable, out);
      await store.close();

      const leaks: string[] = [];
      const check = (where: string, text: string): void => {
        for (const [family, , secret] of planted) {
          if (text.includes(secret)) {
            leaks.push(`${family} in ${where}`);
          }
        }
      };
      // 1. Raw bytes of every extracted artifact (the databases' free pages included).
      for (const f of await allFiles(out)) {
        check(
          f.slice(out.length + 1),
          new TextDecoder("latin1").decode(await Deno.readFile(f)),
        );
      }
      // 2. git log -p --all of a clone of the captured bundle.
      const clone = join(root, "clone");
      const c = await run("git", ["clone", "-q", join(out, "git/memdir.bundle"), clone]);
      assertEquals(c.code, 0, c.stderr);
      const log = await run("git", ["-C", clone, "log", "-p", "--all"]);
      assertEquals(log.code, 0, log.stderr);
      check("git log -p --all", log.text);
      assert(log.text.includes("remove creds"), "history kept its commits");
      // 3. sqlite3 .dump of the captured database; the FTS index finds nothing secret.
      const dump = await run("sqlite3", [join(out, "sqlite/long_term.sqlite"), ".dump"]);
      assertEquals(dump.code, 0, dump.stderr);
      check("sqlite3 .dump", dump.text);
      const fts = await run("sqlite3", [
        join(out, "sqlite/long_term.sqlite"),
        `SELECT count(*) FROM facts_fts WHERE facts_fts MATCH '"fastmail"'`,
      ]);
      assertEquals(fts.text.trim(), "0");
      const ftsOk = await run("sqlite3", [
        join(out, "sqlite/long_term.sqlite"),
        `SELECT count(*) FROM facts_fts WHERE facts_fts MATCH 'remembered'`,
      ]);
      assertEquals(Number(ftsOk.text.trim()), planted.length);
      assertEquals(leaks, []);

      // Look-alikes are left alone, in files and rows.
      const notes = await Deno.readTextFile(join(out, "memdir/notes.md"));
      for (const l of LOOKALIKES) assert(notes.includes(l), `look-alike redacted: ${l}`);
      for (const l of LOOKALIKES) {
        assert(dump.text.includes(l), `look-alike redacted in rows: ${l}`);
      }
      // The live memory is untouched, and the manifest reports without revealing.
      assert((await Deno.readTextFile(join(memdir, "notes.md"))).includes(planted[2]![2]));
      const report = JSON.stringify(manifest.redaction);
      check("manifest redaction report", report);
      assertEquals(leaks, []);
      assert(manifest.redaction.redacted);
      const gitMeta = manifest.captures.git as
        | { head?: { oid?: string }; original_head?: string }
        | null;
      assert(
        gitMeta?.original_head && gitMeta.original_head !== gitMeta.head?.oid,
        "original and rewritten HEAD recorded",
      );
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
