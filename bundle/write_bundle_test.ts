import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { MemsnapError, RefusedError } from "../errors.ts";
import { zstdDecompressSync } from "node:zlib";
import type { BundleLimits } from "./bundle_limits.ts";
import { encodeManifest } from "./_manifest.ts";
import { writeBundle } from "./write_bundle.ts";
import { readManifest } from "./read_manifest.ts";
import { openBundleFile } from "./open_bundle_file.ts";
import { verifyBundle } from "./verify_bundle.ts";
import { source, testHeader, testSigner, xorCipher } from "../tests/bundle_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

function sources() {
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  return [
    source("state/s.json", '{"a":1}', { kind: "state" }),
    source("memdir/notes/a.md", "hello\n", { chunk: 2 }),
    source("memdir/run.sh", "#!/bin/sh\n", { mode: 0o755 }),
    source("memdir/empty", ""),
    source("sqlite/db.sqlite", big, { kind: "sqlite", chunk: 10_000 }),
    source(`memdir/${"ü".repeat(70)}/long.md`, "long name"),
  ];
}

async function sha(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

Deno.test("writeBundle() produces identical bytes for identical input and clock", async () => {
  await using dir = await tempDir();
  for (const opts of [{}, { cipher: xorCipher(), signer: testSigner() }]) {
    await writeBundle(`${dir.path}/a`, testHeader(), sources(), opts);
    await writeBundle(`${dir.path}/b`, testHeader(), sources().reverse(), opts);
    assert.equal(await sha(`${dir.path}/a`), await sha(`${dir.path}/b`));
  }
  await writeBundle(
    `${dir.path}/c`,
    testHeader({ created_at: "2026-11-25T19:52:23.000Z" }),
    sources(),
  );
  assert.notEqual(await sha(`${dir.path}/a`), await sha(`${dir.path}/c`));
});

Deno.test("writeBundle() bytes do not depend on how sources chunk their bytes", async () => {
  await using dir = await tempDir();
  const data = new Uint8Array(700_000).map((_, i) => (i * 31) >> 5);
  for (const [name, chunk] of [["a", 1], ["b", 4096], ["c", 1 << 20]] as const) {
    const arts = [
      source("x", data, { chunk: chunk === 1 ? 100_003 : chunk }),
      source("y", "tiny", { chunk }),
    ];
    await writeBundle(`${dir.path}/${name}`, testHeader(), arts);
  }
  assert.equal(await sha(`${dir.path}/a`), await sha(`${dir.path}/b`));
  assert.equal(await sha(`${dir.path}/a`), await sha(`${dir.path}/c`));
});

Deno.test("writeBundle() records sorted artifacts with hashes, sizes, modes", async () => {
  await using dir = await tempDir();
  const m = await writeBundle(`${dir.path}/b`, testHeader(), sources());
  const paths = m.artifacts.map((a) => a.path);
  assert.deepEqual(paths, [...paths].sort());
  const a = m.artifacts.find((x) => x.path === "memdir/notes/a.md")!;
  assert.equal(a.sha256, createHash("sha256").update("hello\n").digest("hex"));
  assert.equal(a.size, 6);
  assert.equal(a.mode, undefined);
  assert.equal(m.artifacts.find((x) => x.path === "memdir/run.sh")!.mode, 0o755);
  assert.equal(m.payload.path, "payload.tar.zst");
  assert.equal(m.payload.encryption, null);
  assert.deepEqual(
    await readManifest(await openBundleFile(`${dir.path}/b`)),
    JSON.parse(JSON.stringify(m)),
  );
  const st = await Deno.stat(`${dir.path}/b`);
  assert.equal(st.size % 512, 0);
});

Deno.test("writeBundle() with a cipher records the encryption and the payload name", async () => {
  await using dir = await tempDir();
  const m = await writeBundle(`${dir.path}/b`, testHeader(), sources(), { cipher: xorCipher() });
  assert.equal(m.payload.path, "payload.tar.zst.age");
  assert.deepEqual(m.payload.encryption, { scheme: "age", recipients: ["0123456789abcdef"] });
});

Deno.test("writeBundle() fails clearly when a source yields more or fewer bytes than its size", async () => {
  await using dir = await tempDir();
  for (const size of [3, 10]) {
    await assert.rejects(
      writeBundle(`${dir.path}/b`, testHeader(), [source("memdir/a", "12345", { size })]),
      (e) => {
        assert.ok(e instanceof MemsnapError);
        assert.match(e.message, /^Cannot pack artifact "memdir\/a": .*changed during capture/);
        return true;
      },
    );
    assert.deepEqual([...Deno.readDirSync(dir.path)], [], "no temp file or partial bundle left");
  }
});

Deno.test("writeBundle() refuses invalid paths, duplicates, bad sizes and a bad header", async () => {
  await using dir = await tempDir();
  const dest = `${dir.path}/b`;
  for (const bad of ["../x", "/abs", "a//b", "a\\b", ""]) {
    await assert.rejects(writeBundle(dest, testHeader(), [source(bad, "x")]), TypeError);
  }
  await assert.rejects(
    writeBundle(dest, testHeader(), [source("a", "x"), source("a", "y")]),
    /appears twice/,
  );
  await assert.rejects(
    writeBundle(dest, testHeader(), [source("a", "x"), source("a/b", "y")]),
    /path_conflict/,
  );
  await assert.rejects(
    writeBundle(dest, testHeader(), [source("a", "x", { size: -1 })]),
    TypeError,
  );
  await assert.rejects(
    writeBundle(dest, testHeader({ snapshot_id: "nope" }), []),
    /snapshot_id/,
  );
  await assert.rejects(writeBundle(dest, testHeader({ created_at: "yesterday" }), []), TypeError);
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("writeBundle() honours an abort signal and cleans up", async () => {
  await using dir = await tempDir();
  const ac = new AbortController();
  const slow = {
    path: "a",
    kind: "file",
    size: 10,
    open: () =>
      Promise.resolve(
        new ReadableStream<Uint8Array>({
          pull(c) {
            ac.abort();
            c.enqueue(new Uint8Array(1));
          },
        }),
      ),
  };
  await assert.rejects(
    writeBundle(`${dir.path}/b`, testHeader(), [slow], { signal: ac.signal }),
    (e) => e instanceof DOMException && e.name === "AbortError",
  );
  assert.deepEqual([...Deno.readDirSync(dir.path)], []);
});

Deno.test("writeBundle() accepts async iterables and an empty artifact list", async () => {
  await using dir = await tempDir();
  async function* gen() {
    yield source("b", "2");
    yield source("a", "1");
  }
  const m = await writeBundle(`${dir.path}/b`, testHeader(), gen());
  assert.deepEqual(m.artifacts.map((a) => a.path), ["a", "b"]);
  await writeBundle(`${dir.path}/e`, testHeader(), []);
  assert.ok((await verifyBundle(await openBundleFile(`${dir.path}/e`))).ok);
});

Deno.test("writeBundle() reports pack progress", async () => {
  await using dir = await tempDir();
  let last = 0;
  await writeBundle(`${dir.path}/b`, testHeader(), sources(), {
    progress: {
      progress: (e) => {
        assert.equal(e.phase, "pack");
        last = e.done;
      },
      warn: () => {},
    },
  });
  assert.equal(last, sources().reduce((n, s) => n + s.size, 0));
});

/** A byte stream (`type: "bytes"`, read with a BYOB reader by the writer) of `data`. */
function byteSource(path: string, data: Uint8Array, size = data.length, onCancel = () => {}) {
  return {
    path,
    kind: "file",
    size,
    open: () => {
      let off = 0;
      return Promise.resolve(
        new ReadableStream({
          type: "bytes",
          pull(c) {
            const req = c.byobRequest!;
            const view = req.view!;
            if (off >= data.length) {
              c.close();
              req.respond(0);
              return;
            }
            // Odd-sized pieces, smaller than asked.
            const n = Math.min(view.byteLength, data.length - off, 70_001);
            new Uint8Array(view.buffer, view.byteOffset, n).set(data.subarray(off, off + n));
            off += n;
            req.respond(n);
          },
          cancel: onCancel,
        }),
      );
    },
  };
}

Deno.test("writeBundle() packs byte streams and files the same as default streams", async () => {
  await using dir = await tempDir();
  // Large enough that the byte streams' chunks and the payload are hashed off the thread.
  const data = new Uint8Array(9_500_000).map((_, i) => (i * 31) >> 7);
  await Deno.writeFile(`${dir.path}/src.bin`, data);
  const file = {
    path: "x",
    kind: "file",
    size: data.length,
    open: async () => (await Deno.open(`${dir.path}/src.bin`)).readable,
  };
  const a = await writeBundle(`${dir.path}/a`, testHeader(), [source("x", data)]);
  const b = await writeBundle(`${dir.path}/b`, testHeader(), [byteSource("x", data)]);
  const c = await writeBundle(`${dir.path}/c`, testHeader(), [file]);
  assert.equal(a.artifacts[0]!.sha256, createHash("sha256").update(data).digest("hex"));
  assert.equal(await sha(`${dir.path}/b`), await sha(`${dir.path}/a`));
  assert.equal(await sha(`${dir.path}/c`), await sha(`${dir.path}/a`));
  assert.deepEqual(b, a);
  assert.deepEqual(c, a);
  const report = await verifyBundle(await openBundleFile(`${dir.path}/c`));
  assert.ok(report.ok, JSON.stringify(report.failures));
});

Deno.test("writeBundle() refuses a byte stream longer or shorter than its size, and cancels it", async () => {
  await using dir = await tempDir();
  const data = new Uint8Array(1_000_000).fill(7);
  for (const size of [data.length - 1, data.length + 1, 999_000]) {
    let cancelled = 0;
    await assert.rejects(
      writeBundle(`${dir.path}/b`, testHeader(), [
        byteSource("memdir/a", data, size, () => {
          cancelled++;
        }),
      ]),
      (e) => {
        assert.ok(e instanceof MemsnapError);
        assert.match(e.message, /^Cannot pack artifact "memdir\/a": .*changed during capture/);
        return true;
      },
    );
    assert.equal(cancelled, size < data.length ? 1 : 0);
    assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  }
});

Deno.test("writeBundle() opens each source once, in order, and cancels those opened ahead when one fails", async () => {
  await using dir = await tempDir();
  const opened: string[] = [];
  const cancelled: string[] = [];
  const counted = (path: string, fail = false) => ({
    path,
    kind: "file",
    size: 5,
    open: () => {
      opened.push(path);
      if (fail) return Promise.reject(new Error(`cannot open ${path}`));
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode(path.slice(-5)));
            c.close();
          },
          cancel() {
            cancelled.push(path);
          },
        }),
      );
    },
  });
  const names = Array.from({ length: 12 }, (_, i) => `m/${String(i).padStart(5, "0")}`);
  const m = await writeBundle(`${dir.path}/ok`, testHeader(), names.map((n) => counted(n)));
  assert.deepEqual(opened, names);
  assert.equal(m.artifacts.length, 12);
  opened.length = 0;
  await assert.rejects(
    writeBundle(
      `${dir.path}/bad`,
      testHeader(),
      names.map((n, i) => counted(n, i === 3)),
    ),
    /cannot open m\/00003/,
  );
  assert.deepEqual(opened, names, "each opened once, in order");
  // Those opened ahead of the failure and never read are cancelled.
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(cancelled, names.slice(4));
  assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name), ["ok"]);
});

