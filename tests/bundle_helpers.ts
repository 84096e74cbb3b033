/**
 * Helpers for the bundle tests: crafted tar archives, test doubles for the crypto hooks,
 * in-memory artifact sources.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { constants, zstdCompressSync } from "node:zlib";
import { VerificationError } from "../errors.ts";
import type { ArtifactSource } from "../capture/types.ts";
import type {
  ManifestSigner,
  ManifestVerifier,
  PayloadCipher,
  PayloadDecipher,
} from "../bundle/crypto_types.ts";
import type { BundleHeader, Manifest } from "../bundle/types.ts";
import { canonicalJson } from "../bundle/canonical_json.ts";
import { concatBytes } from "../bundle/_io.ts";

const enc = new TextEncoder();

/** A fixed header for tests. */
export function testHeader(overrides: Partial<BundleHeader> = {}): BundleHeader {
  return {
    snapshot_id: "20261125T195222123Z-1a2b3c4d",
    agent_id: "agent-1",
    tenant: "default",
    label: null,
    created_at: "2026-11-25T19:52:22.123Z",
    created_by: "api",
    parent: null,
    captures: {},
    redaction: { redacted: false, packs: [], rules: [], skipped_binary: [] },
    tools: { memsnap: "0.1.0" },
    ...overrides,
  };
}

/**
 * A manifest's fields but its artifacts, for tests of manifest readers: `testHeader(overrides)`
 * with the format, version and a fixed plaintext payload (its size and hash stand for any).
 */
export function testManifestHead(
  overrides: Partial<BundleHeader> = {},
): Omit<Manifest, "artifacts"> {
  return {
    ...testHeader(overrides),
    format: "memsnap-bundle",
    manifest_version: 1,
    payload: {
      path: "payload.tar.zst",
      size: 123,
      sha256: "ab".repeat(32),
      compression: "zstd",
      encryption: null,
    },
  };
}

/** An in-memory artifact source, delivered in chunks of `chunk` bytes. */
export function source(
  path: string,
  data: Uint8Array | string,
  opts: { kind?: string; mode?: number; size?: number; chunk?: number } = {},
): ArtifactSource {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  const chunk = opts.chunk ?? 65536;
  return {
    path,
    kind: opts.kind ?? "file",
    size: opts.size ?? bytes.length,
    ...(opts.mode === undefined ? {} : { mode: opts.mode }),
    open: () =>
      Promise.resolve(
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < bytes.length; i += chunk) c.enqueue(bytes.slice(i, i + chunk));
            c.close();
          },
        }),
      ),
  };
}

/** A stream of the given bytes, in chunks. */
export function streamOf(bytes: Uint8Array, chunk = 4096): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (let i = 0; i < bytes.length; i += chunk) c.enqueue(bytes.slice(i, i + chunk));
      c.close();
    },
  });
}

function xorTransform(key: number): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, c) {
      c.enqueue(chunk.map((b) => b ^ key));
    },
  });
}

/** A test cipher: XOR with a key byte. */
export function xorCipher(key = 0x5a): PayloadCipher {
  return { scheme: "age", recipients: ["0123456789abcdef"], encrypt: () => xorTransform(key) };
}

/** The matching test decipher. */
export function xorDecipher(key = 0x5a): PayloadDecipher {
  return { decrypt: () => xorTransform(key) };
}

/** A test signer: `sig:` + sha256(manifest bytes) + the secret. */
export function testSigner(secret = "k1"): ManifestSigner {
  return {
    sign: (bytes: Uint8Array, _m: Manifest) =>
      Promise.resolve(
        enc.encode(`sig:${createHash("sha256").update(bytes).update(secret).digest("hex")}\n`),
      ),
  };
}

/** The matching test verifier. */
export function testVerifier(secret = "k1"): ManifestVerifier {
  return {
    async verify(bytes: Uint8Array, sig: Uint8Array): Promise<void> {
      const want = await testSigner(secret).sign(bytes, {} as Manifest);
      if (new TextDecoder().decode(want) !== new TextDecoder().decode(sig)) {
        throw new VerificationError("Cannot verify the signature: it does not match");
      }
    },
  };
}

/** Fields of one crafted raw tar header. */
export interface RawHeader {
  name: string;
  size?: number;
  type?: string;
  mode?: number;
  prefix?: string;
  magic?: string;
  /** Override the stored checksum. */
  checksum?: string;
  /** Declared size field override (e.g. for a pax bomb). */
  sizeField?: string;
}

