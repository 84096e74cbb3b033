import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { RefusedError, UnsafeBundleError, VerificationError } from "../errors.ts";
import { extractBundle } from "./extract_bundle.ts";
import { writeBundle } from "./write_bundle.ts";
import { openBundleFile } from "./open_bundle_file.ts";
import { readManifest } from "./read_manifest.ts";
import { decoderConfig } from "./_zstd.ts";
import { currentUmask, writerConfig, writerStats } from "./_extract_worker.ts";
import {
  concat,
  craftBundle,
  craftInner,
  damagedArtifacts,
  EOA,
  rawEntry,
  source,
  streamOf,
  testHeader,
  testSigner,
  testVerifier,
  xorCipher,
  xorDecipher,
  zstd,
} from "../tests/bundle_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

/**
 * The ways files are written: on the calling thread, through one writer worker, two, or one
 * that a second joins at the first wait for a buffer: `[name, workerMinArtifacts, workers,
 * startWorkers, growAfterMs]`.
 */
const WRITERS = [
  ["sync", Infinity, 1, 1, 200],
  ["worker", 0, 1, 1, 200],
  ["2 workers", 0, 2, 2, 200],
  ["growing", 0, 2, 1, 0],
] as const;

/** Registers `fn` once per writer (`[sync writer]`, `[worker writer]`, ...). */
function test(name: string, fn: () => Promise<void>): void {
  for (const [writer, min, workers, start, growAfterMs] of WRITERS) {
    Deno.test(`${name} [${writer} writer]`, async () => {
      const saved = { ...writerConfig };
      writerConfig.workerMinArtifacts = min;
      writerConfig.workers = workers;
      writerConfig.startWorkers = start;
      writerConfig.growAfterMs = growAfterMs;
      writerConfig.growWaitShare = growAfterMs === 0 ? 0 : 0.5;
      try {
        await fn();
      } finally {
        Object.assign(writerConfig, saved);
      }
    });
  }
}

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix + e.name;
    if (e.isDirectory) out.push(...await listTree(join(dir, e.name), rel + "/"));
    else out.push(rel);
  }
  return out.sort();
}

test("extractBundle() writes every artifact with its bytes and mode", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  await writeBundle(b, testHeader(), [
    source("memdir/notes/a.md", "alpha"),
    source("memdir/run.sh", "#!/bin/sh", { mode: 0o755 }),
    source("state/empty.json", ""),
  ]);
  const dest = `${dir.path}/out/nested`;
  const m = await extractBundle(await openBundleFile(b), dest);
  assert.equal(m.artifacts.length, 3);
  assert.deepEqual(await listTree(dest), [
    "memdir/notes/a.md",
    "memdir/run.sh",
    "state/empty.json",
  ]);
  assert.equal(await Deno.readTextFile(`${dest}/memdir/notes/a.md`), "alpha");
  assert.equal((await Deno.stat(`${dest}/memdir/run.sh`)).mode! & 0o777, 0o755);
  assert.equal((await Deno.stat(`${dest}/memdir/notes/a.md`)).mode! & 0o777, 0o644);
});

