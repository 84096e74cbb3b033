import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";
import { rewriteHistory, SpilledObjects } from "./_git_rewrite.ts";
import {
  deflateStream,
  type ObjectSource,
  overlaySource,
  reachable,
  writeBundle,
} from "./_git_objects.ts";
import { packReader } from "./_git_pack_reader.ts";
import { createRedactor, secretsPack } from "../redact/mod.ts";
import { GIT_TEST_ENV, initGitRepo, interopTest, run, tempDir } from "../tests/_tools.ts";

/** Bytes zlib cannot shrink (SHA-256 in counter mode). */
function incompressible(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 32) {
    const h = createHash("sha256").update(`block ${i}`).digest();
    out.set(h.subarray(0, Math.min(32, n - i)), i);
  }
  return out;
}

async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  using f = await Deno.open(path, { read: true });
  for await (const c of f.readable) yield c;
}

Deno.test("SpilledObjects: a large file's entry as the stream path compresses it, handed out in chunks", async () => {
  await using tmp = await tempDir();
  const objects = new SpilledObjects(`${tmp.path}/spill`);
  try {
    const body = incompressible((3 << 20) + 17);
    await Deno.writeFile(`${tmp.path}/big`, body);
    objects.set("a".repeat(40), { type: "blob", body: new TextEncoder().encode("small") });
    await objects.setFile("b".repeat(40), "blob", body.length, `${tmp.path}/big`);
    // a small entry is not chunked
    assert.equal(objects.rawChunks("a".repeat(40)), undefined);
    assert.equal(objects.rawChunks("c".repeat(40)), undefined);
    const raw = objects.raw("b".repeat(40))!;
    assert.equal(raw.kind, "whole");
    const expected = Buffer.concat(
      await Array.fromAsync(deflateStream(fileChunks(`${tmp.path}/big`))),
    );
    assert.equal(Buffer.compare(raw.data, expected), 0);
    const chunked = objects.rawChunks("b".repeat(40))!;
    assert.equal(chunked.kind, "whole");
    assert.equal(chunked.kind === "whole" && chunked.type, "blob");
    assert.equal(chunked.size, body.length);
    const copies: Uint8Array[] = [];
    for (const c of chunked.data) copies.push(new Uint8Array(c));
    assert.ok(copies.length >= 3);
    assert.equal(Buffer.compare(Buffer.concat(copies), expected), 0);
    assert.deepEqual(new Uint8Array(inflateSync(Buffer.concat(copies))), body);
    assert.deepEqual(objects.get("b".repeat(40))!.body, body);
  } finally {
    await objects.dispose();
  }
});

interopTest(
  "a large blob rewritten through the synchronous stream gives the same history and bundle",
  [
    "git",
  ],
  async () => {
    await using tmp = await tempDir();
    const dir = `${tmp.path}/repo`;
    const git = await initGitRepo(dir);
    // > 4 MiB of hex lines with secrets: over 1 MiB compressed, so a streamed loose object
    const lines: string[] = [];
    for (let i = 0; lines.length < 70_000; i++) {
      const hex = createHash("sha256").update(`l${i}`).digest("hex");
      lines.push(
        i % 5000 === 7
          ? `key AKIAZ7ZQWUXYVDCB${"ABCDEFGHIJKLMNOP"[i % 16]!.repeat(4)} ${hex}`
          : hex,
      );
    }
    await Deno.writeTextFile(`${dir}/big.md`, lines.join("\n") + "\n");
    await Deno.writeTextFile(`${dir}/small.md`, "token AKIAZ7ZQWUXYVDCBA234 here\n");
    await git("add", ".");
    await git("commit", "-q", "-m", "one");
    const head = (await git("rev-parse", "HEAD")).trim();
    const live = await packReader(`${dir}/.git`);
    try {
      assert.notEqual(live.streamSync, undefined);
      const key = new Uint8Array(32).fill(9);
      // the same source without its stream paths reads the blob whole
      const whole: ObjectSource = { read: live.read, raw: live.raw };
      const results = [];
      for (const [name, src] of [["sync", live], ["whole", whole]] as const) {
        const redactor = createRedactor({ packs: [secretsPack], key });
        const r = await rewriteHistory(src, [head], redactor, `${tmp.path}/${name}.spill`);
        results.push({ r, report: redactor.report() });
      }
      const [a, b] = results;
      try {
        assert.deepEqual([...a!.r.map].sort(), [...b!.r.map].sort());
        assert.equal(a!.r.changed, b!.r.changed);
        assert.deepEqual(a!.report, b!.report);
        const newHead = a!.r.map.get(head)!;
        assert.notEqual(newHead, head);
        // the bundle: with the large rewritten entries in chunks, and without
        const withChunks = overlaySource(a!.r.objects, live);
        // (the live pack's entries as whole copies too)
        const { rawChunks: _, ...liveWhole } = live;
        const plain = overlaySource({
          has: (o) => a!.r.objects.has(o),
          get: (o) => a!.r.objects.get(o),
          raw: (o) => a!.r.objects.raw(o),
        }, liveWhole);
        assert.notEqual(withChunks.rawChunks, undefined);
        assert.equal(plain.rawChunks, undefined);
        const refs = [{ oid: newHead, name: "HEAD" }, { oid: newHead, name: "refs/heads/main" }];
        const oids = await reachable(withChunks, [newHead]);
        const hashes: string[] = [];
        for (const [name, src] of [["chunks", withChunks], ["plain", plain]] as const) {
          await writeBundle(`${tmp.path}/${name}.bundle`, refs, src, oids);
          hashes.push(
            createHash("sha256").update(await Deno.readFile(`${tmp.path}/${name}.bundle`))
              .digest("hex"),
          );
        }
        assert.equal(hashes[0], hashes[1]);
        const clone = `${tmp.path}/clone`;
        const c = await run("git", ["clone", "-q", `${tmp.path}/chunks.bundle`, clone], {
          env: GIT_TEST_ENV,
        });
        assert.equal(c.code, 0, c.stderr);
        const out = await Deno.readTextFile(`${clone}/big.md`);
        assert.ok(!out.includes("AKIAZ7ZQWUXYVDCB"));
        assert.ok(out.includes("[REDACTED:aws-access-key-id:"));
        const fsck = await run("git", ["-C", clone, "fsck", "--strict"], { env: GIT_TEST_ENV });
        assert.equal(fsck.code, 0, fsck.stderr);
      } finally {
        for (const x of results) await x.r.objects.dispose();
      }
    } finally {
      live.close();
    }
  },
);