/** One 512-byte header block, checksummed unless overridden. */
export function rawHeader(h: RawHeader): Uint8Array {
  const b = new Uint8Array(512);
  const put = (off: number, s: string) => b.set(enc.encode(s), off);
  put(0, h.name);
  put(100, (h.mode ?? 0o644).toString(8).padStart(7, "0") + "\0");
  put(108, "0000000\0");
  put(116, "0000000\0");
  put(124, h.sizeField ?? (h.size ?? 0).toString(8).padStart(11, "0") + "\0");
  put(136, "15000000000\0");
  b[156] = (h.type ?? "0").charCodeAt(0);
  put(257, h.magic ?? "ustar\x0000");
  if (h.prefix) put(345, h.prefix);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  put(148, h.checksum ?? sum.toString(8).padStart(6, "0") + "\0 ");
  return b;
}

/** One raw entry: header, data, padding. */
export function rawEntry(h: RawHeader, data: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const d = typeof data === "string" ? enc.encode(data) : data;
  const pad = (512 - (d.length % 512)) % 512;
  return concat([rawHeader({ size: d.length, ...h }), d, new Uint8Array(pad)]);
}

/** A pax record. */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyLen = enc.encode(body).length;
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return `${len}${body}`;
}

/** Concatenates byte arrays. */
export function concat(parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** The end-of-archive marker. */
export const EOA: Uint8Array = new Uint8Array(1024);

/** zstd-compresses bytes (one frame). */
export function zstd(bytes: Uint8Array, windowLog?: number): Uint8Array {
  return new Uint8Array(zstdCompressSync(bytes, {
    params: {
      [constants.ZSTD_c_compressionLevel]: 3,
      ...(windowLog === undefined ? {} : { [constants.ZSTD_c_windowLog]: windowLog }),
    },
  }));
}

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * Wraps a raw payload (already compressed) into a bundle whose manifest lists `artifacts`
 * (path → bytes) and the payload's true hash.
 */
export function craftBundle(
  payload: Uint8Array,
  artifacts: Record<string, Uint8Array | string> = {},
  extraOuter: Uint8Array[] = [],
): Uint8Array {
  const manifest: Manifest = {
    ...testHeader(),
    format: "memsnap-bundle",
    manifest_version: 1,
    artifacts: Object.entries(artifacts).sort(([a], [b]) => (a < b ? -1 : 1)).map((
      [path, d],
    ) => {
      const bytes = typeof d === "string" ? enc.encode(d) : d;
      return { path, kind: "file", size: bytes.length, sha256: sha256(bytes) };
    }),
    payload: {
      path: "payload.tar.zst",
      size: payload.length,
      sha256: sha256(payload),
      compression: "zstd",
      encryption: null,
    },
  };
  const m = enc.encode(canonicalJson(manifest));
  return concat([
    rawEntry({ name: "manifest.json" }, m),
    rawEntry({ name: "payload.tar.zst" }, payload),
    ...extraOuter,
    EOA,
  ]);
}

/** A bundle whose inner tar is `inner` (raw, uncompressed). */
export function craftInner(
  inner: Uint8Array,
  artifacts: Record<string, Uint8Array | string> = {},
): Uint8Array {
  return craftBundle(zstd(inner), artifacts);
}

/**
 * A bundle whose payload's own hash is right but whose artifacts disagree with the manifest in
 * every way: other bytes of the right size (`b`, and `big`, streamed), the wrong size (`c`),
 * an entry the manifest lacks (`x`) and one the payload lacks (`gone`). Small bodies come whole
 * from the decoder's chunk, the large ones streamed. `failures` is what a reader reports, in
 * order.
 */
export function damagedArtifacts(): {
  bundle: Uint8Array;
  big: Uint8Array;
  bigBad: Uint8Array;
  failures: [string, string][];
} {
  const big = new Uint8Array(2_500_000).map((_, k) => (k * 13) & 255);
  const bigBad = big.slice();
  bigBad[2_000_000]! ^= 1;
  const inner = concat([
    rawEntry({ name: "a" }, "1"),
    rawEntry({ name: "b" }, "bad!"), // the size the manifest says, other bytes
    rawEntry({ name: "big" }, bigBad),
    rawEntry({ name: "c" }, "xx"), // the wrong size
    rawEntry({ name: "d" }, big),
    rawEntry({ name: "e" }, "zzzz"),
    rawEntry({ name: "x" }, "2"), // not in the manifest
    EOA,
  ]);
  const manifestSays = { a: "1", b: "good", big, c: "x", d: big, e: "yyyy", gone: "3" };
  return {
    bundle: craftInner(inner, manifestSays),
    big,
    bigBad,
    failures: [
      ["artifact_hash", "b"],
      ["artifact_hash", "big"],
      ["artifact_size", "c"],
      ["artifact_hash", "e"],
      ["extra", "x"],
      ["missing", "gone"],
    ],
  };
}
