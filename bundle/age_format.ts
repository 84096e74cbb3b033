/**
 * The age v1 file format (https://age-encryption.org/v1): header, X25519 stanzas, header MAC,
 * and the STREAM payload (constants, encryptor). Internal to `bundle/`: {@linkcode ageCipher}
 * and {@linkcode ageDecipher} are the public entry points. Not re-exported by `mod.ts`.
 *
 * @module
 */

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  hkdfSync,
  type KeyObject,
  randomBytes,
  scrypt,
  timingSafeEqual,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { CorruptBundleError, RefusedError } from "../errors.ts";
import { bech32Decode, bech32Encode } from "./_bech32.ts";
import { libcrypto } from "./_libcrypto.ts";
import { concatBytes } from "./_io.ts";
import type { PayloadSealer } from "./crypto_types.ts";

/** First line of every age v1 header. */
export const AGE_VERSION_LINE = "age-encryption.org/v1";
/** Plaintext bytes per STREAM chunk. */
export const CHUNK_SIZE = 65536;
/** Poly1305 tag length. */
export const TAG_SIZE = 16;
/** Ciphertext bytes per full STREAM chunk. */
export const ENC_CHUNK_SIZE: number = CHUNK_SIZE + TAG_SIZE;
/** Length of the payload nonce that follows the header. */
export const PAYLOAD_NONCE_SIZE = 16;
/** Largest header this reader accepts. */
export const MAX_HEADER_SIZE = 1 << 20;

const X25519_LABEL = "age-encryption.org/v1/X25519";
const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");
const ZERO_NONCE = new Uint8Array(12);
const B64_RE = /^[A-Za-z0-9+/]*$/;
const enc = new TextEncoder();

/** An error for a malformed or tampered age file. */
export function corrupt(rule: string, detail: string): CorruptBundleError {
  return new CorruptBundleError(rule, undefined, `Cannot decrypt the payload: ${detail}`);
}

/** Base64 without padding, as age writes it. */
export function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")
    .replace(/=+$/, "");
}

/** Strict decoding of unpadded canonical base64; `null` when not canonical. */
export function unb64(s: string): Uint8Array | null {
  if (!B64_RE.test(s) || s.length % 4 === 1) return null;
  const bytes = Buffer.from(s, "base64");
  if (b64(bytes) !== s) return null;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** HKDF-SHA-256. */
export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string, length = 32): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", ikm, salt, info, length));
}

/** Imports a raw X25519 scalar. */
export function x25519PrivateKey(scalar: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, scalar]),
    format: "der",
    type: "pkcs8",
  });
}

/** The raw public key (u-coordinate) of an X25519 private key. */
export function x25519PublicBytes(key: KeyObject): Uint8Array {
  const pub = key.type === "public" ? key : createPublicKey(key);
  const der = pub.export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(der.length - 32));
}

/** X25519(scalar, point); `null` when the result is all zero (low-order point). */
export function x25519(priv: KeyObject, point: Uint8Array): Uint8Array | null {
  let shared: Uint8Array;
  try {
    const pub = createPublicKey({
      key: Buffer.concat([SPKI_X25519, point]),
      format: "der",
      type: "spki",
    });
    shared = new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pub }));
  } catch {
    return null;
  }
  return shared.every((b) => b === 0) ? null : shared;
}

/** Decodes an `age1...` recipient to its 32-byte public key; `null` when invalid. */
export function decodeRecipient(recipient: string): Uint8Array | null {
  const d = bech32Decode(recipient);
  if (d === null || d.hrp !== "age" || d.data.length !== 32) return null;
  return d.data;
}

/** Decodes an `AGE-SECRET-KEY-1...` identity to its 32-byte scalar; `null` when invalid. */
export function decodeIdentity(identity: string): Uint8Array | null {
  const d = bech32Decode(identity);
  if (d === null || d.hrp !== "AGE-SECRET-KEY-" || d.data.length !== 32) return null;
  return d.data;
}

/** Encodes a public key as an `age1...` recipient. */
export function encodeRecipient(pub: Uint8Array): string {
  return bech32Encode("age", pub);
}

