/**
 * writeBundle() against native `tar | zstd -3` on the same generated input, in the same run.
 *
 * Input: ~32 MiB in 202 files: 200 text-like files (words from a small vocabulary, about 4:1
 * under zstd -3) and two 4 MiB random files (incompressible, like encrypted or packed data).
 *
 *     deno bench -A bench/bundle_bench.ts
 *
 * @module
 */
import { join } from "node:path";
import { writeBundle } from "../bundle/write_bundle.ts";
import { verifyBundle } from "../bundle/verify_bundle.ts";
import { openBundleFile } from "../bundle/open_bundle_file.ts";
import type { ArtifactSource } from "../capture/types.ts";

const dir = await Deno.makeTempDir({ prefix: "memsnap-bench-" });
const src = join(dir, "src");
await Deno.mkdir(join(src, "memdir"), { recursive: true });
await Deno.mkdir(join(src, "sqlite"), { recursive: true });

let seed = 42;
function rand(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed;
}
const words = Array.from(
  { length: 2000 },
  () =>
    Array.from({ length: 3 + (rand() % 8) }, () => String.fromCharCode(97 + (rand() % 26))).join(
      "",
    ),
);
const files: { path: string; size: number }[] = [];
for (let i = 0; i < 200; i++) {
  const parts: string[] = [];
  let n = 0;
  while (n < 140_000) {
    const w = words[rand() % words.length]!;
    parts.push(w);
    n += w.length + 1;
  }
  const text = new TextEncoder().encode(parts.join(" "));
  const path = `memdir/note-${String(i).padStart(3, "0")}.md`;
  await Deno.writeFile(join(src, path), text);
  files.push({ path, size: text.length });
}
for (let i = 0; i < 2; i++) {
  const data = crypto.getRandomValues(new Uint8Array(65536));
  const path = `sqlite/db${i}.sqlite`;
  using f = await Deno.open(join(src, path), { create: true, write: true });
  for (let k = 0; k < 64; k++) {
    await f.write(crypto.getRandomValues(data));
  }
  files.push({ path, size: 64 * 65536 });
}
const totalBytes = files.reduce((n, f) => n + f.size, 0);

function sources(): ArtifactSource[] {
  return files.map((f) => ({
    path: f.path,
    kind: "file",
    size: f.size,
    open: async () => (await Deno.open(join(src, f.path))).readable,
  }));
}

const header = {
  snapshot_id: "20261125T195222123Z-1a2b3c4d",
  agent_id: "bench",
  tenant: "default",
  label: null,
  created_at: "2026-11-25T19:52:22.123Z",
  created_by: "bench",
  parent: null,
  captures: {},
  redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
  tools: {},
};

const out = join(dir, "out.memsnap");
await writeBundle(out, header, sources());

Deno.bench({
  name: `native tar | zstd -3 (${(totalBytes / 2 ** 20).toFixed(0)} MiB)`,
  group: "write",
  baseline: true,
  async fn() {
    const r = await new Deno.Command("sh", {
      args: [
        "-c",
        `tar -cf - -C "${src}" memdir sqlite | zstd -3 -q -f -o "${dir}/native.tar.zst"`,
      ],
    }).output();
    if (!r.success) throw new Error("native pipeline failed");
  },
});

Deno.bench({
  name: `writeBundle() (${(totalBytes / 2 ** 20).toFixed(0)} MiB)`,
  group: "write",
  async fn() {
    await writeBundle(join(dir, "bench.memsnap"), header, sources());
  },
});

Deno.bench({
  name: "native zstd -d | tar -t",
  group: "read",
  baseline: true,
  async fn() {
    const r = await new Deno.Command("sh", {
      args: ["-c", `zstd -d -q -c "${dir}/native.tar.zst" | tar -tf - > /dev/null`],
    }).output();
    if (!r.success) throw new Error("native pipeline failed");
  },
});

Deno.bench({
  name: "verifyBundle() (every artifact hash)",
  group: "read",
  async fn() {
    const r = await verifyBundle(await openBundleFile(out));
    if (!r.ok) throw new Error("verify failed");
  },
});

globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