test("extractBundle() with keep writes the small artifacts whose bytes it accepts, and verifies all", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  const big = new Uint8Array(1_500_000).map((_, k) => (k * 7) & 255);
  await writeBundle(b, testHeader(), [
    source("git/a", "commit one"),
    source("git/b", "blob two"),
    source("git/big", big),
    source("git/c", "commit three"),
    source("memdir/x", "commit four"),
  ]);
  const dest = `${dir.path}/out`;
  const seen: string[] = [];
  const m = await extractBundle(await openBundleFile(b), dest, {
    only: (p) => p.startsWith("git/"),
    keep: (p, bytes) => {
      seen.push(p);
      return p === "git/big" || new TextDecoder().decode(bytes.subarray(0, 6)) === "commit";
    },
  });
  assert.equal(m.artifacts.length, 5);
  // Asked for what `only` accepts and the reader holds whole (a large one may come streamed)
  assert.deepEqual(seen.filter((p) => p !== "git/big"), ["git/a", "git/b", "git/c"]);
  assert.deepEqual(await listTree(dest), ["git/a", "git/big", "git/c"]);
  assert.equal(await Deno.readTextFile(`${dest}/git/c`), "commit three");
  // An artifact it does not keep is checked all the same.
  const inner = concat([rawEntry({ name: "a" }, "1"), rawEntry({ name: "e" }, "zzzz"), EOA]);
  await assert.rejects(
    extractBundle(streamOf(craftInner(inner, { a: "1", e: "yyyy" })), `${dir.path}/d`, {
      keep: (p) => p === "a",
    }),
    (e) => {
      assert.ok(e instanceof VerificationError, String(e));
      assert.deepEqual(e.failures.map((f) => [f.check, f.path]), [["artifact_hash", "e"]]);
      return true;
    },
  );
});

test("extractBundle() with only writes the artifacts it accepts, and verifies all of them", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  const big = new Uint8Array(2_500_000).map((_, k) => (k * 7) & 255);
  await writeBundle(b, testHeader(), [
    source("git/HEAD", "ref: refs/heads/main\n"),
    source("memdir/big.bin", big),
    source("memdir/notes/a.md", "alpha"),
    source("sqlite/db.sqlite", big, { chunk: 100_000 }),
    source("state/s.json", "{}"),
  ]);
  const only = (p: string) => !p.startsWith("memdir/");
  const dest = `${dir.path}/out`;
  const m = await extractBundle(await openBundleFile(b), dest, { only });
  assert.equal(m.artifacts.length, 5);
  assert.deepEqual(await listTree(dest), ["git/HEAD", "sqlite/db.sqlite", "state/s.json"]);
  assert.deepEqual(await Deno.readFile(`${dest}/sqlite/db.sqlite`), big);
  // An artifact it leaves out is checked all the same, small (whole) or large (streamed).
  const bigBad = big.slice();
  bigBad[2_000_000]! ^= 1;
  const inner = concat([
    rawEntry({ name: "a" }, "1"),
    rawEntry({ name: "big" }, bigBad),
    rawEntry({ name: "e" }, "zzzz"),
    EOA,
  ]);
  await assert.rejects(
    extractBundle(
      streamOf(craftInner(inner, { a: "1", big, e: "yyyy" })),
      `${dir.path}/d`,
      { only: (p) => p === "a" },
    ),
    (e) => {
      assert.ok(e instanceof VerificationError, String(e));
      assert.deepEqual(e.failures.map((f) => [f.check, f.path]), [
        ["artifact_hash", "big"],
        ["artifact_hash", "e"],
      ]);
      return true;
    },
  );
  assert.deepEqual(await listTree(dir.path).then((t) => t.filter((p) => !p.startsWith("out/"))), [
    "b",
  ]);
});

test("extractBundle() lets onManifest refuse before any artifact is read", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  await writeBundle(b, testHeader(), [source("memdir/a.md", "alpha")]);
  const seen: string[] = [];
  const refusal = new RefusedError("Cannot restore: not this agent's");
  await assert.rejects(
    extractBundle(await openBundleFile(b), `${dir.path}/out`, {
      onManifest: (m) => {
        seen.push(m.snapshot_id);
        throw refusal;
      },
      progress: { progress: (e) => seen.push(e.phase), warn: () => {} },
    }),
    (e) => e === refusal,
  );
  assert.deepEqual(seen, [testHeader().snapshot_id]);
  assert.deepEqual(await listTree(dir.path), ["b"]);
});