/** Encodes a scalar as an `AGE-SECRET-KEY-1...` identity. */
export function encodeIdentity(scalar: Uint8Array): string {
  return bech32Encode("AGE-SECRET-KEY-", scalar);
}

/** One recipient stanza of the header. */
export interface Stanza {
  /** The type, e.g. `X25519`. */
  type: string;
  /** The arguments after the type. */
  args: string[];
  /** The decoded body. */
  body: Uint8Array;
}

/** Wraps a 16-byte file key for an X25519 recipient. */
export function wrapX25519(fileKey: Uint8Array, recipient: Uint8Array): Stanza {
  const eph = x25519PrivateKey(randomBytes(32));
  const share = x25519PublicBytes(eph);
  const shared = x25519(eph, recipient);
  if (shared === null) {
    throw new TypeError("Cannot encrypt: the recipient is a low-order point");
  }
  const key = hkdf(shared, concat(share, recipient), X25519_LABEL);
  const c = createCipheriv("chacha20-poly1305", key, ZERO_NONCE, { authTagLength: 16 });
  const body = concat(c.update(fileKey), c.final(), c.getAuthTag());
  return { type: "X25519", args: [b64(share)], body };
}

/**
 * Unwraps the file key from an X25519 stanza with an identity.
 *
 * @returns The file key, or `null` when the stanza is not for this identity.
 * @throws {CorruptBundleError} If the stanza is malformed.
 */
export function unwrapX25519(
  stanza: Stanza,
  identity: { key: KeyObject; pub: Uint8Array },
): Uint8Array | null {
  const share = stanza.args.length === 1 ? unb64(stanza.args[0]!) : null;
  if (share === null || share.length !== 32 || stanza.body.length !== 32) {
    throw corrupt("age_header", "malformed X25519 stanza in the age header");
  }
  const shared = x25519(identity.key, share);
  if (shared === null) {
    throw corrupt("age_header", "X25519 stanza has a low-order ephemeral share");
  }
  const key = hkdf(shared, concat(share, identity.pub), X25519_LABEL);
  const d = createDecipheriv("chacha20-poly1305", key, ZERO_NONCE, { authTagLength: 16 });
  d.setAuthTag(stanza.body.subarray(16));
  const fileKey = d.update(stanza.body.subarray(0, 16));
  try {
    d.final();
  } catch {
    return null;
  }
  return new Uint8Array(fileKey);
}

/** age's default limit on the scrypt work factor (log2 N) it accepts when decrypting. */
export const DEFAULT_MAX_SCRYPT_WORK_FACTOR = 22;

/**
 * Unwraps the file key from an scrypt (passphrase) stanza.
 *
 * @returns The file key, or `null` when the passphrase is wrong.
 * @throws {CorruptBundleError} If the stanza is malformed.
 * @throws {RefusedError} If its work factor exceeds `maxWorkFactor`.
 */
export async function unwrapScrypt(
  stanza: Stanza,
  passphrase: string,
  maxWorkFactor: number,
): Promise<Uint8Array | null> {
  const salt = stanza.args.length === 2 ? unb64(stanza.args[0]!) : null;
  const wf = stanza.args[1] ?? "";
  if (
    salt === null || salt.length !== 16 || !/^[1-9][0-9]?$/.test(wf) || stanza.body.length !== 32
  ) {
    throw corrupt("age_header", "malformed scrypt stanza in the age header");
  }
  const logN = Number(wf);
  if (logN > maxWorkFactor) {
    throw new RefusedError(
      `Cannot decrypt the payload: its scrypt work factor ${logN} exceeds the limit ${maxWorkFactor}`,
    );
  }
  const N = 2 ** logN;
  const key = await new Promise<Uint8Array>((resolve, reject) =>
    scrypt(
      passphrase,
      concat(enc.encode("age-encryption.org/v1/scrypt"), salt),
      32,
      { N, r: 8, p: 1, maxmem: 128 * 8 * (N + 2) + 32 * 1024 * 1024 },
      (e, k) => e ? reject(e) : resolve(new Uint8Array(k)),
    )
  );
  const d = createDecipheriv("chacha20-poly1305", key, ZERO_NONCE, { authTagLength: 16 });
  d.setAuthTag(stanza.body.subarray(16));
  const fileKey = d.update(stanza.body.subarray(0, 16));
  try {
    d.final();
  } catch {
    return null;
  }
  return new Uint8Array(fileKey);
}

