import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { deflateSync } from "node:zlib";
import {
  indexConfig,
  indexPack,
  indexPackBytes,
  inflateStart,
  packCommits,
  PackFile,
  packReader,
  streamConfig,
} from "./_git_pack_reader.ts";
import { packObjectHeader, reachable, readBundleHeader, writeBundle } from "./_git_objects.ts";
import { tmpdir } from "node:os";
import { interopTest, run, tempDir } from "../tests/_tools.ts";
import { concat } from "../tests/bundle_helpers.ts";

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
    // Without the streaming readers: the same objects, read before any bulk read made the
    // shared engine (readSync first), then as views.
    const light = await packReader(`${dir}/.git`, { streams: false });
    try {
      assert.equal(light.streamSync, undefined);
      for (const read of [light.readSync!, light.readView!]) {
        for (const oid of listed) {
          const o = read(oid)!;
          const h = createHash("sha1").update(`${o.type} ${o.body.byteLength}\0`).update(o.body);
          assert.equal(h.digest("hex"), oid);
        }
      }
    } finally {
      light.close();
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

/** Temporary delta base files left in the system's temp dir. */
function baseFilesLeft(): string[] {
  return [...Deno.readDirSync(tmpdir())].map((e) => e.name).filter((n) =>
    n.startsWith("memsnap-git-base-")
  );
}

/** Every blob of the repository: oid and size, from git. */
async function blobsOf(git: (...args: string[]) => Promise<string>): Promise<[string, number][]> {
  const out = await git(
    "cat-file",
    "--batch-all-objects",
    "--batch-check=%(objectname) %(objecttype) %(objectsize)",
  );
  return out.trim().split("\n").map((l) => l.split(" ")).filter((f) => f[1] === "blob")
    .map((f) => [f[0]!, Number(f[2])]);
}

/** A stream's body, each chunk copied as it comes (chunks are reused). */
const bodyOf = (chunks: Iterable<Uint8Array>): Uint8Array =>
  concat(Array.from(chunks, (c) => new Uint8Array(c)));

interopTest(
  "packReader and indexPack stream large packed objects: delta chains, shared bases, git's bytes",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const git = await gitRepo(dir);
    // A log that grows and is edited near its start, in two files, over 9 commits; packed
    // with long delta chains (so bases are deltas too, and more bases than the file cache).
    const lines: string[] = [];
    for (let c = 0; c < 9; c++) {
      for (let i = 0; i < 150; i++) {
        lines.push(`entry ${c}.${i}: the agent noted item ${i * 7 + c}\n`);
      }
      lines[c * 3] = `edited in commit ${c}\n`;
      await Deno.writeTextFile(`${dir}/log.md`, lines.join(""));
      await Deno.writeTextFile(`${dir}/other.md`, lines.slice().reverse().join(""));
      await git("add", ".");
      await git("commit", "-q", "-m", `c${c}`);
    }
    await git("repack", "-q", "-a", "-d", "-f", "--depth=50", "--window=50");
    const verify = await git(
      "verify-pack",
      "-v",
      ...[...Deno.readDirSync(`${dir}/.git/objects/pack`)].filter((e) => e.name.endsWith(".idx"))
        .map((e) => `${dir}/.git/objects/pack/${e.name}`),
    );
    assert.match(verify, /chain length = [3-9]/, "chains of deltas whose bases are deltas");
    const before = baseFilesLeft().length;
    const old = streamConfig.minBytes;
    streamConfig.minBytes = 4096;
    try {
      const source = await packReader(`${dir}/.git`);
      try {
        let streamed = 0;
        for (const [oid, size] of await blobsOf(git)) {
          const s = source.streamSync!(oid);
          if (size < 4096) {
            assert.equal(s, undefined, oid);
            continue;
          }
          assert.ok(s !== undefined, oid);
          assert.equal(s.type, "blob");
          assert.equal(s.size, size);
          const body = bodyOf(s.body);
          assert.equal(
            createHash("sha1").update(`blob ${size}\0`).update(body).digest("hex"),
            oid,
          );
          streamed++;
        }
        assert.ok(streamed >= 16, `${streamed} blobs streamed`);
        // A stream not read to its end leaves nothing open or behind.
        const [first] = (await blobsOf(git)).filter(([, n]) => n >= 4096)[0]!;
        const s = source.streamSync!(first)!;
        for (const _ of s.body) break;
      } finally {
        source.close();
      }
      // indexPack hashes large delta results as it applies them: git's .idx all the same.
      const pack = [...Deno.readDirSync(`${dir}/.git/objects/pack`)]
        .find((e) => e.name.endsWith(".pack"))!.name;
      const path = `${dir}/.git/objects/pack/${pack}`;
      // Streamed (4 KiB) and whole (the default 8 MiB): the same bytes as git's.
      for (const min of [4096, old]) {
        streamConfig.minBytes = min;
        const p = new PackFile(path);
        try {
          assert.deepEqual(
            await indexPack(p),
            await Deno.readFile(path.replace(/\.pack$/, ".idx")),
            `minBytes ${min}`,
          );
        } finally {
          p.close();
        }
      }
    } finally {
      streamConfig.minBytes = old;
    }
    assert.equal(baseFilesLeft().length, before, "no base file left behind");
  },
);