test("extractBundle() writes under destDir however it is spelled (relative, trailing slash, doubled slash)", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  await writeBundle(b, testHeader(), [
    source("memdir/notes/deep/a.md", "alpha"),
    source("memdir/notes/b.md", "beta"),
    source("state/s.json", "{}"),
  ]);
  const want = ["memdir/notes/b.md", "memdir/notes/deep/a.md", "state/s.json"];
  const cwd = Deno.cwd();
  try {
    Deno.chdir(dir.path);
    for (const dest of ["rel", "slash/", "./dots", `${dir.path}//abs/`]) {
      await extractBundle(await openBundleFile(b), dest);
      assert.deepEqual(await listTree(dest), want, dest);
      assert.equal(await Deno.readTextFile(join(dest, "memdir/notes/deep/a.md")), "alpha");
    }
    assert.deepEqual((await listTree(dir.path)).filter((p) => !p.startsWith("b")).length, 12);
  } finally {
    Deno.chdir(cwd);
  }
});

test("extractBundle() round-trips random artifacts (property)", async () => {
  await using dir = await tempDir();
  let n = 0;
  const seg = fc.oneof(
    fc.stringMatching(/^[a-z0-9]{1,8}$/),
    fc.constantFrom("ünï", "日本語", "😀x", "a".repeat(120)),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(
        fc.record({
          path: fc.array(seg, { minLength: 1, maxLength: 3 }).map((s) => s.join("/")),
          data: fc.uint8Array({ maxLength: 40_000 }),
        }),
        { selector: (e) => e.path, maxLength: 5 },
      ).map((es) => es.filter((e) => !es.some((o) => o.path.startsWith(e.path + "/")))),
      async (arts) => {
        const b = `${dir.path}/b${n}`;
        const dest = `${dir.path}/d${n++}`;
        await writeBundle(
          b,
          testHeader(),
          arts.map((a) => source(a.path, a.data, { chunk: 5000 })),
          {
            cipher: xorCipher(),
          },
        );
        await extractBundle(await openBundleFile(b), dest, { decipher: xorDecipher() });
        assert.deepEqual(await listTree(dest), arts.map((a) => a.path).sort());
        for (const a of arts) assert.deepEqual(await Deno.readFile(join(dest, a.path)), a.data);
      },
    ),
    { numRuns: 10 },
  );
});

test("extractBundle() refuses a tar-slip bundle and writes nothing outside", async () => {
  await using dir = await tempDir();
  const dest = `${dir.path}/a/b`;
  const inner = concat([
    rawEntry({ name: "ok.txt" }, "fine"),
    rawEntry({ name: "../../escaped.txt" }, "pwned"),
    EOA,
  ]);
  await assert.rejects(
    extractBundle(streamOf(craftInner(inner, { "ok.txt": "fine" })), dest),
    (e) => e instanceof UnsafeBundleError && e.rule === "path_escape",
  );
  assert.deepEqual(await listTree(dir.path), [], "nothing written, destDir removed");
  await Deno.stat(`${dir.path}/a`); // only the parent the caller asked for
});

test("extractBundle() leaves an existing empty destDir empty on failure", async () => {
  await using dir = await tempDir();
  const inner = concat([rawEntry({ name: "a" }, "1"), rawEntry({ name: "b" }, "bad"), EOA]);
  await assert.rejects(
    extractBundle(streamOf(craftInner(inner, { a: "1", b: "good" })), dir.path),
    (e) => {
      assert.ok(e instanceof VerificationError);
      assert.deepEqual(e.failures.map((f) => [f.check, f.path]), [["artifact_size", "b"]]);
      return true;
    },
  );
  assert.deepEqual(await listTree(dir.path), []);
});

test("extractBundle() fails on missing and extra artifacts", async () => {
  await using dir = await tempDir();
  const inner = concat([rawEntry({ name: "a" }, "1"), rawEntry({ name: "x" }, "2"), EOA]);
  await assert.rejects(
    extractBundle(streamOf(craftInner(inner, { a: "1", gone: "3" })), `${dir.path}/d`),
    (e) =>
      e instanceof VerificationError &&
      e.failures.map((f) => f.check).sort().join() === "extra,missing",
  );
  assert.deepEqual(await listTree(dir.path), []);
});

