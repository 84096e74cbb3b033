import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { deflateSync, inflateSync } from "node:zlib";
import { deflateBlocksSync, SyncZlib, syncZlibAvailable } from "./_git_zlib.ts";
import {
  deflateStream,
  type ObjectSource,
  parseTree,
  reachable,
  writeBundle,
} from "./_git_objects.ts";
import { packReader } from "./_git_pack_reader.ts";
import { GIT_TEST_ENV, initGitRepo, interopTest, run, tempDir } from "../tests/_tools.ts";

function random(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Bytes zlib cannot shrink (SHA-256 in counter mode). */
function incompressible(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 32) {
    const h = createHash("sha256").update(`block ${i}`).digest();
    out.set(h.subarray(0, Math.min(32, n - i)), i);
  }
  return out;
}

function text(n: number): Uint8Array {
  const lines: string[] = [];
  for (let i = 0, len = 0; len < n; i++) {
    const l = `line ${(i * 7919) % 1000} of a memory note\n`;
    lines.push(l);
    len += l.length;
  }
  return new TextEncoder().encode(lines.join("")).subarray(0, n);
}

const inputs = (): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (const n of [0, 1, 100, 65535, 65536, 65537, (1 << 20) + 3]) {
    const mixed = random(n, n + 7);
    mixed.set(text(n >> 1));
    out.push(random(n, n + 1), text(n), mixed);
  }
  return out;
};

async function* chunks(b: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

Deno.test("deflateBlocksSync(views) gives the same bytes when each view is used before the next", async () => {
  for (const b of inputs()) {
    const streamed = Buffer.concat(await Array.fromAsync(deflateStream(chunks(b, 100_000))));
    for (const size of [1 << 20, 4096]) {
      const parts: Uint8Array[] = [];
      for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
      // copied as they come (a Buffer's slice() would be a view): a view may be reused
      const copies: Uint8Array[] = [];
      for (const c of deflateBlocksSync(parts, true)) copies.push(new Uint8Array(c));
      assert.equal(Buffer.compare(Buffer.concat(copies), streamed), 0, `size ${b.length}`);
    }
  }
});

Deno.test("SyncZlib.pushView() inflates in steps into views used before the next", () => {
  const b = text(3 << 20);
  const z = deflateSync(b, { level: 1 });
  for (const step of [1 << 16, 1 << 20]) {
    const inf = new SyncZlib("inflate", 1 << 20);
    const copies: Uint8Array[] = [];
    for (let at = 0; at < z.length; at += step) {
      const end = Math.min(z.length, at + step);
      copies.push(new Uint8Array(inf.pushView(z.subarray(at, end), end === z.length)));
    }
    assert.equal(Buffer.compare(Buffer.concat(copies), b), 0, `step ${step}`);
  }
});

Deno.test("syncZlibAvailable() on this runtime", () => {
  assert.equal(syncZlibAvailable(), true);
});

Deno.test("deflateBlocksSync() gives deflateStream()'s bytes, whatever the chunking", async () => {
  for (const b of inputs()) {
    const streamed = Buffer.concat(await Array.fromAsync(deflateStream(chunks(b, 100_000))));
    for (const size of [1 << 20, 4096, 65536]) {
      const parts: Uint8Array[] = [];
      for (let i = 0; i < b.length; i += size) parts.push(b.subarray(i, i + size));
      const sync = Buffer.concat([...deflateBlocksSync(parts)]);
      assert.equal(Buffer.compare(sync, streamed), 0, `size ${b.length}, chunks ${size}`);
    }
    assert.deepEqual(new Uint8Array(inflateSync(streamed)), b);
  }
});

Deno.test("SyncZlib.once() gives deflateSync()'s bytes and reuses its engine", () => {
  const d = new SyncZlib("deflate");
  const i = new SyncZlib("inflate");
  try {
    for (const b of [...inputs(), ...inputs().reverse()]) {
      const out = new Uint8Array(d.once(b));
      assert.deepEqual(out, new Uint8Array(deflateSync(b, { level: 1 })), `size ${b.length}`);
      // inflate stops at the end of the stream and says how much input it used
      const trailing = Buffer.concat([out, new Uint8Array([1, 2, 3])]);
      assert.deepEqual(new Uint8Array(i.once(trailing, Math.max(b.length, 1))), b);
      assert.equal(i.bytesWritten, out.length);
    }
  } finally {
    d.close();
    i.close();
  }
});

Deno.test("SyncZlib.once() bounds the output and keeps working after an error", () => {
  const i = new SyncZlib("inflate");
  try {
    const big = deflateSync(new Uint8Array(100_000));
    assert.throws(() => i.once(big, 1000), RangeError);
    const corrupt = Uint8Array.from(deflateSync(text(5000)));
    corrupt[10]! ^= 0xff;
    assert.throws(() => i.once(corrupt));
    assert.throws(() => i.once(big.subarray(0, 20))); // truncated
    assert.equal(i.once(big, 100_000).length, 100_000);
  } finally {
    i.close();
  }
});

interopTest("a large loose object is packed the same by the sync and the stream paths", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/repo`;
  const git = await initGitRepo(dir);
  // over 1 MiB compressed: streamed; and a small one read whole
  const big = incompressible(3 << 19);
  big.set(text(1 << 19), 1 << 20);
  await Deno.writeFile(`${dir}/big.bin`, big);
  await Deno.writeTextFile(`${dir}/small.md`, "small\n");
  await git("add", ".");
  await git("commit", "-q", "-m", "one");
  const head = (await git("rev-parse", "HEAD")).trim();
  const source = await packReader(`${dir}/.git`);
  try {
    assert.notEqual(source.streamSync, undefined);
    const oids = await reachable(source, [head]);
    const refs = [{ oid: head, name: "HEAD" }, { oid: head, name: "refs/heads/main" }];
    // the same source without its synchronous paths takes the stream path
    const async: ObjectSource = { read: source.read, raw: source.raw, stream: source.stream! };
    const hashes: string[] = [];
    for (const [name, src] of [["sync", source], ["async", async]] as const) {
      const path = `${tmp.path}/${name}.bundle`;
      await writeBundle(path, refs, src, oids);
      hashes.push(createHash("sha256").update(await Deno.readFile(path)).digest("hex"));
    }
    assert.equal(hashes[0], hashes[1]);
    // the large loose object as a synchronous stream: views, each used before the next
    const commit = new TextDecoder().decode((await source.read(head)).body);
    const tree = parseTree((await source.read(commit.slice(5, 45))).body);
    const oid = tree.find((e) => new TextDecoder().decode(e.name) === "big.bin")!.oid;
    const loose = `${dir}/.git/objects/${oid.slice(0, 2)}/${oid.slice(2)}`;
    assert.ok(Deno.statSync(loose).size >= 1 << 20, "a loose object the reader streams");
    const s = source.streamSync!(oid)!;
    assert.equal(s.size, big.length);
    const copies: Uint8Array[] = [];
    for (const c of s.body) copies.push(new Uint8Array(c));
    assert.ok(copies.length > 2);
    assert.deepEqual(new Uint8Array(Buffer.concat(copies)), big);
    const clone = `${tmp.path}/clone`;
    const r = await run("git", ["clone", "-q", `${tmp.path}/sync.bundle`, clone], {
      env: GIT_TEST_ENV,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await Deno.readFile(`${clone}/big.bin`), big);
  } finally {
    source.close();
  }
});
