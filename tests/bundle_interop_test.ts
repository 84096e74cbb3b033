/**
 * Interop: standard tools open every layer of a bundle, and our reader reads what they write.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { interopTest, run, tempDir } from "./_tools.ts";
import { extractBundle, openBundleFile, verifyBundle, writeBundle } from "../bundle/mod.ts";
import type { Manifest } from "../bundle/types.ts";
import { ageCipher } from "../bundle/age_cipher.ts";
import { ageDecipher } from "../bundle/age_decipher.ts";
import { generateAgeIdentity } from "../bundle/age_keys.ts";
import { generateSigningKeyPair } from "../bundle/minisign_keys.ts";
import { minisignSigner } from "../bundle/minisign_signer.ts";
import { minisignVerifier } from "../bundle/minisign_verifier.ts";
import { craftBundle, source, streamOf, testHeader, testSigner } from "./bundle_helpers.ts";

const LONG = `memdir/${"ünïcødé-".repeat(15)}/naïve ✓.md`;

async function makeBundle(
  dir: string,
  signed = false,
): Promise<{ path: string; manifest: Manifest }> {
  const path = join(dir, "snap.memsnap");
  const big = new Uint8Array(400_000).map((_, i) => (i * 2654435761) >>> 24);
  const manifest = await writeBundle(path, testHeader(), [
    source("memdir/notes/a.md", "alpha\n"),
    source(LONG, "long unicode name\n"),
    source("memdir/run.sh", "#!/bin/sh\necho hi\n", { mode: 0o755 }),
    source("memdir/empty.txt", ""),
    source("sqlite/long_term.sqlite", big, { kind: "sqlite" }),
  ], signed ? { signer: testSigner() } : {});
  return { path, manifest };
}

async function ok(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, cwd ? { cwd } : {});
  assert.equal(r.code, 0, `${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  assert.equal(r.stderr.trim(), "", `${cmd} warned: ${r.stderr}`);
  return r.text;
}

interopTest("GNU tar and bsdtar list the bundle", ["tar", "bsdtar"], async () => {
  await using dir = await tempDir();
  const { path } = await makeBundle(dir.path, true);
  const expected = "manifest.json\npayload.tar.zst\nmanifest.json.minisig\n";
  assert.equal(await ok("tar", ["-tf", path]), expected);
  assert.equal(await ok("bsdtar", ["-tf", path]), expected);
  const verbose = await ok("tar", ["--numeric-owner", "-tvf", path]);
  for (const line of verbose.trim().split("\n")) {
    assert.match(line, /^-rw-r--r-- 0\/0 /, line);
    assert.match(line, / 2026-11-25 19:52 /, line);
  }
});

interopTest(
  "tar, zstd -d and sha256sum open every layer and agree with the manifest",
  ["tar", "bsdtar", "zstd", "sha256sum"],
  async () => {
    await using dir = await tempDir();
    const { path, manifest } = await makeBundle(dir.path);
    const outer = join(dir.path, "outer");
    await Deno.mkdir(outer);
    await ok("tar", ["-xf", path, "-C", outer]);
    const m = JSON.parse(await Deno.readTextFile(join(outer, "manifest.json")));
    assert.deepEqual(m, JSON.parse(JSON.stringify(manifest)));
    const sum = (await ok("sha256sum", [join(outer, "payload.tar.zst")])).split(" ")[0];
    assert.equal(sum, manifest.payload.sha256);
    await ok("zstd", ["-q", "-t", join(outer, "payload.tar.zst")]);
    await ok("zstd", [
      "-q",
      "-d",
      join(outer, "payload.tar.zst"),
      "-o",
      join(outer, "payload.tar"),
    ]);
    for (const [tool, sub] of [["tar", "gnu"], ["bsdtar", "bsd"]] as const) {
      const inner = join(dir.path, sub);
      await Deno.mkdir(inner);
      await ok(tool, ["-xf", join(outer, "payload.tar"), "-C", inner]);
      const lines = await ok("sha256sum", manifest.artifacts.map((a) => a.path), inner);
      const sums = new Map(
        lines.trim().split("\n").map((l) => [l.slice(66).replace(/^\*/, ""), l.slice(0, 64)]),
      );
      for (const a of manifest.artifacts) {
        assert.equal(sums.get(a.path), a.sha256, `${tool}: ${a.path}`);
      }
      assert.equal((await Deno.stat(join(inner, "memdir/run.sh"))).mode! & 0o777, 0o755);
    }
  },
);

