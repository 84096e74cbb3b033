/**
 * Fuzzing the bundle reader through its public API (readManifest, verifyBundle, extractBundle)
 * with mutated bundles: bit flips, truncations, overwrites, reordered, inserted and duplicated
 * outer entries, mutated manifests, and inner payload tars rebuilt into consistent bundles
 * (an attacker who recomputes every hash) carrying tar-slip paths, links, devices, fifos,
 * directories, huge declared sizes, pax bombs, duplicates, deep and long paths. Plus fixed
 * cases: zstd window bombs, decompression bombs, entry-count and manifest-size bombs.
 *
 * Every case must end in a typed error (VerificationError and its CorruptBundleError,
 * RefusedError and its UnsafeBundleError) or a correct result, within a per-case timeout,
 * writing nothing outside the staging dir, in bounded memory (tight limits).
 *
 * `MEMSNAP_FUZZ_RUNS=N` sets the number of random cases (default 250); `MEMSNAP_SEED` replays.
 */
import { MANIFEST_SCHEMA } from "../bundle/_manifest_schema.ts";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { zstdDecompressSync } from "node:zlib";
import { assert, assertEquals } from "./_assert.ts";
import { envCount, listTree, runSeed } from "./_reliability.ts";
import {
  concat,
  EOA,
  paxRecord,
  source,
  streamOf,
  testHeader,
  testSigner,
  testVerifier,
  xorCipher,
  xorDecipher,
  zstd,
} from "./bundle_helpers.ts";
import { writeBundle } from "../bundle/write_bundle.ts";
import { readManifest } from "../bundle/read_manifest.ts";
import { verifyBundle } from "../bundle/verify_bundle.ts";
import { extractBundle } from "../bundle/extract_bundle.ts";
import type { BundleLimits } from "../bundle/bundle_limits.ts";
import type { Manifest } from "../bundle/types.ts";
import type { ManifestVerifier, PayloadDecipher } from "../bundle/crypto_types.ts";
import { canonicalJson } from "../bundle/canonical_json.ts";
import {
  CorruptBundleError,
  RefusedError,
  UnsafeBundleError,
  VerificationError,
} from "../errors.ts";

const RUNS = envCount("MEMSNAP_FUZZ_RUNS", 250);
const SEED = runSeed("fuzz_test");
const CASE_TIMEOUT_MS = 20_000;
/** Tight caps, so bombs hit them quickly and memory stays small. */
const LIMITS: Partial<BundleLimits> = {
  maxEntries: 64,
  maxEntrySize: 1 << 20,
  maxTotalSize: 4 << 20,
  maxPathLength: 256,
  maxPathDepth: 16,
  maxPaxSize: 4096,
  maxZstdWindowLog: 22,
  maxManifestSize: 64 << 10,
};
/**
 * Growth allowed to this isolate's heap + external buffers (the readers' own memory), at its
 * peak: garbage included, so loose without `gc`; with `gc` the heap is collected every 200 cases.
 */
const HEAP_BUDGET = (globalThis as { gc?: unknown }).gc ? 256 * 2 ** 20 : 512 * 2 ** 20;
/** Growth allowed to the live heap + external after a full GC (leak check, with `gc` only). */
const LIVE_BUDGET = 128 * 2 ** 20;
/**
 * Growth allowed to the process's rss: a loose backstop, since `deno test --parallel` runs
 * other test files in the same process.
 */
const RSS_BUDGET = 1024 * 2 ** 20;

const enc = new TextEncoder();
const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

// ---------------------------------------------------------------------------------------------
// Raw tar pieces (bytes names, any type, any size field).

interface Hdr {
  name: Uint8Array | string;
  size?: number;
  type?: string;
  /** A raw 12-byte size field (overrides size), e.g. base-256. */
  sizeField?: Uint8Array;
  prefix?: string;
  mode?: number;
  magic?: string;
  badChecksum?: boolean;
}

function header(h: Hdr): Uint8Array {
  const b = new Uint8Array(512);
  const name = typeof h.name === "string" ? enc.encode(h.name) : h.name;
  b.set(name.subarray(0, 100), 0);
  b.set(enc.encode((h.mode ?? 0o644).toString(8).padStart(7, "0") + "\0"), 100);
  b.set(enc.encode("0000000\0"), 108);
  b.set(enc.encode("0000000\0"), 116);
  if (h.sizeField) b.set(h.sizeField.subarray(0, 12), 124);
  else b.set(enc.encode((h.size ?? 0).toString(8).padStart(11, "0") + "\0"), 124);
  b.set(enc.encode("15000000000\0"), 136);
  b[156] = (h.type ?? "0").charCodeAt(0) & 0xff;
  b.set(enc.encode(h.magic ?? "ustar\x0000"), 257);
  if (h.prefix) b.set(enc.encode(h.prefix).subarray(0, 155), 345);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  if (h.badChecksum) sum += 1;
  b.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
  return b;
}

