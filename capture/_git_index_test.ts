import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { writeIndexFromTree } from "./_git_index.ts";
import type { GitObject, ObjectSource } from "./_git_objects.ts";
import { GIT_TEST_ENV, interopTest, run } from "../tests/_tools.ts";

const enc = new TextEncoder();

/** An in-memory object store: put() returns the oid. */
function store(): { source: ObjectSource; put(type: GitObject["type"], body: Uint8Array): string } {
  const objects = new Map<string, GitObject>();
  return {
    source: {
      read: (oid) => {
        const o = objects.get(oid);
        return o ? Promise.resolve(o) : Promise.reject(new Error(`no object ${oid}`));
      },
    },
    put(type, body) {
      const oid = createHash("sha1").update(`${type} ${body.byteLength}\0`).update(body)
        .digest("hex");
      objects.set(oid, { type, body });
      return oid;
    },
  };
}

/** A tree body of `entries` in the order given (git sorts them; a damaged tree may not). */
function tree(entries: [mode: string, name: string, oid: string][]): Uint8Array {
  return Buffer.concat(
    entries.map(([mode, name, oid]) =>
      Buffer.concat([enc.encode(`${mode} ${name}\0`), Buffer.from(oid, "hex")])
    ),
  );
}

async function git(args: string[]): Promise<string> {
  const r = await run("git", args, { env: GIT_TEST_ENV });
  assert.equal(r.code, 0, r.stderr);
  return r.text;
}