interopTest(
  "a bundle of a history whose large blob is deltified is written in chunks and restores",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = `${tmp.path}/repo`;
    await Deno.mkdir(dir);
    const git = await gitRepo(dir);
    // Over the streaming size (8 MiB), appended to twice: git keeps the newest whole and the
    // older ones as small deltas of ~9 MiB results against it.
    let text = Array.from({ length: 520_000 }, (_, i) => `line ${i}: ${(i * 7919) % 10007}\n`)
      .join("");
    for (let c = 0; c < 3; c++) {
      text += `appended in commit ${c}\n`.repeat(50);
      await Deno.writeTextFile(`${dir}/transcript.md`, text);
      await git("add", ".");
      await git("commit", "-q", "-m", `c${c}`);
    }
    await git("gc", "-q");
    const big = (await blobsOf(git)).filter(([, n]) => n >= 8 << 20);
    assert.equal(big.length, 3);
    const source = await packReader(`${dir}/.git`);
    try {
      const kinds: (string | undefined)[] = [];
      for (const [oid] of big) {
        const s = source.streamSync!(oid)!;
        const want = await run("git", ["-C", dir, "cat-file", "blob", oid], { env });
        assert.equal(Buffer.compare(bodyOf(s.body), want.stdout), 0, oid);
        kinds.push(source.rawChunks!(oid)?.kind);
      }
      // The newest whole (its data over 1 MiB, in chunks), the older two small deltas (copied).
      assert.deepEqual(kinds.sort(), ["whole", undefined, undefined]);
      const head = (await git("rev-parse", "HEAD")).trim();
      const oids = await reachable(source, [head]);
      await writeBundle(
        `${tmp.path}/h.bundle`,
        [{ oid: head, name: "refs/heads/main" }, { oid: head, name: "HEAD" }],
        source,
        oids,
      );
    } finally {
      source.close();
    }
    const check = await run("git", ["-C", dir, "bundle", "verify", `${tmp.path}/h.bundle`], {
      env,
    });
    assert.equal(check.code, 0, check.stderr);
    // Its pack (ref deltas against a whole base over the streaming size) indexes as git does.
    const { packStart } = await readBundleHeader(`${tmp.path}/h.bundle`);
    const packBytes = (await Deno.readFile(`${tmp.path}/h.bundle`)).subarray(packStart);
    await Deno.writeFile(`${tmp.path}/h.pack`, packBytes);
    const ix = await run("git", ["index-pack", "-o", `${tmp.path}/h.idx`, `${tmp.path}/h.pack`], {
      env,
    });
    assert.equal(ix.code, 0, ix.stderr);
    const bp = new PackFile(`${tmp.path}/h.bundle`, packStart);
    try {
      assert.deepEqual(await indexPack(bp), await Deno.readFile(`${tmp.path}/h.idx`));
    } finally {
      bp.close();
    }
    const clone = await run("git", ["clone", "-q", `${tmp.path}/h.bundle`, `${tmp.path}/c`], {
      env,
    });
    assert.equal(clone.code, 0, clone.stderr);
    assert.equal(await Deno.readTextFile(`${tmp.path}/c/transcript.md`), text);
    const log = await run("git", ["-C", `${tmp.path}/c`, "log", "--format=%s"], { env });
    assert.equal(log.text, "c2\nc1\nc0\n");
  },
);