function entry(h: Hdr, data: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const d = typeof data === "string" ? enc.encode(data) : data;
  const pad = (512 - (d.length % 512)) % 512;
  return concat([header({ size: d.length, ...h }), d, new Uint8Array(pad)]);
}

function paxEntry(records: string, h: Partial<Hdr> = {}): Uint8Array {
  return entry({ name: "PaxHeader", type: "x", ...h }, records);
}

/** Byte ranges of the entries of a well-formed tar (ours): [start, end) and the EOA offset. */
function tarEntries(tar: Uint8Array): { ranges: [number, number][]; eoa: number } {
  const ranges: [number, number][] = [];
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const size = parseInt(new TextDecoder().decode(h.subarray(124, 135)), 8);
    const end = off + 512 + Math.ceil(size / 512) * 512;
    ranges.push([off, end]);
    off = end;
  }
  return { ranges, eoa: off };
}

// ---------------------------------------------------------------------------------------------
// Base bundles, written by the real writer.

interface Base {
  name: string;
  bytes: Uint8Array;
  manifest: Manifest;
  /** The raw outer entries: manifest, payload[, signature]. */
  outer: Uint8Array[];
  /** The inner tar (plaintext bases only). */
  inner: Uint8Array | undefined;
  decipher?: PayloadDecipher;
  verifier?: ManifestVerifier;
}

function randomText(n: number, seed: number): string {
  let s = seed;
  let out = "";
  while (out.length < n) {
    s = (s * 1103515245 + 12345) >>> 0;
    out += "abcdefghij klmnop\n"[s % 18];
  }
  return out;
}

async function makeBases(dir: string): Promise<Base[]> {
  const bin = new Uint8Array(2000).map((_, i) => (i * 131 + 7) & 0xff);
  const artifacts = () => [
    source("memdir/MEMORY.md", "# memory\n- note\n"),
    source("memdir/notes/long.md", randomText(3000, 1)),
    source(`memdir/${"deep/".repeat(6)}x.md`, "deep\n"),
    source(`memdir/${"n".repeat(120)}.md`, "a long name, written with a pax header\n"),
    source("sqlite/facts.sqlite", bin),
    source("state/cursor.json", '{"last":"msg_1"}'),
    source("memdir/empty.md", ""),
  ];
  const variants: [string, Parameters<typeof writeBundle>[3], Partial<Base>][] = [
    ["plain", {}, {}],
    ["signed", { signer: testSigner() }, { verifier: testVerifier() }],
    ["encrypted", { cipher: xorCipher() }, { decipher: xorDecipher() }],
  ];
  const out: Base[] = [];
  for (const [name, opts, extra] of variants) {
    const path = join(dir, `${name}.msnap`);
    const manifest = await writeBundle(path, testHeader(), artifacts(), opts);
    const bytes = await Deno.readFile(path);
    const { ranges } = tarEntries(bytes);
    const outer = ranges.map(([a, b]) => bytes.slice(a, b));
    let inner: Uint8Array | undefined;
    if (manifest.payload.encryption === null) {
      const [a] = ranges[1]!;
      const payload = bytes.subarray(a + 512, a + 512 + manifest.payload.size);
      inner = new Uint8Array(zstdDecompressSync(payload));
    }
    out.push({ name, bytes, manifest, outer, inner, ...extra });
  }
  return out;
}

/** A consistent plaintext bundle around an inner tar and a manifest (hashes recomputed). */
function rebuild(
  manifest: Manifest,
  inner: Uint8Array,
  listed?: Manifest["artifacts"],
): Uint8Array {
  const payload = zstd(inner);
  const m: Manifest = {
    ...manifest,
    artifacts: listed ?? manifest.artifacts,
    payload: { ...manifest.payload, size: payload.length, sha256: sha256(payload) },
  };
  return concat([
    entry({ name: "manifest.json" }, canonicalJson(m)),
    entry({ name: m.payload.path }, payload),
    EOA,
  ]);
}

/** The outer tar with a replaced manifest text. */
function withManifestText(base: Base, text: string | Uint8Array): Uint8Array {
  return concat([entry({ name: "manifest.json" }, text), ...base.outer.slice(1), EOA]);
}

// ---------------------------------------------------------------------------------------------
// The oracle.

type Outcome = { ok: true; manifest: Manifest } | { ok: false; error: Error };

