/**
 * One-call SHA-256 and SHA-1 of bytes in hand (private): the system libcrypto through FFI when it
 * is available, else `node:crypto`.
 *
 * Both run at the same speed (~1.35 GB/s with SHA-NI on the test machines), but every
 * `node:crypto` hash, even the one-shot `hash()`, leaves native memory that is freed only when V8
 * finalizes its object: hashing 150,000 small artifacts (a 2 GiB memory) held ~24 MB outside V8's
 * heap, counted in the process's RSS, until a major collection. Here one EVP context per
 * algorithm is reused and digests are written into a reused buffer: nothing is allocated per
 * call. Use it for data in hand (one synchronous call); a hash fed across `await`s (a streamed
 * artifact) stays a `node:crypto` `Hash`.
 *
 * The library is the one `_libcrypto.ts` uses: not used when the FFI permission is not granted
 * (never asked for), when `MEMSNAP_CRYPTO=builtin`, or when none of `MEMSNAP_LIBCRYPTO` (a path),
 * `libcrypto.so.3`, `libcrypto.3.dylib` opens with a SHA-256 and a SHA-1 that give the known
 * answers. Both engines give the same digests (a property test compares them).
 *
 * @module
 */
import { createHash, type Hash } from "node:crypto";
import { dlopenFirst, env, ffiGranted } from "./_env.ts";
import { EVP_DIGEST_SYMBOLS } from "./_evp_digest.ts";
import { hex } from "./_io.ts";
import { libcryptoPaths } from "./_libcrypto.ts";

/** A digest algorithm. */
export type DigestAlgorithm = "sha256" | "sha1";

/** The parts of a message: bytes, or text (UTF-8). */
export type DigestPart = Uint8Array | string;

/** Digests by one engine; `into` receives the raw digest (32 or 20 bytes). */
interface Engine {
  readonly name: string;
  digest(algorithm: DigestAlgorithm, parts: readonly DigestPart[], into: Uint8Array): void;
}

const LENGTH = { sha256: 32, sha1: 20 } as const;
const encoder = new TextEncoder();

/** `node:crypto`, for when libcrypto is not available. */
const nodeEngine: Engine = {
  name: "node:crypto",
  digest(algorithm, parts, into) {
    const h = createHash(algorithm);
    for (const p of parts) h.update(p);
    into.set(h.digest());
  },
};

function libEngine(
  path: string,
  s: Deno.DynamicLibrary<typeof EVP_DIGEST_SYMBOLS>["symbols"],
): Engine {
  const ctx = s.EVP_MD_CTX_new();
  const md = { sha256: s.EVP_sha256(), sha1: s.EVP_sha1() };
  if (ctx === null || md.sha256 === null || md.sha1 === null) {
    throw new Error("libcrypto has no EVP SHA-256 and SHA-1");
  }
  // Text parts (git object headers, short) are encoded into this buffer, grown as needed.
  let scratch = new Uint8Array(256);
  const check = (ok: number, what: string): void => {
    if (ok !== 1) throw new Error(`libcrypto ${what} failed`);
  };
  return {
    name: path,
    digest(algorithm, parts, into) {
      check(s.EVP_DigestInit_ex(ctx, md[algorithm], null), "EVP_DigestInit_ex");
      for (const p of parts) {
        let bytes: Uint8Array;
        if (typeof p === "string") {
          if (p.length * 3 > scratch.length) scratch = new Uint8Array(p.length * 3);
          bytes = scratch.subarray(0, encoder.encodeInto(p, scratch).written);
        } else bytes = p;
        check(s.EVP_DigestUpdate(ctx, bytes, BigInt(bytes.length)), "EVP_DigestUpdate");
      }
      check(s.EVP_DigestFinal_ex(ctx, into, null), "EVP_DigestFinal_ex");
    },
  };
}

/** Known answers: FIPS 180 "abc" for both, and a part split across a text and bytes. */
function knownAnswers(engine: Engine): boolean {
  const out = new Uint8Array(32);
  const hexOf = (n: number) => hex(out.subarray(0, n));
  engine.digest("sha256", [encoder.encode("abc")], out);
  if (hexOf(32) !== "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") {
    return false;
  }
  engine.digest("sha1", ["a", encoder.encode("bc")], out);
  return hexOf(20) === "a9993e364706816aba3e25717850c26c9cd0d89d";
}