/** A pack of the given entries (type code, bytes), each stored deflated. */
function craftPack(entries: { type: number; body: Uint8Array; base?: string }[]): Uint8Array {
  const parts: Uint8Array[] = [new TextEncoder().encode("PACK"), new Uint8Array([0, 0, 0, 2])];
  const n = new Uint8Array(4);
  new DataView(n.buffer).setUint32(0, entries.length);
  parts.push(n);
  for (const e of entries) {
    parts.push(packObjectHeader(e.type, e.body.length));
    if (e.base !== undefined) parts.push(Buffer.from(e.base, "hex"));
    parts.push(new Uint8Array(deflateSync(e.body)));
  }
  const body = concat(parts);
  return concat([body, createHash("sha1").update(body).digest()]);
}

/** A git delta: base and result sizes, then the instructions. */
function delta(baseSize: number, resultSize: number, ops: number[]): Uint8Array {
  const varint = (v: number): number[] => {
    const out: number[] = [];
    do {
      let b = v % 128;
      v = Math.floor(v / 128);
      if (v > 0) b |= 0x80;
      out.push(b);
    } while (v > 0);
    return out;
  };
  return new Uint8Array([...varint(baseSize), ...varint(resultSize), ...ops]);
}

Deno.test("indexPack() streams a delta that repeats its base, and refuses one out of all proportion", async () => {
  const base = new TextEncoder().encode("0123456789".repeat(10));
  const baseOid = createHash("sha1").update(`blob ${base.length}\0`).update(base).digest("hex");
  // Copy the whole base (offset 0, size 100) three times: a result of 300 bytes.
  const copy = [0x80 | 0x10, 100];
  const old = streamConfig.minBytes;
  streamConfig.minBytes = 64;
  try {
    const idx = await indexPackBytes(craftPack([
      { type: 3, body: base },
      { type: 7, body: delta(100, 300, [...copy, ...copy, ...copy]), base: baseOid },
    ]));
    const want = createHash("sha1").update("blob 300\0").update(
      new TextEncoder().encode("0123456789".repeat(30)),
    ).digest("hex");
    assert.ok(Buffer.from(idx).toString("hex").includes(want), "the result's id is indexed");
    // The same instructions claiming 2 GiB: refused from the delta's header, before any work.
    await assert.rejects(
      () =>
        indexPackBytes(craftPack([
          { type: 3, body: base },
          { type: 7, body: delta(100, 2 ** 31, [...copy, ...copy, ...copy]), base: baseOid },
        ])),
      /delta result of 2147483648 bytes is out of proportion to its base \(100\)/,
    );
  } finally {
    streamConfig.minBytes = old;
  }
});