function isTyped(e: unknown): e is Error {
  return e instanceof VerificationError || e instanceof RefusedError;
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not finish in ${CASE_TIMEOUT_MS} ms (hang)`)),
      CASE_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

async function outcome<T>(what: string, fn: () => Promise<T>): Promise<
  { ok: true; value: T } | { ok: false; error: Error }
> {
  try {
    return { ok: true, value: await withTimeout(fn(), what) };
  } catch (e) {
    if (!isTyped(e)) {
      throw new Error(`${what} threw an untyped ${(e as Error)?.name}: ${(e as Error)?.message}`, {
        cause: e,
      });
    }
    assert(e.message.startsWith("Cannot "), `${what}: message "${e.message}"`);
    return { ok: false, error: e };
  }
}

let scratch = "";
let caseNo = 0;
const stats = new Map<string, number>();
let maxRss = 0;
let maxHeap = 0;
/** `globalThis.gc` when run with `--v8-flags=--expose-gc` (as `deno task fuzz` does). */
const gc = (globalThis as { gc?: () => void }).gc;
/** The live heap+external after a full GC, every 200 cases (with `gc` only). */
const liveHeap: number[] = [];
const heapOf = (): number => {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
};

function tally(key: string): void {
  stats.set(key, (stats.get(key) ?? 0) + 1);
}

/** Reads, verifies and extracts `bytes`; checks the outcome is typed or correct. */
async function check(
  bytes: Uint8Array,
  base: Pick<Base, "decipher" | "verifier">,
  chunk = 4096,
): Promise<Outcome> {
  const keys = {
    ...(base.decipher ? { decipher: base.decipher } : {}),
    ...(base.verifier ? { verifier: base.verifier } : {}),
  };
  const rm = await outcome(
    "readManifest",
    () => readManifest(streamOf(bytes, chunk), { limits: LIMITS }),
  );
  const vr = await outcome(
    "verifyBundle",
    () => verifyBundle(streamOf(bytes, chunk), { limits: LIMITS, ...keys }),
  );
  const root = join(scratch, `case-${++caseNo}`);
  await Deno.mkdir(join(root, "stage"), { recursive: true });
  const dest = join(root, "stage", "out");
  const ex = await outcome(
    "extractBundle",
    () => extractBundle(streamOf(bytes, chunk), dest, { limits: LIMITS, ...keys }),
  );
  try {
    const tree = await listTree(root);
    if (!ex.ok) {
      assertEquals(tree, ["stage"], `a failed extraction left files: ${ex.error.message}`);
      tally(ruleOf(ex.error));
    } else {
      // A correct result: exactly the manifest's artifacts, with their bytes.
      const m = ex.value;
      assert(tree.every((p) => p === "stage" || p === "stage/out" || p.startsWith("stage/out/")));
      const files: string[] = [];
      for (const p of tree) {
        if (!p.startsWith("stage/out/")) continue;
        const st = await Deno.lstat(join(root, p));
        assert(!st.isSymlink, `symlink extracted: ${p}`);
        if (st.isFile) files.push(p.slice("stage/out/".length));
      }
      assertEquals(files.sort(), m.artifacts.map((a) => a.path).sort());
      for (const a of m.artifacts) {
        const data = await Deno.readFile(join(dest, a.path));
        assertEquals(sha256(data), a.sha256, `extracted ${a.path} differs from its manifest hash`);
      }
      tally("ok");
    }
    // The three readers agree with each other.
    if (ex.ok) {
      assert(rm.ok, "extract succeeded where readManifest failed");
      assert(vr.ok && vr.value.ok, "extract succeeded where verify failed");
    }
    if (vr.ok && vr.value.ok && vr.value.artifacts_checked) {
      assert(ex.ok, `verify passed where extract failed: ${!ex.ok && ex.error.message}`);
    }
    if (!rm.ok) assert(!vr.ok, "verify read a manifest that readManifest refused");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  const rss = Deno.memoryUsage().rss;
  if (rss > maxRss) maxRss = rss;
  maxHeap = Math.max(maxHeap, heapOf());
  if (gc && caseNo % 200 === 0) {
    gc();
    liveHeap.push(heapOf());
  }
  return ex.ok ? { ok: true, manifest: ex.value } : { ok: false, error: ex.error };
}

function ruleOf(e: Error): string {
  if (e instanceof CorruptBundleError || e instanceof UnsafeBundleError) {
    return `${e.constructor.name}:${e.rule}`;
  }
  if (e instanceof VerificationError) return `VerificationError:${e.failures[0]?.check ?? "?"}`;
  return e.constructor.name;
}

async function expectRefusal(
  bytes: Uint8Array,
  base: Pick<Base, "decipher" | "verifier">,
  cls: typeof VerificationError | typeof RefusedError,
  rule?: RegExp,
): Promise<void> {
  const r = await check(bytes, base);
  assert(!r.ok, "expected a refusal, got a result");
  assert(
    r.error instanceof cls,
    `expected ${cls.name}, got ${r.error.constructor.name}: ${r.error.message}`,
  );
  if (rule) assert(rule.test(ruleOf(r.error)), `expected rule ${rule}, got ${ruleOf(r.error)}`);
}

// ---------------------------------------------------------------------------------------------
// Arbitraries.

const BAD_NAMES: (string | Uint8Array)[] = [
  "../escape",
  "memdir/../../etc/passwd",
  "/etc/passwd",
  "memdir\\..\\..\\x",
  "memdir/a\0b",
  "C:/windows/x",
  "memdir//a",
  "./memdir/a",
  "memdir/.",
  "memdir/",
  "",
  "memdir/MEMORY.md", // duplicate
  "memdir/MEMORY.md/child", // inside a file
  "memdir", // a directory of other entries
  "manifest.json",
  new Uint8Array([0x6d, 0x2f, 0xff, 0xfe, 0x41]), // not UTF-8
  "memdir/\u202ertl.md",
];

const nameArb: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  fc.constantFrom(...BAD_NAMES),
  fc.integer({ min: 15, max: 20 }).map((d) => "memdir/" + "d/".repeat(d) + "x"),
  fc.integer({ min: 257, max: 400 }).map((n) => "memdir/" + "y".repeat(n)),
  fc.string({ maxLength: 40 }),
  fc.constantFrom("memdir/new.md", "sqlite/new.sqlite", "other/x"),
);

const typeArb = fc.oneof(
  fc.constantFrom("0", "\0", "1", "2", "3", "4", "5", "6", "7", "g", "x", "L", "K", "S", "D", "V"),
  fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
);

const sizeFieldArb: fc.Arbitrary<Uint8Array | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    enc.encode("77777777777\0"), // 8 GiB - 1
    enc.encode("99999999999\0"), // not octal
    enc.encode("-1\0"),
    new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]), // base-256, 2^32
    new Uint8Array([0x80, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
  ),
);

const paxArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(
    paxRecord("path", "../../escape"),
    paxRecord("path", "/abs"),
    paxRecord("path", "memdir/MEMORY.md"),
    paxRecord("size", "99999999999999999"),
    paxRecord("size", "-5"),
    paxRecord("size", String(2 ** 40)),
    paxRecord("GNU.sparse.map", "0,1"),
    paxRecord("linkpath", "/etc/passwd"),
    "999999999 path=x\n",
    "5 x\n",
    "garbage without a length",
    "",
  ).map((s) => enc.encode(s)),
  fc.integer({ min: 4097, max: 70_000 }).map((n) =>
    enc.encode(paxRecord("comment", "p".repeat(n)))
  ),
  fc.uint8Array({ maxLength: 300 }),
);

/** A crafted inner entry (or several) to insert into a payload tar. */
const craftedArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.record({
    name: nameArb,
    type: typeArb,
    sizeField: sizeFieldArb,
    data: fc.uint8Array({ maxLength: 1500 }),
    mode: fc.constantFrom(0o644, 0o4755, 0o777, 0o7777),
    badChecksum: fc.boolean(),
  }).map((r) =>
    entry(
      {
        name: r.name,
        type: r.type,
        mode: r.mode,
        badChecksum: r.badChecksum,
        ...(r.sizeField ? { sizeField: r.sizeField } : {}),
      },
      r.data,
    )
  ),
  fc.tuple(paxArb, nameArb, fc.uint8Array({ maxLength: 600 })).map(([pax, name, data]) =>
    concat([paxEntry(new TextDecoder("latin1").decode(pax)), entry({ name }, data)])
  ),
  // A pax header declaring a huge size (pax bomb) with little data behind it.
  fc.integer({ min: 4097, max: 2 ** 33 }).map((n) =>
    concat([header({ name: "PaxHeader", type: "x", size: n }), new Uint8Array(512)])
  ),
  fc.constant(concat([paxEntry(paxRecord("path", "a")), paxEntry(paxRecord("path", "b"))])),
  fc.constant(header({ name: "memdir/x", magic: "garbage!" })),
);

type Mutation =
  | { kind: "flip"; at: number[]; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "overwrite"; at: number; bytes: Uint8Array }
  | {
    kind: "outer";
    op:
      | "swap"
      | "dup-manifest"
      | "dup-payload"
      | "drop-payload"
      | "no-eoa"
      | "garbage-after"
      | "drop-sig";
    junk: Uint8Array;
  }
  | { kind: "outer-insert"; pos: number; piece: Uint8Array }
  | { kind: "manifest"; op: string; value: unknown; index: number }
  | { kind: "inner-insert"; pos: number; piece: Uint8Array; list: boolean }
  | { kind: "inner-flip"; at: number; bit: number }
  | { kind: "inner-truncate"; at: number }
  | { kind: "inner-reorder"; i: number; j: number }
  | { kind: "inner-dup"; i: number };

const frac = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.array(frac, { minLength: 1, maxLength: 6 }),
    bit: fc.integer({ min: 0, max: 7 }),
  }) as fc.Arbitrary<Mutation>,
  fc.record({ kind: fc.constant("truncate" as const), at: frac }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("overwrite" as const),
    at: frac,
    bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("outer" as const),
    op: fc.constantFrom(
      "swap",
      "dup-manifest",
      "dup-payload",
      "drop-payload",
      "no-eoa",
      "garbage-after",
      "drop-sig",
    ),
    junk: fc.uint8Array({ minLength: 1, maxLength: 600 }),
  }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("outer-insert" as const),
    pos: fc.integer({ min: 0, max: 3 }),
    piece: craftedArb,
  }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("manifest" as const),
    op: fc.constantFrom(
      "delete-key",
      "set-key",
      "version",
      "format",
      "extra-artifact",
      "drop-artifact",
      "artifact-field",
      "artifact-path",
      "dup-artifact",
      "non-canonical",
      "not-json",
      "payload-field",
    ),
    value: fc.oneof(
      fc.jsonValue({ maxDepth: 2 }),
      fc.constantFrom(
        2,
        0,
        -1,
        1.5,
        "1",
        null,
        2 ** 53,
        "memsnap-bundle-v2",
        ...BAD_NAMES.filter((n) => typeof n === "string"),
      ),
    ),
    index: fc.nat(),
  }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("inner-insert" as const),
    pos: fc.nat(),
    piece: craftedArb,
    list: fc.boolean(),
  }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("inner-flip" as const),
    at: frac,
    bit: fc.integer({ min: 0, max: 7 }),
  }) as fc.Arbitrary<Mutation>,
  fc.record({ kind: fc.constant("inner-truncate" as const), at: frac }) as fc.Arbitrary<Mutation>,
  fc.record({
    kind: fc.constant("inner-reorder" as const),
    i: fc.nat(),
    j: fc.nat(),
  }) as fc.Arbitrary<Mutation>,
  fc.record({ kind: fc.constant("inner-dup" as const), i: fc.nat() }) as fc.Arbitrary<Mutation>,
);

/** Every required manifest key (from the reader's schema), and one it does not know. */
const MANIFEST_KEYS = [...(MANIFEST_SCHEMA as { required: string[] }).required, "unknown_extra"];

function mutateManifest(base: Base, op: string, value: unknown, index: number): Uint8Array {
  const m = structuredClone(base.manifest) as unknown as Record<string, unknown>;
  const arts = m.artifacts as Record<string, unknown>[];
  const a = arts[index % arts.length]!;
  switch (op) {
    case "delete-key":
      delete m[MANIFEST_KEYS[index % MANIFEST_KEYS.length]!];
      break;
    case "set-key":
      m[MANIFEST_KEYS[index % MANIFEST_KEYS.length]!] = value;
      break;
    case "version":
      m.manifest_version = value;
      break;
    case "format":
      m.format = value;
      break;
    case "extra-artifact":
      arts.push({ path: "zz/extra.md", kind: "file", size: 3, sha256: "0".repeat(64) });
      break;
    case "drop-artifact":
      arts.splice(index % arts.length, 1);
      break;
    case "artifact-field": {
      const k = ["path", "kind", "size", "sha256", "mode", "extra"][index % 6]!;
      a[k] = value;
      break;
    }
    case "artifact-path":
      a.path = typeof value === "string" ? value : String(value);
      break;
    case "dup-artifact":
      arts.splice(index % arts.length, 0, { ...a });
      break;
    case "payload-field": {
      const p = m.payload as Record<string, unknown>;
      p[["path", "size", "sha256", "compression", "encryption"][index % 5]!] = value;
      break;
    }
    case "non-canonical":
      return withManifestText(base, JSON.stringify(m, null, 1));
    case "not-json":
      return withManifestText(base, canonicalJson(m).slice(0, 1 + (index % 200)));
  }
  let text: string;
  try {
    text = canonicalJson(m);
  } catch {
    text = JSON.stringify(m) ?? "null";
  }
  return withManifestText(base, text);
}

function applyMutation(base: Base, mu: Mutation): Uint8Array {
  const b = base.bytes;
  switch (mu.kind) {
    case "flip": {
      const out = b.slice();
      for (const f of mu.at) out[Math.floor(f * out.length)]! ^= 1 << mu.bit;
      return out;
    }
    case "truncate":
      return b.slice(0, Math.floor(mu.at * b.length));
    case "overwrite": {
      const out = b.slice();
      const at = Math.floor(mu.at * out.length);
      out.set(mu.bytes.subarray(0, out.length - at), at);
      return out;
    }
    case "outer": {
      const [m, p, ...rest] = base.outer as [Uint8Array, Uint8Array, ...Uint8Array[]];
      switch (mu.op) {
        case "swap":
          return concat([p, m, ...rest, EOA]);
        case "dup-manifest":
          return concat([m, m, p, ...rest, EOA]);
        case "dup-payload":
          return concat([m, p, p, ...rest, EOA]);
        case "drop-payload":
          return concat([m, ...rest, EOA]);
        case "no-eoa":
          return concat([m, p, ...rest]);
        case "garbage-after":
          return concat([m, p, ...rest, EOA, mu.junk]);
        case "drop-sig":
          return concat([m, p, EOA]);
      }
      break;
    }
    case "outer-insert": {
      const parts = [...base.outer];
      parts.splice(Math.min(mu.pos, parts.length), 0, mu.piece);
      return concat([...parts, EOA]);
    }
    case "manifest":
      return mutateManifest(base, mu.op, mu.value, mu.index);
    default:
      break;
  }
  // Inner mutations: rebuild a consistent bundle (the attacker recomputes every hash).
  const inner = base.inner!;
  const { ranges, eoa } = tarEntries(inner);
  const pieces: Uint8Array[] = ranges.map(([s, e]) => inner.slice(s, e));
  let listed = base.manifest.artifacts;
  let tar: Uint8Array;
  switch (mu.kind) {
    case "inner-insert": {
      pieces.splice(mu.pos % (pieces.length + 1), 0, mu.piece);
      tar = concat([...pieces, EOA]);
      if (mu.list) {
        // List what a header in the piece names, so the entry is not merely "extra".
        const name = new TextDecoder().decode(
          mu.piece.subarray(0, 100).subarray(0, Math.max(0, mu.piece.subarray(0, 100).indexOf(0))),
        );
        listed = [...listed, {
          path: name || "x",
          kind: "file",
          size: 0,
          sha256: sha256(new Uint8Array()),
        }]
          .sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
      }
      break;
    }
    case "inner-flip": {
      tar = inner.slice();
      tar[Math.floor(mu.at * eoa)]! ^= 1 << mu.bit;
      break;
    }
    case "inner-truncate":
      tar = inner.slice(0, Math.floor(mu.at * inner.length));
      break;
    case "inner-reorder": {
      const i = mu.i % pieces.length, j = mu.j % pieces.length;
      [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
      tar = concat([...pieces, EOA]);
      break;
    }
    case "inner-dup": {
      const i = mu.i % pieces.length;
      pieces.splice(i, 0, pieces[i]!);
      tar = concat([...pieces, EOA]);
      break;
    }
  }
  return rebuild(base.manifest, tar, listed);
}

function isInner(mu: Mutation): boolean {
  return mu.kind.startsWith("inner-");
}

// ---------------------------------------------------------------------------------------------
// Tests.

let bases: Base[] = [];
let rssBefore = 0;
let heapBefore = 0;

Deno.test({
  name: "fuzz: setup base bundles",
  async fn() {
    scratch = await Deno.makeTempDir({ prefix: "memsnap-fuzz-" });
    bases = await makeBases(scratch);
    rssBefore = Deno.memoryUsage().rss;
    gc?.();
    heapBefore = heapOf();
    for (const b of bases) {
      const r = await check(b.bytes, b);
      assert(r.ok, `base ${b.name} must extract: ${!r.ok && r.error.message}`);
    }
  },
});

Deno.test("fuzz: a bundle truncated at every 512-byte boundary is refused with a typed error", async () => {
  for (const b of bases) {
    for (let at = 0; at < b.bytes.length - 512; at += 512) {
      const r = await check(b.bytes.slice(0, at), b);
      assert(!r.ok, `${b.name} truncated at ${at} was accepted`);
      assert(r.error instanceof VerificationError, `${b.name}@${at}: ${r.error.message}`);
    }
    // Only the second end-of-archive block missing: tolerated or refused, never a crash.
    await check(b.bytes.slice(0, b.bytes.length - 512), b);
  }
});

Deno.test("fuzz: mutated bundles (outer, manifest, rebuilt inner tar) end in a typed error or a correct result", async () => {
  const caseArb = fc.record({
    base: fc.integer({ min: 0, max: 2 }),
    mutation: mutationArb,
    chunk: fc.oneof(fc.constant(65536), fc.integer({ min: 1, max: 4096 })),
  });
  await fc.assert(
    fc.asyncProperty(caseArb, async ({ base: bi, mutation, chunk }) => {
      const base = isInner(mutation) ? bases[bi % 2 === 0 ? 0 : 1]! : bases[bi]!;
      const b = base.inner === undefined && isInner(mutation) ? bases[0]! : base;
      const bytes = applyMutation(b, mutation);
      await check(bytes, b, chunk === 1 && bytes.length > 20_000 ? 512 : chunk);
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  const refused = [...stats].filter(([k]) => k !== "ok").length;
  console.log(
    `fuzz: ${caseNo} extractions; outcomes: ${
      [...stats].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}=${n}`).join(" ")
    }`,
  );
  assert(refused >= 10, "the mutations should reach many different rules");
});