test("extractBundle() refuses a non-empty destDir and an encrypted bundle without identity", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  await writeBundle(b, testHeader(), [source("a", "1")], { cipher: xorCipher() });
  await assert.rejects(
    extractBundle(await openBundleFile(b), dir.path),
    (e) => e instanceof RefusedError && /not empty/.test(e.message),
  );
  await assert.rejects(
    extractBundle(await openBundleFile(b), `${dir.path}/d`),
    (e) => e instanceof RefusedError && /encrypted/.test(e.message),
  );
  assert.deepEqual(await listTree(dir.path), ["b"]);
});

test("extractBundle() enforces a required signature", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  await writeBundle(b, testHeader(), [source("a", "1")], { signer: testSigner() });
  await extractBundle(await openBundleFile(b), `${dir.path}/ok`, {
    verifier: testVerifier(),
    requireSignature: true,
  });
  await assert.rejects(
    extractBundle(await openBundleFile(b), `${dir.path}/bad`, { verifier: testVerifier("x") }),
    (e) => e instanceof VerificationError && e.failures[0]?.check === "signature",
  );
  assert.deepEqual(await listTree(dir.path), ["b", "ok/a"]);
});

test("extractBundle() cleans up when aborted", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  await writeBundle(b, testHeader(), [source("a", new Uint8Array(500_000))]);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(
    extractBundle(await openBundleFile(b), `${dir.path}/d`, { signal: ac.signal }),
    (e) => e instanceof DOMException && e.name === "AbortError",
  );
  assert.deepEqual(await listTree(dir.path), ["b"]);
});

const DECODER_MODES = [
  ["libzstd", { useLib: true, nativeThreshold: 16 << 20 }],
  ["fzstd", { useLib: false, nativeThreshold: 1 << 40 }],
  ["worker", { useLib: false, nativeThreshold: 0 }],
] as const;

for (const [name, mode] of DECODER_MODES) {
  test(`extractBundle() [${name}] writes small and large artifacts across chunks, and refuses a damaged frame`, async () => {
    const saved = { ...decoderConfig };
    Object.assign(decoderConfig, mode);
    const mask = Deno.umask(0o077); // modes are exact whatever the umask
    try {
      await using dir = await tempDir();
      const big = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 26);
      const mid = new Uint8Array(300_000).map((_, i) => i % 251);
      const files: Record<string, Uint8Array | string> = {
        "memdir/big.bin": big,
        "memdir/mid.bin": mid,
        "memdir/small.md": "small",
      };
      const inner = concat([
        rawEntry({ name: "memdir/big.bin", mode: 0o755 }, big),
        rawEntry({ name: "memdir/mid.bin" }, mid),
        rawEntry({ name: "memdir/small.md" }, "small"),
        EOA,
      ]);
      // Frames of 64 KiB of tar each: files span several decoder outputs.
      const frames: Uint8Array[] = [];
      for (let i = 0; i < inner.length; i += 65536) frames.push(zstd(inner.subarray(i, i + 65536)));
      const payload = concat(frames);
      const bundle = craftBundle(payload, files);
      const dest = `${dir.path}/out`;
      await extractBundle(streamOf(bundle, 65536), dest);
      assert.deepEqual(await Deno.readFile(`${dest}/memdir/big.bin`), big);
      assert.deepEqual(await Deno.readFile(`${dest}/memdir/mid.bin`), mid);
      assert.equal(await Deno.readTextFile(`${dest}/memdir/small.md`), "small");
      // craftBundle lists no modes: 0o644 for all, exactly.
      for (const f of Object.keys(files)) {
        assert.equal((await Deno.stat(`${dest}/${f}`)).mode! & 0o777, 0o644, f);
      }
      const bad = payload.slice();
      const at = frames[0]!.length + frames[1]!.length + 200;
      bad[at] = bad[at]! ^ 0x55;
      const dest2 = `${dir.path}/out2`;
      await assert.rejects(
        extractBundle(streamOf(craftBundle(bad, files), 65536), dest2),
        (e) => e instanceof VerificationError,
      );
      assert.equal(await Deno.stat(dest2).catch(() => undefined), undefined);
    } finally {
      Deno.umask(mask);
      Object.assign(decoderConfig, saved);
    }
  });
}

