import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { zstdDecompressSync } from "node:zlib";
import {
  CONTENTSIZE_ERROR,
  CONTENTSIZE_UNKNOWN,
  libzstd,
  LibZstdError,
  openLibZstd,
  ZSTD_c,
  ZSTD_d,
} from "./_libzstd.ts";

const lib = libzstd();
// Without a system libzstd these tests are skipped, except where interop tools are required
// (.ci/run installs zstd, and with it libzstd): there a missing library fails them.
const skipLib = lib === undefined && Deno.env.get("MEMSNAP_REQUIRE_INTEROP") !== "1";

function sample(size: number): Uint8Array<ArrayBuffer> {
  const text = new TextEncoder().encode("the agent remembered the meeting notes; ");
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += text.length) out.set(text.subarray(0, size - i), i);
  crypto.getRandomValues(out.subarray(size >> 2, (size >> 2) + 4096));
  return out;
}

Deno.test("openLibZstd() returns undefined when no library opens", () => {
  assertEquals(openLibZstd({ paths: ["/nonexistent/libzstd.so.1"] }), undefined);
});

Deno.test({
  name: "libzstd() compresses frames node:zlib decodes, with the pinned parameters",
  ignore: skipLib,
  fn: async () => {
    const z = lib!;
    assert(/^\d+\.\d+\.\d+$/.test(z.version), z.version);
    const src = sample(1 << 20);
    const dst = new Uint8Array(z.compressBound(src.length));
    // One-shot ZSTD_compress: content size recorded.
    const n1 = await z.compress(src, dst, 3);
    assertEquals(z.getFrameContentSize(dst.subarray(0, n1)), BigInt(src.length));
    assertEquals(new Uint8Array(zstdDecompressSync(dst.subarray(0, n1))), src);
    // Context with the payload's pinned parameters: no content size, a checksum.
    using cctx = z.createCCtx({
      [ZSTD_c.compressionLevel]: 3,
      [ZSTD_c.checksumFlag]: 1,
      [ZSTD_c.contentSizeFlag]: 0,
      [ZSTD_c.windowLog]: 0,
    });
    const n2 = await cctx.compress(src, dst);
    const frame = dst.slice(0, n2);
    assertEquals(z.getFrameContentSize(frame), CONTENTSIZE_UNKNOWN);
    assertEquals(z.findFrameCompressedSize(frame), n2);
    assertEquals(frame[4]! & 0x04, 0x04); // Content_Checksum_flag in the frame header descriptor
    assertEquals(new Uint8Array(zstdDecompressSync(frame)), src);
    // Same input, same context: same bytes; two calls in flight on two contexts.
    using other = z.createCCtx({ [ZSTD_c.compressionLevel]: 3, [ZSTD_c.checksumFlag]: 1 });
    const d2 = new Uint8Array(dst.length);
    const d3 = new Uint8Array(dst.length);
    const [a, b] = await Promise.all([cctx.compress(src, d2), other.compress(src, d3)]);
    assertEquals(d2.subarray(0, a), frame);
    assert(b > 0);
  },
});

Deno.test({
  name: "libzstd() decompresses frames and reports corrupt input as LibZstdError",
  ignore: skipLib,
  fn: async () => {
    const z = lib!;
    const src = sample(300_000);
    using cctx = z.createCCtx({ [ZSTD_c.compressionLevel]: 3, [ZSTD_c.checksumFlag]: 1 });
    const buf = new Uint8Array(z.compressBound(src.length));
    const n = await cctx.compress(src, buf);
    // Two concatenated frames.
    const two = new Uint8Array(2 * n);
    two.set(buf.subarray(0, n), 0);
    two.set(buf.subarray(0, n), n);
    assertEquals(z.findFrameCompressedSize(two), n);
    const out = new Uint8Array(2 * src.length);
    assertEquals(await z.decompress(two, out), 2 * src.length);
    assertEquals(out.subarray(src.length), src);
    using dctx = z.createDCtx({ [ZSTD_d.windowLogMax]: 23 });
    assertEquals(await dctx.decompress(two.subarray(0, n), out), src.length);
    assertEquals(out.subarray(0, src.length), src);
    // Too small a destination, a flipped byte (checksum or block error), garbage.
    await rejects(dctx.decompress(two.subarray(0, n), new Uint8Array(10)), LibZstdError);
    const bad = two.slice(0, n);
    bad[n >> 1]! ^= 0xff;
    await rejects(z.decompress(bad, out), LibZstdError);
    const garbage = new Uint8Array(64).fill(7);
    assertEquals(z.getFrameContentSize(garbage), CONTENTSIZE_ERROR);
    assert(z.isError(0xffffffffffffffffn));
    assert(!z.isError(0));
    assert(z.getErrorName(0xffffffffffffffffn).length > 0);
    try {
      z.findFrameCompressedSize(garbage);
      assert(false, "no error");
    } catch (e) {
      assert(e instanceof LibZstdError, String(e));
      assert(/ZSTD_findFrameCompressedSize: /.test(e.message), e.message);
    }
    // An invalid parameter is refused when the context is created.
    assert(z.isError(0xfffffffffffffffen));
    try {
      z.createCCtx({ [ZSTD_c.compressionLevel]: 3, 99999: 1 });
      assert(false, "no error");
    } catch (e) {
      assert(e instanceof LibZstdError, String(e));
    }
  },
});

Deno.test("libzstd() honours MEMSNAP_ZSTD=builtin and needs the FFI permission", async () => {
  const code = `import { libzstd } from ${
    JSON.stringify(new URL("./_libzstd.ts", import.meta.url).href)
  };
console.log(libzstd() === undefined ? "none" : "lib");`;
  const run = async (args: string[], env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", ...args, "-"],
      env,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = out.stdin.getWriter();
    await w.write(new TextEncoder().encode(code));
    await w.close();
    const r = await out.output();
    return new TextDecoder().decode(r.stdout).trim();
  };
  assertEquals(await run(["-A"], { MEMSNAP_ZSTD: "builtin" }), "none");
  assertEquals(await run(["--allow-env", "--allow-read"], {}), "none");
  assertEquals(await run(["-A"], { MEMSNAP_LIBZSTD: "/nonexistent/libzstd.so" }), "none");
  if (lib !== undefined) assertEquals(await run(["-A"], {}), "lib");
});