Deno.test("fuzz: tar-slip, link, device, fifo, directory and pax-path entries in a rebuilt payload are refused", async () => {
  const base = bases[0]!;
  const { ranges } = tarEntries(base.inner!);
  const good: Uint8Array[] = ranges.map(([s, e]) => base.inner!.slice(s, e));
  const cases: [Uint8Array, RegExp][] = [
    [entry({ name: "../escape" }, "x"), /path_escape/],
    [entry({ name: "memdir/../../../tmp/x" }, "x"), /path_escape/],
    [entry({ name: "/etc/passwd" }, "x"), /path_absolute/],
    [entry({ name: "memdir\\..\\x" }, "x"), /path_invalid/],
    [entry({ name: "memdir/a\0b", prefix: "" }, "x"), /UnsafeBundleError|Corrupt|Verification/],
    [entry({ name: "x", prefix: "../.." }, "x"), /path_escape/],
    [entry({ name: "memdir/l", type: "1" }), /entry_type/],
    [entry({ name: "memdir/s", type: "2" }), /entry_type/],
    [entry({ name: "memdir/c", type: "3" }), /entry_type/],
    [entry({ name: "memdir/b", type: "4" }), /entry_type/],
    [entry({ name: "memdir/d", type: "5" }), /entry_type/],
    [entry({ name: "memdir/f", type: "6" }), /entry_type/],
    [
      concat([paxEntry(paxRecord("path", "../../pax-escape")), entry({ name: "ok" }, "x")]),
      /path_escape/,
    ],
    [concat([paxEntry(paxRecord("path", "/abs")), entry({ name: "ok" }, "x")]), /path_absolute/],
    [entry({ name: "memdir/MEMORY.md" }, "dup"), /duplicate/],
    [entry({ name: "memdir/MEMORY.md/under" }, "x"), /path_conflict/],
    [entry({ name: "memdir/" + "d/".repeat(20) + "x" }, "x"), /max_path_depth/],
    [
      concat([paxEntry(paxRecord("path", "memdir/" + "y".repeat(300))), entry({ name: "y" }, "x")]),
      /max_path_length/,
    ],
  ];
  for (const [piece, rule] of cases) {
    for (const pos of [0, good.length]) {
      const pieces = [...good];
      pieces.splice(pos, 0, piece);
      const bytes = rebuild(base.manifest, concat([...pieces, EOA]));
      const r = await check(bytes, base);
      assert(!r.ok, `accepted: ${rule}`);
      assert(
        rule.test(ruleOf(r.error)),
        `expected ${rule}, got ${ruleOf(r.error)}: ${r.error.message}`,
      );
    }
  }
});

