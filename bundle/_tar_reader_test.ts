import assert from "node:assert/strict";
import fc from "fast-check";
import { CorruptBundleError, UnsafeBundleError } from "../errors.ts";
import { ByteSource } from "./_byte_source.ts";
import { readTar } from "./_tar_reader.ts";
import { encodeHeader, END_OF_ARCHIVE, padding } from "./_tar_header.ts";
import { type BundleLimits, bundleLimits } from "./bundle_limits.ts";
import { concat, EOA, paxRecord, rawEntry, rawHeader, streamOf } from "../tests/bundle_helpers.ts";

async function readAll(
  bytes: Uint8Array,
  limits: Partial<BundleLimits> = {},
  chunk = 700,
): Promise<{ path: string; data: Uint8Array; mode: number }[]> {
  const src = new ByteSource(streamOf(bytes, chunk));
  const out = [];
  for await (const e of readTar(src, { ...bundleLimits, ...limits })) {
    const parts: Uint8Array[] = [];
    for await (const c of e.body()) parts.push(c.slice());
    out.push({ path: e.path, data: concat(parts), mode: e.mode });
  }
  return out;
}

function refused(
  klass: typeof CorruptBundleError | typeof UnsafeBundleError,
  rule: string,
  entry?: string,
): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof klass, `expected ${klass.name}, got ${e}`);
    assert.equal((e as CorruptBundleError).rule, rule);
    if (entry !== undefined) assert.equal((e as CorruptBundleError).entry, entry);
    assert.match((e as Error).message, /^Cannot read the bundle: .*\(rule [a-z_]+\)$/);
    return true;
  };
}

const ok = (name: string, data = "x") => rawEntry({ name }, data);

Deno.test("readTar() reads regular files with ustar prefix and GNU magic", async () => {
  const bytes = concat([
    rawEntry({ name: "b.txt", prefix: "dir/sub" }, "hello"),
    rawEntry({ name: "gnu.txt", magic: "ustar  \0" }, "g"),
    rawEntry({ name: "nul-type", type: "\0", mode: 0o755 }, ""),
    EOA,
  ]);
  const got = await readAll(bytes);
  assert.deepEqual(got.map((e) => e.path), ["dir/sub/b.txt", "gnu.txt", "nul-type"]);
  assert.equal(new TextDecoder().decode(got[0]!.data), "hello");
  assert.equal(got[2]!.mode, 0o755);
});

Deno.test("readTar() skips what a body leaves, and a second body() goes on where the first stopped", async () => {
  const a = new Uint8Array(5000).map((_, i) => i % 251);
  const b = new Uint8Array(3000).map((_, i) => (i * 7) % 253);
  const bytes = concat([
    rawEntry({ name: "a" }, a),
    rawEntry({ name: "b" }, b),
    rawEntry({ name: "c" }, "cc"),
    EOA,
  ]);
  const src = new ByteSource(streamOf(bytes, 700));
  const seen: [string, Uint8Array][] = [];
  for await (const e of readTar(src, bundleLimits)) {
    if (e.path === "a") {
      // One chunk, then the rest from a second body().
      const first = (await e.body().next()).value as Uint8Array;
      const rest: Uint8Array[] = [];
      for await (const c of e.body()) rest.push(c.slice());
      seen.push([e.path, concat([first.slice(), ...rest])]);
    } else if (e.path === "b") {
      const first = (await e.body().next()).value as Uint8Array;
      seen.push([e.path, first.slice()]); // the rest is skipped
    } else {
      const parts: Uint8Array[] = [];
      for await (const c of e.body()) parts.push(c.slice());
      seen.push([e.path, concat(parts)]);
    }
  }
  assert.deepEqual(seen[0], ["a", a]);
  assert.equal(seen[1]![0], "b");
  assert.deepEqual(seen[1]![1], b.subarray(0, seen[1]![1].length));
  assert.ok(seen[1]![1].length < b.length);
  assert.deepEqual(seen[2], ["c", new TextEncoder().encode("cc")]);
});

Deno.test("readTar() hands a body the chunk holds whole as data, and streams one it does not", async () => {
  const big = new Uint8Array(3000).map((_, i) => (i * 7) % 253);
  const bytes = concat([
    rawEntry({ name: "small" }, "hello"),
    rawEntry({ name: "big" }, big),
    rawEntry({ name: "empty" }, ""),
    EOA,
  ]);
  const src = new ByteSource(streamOf(bytes, 2048));
  const got: [string, string | undefined, Uint8Array][] = [];
  for await (const e of readTar(src, bundleLimits)) {
    const kind = e.data === undefined ? undefined : new TextDecoder().decode(e.data);
    const parts: Uint8Array[] = [];
    for await (const c of e.body()) parts.push(c.slice());
    got.push([e.path, kind, concat(parts)]);
  }
  assert.deepEqual(got, [
    ["small", "hello", new TextEncoder().encode("hello")],
    ["big", undefined, big],
    ["empty", "", new Uint8Array(0)],
  ]);
  assert.equal(src.consumed, bytes.length, "padding and end-of-archive consumed");
});