/** `s` with a `readInto` giving `bytes` (which may differ from what `open()` gives). */
function withReadInto<T extends { size: number }>(s: T, bytes: Uint8Array, reads: string[]) {
  return {
    ...s,
    readInto(into: Uint8Array): number {
      reads.push((s as unknown as { path: string }).path);
      const n = Math.min(bytes.length, into.length);
      into.set(bytes.subarray(0, n));
      return n;
    },
  };
}

Deno.test("writeBundle() packs sources read with readInto as it packs their streams", async () => {
  await using dir = await tempDir();
  const enc = new TextEncoder();
  // Many small ones (several 1 MiB batches), one just under 1 MiB, one over (streamed), and
  // stream sources in between, so batches are cut before and after them.
  const data = (i: number, n: number) => new Uint8Array(n).map((_, k) => (i * 131 + k * 7) & 0xff);
  const plain = () => [
    ...Array.from(
      { length: 700 },
      (_, i) => source(`memdir/n/${String(i).padStart(4, "0")}.md`, data(i, 3000 + i)),
    ),
    source("memdir/n/0350.zz", data(1, (1 << 20) - 100)),
    source("memdir/n/big.bin", data(2, (1 << 20) + 1)),
    source("memdir/z/empty", ""),
    source("state/s.json", '{"a":1}', { kind: "state" }),
  ];
  await writeBundle(`${dir.path}/streams`, testHeader(), plain());
  const reads: string[] = [];
  const synced = plain().map((s, i) =>
    i % 3 === 2 ? s : withReadInto(s, s.size === 0 ? new Uint8Array() : dataOf(s), reads)
  );
  function dataOf(s: { path: string }): Uint8Array {
    const m = /(\d{4})\.md$/.exec(s.path);
    if (m) return data(Number(m[1]), 3000 + Number(m[1]));
    if (s.path.endsWith(".zz")) return data(1, (1 << 20) - 100);
    if (s.path.endsWith("big.bin")) return data(2, (1 << 20) + 1);
    return enc.encode('{"a":1}');
  }
  const m = await writeBundle(`${dir.path}/synced`, testHeader(), synced);
  assert.equal(await sha(`${dir.path}/synced`), await sha(`${dir.path}/streams`));
  assert.ok(reads.length > 400, "small sources were read with readInto");
  assert.ok(!reads.includes("memdir/n/big.bin"), "over 1 MiB: streamed");
  assert.equal(m.artifacts.length, 704);
  assert.ok(await verifyBundle(await openBundleFile(`${dir.path}/synced`)));
});