/**
 * Opens the system libcrypto's digests (not cached), or `undefined` when FFI is not granted or
 * no library opens and gives the known answers. Ignores `MEMSNAP_CRYPTO`.
 */
export function openDigestLib(paths?: string[]): Engine | undefined {
  if (!ffiGranted()) return undefined;
  return dlopenFirst(paths ?? libcryptoPaths(), EVP_DIGEST_SYMBOLS, (path, dl) => {
    const engine = libEngine(path, dl.symbols);
    return knownAnswers(engine) ? engine : undefined;
  });
}

/**
 * Digests taken through `node:crypto` before libcrypto is opened: opening it costs ~8 ms
 * (OpenSSL's initialisation), and what it saves (up to ~150 bytes of native memory per digest,
 * until a major collection, and the `node:crypto` object per call) only matters for many. Once
 * {@linkcode streamSha256} has opened the library (a payload or an artifact of megabytes, so
 * any snapshot or restore past a few MiB), its start-up is paid, and libcrypto is used at once.
 */
const NODE_FIRST = 16_384;
let calls = 0;
let engine: Engine | undefined;

/**
 * The engine for the next digest: libcrypto when available (see the module doc) once
 * {@linkcode NODE_FIRST} digests have been taken or the streamed digests have opened it,
 * `node:crypto` before that and otherwise.
 */
export function digestEngine(): Engine {
  if (engine !== undefined) return engine;
  if (++calls <= NODE_FIRST && !streamLib) return nodeEngine;
  return engine = (env("MEMSNAP_CRYPTO") === "builtin" ? undefined : openDigestLib()) ??
    nodeEngine;
}

/** The `node:crypto` engine (for tests: both engines must agree). */
export const builtinDigestEngine: Engine = nodeEngine;

const raw = new Uint8Array(32);

/** The digest of the concatenation of `parts`, as lowercase hex. */
export function digestHex(algorithm: DigestAlgorithm, ...parts: DigestPart[]): string {
  digestEngine().digest(algorithm, parts, raw);
  return hex(raw.subarray(0, LENGTH[algorithm]));
}

/**
 * The digest of the concatenation of `parts` into `into` at `at` (32 or 20 bytes); returns
 * `into`.
 */
export function digestInto(
  algorithm: DigestAlgorithm,
  into: Uint8Array,
  at: number,
  ...parts: DigestPart[]
): Uint8Array {
  digestEngine().digest(algorithm, parts, raw);
  into.set(raw.subarray(0, LENGTH[algorithm]), at);
  return into;
}

/** SHA-256 of `bytes`, as lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return digestHex("sha256", bytes);
}

/**
 * A SHA-256 fed in pieces across `await`s (a streamed artifact, the payload), which may be
 * hashed on a native thread while the caller goes on.
 */
export interface StreamDigest {
  /**
   * Hashes `bytes` after what was given before. Off the thread, it returns a promise that
   * settles once they are hashed, and `bytes` must not change until then; otherwise
   * `undefined`: they were hashed before it returned.
   */
  update(bytes: Uint8Array): Promise<void> | undefined;
  /** The digest (32 bytes), once every update is hashed. Ends the digest. */
  digest(): Promise<Uint8Array>;
  /**
   * Ends the digest without a result, once an update in flight has ended (its native call
   * still reads the bytes and the context). For a failure's clean-up; a no-op after `digest`.
   */
  dispose(): Promise<void>;
}

/** The digest functions with `EVP_DigestUpdate` called on a native thread. */
const STREAM_SYMBOLS = {
  ...EVP_DIGEST_SYMBOLS,
  EVP_DigestUpdate: { ...EVP_DIGEST_SYMBOLS.EVP_DigestUpdate, nonblocking: true },
} as const satisfies Deno.ForeignLibraryInterface;

type StreamLib = Deno.DynamicLibrary<typeof STREAM_SYMBOLS>["symbols"];

