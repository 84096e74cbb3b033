import assert from "node:assert/strict";
import { zstdDecompressSync } from "node:zlib";
import { writeBundle } from "./write_bundle.ts";
import { openBundleFile } from "./open_bundle_file.ts";
import { verifyBundle } from "./verify_bundle.ts";
import { encodeManifest } from "./_manifest.ts";
import { source, testHeader, testSigner } from "../tests/bundle_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

const big = new Uint8Array(300_000).map((_, i) => (i * 13) & 0xff);
const artifacts = () => [
  source("memdir/a.md", "hello\n"),
  source("sqlite/db.sqlite", big, { kind: "sqlite", chunk: 7_000 }),
];

Deno.test("writeBundle() writes a valid bundle whether the payload goes in place or through a temp file", async () => {
  await using dir = await tempDir();
  const probe = await writeBundle(`${dir.path}/probe`, testHeader({ label: "L" }), artifacts());
  // The manifest's length with a one-digit payload size: what the writer plans with.
  const len = encodeManifest(probe).length - (String(probe.payload.size).length - 1);
  // 1-16 digits straddle a 512-byte boundary when the length ends in 498-511: temp file path.
  const viaTemp = (505 - (len % 512) + 512) % 512;
  const inPlace = (100 - (len % 512) + 512) % 512;
  for (const [extra, name] of [[viaTemp, "temp"], [inPlace, "direct"]] as const) {
    for (const signer of [undefined, testSigner()]) {
      const path = `${dir.path}/${name}-${signer ? "signed" : "plain"}`;
      const label = "L" + "x".repeat(extra);
      const m = await writeBundle(path, testHeader({ label }), artifacts(), {
        ...(signer ? { signer } : {}),
      });
      const planned = encodeManifest(m).length - (String(m.payload.size).length - 1);
      assert.equal(planned % 512, name === "temp" ? 505 : 100);
      const report = await verifyBundle(await openBundleFile(path));
      assert.ok(report.ok, JSON.stringify(report.failures));
      assert.equal(report.manifest.payload.sha256, m.payload.sha256);
      assert.equal(report.signature, signer ? "not_checked" : "absent");
      // Same bytes as a fresh write of the same input.
      await writeBundle(`${path}.again`, testHeader({ label }), artifacts(), {
        ...(signer ? { signer } : {}),
      });
      assert.deepEqual(await Deno.readFile(`${path}.again`), await Deno.readFile(path));
    }
  }
  const names: string[] = [];
  for await (const e of Deno.readDir(dir.path)) names.push(e.name);
  assert.equal(names.filter((n) => n.endsWith(".tmp")).length, 0, "no temp file left");
});

Deno.test("writeBundle() with libzstd and with the built-in zstd (MEMSNAP_ZSTD=builtin): both verify and hold the same inner tar", async () => {
  await using dir = await tempDir();
  // Deterministic, partly compressible, three frames' worth.
  const script = `
import { writeBundle } from ${JSON.stringify(new URL("./write_bundle.ts", import.meta.url).href)};
import { source, testHeader } from ${
    JSON.stringify(new URL("../tests/bundle_helpers.ts", import.meta.url).href)
  };
const data = new Uint8Array(9_000_000);
let x = 1;
for (let i = 0; i < data.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  data[i] = i % 3 === 0 ? x >>> 24 : 97 + (i % 26);
}
await writeBundle(Deno.args[0], testHeader(), [
  source("memdir/a.md", "hello\\n"),
  source("sqlite/db.sqlite", data, { kind: "sqlite", chunk: 1_000_003 }),
]);
`;
  const write = async (path: string, env: Record<string, string>): Promise<void> => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../deno.json", import.meta.url).pathname,
        "-",
        path,
      ],
      env,
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(script));
    await w.close();
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  };
  const builtin = `${dir.path}/builtin.tar`;
  const auto = `${dir.path}/auto.tar`;
  await write(builtin, { MEMSNAP_ZSTD: "builtin" });
  await write(auto, {});
  const inner = async (path: string) => {
    const report = await verifyBundle(await openBundleFile(path));
    assert.ok(report.ok, JSON.stringify(report.failures));
    const bytes = await Deno.readFile(path);
    const m = report.manifest;
    const mlen = encodeManifest(m).length;
    const start = 512 + mlen + ((512 - (mlen % 512)) % 512) + 512;
    const payload = bytes.subarray(start, start + m.payload.size);
    return { artifacts: m.artifacts, tar: new Uint8Array(zstdDecompressSync(payload)) };
  };
  const a = await inner(builtin);
  const b = await inner(auto);
  assert.deepEqual(b.artifacts, a.artifacts);
  assert.deepEqual(b.tar, a.tar);
  assert.ok(a.tar.length > 9_000_000);
});