interopTest(
  "writeIndexFromTree: streamed for a sorted tree, sorted in memory otherwise, same bytes",
  ["git"],
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const work = `${dir}/work`;
      const files: Record<string, string> = {};
      for (let i = 0; i < 300; i++) {
        files[`d${i % 4}/n${String(i).padStart(3, "0")}.md`] = `note ${i}`;
      }
      files["a.md"] = "top";
      const s = store();
      const blobs = new Map<string, string>();
      for (const [p, text] of Object.entries(files)) {
        await Deno.mkdir(`${work}/${p.split("/").slice(0, -1).join("/")}`, { recursive: true });
        await Deno.writeTextFile(`${work}/${p}`, text);
        blobs.set(p, s.put("blob", enc.encode(text)));
      }
      const commitOf = (unsorted: boolean): string => {
        const dirs: [string, string, string][] = [];
        for (let d = 0; d < 4; d++) {
          const entries: [string, string, string][] = Object.keys(files)
            .filter((p) => p.startsWith(`d${d}/`))
            .sort()
            .map((p) => ["100644", p.slice(3), blobs.get(p)!]);
          if (unsorted && d === 2) entries.reverse();
          dirs.push(["40000", `d${d}`, s.put("tree", tree(entries))]);
        }
        const root = s.put("tree", tree([["100644", "a.md", blobs.get("a.md")!], ...dirs]));
        return s.put(
          "commit",
          enc.encode(`tree ${root}\nauthor a <a@b> 0 +0000\ncommitter a <a@b> 0 +0000\n\nm\n`),
        );
      };
      const gitdir = `${dir}/gitdir`;
      await Deno.mkdir(gitdir);
      const n1 = await writeIndexFromTree(work, gitdir, s.source, commitOf(false));
      const sorted = await Deno.readFile(`${gitdir}/index`);
      const n2 = await writeIndexFromTree(work, gitdir, s.source, commitOf(true));
      const fallback = await Deno.readFile(`${gitdir}/index`);
      assert.equal(n1, 301);
      assert.equal(n2, 301);
      assert.deepStrictEqual(fallback, sorted);
      // git reads it: every path, each staged with its blob and clean (stat data matches).
      await Deno.rename(gitdir, `${work}/.git`);
      await Deno.mkdir(`${work}/.git/objects`, { recursive: true });
      await Deno.writeTextFile(`${work}/.git/HEAD`, "ref: refs/heads/main\n");
      await Deno.mkdir(`${work}/.git/refs/heads`, { recursive: true });
      const staged = (await git(["-C", work, "ls-files", "-s"])).trim().split("\n");
      assert.equal(staged.length, 301);
      assert.equal(staged[0], `100644 ${blobs.get("a.md")} 0\ta.md`);
      const modified = (await git(["-C", work, "ls-files", "-m"])).trim();
      assert.equal(modified, "", "no working file differs from its entry");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

interopTest(
  "writeIndexFromTree: symlinks, executables, submodules, large and changed files; a truncated tree is refused",
  ["git"],
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const work = `${dir}/work`;
      await Deno.mkdir(`${work}/sub`, { recursive: true });
      const s = store();
      const big = "y".repeat((1 << 20) + 5); // past cleanStat's one-read size
      await Deno.writeTextFile(`${work}/big.md`, big);
      await Deno.writeTextFile(`${work}/run.sh`, "#!/bin/sh\n");
      await Deno.chmod(`${work}/run.sh`, 0o755);
      await Deno.symlink("big.md", `${work}/link`);
      await Deno.writeTextFile(`${work}/sub/changed.md`, "not what the tree says");
      const changed = s.put("blob", enc.encode("what the tree says"));
      const gitlink = "1234567890123456789012345678901234567890";
      const sub = s.put("tree", tree([["100644", "changed.md", changed]]));
      const root = s.put(
        "tree",
        tree([
          ["100644", "big.md", s.put("blob", enc.encode(big))],
          ["120000", "link", s.put("blob", enc.encode("big.md"))],
          ["100755", "run.sh", s.put("blob", enc.encode("#!/bin/sh\n"))],
          ["160000", "sm", gitlink],
          ["040000", "sub", sub], // a zero-padded tree mode, as some old writers made
        ]),
      );
      const commit = s.put(
        "commit",
        enc.encode(`tree ${root}\nauthor a <a@b> 0 +0000\ncommitter a <a@b> 0 +0000\n\nm\n`),
      );
      await Deno.mkdir(`${work}/.git/objects`, { recursive: true });
      await Deno.mkdir(`${work}/.git/refs/heads`, { recursive: true });
      await Deno.writeTextFile(`${work}/.git/HEAD`, "ref: refs/heads/main\n");
      assert.equal(await writeIndexFromTree(work, `${work}/.git`, s.source, commit), 5);
      const staged = (await git(["-C", work, "ls-files", "-s"])).trim().split("\n");
      assert.deepStrictEqual(staged.map((l) => l.split(" ")[0] + " " + l.split("\t")[1]), [
        "100644 big.md",
        "120000 link",
        "100755 run.sh",
        "160000 sm",
        "100644 sub/changed.md",
      ]);
      assert.ok(staged[3]!.includes(gitlink));
      // git checks a symlink written in the index's second against its blob: put it where git
      // reads it. An empty directory is an unpopulated submodule.
      const linkBlob = await run("git", ["-C", work, "hash-object", "-w", "--stdin"], {
        env: GIT_TEST_ENV,
        stdin: enc.encode("big.md"),
      });
      assert.equal(linkBlob.text.trim(), staged[1]!.split(" ")[1]);
      await Deno.mkdir(`${work}/sm`);
      // Matching files carry their stat data (their size); the changed one zeroed stat data.
      const debug = await git(["-C", work, "ls-files", "--debug"]);
      const sizeOf = (p: string): number => {
        const block = debug.split(/\n(?=\S)/).find((b) => b.startsWith(`${p}\n`))!;
        return Number(/size: (\d+)/.exec(block)![1]);
      };
      assert.equal(sizeOf("big.md"), big.length);
      assert.equal(sizeOf("link"), "big.md".length);
      assert.equal(sizeOf("run.sh"), 10);
      assert.equal(sizeOf("sm"), 0);
      assert.equal(sizeOf("sub/changed.md"), 0);
      const modified = (await git(["-C", work, "ls-files", "-m"])).trim();
      assert.equal(modified, "sub/changed.md");

      // A tree cut inside an entry's id.
      const cut = tree([["100644", "big.md", changed]]).subarray(0, 20);
      const bad = s.put("tree", cut);
      const badCommit = s.put(
        "commit",
        enc.encode(`tree ${bad}\nauthor a <a@b> 0 +0000\ncommitter a <a@b> 0 +0000\n\nm\n`),
      );
      await assert.rejects(
        () => writeIndexFromTree(work, `${work}/.git`, s.source, badCommit),
        /Cannot parse tree .*truncated/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