/** `node:crypto`: every update synchronous. */
class NodeStreamDigest implements StreamDigest {
  #hash: Hash | undefined = createHash("sha256");
  update(bytes: Uint8Array): undefined {
    if (this.#hash === undefined) throw new Error("Cannot hash: the digest has ended");
    this.#hash.update(bytes);
  }
  digest(): Promise<Uint8Array> {
    if (this.#hash === undefined) {
      return Promise.reject(new Error("Cannot hash: the digest has ended"));
    }
    const d = this.#hash.digest();
    this.#hash = undefined;
    return Promise.resolve(new Uint8Array(d.buffer, d.byteOffset, d.length));
  }
  dispose(): Promise<void> {
    this.#hash = undefined;
    return Promise.resolve();
  }
}

/**
 * libcrypto: each update one nonblocking `EVP_DigestUpdate` call on a native thread, chained
 * after the one before (one context is used by one call at a time).
 */
class NativeStreamDigest implements StreamDigest {
  readonly #lib: StreamLib;
  #ctx: Deno.PointerValue;
  /** The last update's call; never rejects (a failure is kept in #failed). */
  #tail: Promise<void> = Promise.resolve();
  #failed = false;

  constructor(lib: StreamLib, md: Deno.PointerValue) {
    this.#lib = lib;
    const ctx = lib.EVP_MD_CTX_new();
    if (ctx === null) throw new Error("libcrypto EVP_MD_CTX_new failed");
    if (lib.EVP_DigestInit_ex(ctx, md, null) !== 1) {
      lib.EVP_MD_CTX_free(ctx);
      throw new Error("libcrypto EVP_DigestInit_ex failed");
    }
    this.#ctx = ctx;
  }

  update(bytes: Uint8Array): Promise<void> | undefined {
    const ctx = this.#ctx;
    if (ctx === null) throw new Error("Cannot hash: the digest has ended");
    if (bytes.length === 0) return undefined;
    const lib = this.#lib;
    const p = this.#tail.then(() => lib.EVP_DigestUpdate(ctx, bytes, BigInt(bytes.length)))
      .then((ok) => {
        // The native thread reads `bytes`' memory: this handler refers to it, so it is not
        // collected before the call has returned.
        void bytes;
        if (ok !== 1) this.#failed = true;
      }, () => {
        this.#failed = true;
      });
    this.#tail = p;
    return p;
  }

  async digest(): Promise<Uint8Array> {
    const ctx = this.#ctx;
    if (ctx === null) throw new Error("Cannot hash: the digest has ended");
    this.#ctx = null;
    await this.#tail;
    try {
      const out = new Uint8Array(32);
      if (this.#failed || this.#lib.EVP_DigestFinal_ex(ctx, out, null) !== 1) {
        throw new Error("libcrypto SHA-256 failed");
      }
      return out;
    } finally {
      this.#lib.EVP_MD_CTX_free(ctx);
    }
  }

  async dispose(): Promise<void> {
    const ctx = this.#ctx;
    if (ctx === null) return;
    this.#ctx = null;
    await this.#tail;
    this.#lib.EVP_MD_CTX_free(ctx);
  }
}

let streamLib: { lib: StreamLib; md: Deno.PointerValue } | null | undefined;

/**
 * The libcrypto of {@linkcode streamSha256}'s native digests, opened on first use; `null` when
 * FFI is not granted, `MEMSNAP_CRYPTO=builtin` is set, or no library opens with a SHA-256 (the
 * digests are compared with `node:crypto`'s in the tests, not checked at run time).
 */
function openStreamLib(): { lib: StreamLib; md: Deno.PointerValue } | null {
  if (streamLib !== undefined) return streamLib;
  streamLib = null;
  if (!ffiGranted() || env("MEMSNAP_CRYPTO") === "builtin") return streamLib;
  return streamLib = dlopenFirst(libcryptoPaths(), STREAM_SYMBOLS, (_path, dl) => {
    const md = dl.symbols.EVP_sha256();
    return md === null ? undefined : { lib: dl.symbols, md };
  }) ?? null;
}

/**
 * A SHA-256 for bytes that come in pieces across `await`s. With `offThread` (worth it for
 * megabytes: each update costs a thread hand-off, ~50 µs, and the library's first use a few
 * ms), updates are hashed on native threads by the system libcrypto when it is available (see
 * the module doc), so the calling thread goes on meanwhile; otherwise, and without it, by
 * `node:crypto` on the calling thread. Both give the same digests.
 */
export function streamSha256(offThread = false): StreamDigest {
  const native = offThread ? openStreamLib() : null;
  return native ? new NativeStreamDigest(native.lib, native.md) : new NodeStreamDigest();
}