interopTest(
  "packCommits: a pack's commits and tags by id in one pass; undefined with deltas; refuses a cut pack",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const git = await gitRepo(dir);
    const big = "a large note, streamed past the 8 MiB mark\n".repeat(220_000); // > 8 MiB
    for (let c = 0; c < 4; c++) {
      await Deno.writeTextFile(`${dir}/n${c}.md`, `note ${c}\n`);
      if (c === 1) await Deno.writeTextFile(`${dir}/big.md`, big);
      await git("add", ".");
      await git("commit", "-q", "-m", `commit ${c}`);
    }
    await git("tag", "-a", "-m", "a tag", "v1");
    const objects = (await git("rev-list", "--objects", "--all")).trim().split("\n")
      .map((l) => l.split(" ")[0]!);
    objects.push((await git("rev-parse", "v1")).trim());
    const packOf = async (args: string[]): Promise<Uint8Array> => {
      const r = await run("git", ["-C", dir, "pack-objects", "--stdout", ...args], {
        env,
        stdin: new TextEncoder().encode(objects.join("\n") + "\n"),
      });
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    // No deltas: every commit and the tag, each read back as git reads it.
    const flat = `${dir}/flat.pack`;
    Deno.writeFileSync(flat, await packOf(["--window=0"]));
    const pack = new PackFile(flat);
    try {
      const source = (await packCommits(pack))!;
      const commits = (await git("rev-list", "--all")).trim().split("\n");
      assert.equal(source.count, commits.length + 1);
      for (const oid of [...commits, (await git("rev-parse", "v1")).trim()]) {
        const o = source.readSync!(oid)!;
        const type = (await git("cat-file", "-t", oid)).trim();
        assert.equal(o.type, type);
        assert.equal(new TextDecoder().decode(o.body), await git("cat-file", type, oid));
      }
      // Trees and blobs are not kept.
      const tree = (await git("rev-parse", "HEAD^{tree}")).trim();
      assert.equal(source.readSync!(tree), undefined);
      await assert.rejects(() => source.read(tree), /not found/);
    } finally {
      pack.close();
    }
    // A pack with deltas (the same notes, deltified against each other): undefined.
    for (let c = 0; c < 3; c++) {
      await Deno.writeTextFile(`${dir}/big.md`, big + `edit ${c}\n`);
      await git("commit", "-q", "-am", `edit ${c}`);
    }
    objects.push(
      ...(await git("rev-list", "--objects", "--all")).trim().split("\n")
        .map((l) => l.split(" ")[0]!),
    );
    const deltas = `${dir}/deltas.pack`;
    Deno.writeFileSync(deltas, await packOf(["--window=10", "--depth=10"]));
    const dp = new PackFile(deltas);
    try {
      assert.equal(await packCommits(dp), undefined);
    } finally {
      dp.close();
    }
    // Cut short: refused.
    const bytes = Deno.readFileSync(flat);
    const cut = `${dir}/cut.pack`;
    Deno.writeFileSync(cut, bytes.subarray(0, bytes.length >> 1));
    const cp = new PackFile(cut);
    try {
      await assert.rejects(() => packCommits(cp));
    } finally {
      cp.close();
    }
  },
);

Deno.test("inflateStart gives a stream's first bytes, as a copy or in a given buffer", () => {
  const text = new TextEncoder().encode("commit 123\0tree " + "x".repeat(5000));
  const z = deflateSync(text);
  const copy = inflateStart(z.subarray(0, 256));
  assert.deepEqual(copy, text.subarray(0, 64));
  const into = new Uint8Array(64).fill(9);
  const view = inflateStart(z.subarray(0, 256), into);
  assert.deepEqual(view, text.subarray(0, 64));
  assert.equal(view.buffer, into.buffer);
  // The copy is its own: a later call does not change it.
  inflateStart(deflateSync(new TextEncoder().encode("blob 5\0hello")));
  assert.deepEqual(copy, text.subarray(0, 64));
  // A short stream gives what it has; a buffer shorter than 64 bytes bounds it.
  assert.deepEqual(
    inflateStart(deflateSync(new TextEncoder().encode("tag 1"))),
    new TextEncoder().encode("tag 1"),
  );
  assert.equal(inflateStart(z.subarray(0, 256), new Uint8Array(7)).length, 7);
});