Deno.test("readTar() refuses a bad header checksum", async () => {
  const bytes = concat([rawEntry({ name: "a", checksum: "0000001\0" }), EOA]);
  await assert.rejects(readAll(bytes), refused(CorruptBundleError, "header_checksum"));
});

for (
  const [type, what] of [
    ["1", "hard link"],
    ["2", "symbolic link"],
    ["3", "character device"],
    ["4", "block device"],
    ["5", "directory"],
    ["6", "FIFO"],
  ] as const
) {
  Deno.test(`readTar() refuses a ${what} entry`, async () => {
    const bytes = concat([rawEntry({ name: "evil", type }), EOA]);
    await assert.rejects(readAll(bytes), (e) => {
      refused(UnsafeBundleError, "entry_type", "evil")(e);
      assert.match((e as Error).message, new RegExp(what));
      return true;
    });
  });
}

Deno.test("readTar() refuses an absolute path", async () => {
  await assert.rejects(
    readAll(concat([ok("/etc/passwd"), EOA])),
    refused(UnsafeBundleError, "path_absolute", "/etc/passwd"),
  );
});

Deno.test("readTar() refuses a path with ..", async () => {
  await assert.rejects(readAll(concat([ok("a/../../x"), EOA])), (e) => {
    refused(UnsafeBundleError, "path_escape", "a/../../x")(e);
    assert.equal(
      (e as Error).message,
      'Cannot read the bundle: entry "a/../../x" escapes the destination (rule path_escape)',
    );
    return true;
  });
});

Deno.test("readTar() refuses unnormalized paths, backslashes and control characters", async () => {
  for (const name of ["a//b", "./a", "a/", "a/./b"]) {
    await assert.rejects(
      readAll(concat([ok(name), EOA])),
      refused(UnsafeBundleError, "path_not_normalized", name),
    );
  }
  for (const name of ["a\\b", "a\x01b"]) {
    await assert.rejects(
      readAll(concat([ok(name), EOA])),
      refused(UnsafeBundleError, "path_invalid"),
    );
  }
});

Deno.test("readTar() refuses a duplicate entry", async () => {
  await assert.rejects(
    readAll(concat([ok("a"), ok("a"), EOA])),
    refused(UnsafeBundleError, "duplicate", "a"),
  );
});

Deno.test("readTar() refuses a file that is also a directory", async () => {
  await assert.rejects(
    readAll(concat([ok("a"), ok("a/b"), EOA])),
    refused(UnsafeBundleError, "path_conflict", "a/b"),
  );
});

Deno.test("readTar() refuses an entry over maxEntrySize", async () => {
  await assert.rejects(
    readAll(concat([rawEntry({ name: "big" }, "x".repeat(11)), EOA]), { maxEntrySize: 10 }),
    refused(UnsafeBundleError, "max_entry_size", "big"),
  );
});

Deno.test("readTar() refuses more than maxEntries entries", async () => {
  await assert.rejects(
    readAll(concat([ok("a"), ok("b"), ok("c"), EOA]), { maxEntries: 2 }),
    refused(UnsafeBundleError, "max_entries", "c"),
  );
});

Deno.test("readTar() refuses paths over maxPathLength or maxPathDepth", async () => {
  await assert.rejects(
    readAll(concat([ok("a".repeat(20)), EOA]), { maxPathLength: 10 }),
    refused(UnsafeBundleError, "max_path_length"),
  );
  await assert.rejects(
    readAll(concat([ok("a/b/c/d"), EOA]), { maxPathDepth: 3 }),
    refused(UnsafeBundleError, "max_path_depth"),
  );
});

Deno.test("readTar() refuses a pax header over maxPaxSize (pax bomb)", async () => {
  // Declares a 1 GiB pax header; refused before anything is buffered.
  const bytes = concat([rawHeader({ name: "PaxHeader", type: "x", size: 2 ** 30 }), EOA]);
  await assert.rejects(readAll(bytes), refused(UnsafeBundleError, "max_pax_size"));
});

Deno.test("readTar() refuses a pax global header", async () => {
  const bytes = concat([rawEntry({ name: "g", type: "g" }, paxRecord("comment", "x")), EOA]);
  await assert.rejects(readAll(bytes), refused(UnsafeBundleError, "pax_global"));
});