interopTest(
  "verifyBundle() and extractBundle() read a payload made by GNU tar (pax) and zstd",
  ["tar", "zstd"],
  async () => {
    await using dir = await tempDir();
    const src = join(dir.path, "src");
    const files: Record<string, Uint8Array | string> = {
      "a.txt": "alpha\n",
      "empty": "",
      [LONG]: "long unicode name\n",
      "deep/er/bin.dat": new Uint8Array(5000).map((_, i) => i & 0xff),
    };
    for (const [p, d] of Object.entries(files)) {
      await Deno.mkdir(join(src, p, ".."), { recursive: true });
      await Deno.writeFile(join(src, p), typeof d === "string" ? new TextEncoder().encode(d) : d);
    }
    const innerTar = join(dir.path, "inner.tar");
    await ok("tar", ["--format=pax", "-cf", innerTar, "-C", src, ...Object.keys(files)]);
    await ok("zstd", ["-q", "-3", innerTar, "-o", `${innerTar}.zst`]);
    const bundle = craftBundle(await Deno.readFile(`${innerTar}.zst`), files);
    const report = await verifyBundle(streamOf(bundle));
    assert.deepEqual(report.failures, []);
    const out = join(dir.path, "out");
    await extractBundle(streamOf(bundle), out);
    assert.equal(await Deno.readTextFile(join(out, LONG)), "long unicode name\n");
  },
);

interopTest("a bundle re-packed by GNU tar still verifies", ["tar"], async () => {
  await using dir = await tempDir();
  const { path } = await makeBundle(dir.path, true);
  const outer = join(dir.path, "outer");
  await Deno.mkdir(outer);
  await ok("tar", ["-xf", path, "-C", outer]);
  const repacked = join(dir.path, "repacked.tar");
  await ok("tar", [
    "--format=pax",
    "-cf",
    repacked,
    "-C",
    outer,
    "manifest.json",
    "payload.tar.zst",
    "manifest.json.minisig",
  ]);
  const r = await verifyBundle(await openBundleFile(repacked));
  assert.deepEqual(r.failures, []);
  assert.equal(r.signature, "not_checked");
});

interopTest(
  "age and minisign open an encrypted, signed bundle written through the crypto hooks",
  ["tar", "age", "minisign", "zstd", "sha256sum"],
  async () => {
    await using dir = await tempDir();
    const age = generateAgeIdentity();
    const signing = await generateSigningKeyPair();
    const path = join(dir.path, "snap.memsnap");
    const manifest = await writeBundle(path, testHeader(), [
      source("memdir/a.md", "alpha\n"),
      source(LONG, "long unicode name\n"),
    ], { cipher: ageCipher([age.recipient]), signer: minisignSigner(signing.secretKey) });
    assert.equal(manifest.payload.path, "payload.tar.zst.age");

    const report = await verifyBundle(await openBundleFile(path), {
      decipher: ageDecipher([age.identity]),
      verifier: minisignVerifier(signing.publicKey),
      requireSignature: true,
    });
    assert.deepEqual(report.failures, []);
    assert.equal(report.signature, "valid");
    assert.equal(report.artifacts_checked, true);

    const outer = join(dir.path, "outer");
    await Deno.mkdir(outer);
    await ok("tar", ["-xf", path, "-C", outer]);
    await Deno.writeTextFile(join(dir.path, "minisign.pub"), signing.publicKey);
    await Deno.writeTextFile(join(dir.path, "age.key"), age.identity + "\n");
    const v = await run("minisign", [
      "-V",
      "-m",
      join(outer, "manifest.json"),
      "-p",
      join(dir.path, "minisign.pub"),
    ]);
    assert.equal(v.code, 0, v.stderr + v.text);
    await ok("age", [
      "-d",
      "-i",
      join(dir.path, "age.key"),
      "-o",
      join(outer, "payload.tar.zst"),
      join(outer, "payload.tar.zst.age"),
    ]);
    await ok("zstd", [
      "-q",
      "-d",
      join(outer, "payload.tar.zst"),
      "-o",
      join(outer, "payload.tar"),
    ]);
    const inner = join(dir.path, "inner");
    await Deno.mkdir(inner);
    await ok("tar", ["-xf", join(outer, "payload.tar"), "-C", inner]);
    const line = await ok("sha256sum", ["memdir/a.md"], inner);
    assert.equal(
      line.slice(0, 64),
      manifest.artifacts.find((a) => a.path === "memdir/a.md")!.sha256,
    );
  },
);