/** HMAC-SHA-256 of the header up to and including `---`. */
export function headerMac(fileKey: Uint8Array, headerUpToDashes: Uint8Array): Uint8Array {
  const key = hkdf(fileKey, new Uint8Array(0), "header");
  return new Uint8Array(createHmac("sha256", key).update(headerUpToDashes).digest());
}

/** Checks a header MAC in constant time. */
export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Serializes a header with its MAC line. */
export function encodeHeader(stanzas: Stanza[], fileKey: Uint8Array): Uint8Array {
  let text = AGE_VERSION_LINE + "\n";
  for (const s of stanzas) {
    text += `-> ${[s.type, ...s.args].join(" ")}\n`;
    const body = b64(s.body);
    for (let i = 0; i <= body.length; i += 64) text += body.slice(i, i + 64) + "\n";
  }
  text += "---";
  const upTo = enc.encode(text);
  return concat(upTo, enc.encode(` ${b64(headerMac(fileKey, upTo))}\n`));
}

/**
 * Finds the MAC line of a header being read: the first `"\n---"` in `buf[from..len)`.
 * Body lines are base64 and stanza lines start with `"->"`, so no earlier line can start
 * with `"---"`.
 *
 * @returns The index of the `"\n"` before `"---"`, or -1.
 */
export function findMacLine(buf: Uint8Array, from: number, len: number): number {
  for (let i = from; i + 3 < len; i++) {
    if (buf[i] === 0x0a && buf[i + 1] === 0x2d && buf[i + 2] === 0x2d && buf[i + 3] === 0x2d) {
      return i;
    }
  }
  return -1;
}

/** A parsed header. */
export interface ParsedHeader {
  /** The recipient stanzas in order. */
  stanzas: Stanza[];
  /** The header bytes the MAC covers (up to and including `---`). */
  macInput: Uint8Array;
  /** The MAC. */
  mac: Uint8Array;
}

/**
 * Parses a complete header (through the MAC line's newline) strictly.
 *
 * @throws {CorruptBundleError} If the header is malformed.
 */
export function parseHeader(header: Uint8Array): ParsedHeader {
  for (const b of header) {
    if (b !== 0x0a && (b < 0x20 || b > 0x7e)) {
      throw corrupt("age_header", "the age header contains a non-printable byte");
    }
  }
  const text = new TextDecoder().decode(header);
  const lines = text.split("\n");
  lines.pop(); // the header ends with "\n"
  if (lines[0] !== AGE_VERSION_LINE) {
    if (lines[0]?.startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) {
      throw corrupt("age_header", "the payload is ASCII-armored age, which is not supported");
    }
    throw corrupt("age_header", "not an age v1 file (bad version line)");
  }
  const stanzas: Stanza[] = [];
  let i = 1;
  while (i < lines.length - 1) {
    const line = lines[i]!;
    if (!line.startsWith("-> ")) {
      throw corrupt("age_header", `malformed age header line ${i + 1}`);
    }
    const parts = line.slice(3).split(" ");
    if (parts.some((p) => p.length === 0)) {
      throw corrupt("age_header", `empty argument in age header line ${i + 1}`);
    }
    i++;
    let body = "";
    for (;;) {
      const bl = lines[i];
      if (bl === undefined || i >= lines.length - 1) {
        throw corrupt("age_header", "age header ends inside a stanza body");
      }
      i++;
      if (bl.length > 64) throw corrupt("age_header", `age header line ${i} is too long`);
      body += bl;
      if (bl.length < 64) break;
    }
    const decoded = unb64(body);
    if (decoded === null) {
      throw corrupt("age_header", "a stanza body in the age header is not canonical base64");
    }
    stanzas.push({ type: parts[0]!, args: parts.slice(1), body: decoded });
  }
  const macLine = lines[lines.length - 1];
  if (i !== lines.length - 1 || macLine === undefined || !macLine.startsWith("--- ")) {
    throw corrupt("age_header", "the age header has no MAC line");
  }
  const mac = unb64(macLine.slice(4));
  if (mac === null || mac.length !== 32) {
    throw corrupt("age_header", "the age header MAC is malformed");
  }
  if (stanzas.length === 0) throw corrupt("age_header", "the age header has no recipients");
  const macInput = header.subarray(0, header.length - macLine.length - 1 + 3);
  return { stanzas, macInput, mac };
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(parts);
}