test("extractBundle() writes thousands of files and large ones across batches, with their modes", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  const want = new Map<string, { data: Uint8Array; mode: number }>();
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 2500; i++) {
    const data = new Uint8Array(rand(3000)).map(() => rand(256));
    want.set(`d${i % 37}/f${String(i).padStart(5, "0")}.md`, {
      data,
      mode: i % 11 === 0 ? 0o600 : 0o644,
    });
  }
  // Exactly one batch, one byte over, and several batches (a file split between batches).
  for (const [name, size] of [["one", 1 << 20], ["over", (1 << 20) + 1], ["big", 2_500_000]]) {
    want.set(`large/${name}.bin`, {
      data: new Uint8Array(size as number).map((_, i) => (i * 31 + 7) & 255),
      mode: 0o755,
    });
  }
  await writeBundle(
    b,
    testHeader(),
    [...want].map(([path, w]) => source(path, w.data, { mode: w.mode, chunk: 100_000 })),
  );
  const dest = `${dir.path}/out`;
  const mask = Deno.umask(0o077);
  try {
    const m = await extractBundle(await openBundleFile(b), dest);
    assert.equal(m.artifacts.length, want.size);
  } finally {
    Deno.umask(mask);
  }
  assert.deepEqual(await listTree(dest), [...want.keys()].sort());
  for (const [path, w] of want) {
    assert.deepEqual(await Deno.readFile(`${dest}/${path}`), w.data, path);
    assert.equal((await Deno.stat(`${dest}/${path}`)).mode! & 0o777, w.mode, path);
  }
});

/**
 * Extracts a bundle of 700 notes under `a/`, then `last` (or of `arts`), with a progress hook
 * that plants `plant` in destDir once the extraction has begun; returns what it throws.
 */
async function plantedExtraction(
  dir: string,
  last: string,
  plant: (dest: string) => void,
  arts: ReturnType<typeof source>[] = [],
): Promise<unknown> {
  const b = `${dir}/b`;
  if (arts.length === 0) {
    for (let i = 0; i < 700; i++) {
      arts.push(source(`a/n${String(i).padStart(4, "0")}.md`, `n${i}`));
    }
    arts.push(source(last, "last"));
  }
  await writeBundle(b, testHeader(), arts);
  const dest = `${dir}/out`;
  let planted = false;
  try {
    await extractBundle(await openBundleFile(b), dest, {
      progress: {
        progress() {
          if (planted) return;
          planted = true;
          plant(dest);
        },
        warn() {},
      },
    });
  } catch (e) {
    assert.ok(planted);
    assert.equal(await Deno.stat(dest).catch(() => undefined), undefined, "destDir removed");
    return e;
  }
  throw new Error("the extraction did not fail");
}

test("extractBundle() refuses a file that appears in destDir during the extraction", async () => {
  await using dir = await tempDir();
  const e = await plantedExtraction(
    dir.path,
    "z.md",
    (d) => Deno.writeTextFileSync(`${d}/z.md`, "x"),
  );
  assert.ok(e instanceof UnsafeBundleError, String(e));
  assert.equal(e.rule, "path_conflict");
  assert.equal(e.entry, "z.md");
  assert.match(e.message, /already exists in the destination/);
});

test("extractBundle() refuses a parent dir that appears in destDir during the extraction", async () => {
  await using dir = await tempDir();
  const e = await plantedExtraction(dir.path, "z/last.md", (d) => Deno.mkdirSync(`${d}/z`));
  assert.ok(e instanceof UnsafeBundleError, String(e));
  assert.equal(e.rule, "path_conflict");
  assert.equal(e.entry, "z/last.md");
  assert.match(e.message, /has a parent z that already exists/);
});