Deno.test("writeBundle() refuses a readInto source that is longer or shorter than its size", async () => {
  await using dir = await tempDir();
  for (const bytes of ["1234", "123456"]) {
    const s = withReadInto(source("memdir/a", "12345"), new TextEncoder().encode(bytes), []);
    await assert.rejects(
      writeBundle(`${dir.path}/b`, testHeader(), [source("memdir/0", "x"), s]),
      (e) => {
        assert.ok(e instanceof MemsnapError);
        assert.match(e.message, /^Cannot pack artifact "memdir\/a": .*changed during capture/);
        return true;
      },
    );
    assert.deepEqual([...Deno.readDirSync(dir.path)], []);
  }
});

Deno.test("writeBundle() never opens a readInto source, even when later sources are opened ahead", async () => {
  await using dir = await tempDir();
  const opened: string[] = [];
  const counted = (path: string, sync: boolean) => {
    const s = {
      path,
      kind: "file",
      size: 5,
      open: () => {
        opened.push(path);
        return Promise.resolve(new Blob([path.slice(-5)]).stream());
      },
    };
    return sync ? withReadInto(s, new TextEncoder().encode(path.slice(-5)), []) : s;
  };
  const names = Array.from({ length: 40 }, (_, i) => `m/${String(i).padStart(5, "0")}`);
  await writeBundle(`${dir.path}/ok`, testHeader(), names.map((n, i) => counted(n, i % 10 !== 9)));
  assert.deepEqual(opened, ["m/00009", "m/00019", "m/00029", "m/00039"]);
});

