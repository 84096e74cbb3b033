/**
 * ChaCha20-Poly1305 from the system libcrypto (OpenSSL 3) through FFI (private), when it is
 * available.
 *
 * `node:crypto` seals an age chunk through a new cipher object per 64 KiB chunk and returns
 * each result in a fresh buffer, which V8 frees only at its next full collection. OpenSSL's
 * EVP interface, called synchronously, seals and opens straight into the caller's buffers with
 * one reusable context: on the test machines 1.5-2.5x faster per byte, and no allocation.
 *
 * {@linkcode libcrypto} returns the bindings, or `undefined` (callers then use `node:crypto`)
 * when:
 * - the FFI permission is not granted (it is never requested: no prompt),
 * - `MEMSNAP_CRYPTO=builtin` is set (forces `node:crypto`),
 * - no library opens: `MEMSNAP_LIBCRYPTO` (a file path) if set, else `libcrypto.so.3`,
 *   `libcrypto.3.dylib` (the dynamic loader's search path), or the one that opens has no
 *   ChaCha20-Poly1305.
 *
 * Both engines give the same bytes (the algorithm is fixed; tests compare them).
 *
 * @module
 */
import { dlopenFirst, env, ffiGranted } from "./_env.ts";
import { hex } from "./_io.ts";

const SYMBOLS = {
  EVP_CIPHER_CTX_new: { parameters: [], result: "pointer" },
  EVP_CIPHER_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_chacha20_poly1305: { parameters: [], result: "pointer" },
  EVP_EncryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_EncryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_EncryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_DecryptInit_ex: {
    parameters: ["pointer", "pointer", "pointer", "buffer", "buffer"],
    result: "i32",
  },
  EVP_DecryptUpdate: {
    parameters: ["pointer", "buffer", "buffer", "buffer", "i32"],
    result: "i32",
  },
  EVP_DecryptFinal_ex: { parameters: ["pointer", "buffer", "buffer"], result: "i32" },
  EVP_CIPHER_CTX_ctrl: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** `EVP_CTRL_AEAD_GET_TAG` and `EVP_CTRL_AEAD_SET_TAG`. */
const GET_TAG = 0x10;
const SET_TAG = 0x11;
const TAG = 16;

/**
 * A ChaCha20-Poly1305 key bound to one libcrypto context per direction (one call at a time;
 * synchronous, so any buffer may be passed). Free it with {@linkcode ChaChaPoly.free}.
 */
export interface ChaChaPoly {
  /**
   * Seals `plain` under `nonce` (12 bytes, no associated data) into `out` at `at`: the
   * ciphertext (`plain.length` bytes) then the 16-byte tag. Returns the offset after the tag.
   */
  seal(plain: Uint8Array, nonce: Uint8Array, out: Uint8Array, at: number): number;
  /**
   * Opens `sealed` (ciphertext then 16-byte tag) under `nonce` into `out` at `at` (room for
   * `sealed.length - 16` bytes). Returns false if the tag does not match (what was written to
   * `out` must then be ignored).
   */
  open(sealed: Uint8Array, nonce: Uint8Array, out: Uint8Array, at: number): boolean;
  /** Frees the contexts; later calls throw. */
  free(): void;
}

/** Bindings to the system libcrypto. */
export interface LibCrypto {
  /** The library file or name that was opened. */
  readonly path: string;
  /** A ChaCha20-Poly1305 instance for a 32-byte key. */
  chachaPoly(key: Uint8Array): ChaChaPoly;
}

const CANDIDATES = ["libcrypto.so.3", "libcrypto.3.dylib"];

/** Where to look for libcrypto: `MEMSNAP_LIBCRYPTO` (a file path) if set, else the usual names. */
export function libcryptoPaths(): string[] {
  const forced = env("MEMSNAP_LIBCRYPTO");
  return forced ? [forced] : CANDIDATES;
}

function bind(path: string, s: Lib): LibCrypto {
  const cipher = s.EVP_chacha20_poly1305();
  if (cipher === null) throw new Error("no ChaCha20-Poly1305 in this libcrypto");
  const outl = new Uint8Array(4);
  const check = (ok: number, what: string): void => {
    if (ok !== 1) throw new Error(`libcrypto ${what} failed`);
  };
  const lib: LibCrypto = {
    path,
    chachaPoly(key) {
      if (key.length !== 32) throw new RangeError("ChaCha20-Poly1305 needs a 32-byte key");
      const enc = s.EVP_CIPHER_CTX_new();
      const dec = s.EVP_CIPHER_CTX_new();
      if (enc === null || dec === null) {
        if (enc !== null) s.EVP_CIPHER_CTX_free(enc);
        if (dec !== null) s.EVP_CIPHER_CTX_free(dec);
        throw new Error("libcrypto EVP_CIPHER_CTX_new failed");
      }
      let live = true;
      const zero = new Uint8Array(12);
      try {
        check(s.EVP_EncryptInit_ex(enc, cipher, null, key, zero), "EVP_EncryptInit_ex");
        check(s.EVP_DecryptInit_ex(dec, cipher, null, key, zero), "EVP_DecryptInit_ex");
      } catch (e) {
        s.EVP_CIPHER_CTX_free(enc);
        s.EVP_CIPHER_CTX_free(dec);
        throw e;
      }
      const alive = (): void => {
        if (!live) throw new Error("ChaChaPoly: the contexts were freed");
      };
      return {
        seal(plain, nonce, out, at) {
          alive();
          if (nonce.length !== 12) throw new RangeError("ChaCha20-Poly1305 needs a 12-byte nonce");
          const end = at + plain.length;
          if (end + TAG > out.length) throw new RangeError("seal: the output buffer is too small");
          check(s.EVP_EncryptInit_ex(enc, null, null, null, nonce), "EVP_EncryptInit_ex");
          if (plain.length > 0) {
            check(
              s.EVP_EncryptUpdate(enc, out.subarray(at, end), outl, plain, plain.length),
              "EVP_EncryptUpdate",
            );
          }
          check(s.EVP_EncryptFinal_ex(enc, out.subarray(end), outl), "EVP_EncryptFinal_ex");
          check(s.EVP_CIPHER_CTX_ctrl(enc, GET_TAG, TAG, out.subarray(end, end + TAG)), "GET_TAG");
          return end + TAG;
        },
        open(sealed, nonce, out, at) {
          alive();
          if (nonce.length !== 12) throw new RangeError("ChaCha20-Poly1305 needs a 12-byte nonce");
          if (sealed.length < TAG) return false;
          const n = sealed.length - TAG;
          if (at + n > out.length) throw new RangeError("open: the output buffer is too small");
          check(s.EVP_DecryptInit_ex(dec, null, null, null, nonce), "EVP_DecryptInit_ex");
          if (n > 0) {
            check(
              s.EVP_DecryptUpdate(dec, out.subarray(at, at + n), outl, sealed.subarray(0, n), n),
              "EVP_DecryptUpdate",
            );
          }
          // The tag is copied: OpenSSL reads it from the buffer during the call only.
          check(
            s.EVP_CIPHER_CTX_ctrl(dec, SET_TAG, TAG, sealed.slice(n)),
            "SET_TAG",
          );
          return s.EVP_DecryptFinal_ex(dec, out.subarray(at + n), outl) === 1;
        },
        free() {
          if (!live) return;
          live = false;
          s.EVP_CIPHER_CTX_free(enc);
          s.EVP_CIPHER_CTX_free(dec);
        },
      };
    },
  };
  return lib;
}

/** Options of {@linkcode openLibCrypto}. */
export interface OpenLibCryptoOptions {
  /** Library files or names to try in order. @default {MEMSNAP_LIBCRYPTO or the usual names} */
  paths?: string[];
}

/**
 * Opens the system libcrypto (not cached; the handle stays open for the life of the process).
 * Returns `undefined` when FFI is not granted, no library opens, or it has no
 * ChaCha20-Poly1305 that round-trips a known answer. Ignores `MEMSNAP_CRYPTO`.
 */
export function openLibCrypto(options: OpenLibCryptoOptions = {}): LibCrypto | undefined {
  if (!ffiGranted()) return undefined;
  // A library without these symbols (OpenSSL 1.0, LibreSSL...) does not load; one that fails
  // the known answer is closed.
  return dlopenFirst(options.paths ?? libcryptoPaths(), SYMBOLS, (path, dl) => {
    const lib = bind(path, dl.symbols);
    return knownAnswer(lib) ? lib : undefined;
  });
}

/**
 * A known answer: RFC 8439 section 2.8.2's key, nonce and plaintext without its associated
 * data (age uses none), sealed as `node:crypto` (RustCrypto in Deno) and Python's
 * `cryptography` both compute it; then a round trip and a refused forgery.
 */
function knownAnswer(lib: LibCrypto): boolean {
  const key = new Uint8Array(32).map((_, i) => 0x80 + i);
  const nonce = Uint8Array.of(7, 0, 0, 0, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47);
  const plain = new TextEncoder().encode("Ladies and Gentlemen of the class of '99");
  const c = lib.chachaPoly(key);
  try {
    const out = new Uint8Array(plain.length + TAG);
    c.seal(plain, nonce, out, 0);
    if (hex(out) !== KNOWN_SEALED) return false;
    const back = new Uint8Array(plain.length);
    if (!c.open(out, nonce, back, 0) || !back.every((b, i) => b === plain[i])) return false;
    out[0]! ^= 1;
    return !c.open(out, nonce, back, 0);
  } finally {
    c.free();
  }
}

const KNOWN_SEALED = "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6" +
  "3dbea45e8ca967122eb838bb957e60b8f30a8bc490057bad";

let cached: { lib: LibCrypto | undefined } | undefined;

/**
 * The system libcrypto, opened once per process, or `undefined` (use `node:crypto`): no FFI
 * permission, `MEMSNAP_CRYPTO=builtin`, or no suitable library (see the module documentation).
 */
export function libcrypto(): LibCrypto | undefined {
  if (cached === undefined) {
    cached = { lib: env("MEMSNAP_CRYPTO") === "builtin" ? undefined : openLibCrypto() };
  }
  return cached.lib;
}