/**
 * 400 notes of 40 KB at the top (25 to a batch: 16 batches, dealt to both workers), with
 * `b0200/last.md` right after `b0200.md`.
 */
function spreadNotes(): ReturnType<typeof source>[] {
  const arts = [];
  for (let i = 0; i < 400; i++) {
    const name = `b${String(i).padStart(4, "0")}`;
    arts.push(source(`${name}.md`, new Uint8Array(40_000).fill(i & 255)));
    if (i === 200) arts.push(source(`${name}/last.md`, "last"));
  }
  return arts;
}

test("extractBundle() reports the earliest of several failures in the bundle's order", async () => {
  await using dir = await tempDir();
  const e = await plantedExtraction(dir.path, "", (d) => {
    Deno.writeTextFileSync(`${d}/b0350.md`, "x");
    Deno.writeTextFileSync(`${d}/b0100.md`, "x");
  }, spreadNotes());
  assert.ok(e instanceof UnsafeBundleError, String(e));
  assert.equal(e.rule, "path_conflict");
  assert.equal(e.entry, "b0100.md");
  assert.match(e.message, /already exists in the destination/);
});

test("extractBundle() reports a file's failure before a later directory's", async () => {
  await using dir = await tempDir();
  // The directory is made on the reading thread, before any worker has the file before it.
  const e = await plantedExtraction(dir.path, "", (d) => {
    Deno.mkdirSync(`${d}/b0200`);
    Deno.writeTextFileSync(`${d}/b0200.md`, "x");
  }, spreadNotes());
  assert.ok(e instanceof UnsafeBundleError, String(e));
  assert.equal(e.entry, "b0200.md");
  assert.match(e.message, /already exists in the destination/);
});