Deno.test("writeBundle() writes a manifest of thousands of artifacts in pieces, signed or not", async () => {
  await using dir = await tempDir();
  const arts = () =>
    Array.from(
      { length: 4500 },
      (_, i) =>
        source(`memdir/n/${String(i).padStart(5, "0")}.md`, `note ${i}\n`, {
          ...(i % 1000 === 0 ? { mode: 0o755 } : {}),
        }),
    );
  for (const opts of [{}, { signer: testSigner() }]) {
    const path = `${dir.path}/b${Object.keys(opts).length}`;
    const written = await writeBundle(path, testHeader(), arts(), opts);
    const read = await readManifest(await openBundleFile(path));
    assert.deepEqual(read, written);
    assert.equal(read.artifacts.length, 4500);
    assert.equal(read.artifacts[1000]!.mode, 0o755);
    assert.ok(await verifyBundle(await openBundleFile(path)));
  }
});

Deno.test("writeBundle() places the payload right after a manifest of any paths, kinds, sizes and modes", async () => {
  // The manifest's length is computed before the payload is packed (to write the payload in
  // place): paths that JSON escapes or that are not ASCII, long ones, sizes of every digit
  // count, modes and kinds. The writer throws if the length comes out wrong.
  await using dir = await tempDir();
  const name = fc.constantFrom(
    "a",
    '"q"',
    "é",
    "\u{1F600}",
    "\uFFFD",
    "x".repeat(120),
    "<&>",
  );
  const art = fc.record({
    path: fc.array(name, { minLength: 1, maxLength: 3 }).map((p) => `memdir/${p.join("/")}`),
    kind: fc.constantFrom("file", "symlink", "custom-kind", 'ké"y', "tab\tkind"),
    bytes: fc.nat({ max: 3000 }),
    mode: fc.option(fc.constantFrom(0, 0o600, 0o644, 0o755, 0o777), { nil: undefined }),
  });
  let run = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(art, { selector: (a) => a.path, maxLength: 25 }),
      async (list) => {
        const path = `${dir.path}/p${run++}`;
        const written = await writeBundle(
          path,
          testHeader(),
          // (each path ends in its own suffix: no file is another's directory)
          list.map((a, i) =>
            source(`${a.path}.${i}`, new Uint8Array(a.bytes).fill(7), {
              kind: a.kind,
              ...(a.mode === undefined ? {} : { mode: a.mode }),
            })
          ),
        );
        assert.deepEqual(await readManifest(await openBundleFile(path)), written);
        await Deno.remove(path);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("writeBundle() with flushEvery writes the same bytes", async () => {
  await using dir = await tempDir();
  const big = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24); // incompressible
  const arts = () => [source("sqlite/a.sqlite", big, { chunk: 1 << 16 }), ...sources()];
  await writeBundle(`${dir.path}/a`, testHeader(), arts());
  await writeBundle(`${dir.path}/b`, testHeader(), arts(), { flushEvery: 1 << 20 });
  assert.equal(await sha(`${dir.path}/a`), await sha(`${dir.path}/b`));
});

Deno.test("writeBundle() refuses a bundle the reader caps would refuse, and writes one right at them", async () => {
  await using dir = await tempDir();
  // The exact figures of one bundle: a writer given them as caps writes it, a reader given them
  // reads it; one below any of them, and both refuse.
  const full = `${dir.path}/full`;
  const m = await writeBundle(full, testHeader(), sources());
  const manifestSize = encodeManifest(m).length;
  const bytes = await Deno.readFile(full);
  const at = 512 + Math.ceil(manifestSize / 512) * 512 + 512;
  const tarSize = zstdDecompressSync(bytes.subarray(at, at + m.payload.size)).length;
  const exact = {
    maxEntries: m.artifacts.length,
    maxEntrySize: Math.max(...m.artifacts.map((a) => a.size)),
    maxTotalSize: tarSize,
    maxManifestSize: manifestSize,
  };
  const verdict = (path: string, limits: Partial<BundleLimits>) =>
    openBundleFile(path).then((s) => verifyBundle(s, { limits })).then(
      (r) => (r.ok ? "ok" : "failed"),
      (e) => (e instanceof RefusedError ? "refused" : `error: ${e}`),
    );
  const atCaps = `${dir.path}/at-caps`;
  await writeBundle(atCaps, testHeader(), sources(), { limits: exact });
  assert.deepEqual(await Deno.readFile(atCaps), bytes);
  assert.equal(await verdict(atCaps, exact), "ok");
  for (const cap of Object.keys(exact) as (keyof typeof exact)[]) {
    const limits = { ...exact, [cap]: exact[cap] - 1 };
    assert.equal(await verdict(full, limits), "refused", cap);
    let opened = 0;
    const counted = sources().map((s) => ({ ...s, open: () => (opened++, s.open()) }));
    await assert.rejects(
      writeBundle(`${dir.path}/over`, testHeader(), counted, { limits }),
      (e) =>
        e instanceof RefusedError && e.exitCode === 4 &&
        e.message.startsWith("Cannot write the bundle: ") && e.message.includes(`(${cap})`),
    );
    // Refused from the declared sizes, before any artifact is read, except a manifest within
    // a few bytes of its cap: its length is final once the payload's size (its digits) is.
    // Nothing is left behind either way.
    assert.equal(opened, cap === "maxManifestSize" ? sources().length : 0, cap);
    assert.deepEqual([...Deno.readDirSync(dir.path)].map((e) => e.name).sort(), [
      "at-caps",
      "full",
    ]);
  }
  let opened = 0;
  const counted = sources().map((s) => ({ ...s, open: () => (opened++, s.open()) }));
  await assert.rejects(
    writeBundle(`${dir.path}/over`, testHeader(), counted, { limits: { maxManifestSize: 1000 } }),
    /its manifest would be \d+ bytes, over the cap of 1000 bytes that a reader accepts \(maxManifestSize\)/,
  );
  assert.equal(opened, 0);
});