/** Increments the 11-byte big-endian counter at the start of a 12-byte STREAM nonce. */
export function incrementNonce(nonce: Uint8Array): void {
  for (let i = 10; i >= 0; i--) {
    nonce[i] = (nonce[i]! + 1) & 0xff;
    if (nonce[i] !== 0) return;
  }
  throw new RangeError("Cannot encrypt the payload: STREAM counter overflow");
}

/** Seals one STREAM chunk into `out` at `at`; returns the offset after its tag. */
type SealChunk = (plain: Uint8Array, nonce: Uint8Array, out: Uint8Array, at: number) => number;

/** Whether payload chunks may be sealed by the system libcrypto. Mutable for tests only. */
export const cryptoConfig: { useLib: boolean } = { useLib: true };

/** The chunk sealer: libcrypto's when available (no allocation), else `node:crypto`'s. */
function chunkSealer(payloadKey: Uint8Array): { seal: SealChunk; free(): void } {
  const lib = cryptoConfig.useLib ? libcrypto() : undefined;
  if (lib !== undefined) {
    const c = lib.chachaPoly(payloadKey);
    return { seal: (p, n, o, at) => c.seal(p, n, o, at), free: () => c.free() };
  }
  const key: KeyObject = createSecretKey(payloadKey);
  return {
    seal(plain, nonce, out, at) {
      const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
      const ct = c.update(plain);
      out.set(ct, at);
      at += ct.length;
      const fin = c.final();
      out.set(fin, at);
      at += fin.length;
      out.set(c.getAuthTag(), at);
      return at + TAG_SIZE;
    },
    free() {},
  };
}

/** Opens one sealed STREAM chunk into `out` at `at`; false if it fails authentication. */
type OpenChunk = (sealed: Uint8Array, nonce: Uint8Array, out: Uint8Array, at: number) => boolean;

/** The chunk opener: libcrypto's when available (no allocation), else `node:crypto`'s. */
export function chunkOpener(payloadKey: Uint8Array): { open: OpenChunk; free(): void } {
  const lib = cryptoConfig.useLib ? libcrypto() : undefined;
  if (lib !== undefined) {
    const c = lib.chachaPoly(payloadKey);
    return { open: (s, n, o, at) => c.open(s, n, o, at), free: () => c.free() };
  }
  const key: KeyObject = createSecretKey(payloadKey);
  return {
    open(sealed, nonce, out, at) {
      if (sealed.length < TAG_SIZE) return false;
      const d = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_SIZE });
      d.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
      const plain = d.update(sealed.subarray(0, sealed.length - TAG_SIZE));
      try {
        d.final();
      } catch {
        return false;
      }
      out.set(plain, at);
      return true;
    },
    free() {},
  };
}

/**
 * The age file after its header as a synchronous encryptor: the payload nonce, then the STREAM
 * of 64 KiB chunks sealed with ChaCha20-Poly1305 under `HKDF-SHA-256(fileKey, payloadNonce,
 * "payload")`, each nonce an 11-byte big-endian counter and a last-chunk flag byte. The output
 * starts with `header`. Deterministic for a given file key and nonce, however the input is
 * split. With `reuse`, each call returns a view of one output buffer, valid until the next
 * call; otherwise a fresh buffer.
 */