test("extractBundle() writes large files among small ones whole, across batches", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`;
  const want = new Map<string, Uint8Array>();
  for (let i = 0; i < 60; i++) {
    const size = i % 7 === 3 ? 2_300_000 + i : 30_000 + i * 101;
    want.set(
      `d${i % 3}/f${String(i).padStart(3, "0")}`,
      new Uint8Array(size).map((_, k) => (k * 7 + i) & 255),
    );
  }
  await writeBundle(b, testHeader(), [...want].map(([p, d]) => source(p, d, { chunk: 70_000 })));
  await extractBundle(await openBundleFile(b), `${dir.path}/out`);
  assert.deepEqual(await listTree(`${dir.path}/out`), [...want.keys()].sort());
  for (const [p, d] of want) assert.deepEqual(await Deno.readFile(`${dir.path}/out/${p}`), d, p);
});

test("extractBundle() checks every artifact's size and hash, failures in the bundle's order", async () => {
  await using dir = await tempDir();
  // The payload's own hash is right: only the artifacts disagree with the manifest.
  const { bundle, big, bigBad, failures } = damagedArtifacts();
  await assert.rejects(
    extractBundle(streamOf(bundle), `${dir.path}/d`),
    (e) => {
      assert.ok(e instanceof VerificationError, String(e));
      assert.deepEqual(e.failures.map((f) => [f.check, f.path]), failures);
      // The digest read and the manifest's, small (whole) and large (streamed) alike.
      const sha = (x: string | Uint8Array) => createHash("sha256").update(x).digest("hex");
      assert.equal(
        e.failures[0]!.detail,
        `artifact sha256 is ${sha("bad!")}, manifest says ${sha("good")}`,
      );
      assert.equal(
        e.failures[1]!.detail,
        `artifact sha256 is ${sha(bigBad)}, manifest says ${sha(big)}`,
      );
      assert.equal(e.failures[2]!.detail, "artifact is 2 bytes, manifest says 1");
      assert.match(e.message, /artifact_hash \(b\).* and 5 more/);
      return true;
    },
  );
  assert.deepEqual(await listTree(dir.path), [], "nothing left");
});

Deno.test("extractBundle() starts one writer worker and adds the second when it falls behind", async () => {
  await using dir = await tempDir();
  const saved = { ...writerConfig };
  Object.assign(writerConfig, {
    workerMinArtifacts: 0,
    workers: 2,
    startWorkers: 1,
    growAfterMs: 0, // at the first wait for a buffer once the worker has answered
    growWaitShare: 0,
  });
  try {
    const b = `${dir.path}/b`;
    // Thousands of small files: one worker creates them slower than this thread batches them.
    const want = new Map<string, Uint8Array>();
    for (let i = 0; i < 4000; i++) {
      want.set(`d${i % 23}/n${i}.md`, new Uint8Array(1500 + (i % 700)).fill(i & 255));
    }
    await writeBundle(b, testHeader(), [...want].map(([p, d]) => source(p, d)));
    await extractBundle(await openBundleFile(b), `${dir.path}/out`);
    assert.deepEqual([writerStats.started, writerStats.added], [1, 1]);
    assert.ok(writerStats.waitedMs > 0);
    assert.deepEqual(await listTree(`${dir.path}/out`), [...want.keys()].sort());
    for (const [p, d] of want) assert.deepEqual(await Deno.readFile(`${dir.path}/out/${p}`), d, p);
  } finally {
    Object.assign(writerConfig, saved);
  }
});

Deno.test("currentUmask() reads the process umask (Linux)", () => {
  if (Deno.build.os !== "linux") return;
  const saved = Deno.umask(0o027);
  try {
    assert.equal(currentUmask(), 0o027);
  } finally {
    Deno.umask(saved);
  }
  assert.equal(currentUmask(), saved);
});

test("extractBundle() given the bundle's manifest returns it, still verifies everything, and reads another one's as without it", async () => {
  await using dir = await tempDir();
  const b = `${dir.path}/b`, c = `${dir.path}/c`;
  const files = Array.from({ length: 700 }, (_, i) => source(`f/${i}`, `note ${i}`));
  await writeBundle(b, testHeader(), files, { signer: testSigner() });
  await writeBundle(c, testHeader({ agent_id: "other" }), files);
  const known = await readManifest(await openBundleFile(b));
  // The same bytes: the object given comes back, after the payload and signature are checked.
  const got = await extractBundle(await openBundleFile(b), `${dir.path}/1`, {
    manifest: known,
    verifier: testVerifier(),
    requireSignature: true,
  });
  assert.equal(got, known);
  assert.equal(await Deno.readTextFile(`${dir.path}/1/f/699`), "note 699");
  await assert.rejects(
    extractBundle(await openBundleFile(b), `${dir.path}/2`, {
      manifest: known,
      verifier: testVerifier("x"),
    }),
    (e) => e instanceof VerificationError && e.failures[0]?.check === "signature",
  );
  // Another bundle's manifest: its own is read and returned, as without the option.
  const other = await extractBundle(await openBundleFile(c), `${dir.path}/3`, { manifest: known });
  assert.notEqual(other, known);
  assert.deepEqual(other, await readManifest(await openBundleFile(c)));
  // A payload that does not match the manifest still fails.
  const bytes = await Deno.readFile(b);
  // A byte of the payload's data (its tar header holds its name; the data follows it).
  const text = new TextDecoder("latin1").decode(bytes);
  let header = text.indexOf("payload.tar.zst");
  while (header !== -1 && header % 512 !== 0) header = text.indexOf("payload.tar.zst", header + 1);
  assert(header > 0);
  bytes[header + 512 + 20]! ^= 0xff;
  await Deno.writeFile(`${dir.path}/bad`, bytes);
  await assert.rejects(
    extractBundle(await openBundleFile(`${dir.path}/bad`), `${dir.path}/4`, { manifest: known }),
    VerificationError,
  );
  assert.deepEqual((await listTree(dir.path)).filter((p) => /^[24]\//.test(p)), []);
});