Deno.test("fuzz: bombs (zstd window, decompression, pax, entry count, sizes) are refused within the caps", async () => {
  const base = bases[0]!;
  const m = base.manifest;
  // zstd frame declaring windowLog 31: magic, FHD (no single segment), window descriptor.
  const windowBomb = new Uint8Array([
    0x28,
    0xb5,
    0x2f,
    0xfd,
    0x00,
    (31 - 10) << 3,
    0x01,
    0x00,
    0x00,
  ]);
  const wb = concat([
    entry(
      { name: "manifest.json" },
      canonicalJson({
        ...m,
        payload: { ...m.payload, size: windowBomb.length, sha256: sha256(windowBomb) },
      }),
    ),
    entry({ name: "payload.tar.zst" }, windowBomb),
    EOA,
  ]);
  await expectRefusal(wb, base, RefusedError, /zstd_window/);
  // A real frame compressed with windowLog 27 (over the cap of 22).
  const big = new Uint8Array(6 << 20);
  for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
  const w27 = zstd(concat([entry({ name: "memdir/big" }, big), EOA]), 27);
  const w27Bundle = concat([
    entry(
      { name: "manifest.json" },
      canonicalJson({ ...m, payload: { ...m.payload, size: w27.length, sha256: sha256(w27) } }),
    ),
    entry({ name: "payload.tar.zst" }, w27),
    EOA,
  ]);
  await expectRefusal(w27Bundle, base, RefusedError, /zstd_window/);
  // Decompression bomb: one 16 MiB entry of zeros, a few KiB compressed, over maxEntrySize.
  const zeros = new Uint8Array(16 << 20);
  await expectRefusal(
    rebuild(m, concat([entry({ name: "memdir/bomb" }, zeros), EOA])),
    base,
    RefusedError,
    /max_entry_size/,
  );
  // Decompression bomb under the entry cap: 8 entries of 768 KiB, over maxTotalSize (4 MiB).
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) {
    parts.push(entry({ name: `memdir/part${i}` }, zeros.subarray(0, 768 << 10)));
  }
  const total = rebuild(m, concat([...parts, EOA]));
  assert(total.length < 64 << 10, `the bomb should be small, is ${total.length}`);
  await expectRefusal(total, base, RefusedError, /max_total_size/);
  // Entry-count bomb.
  const many: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) many.push(entry({ name: `memdir/m${i}` }, ""));
  await expectRefusal(rebuild(m, concat([...many, EOA])), base, RefusedError, /max_entries/);
  // Pax bomb: a pax header declaring 8 GiB, and one of 70 KB of records.
  await expectRefusal(
    rebuild(m, concat([header({ name: "P", type: "x", size: 2 ** 33 }), new Uint8Array(1024)])),
    base,
    RefusedError,
    /max_pax_size/,
  );
  await expectRefusal(
    rebuild(
      m,
      concat([paxEntry(paxRecord("comment", "p".repeat(70_000))), entry({ name: "x" }), EOA]),
    ),
    base,
    RefusedError,
    /max_pax_size/,
  );
  // Huge declared sizes: inner entry (base-256 2^40), outer payload (8 GiB), manifest (1 GiB).
  const b256 = new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  await expectRefusal(
    rebuild(m, concat([header({ name: "memdir/huge", sizeField: b256 }), EOA])),
    base,
    RefusedError,
    /max_entry_size/,
  );
  const [mEntry] = base.outer as [Uint8Array];
  await expectRefusal(
    concat([
      mEntry,
      header({ name: "payload.tar.zst", sizeField: enc.encode("77777777777\0") }),
      EOA,
    ]),
    base,
    VerificationError,
  );
  await expectRefusal(
    concat([header({ name: "manifest.json", size: 2 ** 30 }), EOA]),
    base,
    RefusedError,
    /max_manifest_size/,
  );
  // Outer pax with a huge size on the manifest.
  await expectRefusal(
    concat([paxEntry(paxRecord("size", String(2 ** 40))), header({ name: "manifest.json" }), EOA]),
    base,
    RefusedError,
    /max_manifest_size/,
  );
});