export class AgeSealer implements PayloadSealer {
  #header: Uint8Array | undefined;
  #sealer: { seal: SealChunk; free(): void };
  #nonce = new Uint8Array(12);
  #buf = new Uint8Array(CHUNK_SIZE);
  #fill = 0;
  #out: Uint8Array = new Uint8Array(0);
  #reuse: boolean;
  #done = false;

  constructor(header: Uint8Array, fileKey: Uint8Array, payloadNonce: Uint8Array, reuse = false) {
    const first = new Uint8Array(header.length + PAYLOAD_NONCE_SIZE);
    first.set(header);
    first.set(payloadNonce, header.length);
    this.#header = first;
    this.#sealer = chunkSealer(hkdf(fileKey, payloadNonce, "payload"));
    this.#reuse = reuse;
  }

  #output(n: number): Uint8Array {
    if (!this.#reuse) return new Uint8Array(n);
    if (this.#out.length < n) this.#out = new Uint8Array(n);
    return this.#out;
  }

  #seal(plain: Uint8Array, last: boolean, out: Uint8Array, at: number): number {
    if (last) this.#nonce[11] = 1;
    at = this.#sealer.seal(plain, this.#nonce, out, at);
    incrementNonce(this.#nonce);
    return at;
  }

  /** Encrypts `input`; returns the output it completes (the header first, on the first call). */
  update(input: Uint8Array): Uint8Array {
    if (this.#done) throw new Error("AgeSealer: update() after final()");
    // A full chunk is sealed only once more bytes follow: the last chunk has its own flag.
    const avail = this.#fill + input.length;
    const chunks = avail > CHUNK_SIZE ? Math.floor((avail - 1) / CHUNK_SIZE) : 0;
    const head = this.#header?.length ?? 0;
    const out = this.#output(head + chunks * ENC_CHUNK_SIZE);
    let at = 0;
    if (this.#header !== undefined) {
      out.set(this.#header);
      at = head;
      this.#header = undefined;
    }
    const buf = this.#buf;
    let off = 0;
    while (off < input.length) {
      if (this.#fill === CHUNK_SIZE) {
        at = this.#seal(buf, false, out, at);
        this.#fill = 0;
      }
      if (this.#fill === 0 && input.length - off > CHUNK_SIZE) {
        at = this.#seal(input.subarray(off, off + CHUNK_SIZE), false, out, at);
        off += CHUNK_SIZE;
        continue;
      }
      const n = Math.min(CHUNK_SIZE - this.#fill, input.length - off);
      buf.set(input.subarray(off, off + n), this.#fill);
      this.#fill += n;
      off += n;
    }
    return out.subarray(0, at);
  }

  /** Frees the cipher without sealing the rest (after an error); later calls throw. */
  dispose(): void {
    if (this.#done) return;
    this.#done = true;
    this.#sealer.free();
  }

  /** Seals the last chunk (possibly empty) and frees the cipher; returns the rest. */
  final(): Uint8Array {
    if (this.#done) throw new Error("AgeSealer: final() called twice");
    const head = this.#header?.length ?? 0;
    const out = this.#output(head + this.#fill + TAG_SIZE);
    let at = 0;
    if (this.#header !== undefined) {
      out.set(this.#header);
      at = head;
      this.#header = undefined;
    }
    try {
      at = this.#seal(this.#buf.subarray(0, this.#fill), true, out, at);
    } finally {
      this.#done = true;
      this.#sealer.free();
    }
    return out.subarray(0, at);
  }
}

/**
 * {@linkcode AgeSealer} as a transform stream (fresh output buffers, which a stream's
 * consumer may keep).
 */
export function payloadEncryptor(
  header: Uint8Array,
  fileKey: Uint8Array,
  payloadNonce: Uint8Array,
): TransformStream<Uint8Array, Uint8Array> {
  const sealer = new AgeSealer(header, fileKey, payloadNonce);
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(input, controller) {
      const out = sealer.update(input);
      if (out.length > 0) controller.enqueue(out);
    },
    flush(controller) {
      controller.enqueue(sealer.final());
    },
  });
}