Deno.test("readTar() refuses a GNU sparse file announced by pax", async () => {
  const bytes = concat([
    rawEntry({ name: "P", type: "x" }, paxRecord("GNU.sparse.major", "1")),
    ok("s"),
    EOA,
  ]);
  await assert.rejects(readAll(bytes), refused(UnsafeBundleError, "entry_type"));
});

Deno.test("readTar() takes path and size from pax and refuses a pax path escaping", async () => {
  const long = "d/" + "é".repeat(120);
  const good = concat([
    rawEntry({ name: "P", type: "x" }, paxRecord("path", long) + paxRecord("mtime", "1.5")),
    rawEntry({ name: "fallback" }, "data"),
    EOA,
  ]);
  assert.deepEqual((await readAll(good)).map((e) => e.path), [long]);
  const bad = concat([
    rawEntry({ name: "P", type: "x" }, paxRecord("path", "../../etc/x")),
    ok("harmless"),
    EOA,
  ]);
  await assert.rejects(readAll(bad), refused(UnsafeBundleError, "path_escape", "../../etc/x"));
});

Deno.test("readTar() reads a pax size beyond the ustar field (over 8 GiB)", async () => {
  const h = encodeHeader({ path: "huge.bin", size: 2 ** 34, mode: 0o644, mtime: 1 });
  assert.equal(h.length, 1536, "pax header, its data block, ustar header");
  assert.match(new TextDecoder().decode(h.subarray(512, 1024)), /^\d+ size=17179869184\n/);
  const src = new ByteSource(streamOf(h));
  const it = readTar(src, bundleLimits);
  const first = await it.next();
  assert.equal(first.done, false);
  assert.equal(first.value!.path, "huge.bin");
  assert.equal(first.value!.size, 2 ** 34);
  await src.cancel();
});

Deno.test("readTar() refuses a malformed pax record", async () => {
  const bytes = concat([rawEntry({ name: "P", type: "x" }, "99 path=x\n"), ok("a"), EOA]);
  await assert.rejects(readAll(bytes), refused(CorruptBundleError, "pax_header"));
});

Deno.test("readTar() detects a truncated archive", async () => {
  const full = concat([rawEntry({ name: "a" }, "x".repeat(2000)), EOA]);
  await assert.rejects(
    readAll(full.subarray(0, 1000)),
    refused(CorruptBundleError, "truncated", "a"),
  );
  await assert.rejects(
    readAll(full.subarray(0, 512 * 5)),
    refused(CorruptBundleError, "truncated"),
  );
});

Deno.test("readTar() tolerates trailing zeros but not trailing garbage", async () => {
  const base = concat([ok("a"), EOA]);
  assert.equal((await readAll(concat([base, new Uint8Array(10240)]))).length, 1);
  await assert.rejects(
    readAll(concat([base, new Uint8Array([0, 0, 7])])),
    refused(CorruptBundleError, "trailing_data"),
  );
});

Deno.test("readTar() refuses a non-ustar header", async () => {
  await assert.rejects(
    readAll(concat([rawEntry({ name: "a", magic: "\0\0\0\0\0\0\0\0" }), EOA])),
    refused(CorruptBundleError, "header_format"),
  );
});

// Path segments: ASCII, unicode (incl. astral), long.
const segment = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 8 }),
  fc.string({ unit: "grapheme", minLength: 30, maxLength: 60 }),
  fc.stringMatching(/^[a-z]{90,140}$/),
)
  // deno-lint-ignore no-control-regex
  .filter((s) => !/[\x00-\x1f\x7f\\/]/.test(s) && s !== "." && s !== "..");