Deno.test("fuzz: memory stayed bounded and nothing was left behind", async () => {
  try {
    const grown = maxRss - rssBefore;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    console.log(
      `fuzz: rss before ${mib(rssBefore)}, max ${mib(maxRss)}; heap+external before ${
        mib(heapBefore)
      }, max ${mib(maxHeap)}`,
    );
    for (const live of liveHeap) {
      assert(live - heapBefore < LIVE_BUDGET, `live heap grew to ${mib(live)} (a leak?)`);
    }
    if (liveHeap.length > 0) {
      console.log(
        `fuzz: live heap+external after GC, every 200 cases: ${liveHeap.map(mib).join(" ")}`,
      );
    }
    assert(
      maxHeap - heapBefore < HEAP_BUDGET,
      `heap+external grew by ${mib(maxHeap - heapBefore)} during the fuzz run`,
    );
    // Process RSS is shared by every test module's isolate under `deno test --parallel` (it
    // grew by over 1 GiB there from other tests while this isolate's heap stayed flat), so it
    // is a backstop only when the fuzzer runs alone (`deno task fuzz` sets MEMSNAP_FUZZ_RUNS).
    if (Deno.env.get("MEMSNAP_FUZZ_RUNS")) {
      assert(
        grown < RSS_BUDGET,
        `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB during the fuzz run`,
      );
    }
    const left = (await listTree(scratch)).filter((p) => p.startsWith("case-"));
    assertEquals(left, []);
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
});
