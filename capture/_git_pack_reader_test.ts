import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { indexConfig, indexPack, PackFile, packReader } from "./_git_pack_reader.ts";
import { interopTest, run, tempDir } from "../tests/_tools.ts";

const env = {
  GIT_AUTHOR_NAME: "t",
  GIT_AUTHOR_EMAIL: "t@example.com",
  GIT_COMMITTER_NAME: "t",
  GIT_COMMITTER_EMAIL: "t@example.com",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_CONFIG_NOSYSTEM: "1",
};

/** `git -C dir ...`, after `git init` there; returns stdout, failing the test on an error. */
async function gitRepo(dir: string): Promise<(...args: string[]) => Promise<string>> {
  const git = async (...args: string[]): Promise<string> => {
    const r = await run("git", ["-C", dir, ...args], { env });
    assert.equal(r.code, 0, r.stderr);
    return r.text;
  };
  await git("init", "-q", "-b", "main");
  return git;
}

interopTest(
  "packReader: every object of two packs (deltas) and loose ones reads back to its oid",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const git = await gitRepo(dir);
    const base = "line of a note that changes a little between commits\n".repeat(200);
    for (let c = 0; c < 6; c++) {
      for (let f = 0; f < 12; f++) {
        await Deno.mkdir(`${dir}/d${f % 3}`, { recursive: true });
        await Deno.writeTextFile(`${dir}/d${f % 3}/n${f}.md`, `${base}commit ${c} file ${f}\n`);
      }
      await git("add", ".");
      await git("commit", "-q", "-m", `c${c}`);
      if (c === 2) await git("gc", "-q", "--aggressive"); // first pack, deltified
      if (c === 4) await git("repack", "-q", "-d"); // a second pack of the new objects
    }
    // c5's objects stay loose
    const packs = [...Deno.readDirSync(`${dir}/.git/objects/pack`)].filter((e) =>
      e.name.endsWith(".idx")
    );
    assert.equal(packs.length, 2);
    const listed = (await git("cat-file", "--batch-all-objects", "--batch-check=%(objectname)"))
      .trim().split("\n");
    const packed = new Set<string>();
    for (const p of packs) {
      const r = await run("git", ["show-index"], {
        stdin: await Deno.readFile(`${dir}/.git/objects/pack/${p.name}`),
        env,
      });
      for (const line of r.text.trim().split("\n")) packed.add(line.split(" ")[1]!);
    }
    assert.ok(packed.size > 0 && packed.size < listed.length, "some objects are loose");
    const source = await packReader(`${dir}/.git`);
    try {
      let deltas = 0;
      for (const oid of listed) {
        const o = source.readSync!(oid);
        assert.ok(o !== undefined, oid);
        const h = createHash("sha1").update(`${o.type} ${o.body.byteLength}\0`).update(o.body);
        assert.equal(h.digest("hex"), oid);
        // the same object as a view (used before the next read)
        const v = source.readView!(oid)!;
        assert.equal(v.type, o.type);
        assert.deepEqual(new Uint8Array(v.body), new Uint8Array(o.body), oid);
        assert.equal(source.hasRaw!(oid), packed.has(oid), oid);
        const raw = source.raw!(oid);
        assert.equal(raw !== undefined, packed.has(oid), oid);
        if (raw?.kind === "delta") {
          deltas++;
          assert.ok(listed.includes(raw.base), `${oid}'s base ${raw.base} is an object`);
        }
      }
      assert.ok(deltas > 0, "the gc'd pack has deltas");
      assert.equal(source.readSync!("0".repeat(40)), undefined);
      assert.equal(source.readView!("0".repeat(40)), undefined);
      assert.equal(source.readSync!("not an oid"), undefined);
      assert.equal(source.raw!(listed[0]!.toUpperCase()), undefined);
    } finally {
      source.close();
    }
  },
);

interopTest(
  "indexPack: the .idx of a pack with objects over the streaming size is git's, byte for byte",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const git = await gitRepo(dir);
    // Two objects over indexPack's streaming size (8 MiB): text (inflates far past each 64 KiB
    // piece) and half-random bytes, plus small notes; git writes the big ones last or first
    // depending on its order, so one of them may end where the pack's entries end.
    const line = (i: number) => `line ${i} of a long transcript, with some words that repeat\n`;
    await Deno.writeTextFile(
      `${dir}/transcript.md`,
      Array.from({ length: 160_000 }, (_, i) => line(i)).join(""),
    );
    const noisy = new Uint8Array(9 << 20);
    for (let i = 0; i < noisy.length; i++) noisy[i] = i % 3 === 0 ? (i * 2654435761) >>> 24 : 32;
    await Deno.writeFile(`${dir}/blob.bin`, noisy);
    for (let f = 0; f < 20; f++) await Deno.writeTextFile(`${dir}/n${f}.md`, `note ${f}\n`);
    await git("add", ".");
    await git("commit", "-q", "-m", "one");
    await git("repack", "-q", "-a", "-d", "--depth=0", "--window=0");
    const pack = [...Deno.readDirSync(`${dir}/.git/objects/pack`)]
      .find((e) => e.name.endsWith(".pack"))!.name;
    const path = `${dir}/.git/objects/pack/${pack}`;
    const want = await Deno.readFile(path.replace(/\.pack$/, ".idx"));
    for (const syncEngine of [true, false]) {
      indexConfig.syncEngine = syncEngine;
      const p = new PackFile(path);
      try {
        assert.deepEqual(await indexPack(p), want, `syncEngine ${syncEngine}`);
      } finally {
        p.close();
        indexConfig.syncEngine = true;
      }
    }
    // A pack cut short inside its last entry is refused by both.
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(`${dir}/cut.pack`, bytes.subarray(0, bytes.length - 4096));
    for (const syncEngine of [true, false]) {
      indexConfig.syncEngine = syncEngine;
      const p = new PackFile(`${dir}/cut.pack`);
      try {
        await assert.rejects(() => indexPack(p));
      } finally {
        p.close();
        indexConfig.syncEngine = true;
      }
    }
  },
);