Deno.test("readTar() round-trips what the writer encodes (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(
        fc.record({
          path: fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join("/"))
            .filter((p) => !/^[A-Za-z]:/.test(p)), // a drive letter reads as absolute
          data: fc.uint8Array({ maxLength: 3000 }),
          mode: fc.constantFrom(0o644, 0o755, 0o600),
        }),
        { selector: (e) => e.path, maxLength: 6 },
      ).map((es) =>
        // No file may also be a directory of another.
        es.filter((e) => !es.some((o) => o.path.startsWith(e.path + "/")))
      ),
      // Chunks from one byte (every entry streamed) to the whole archive (every entry whole).
      fc.integer({ min: 1, max: 40_000 }),
      async (entries, chunk) => {
        const parts: Uint8Array[] = [];
        for (const e of entries) {
          parts.push(encodeHeader({ path: e.path, size: e.data.length, mode: e.mode, mtime: 1 }));
          parts.push(e.data, new Uint8Array(padding(e.data.length)));
        }
        parts.push(END_OF_ARCHIVE);
        const got = await readAll(concat(parts), {}, chunk);
        assert.deepEqual(got, entries.map((e) => ({ path: e.path, data: e.data, mode: e.mode })));
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("readTar() reads numeric header fields and the magic as the string-based parser did (property)", async () => {
  // The reference: each field decoded as latin1, cut at its first NUL, trimmed, then checked
  // with a regex and parseInt (the reader before it parsed the bytes directly).
  const latin = new TextDecoder("latin1");
  const text = (b: Uint8Array, off: number, len: number): string => {
    const f = b.subarray(off, off + len);
    const nul = f.indexOf(0);
    return latin.decode(nul === -1 ? f : f.subarray(0, nul)).trim();
  };
  const number = (b: Uint8Array, off: number, len: number): number | "invalid" => {
    if (b[off]! & 0x80) { // GNU base-256, unchanged
      if (b[off] !== 0x80) return "invalid";
      let v = 0;
      for (let i = 1; i < len; i++) v = v * 256 + b[off + i]!;
      return Number.isSafeInteger(v) ? v : "invalid";
    }
    const s = text(b, off, len);
    if (s === "") return 0;
    return /^[0-7]+$/.test(s) ? parseInt(s, 8) : "invalid";
  };
  const WS = [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0xa0];
  const bytesOf = (max: number) =>
    fc.array(
      fc.constantFrom(
        ...[0x30, 0x31, 0x34, 0x37, 0x38, 0x39, 0x00, 0x61, 0x2b, 0x85, 0x80, 0xff, ...WS],
      ),
      { maxLength: max },
    );
  const digitsIn = (max: number) =>
    fc.tuple(
      fc.array(fc.constantFrom(...WS, 0x30), { maxLength: 2 }),
      fc.array(fc.constantFrom(0x30, 0x32, 0x35, 0x37), { minLength: 0, maxLength: max }),
      fc.array(fc.constantFrom(...WS, 0x00, 0x39), { maxLength: 2 }),
    ).map(([a, d, z]) => [...a, ...d, ...z]);
  const field = (max: number, len: number) =>
    fc.oneof(digitsIn(max), bytesOf(len)).map((b) => b.slice(0, len));
  const checksumStyle = fc.constantFrom(
    "plain",
    "spaces",
    "nbsp",
    "tab",
    "8digits",
    "junk",
    "empty",
  );
  const magics = ["ustar\x0000", "ustar  \x00", "ustar\x0001", "ustar \x00\x00", "USTAR\x0000"];
  await fc.assert(
    fc.asyncProperty(
      field(3, 12),
      field(4, 8),
      checksumStyle,
      fc.constantFrom(...magics),
      async (size, mode, style, magic) => {
        const h = rawHeader({ name: "a", magic });
        h.fill(0, 124, 136);
        h.set(size, 124);
        h.fill(0, 100, 108);
        h.set(mode, 100);
        h.fill(0x20, 148, 156);
        let sum = 0;
        for (const x of h) sum += x;
        const o = sum.toString(8);
        const stored = {
          plain: o.padStart(6, "0") + "\0 ",
          spaces: "  " + o + " \0",
          nbsp: "\xa0" + o + "\t",
          tab: "\t" + o.padStart(7, "0"),
          "8digits": o.padStart(8, "0"),
          junk: o + "8",
          empty: "\0",
        }[style];
        h.fill(0, 148, 156);
        for (let i = 0; i < stored.length; i++) h[148 + i] = stored.charCodeAt(i);
        // What the string-based reader decided.
        let sum2 = 0;
        for (let i = 0; i < 512; i++) sum2 += i >= 148 && i < 156 ? 0x20 : h[i]!;
        const st = text(h, 148, 8);
        const mg = latin.decode(h.subarray(257, 265));
        const sz = number(h, 124, 12);
        const md = number(h, 100, 8);
        const want = !/^[0-7]{1,7}$/.test(st) || parseInt(st, 8) !== sum2
          ? "header_checksum"
          : mg !== "ustar\x0000" && mg !== "ustar  \x00"
          ? "header_format"
          : sz === "invalid" || md === "invalid"
          ? "header_field"
          : { size: sz, mode: md & 0o7777 };
        const data = typeof want === "string" ? new Uint8Array(0) : new Uint8Array(want.size);
        const pad = new Uint8Array((512 - (data.length % 512)) % 512);
        let got: unknown;
        try {
          const [e] = await readAll(concat([h, data, pad, EOA]));
          got = { size: e!.data.length, mode: e!.mode };
        } catch (e) {
          assert.ok(e instanceof CorruptBundleError, String(e));
          got = e.rule;
        }
        assert.deepEqual(got, want);
      },
    ),
    { numRuns: 2000 },
  );
});
