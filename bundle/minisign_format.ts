/**
 * minisign's binary structures: key and signature layouts, the scrypt KDF as libsodium runs
 * it, BLAKE2b checksums and Ed25519 key import. Internal to `bundle/`: the public entry points
 * are in `minisign_keys.ts`, `minisign_signer.ts` and `minisign_verifier.ts`. Not re-exported
 * by `mod.ts`.
 *
 * @module
 */

import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  scrypt,
  timingSafeEqual,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { UsageError } from "../errors.ts";
import { blake2b } from "./_blake2b.ts";
import type { MinisignSecretKey } from "./minisign_keys.ts";

/** Key and signature algorithm "Ed". */
/** Key and legacy signature algorithm, "Ed". */
export const ALG_ED: number[] = [0x45, 0x64];
/** KDF algorithm "Sc" (scrypt). */
/** Secret key KDF algorithm, "Sc" (scrypt). */
export const KDF_SCRYPT: number[] = [0x53, 0x63];
/** Checksum algorithm "B2" (BLAKE2b-256). */
/** Secret key checksum algorithm, "B2" (BLAKE2b-256). */
export const CHK_B2: number[] = [0x42, 0x32];
/** Size of a decoded public key. */
/** Length of a decoded public key: algorithm, key number, Ed25519 key. */
export const PUBLIC_KEY_BYTES = 42;
/** Size of a decoded secret key file. */
/** Length of a decoded secret key file. */
export const SECRET_KEY_BYTES = 158;
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");
/** Prefix of the first line of every minisign file. */
/** Prefix of the first line of every minisign file. */
export const COMMENT_PREFIX = "untrusted comment: ";

/** The key id as minisign prints it. */
export function keyIdOf(keyNum: Uint8Array): string {
  return Array.from(keyNum).reverse().map((b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

/** Standard padded base64. */
export function b64std(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Strict standard base64 (padding as libsodium's ORIGINAL variant writes it). */
export function decodeBase64Strict(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  const bytes = Buffer.from(s, "base64");
  if (b64std(bytes) !== s) return null;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Whether `a` holds `b` at `at`. */
export function sameBytes(a: Uint8Array, b: ArrayLike<number>, at = 0): boolean {
  for (let i = 0; i < b.length; i++) if (a[at + i] !== b[i]) return false;
  return true;
}

/** Imports an Ed25519 private key from its 32-byte seed. */
export function ed25519PrivateKey(seed: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: "der",
    type: "pkcs8",
  });
}

/** Imports an Ed25519 public key from its 32 raw bytes. */
export function ed25519PublicKey(pub: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_ED25519, pub]),
    format: "der",
    type: "spki",
  });
}

/** The raw 32 bytes of an Ed25519 key's public half. */
export function rawPublic(key: KeyObject): Uint8Array {
  const pub = key.type === "public" ? key : createPublicKey(key);
  const der = pub.export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(der.length - 32));
}

/**
 * Derives scrypt's N, r, p from libsodium's opslimit and memlimit exactly as libsodium's
 * `pickparams` (crypto_pwhash_scryptsalsa208sha256) does.
 *
 * @param opsLimit libsodium opslimit.
 * @param memLimit libsodium memlimit.
 * @returns log2(N), r and p.
 */
export function scryptParams(
  opsLimit: number,
  memLimit: number,
): { logN: number; r: number; p: number } {
  const ops = Math.max(opsLimit, 32768);
  const r = 8;
  let logN = 1;
  let p: number;
  if (ops < Math.floor(memLimit / 32)) {
    p = 1;
    const maxN = Math.floor(ops / (r * 4));
    for (logN = 1; logN < 63; logN++) if (2 ** logN > Math.floor(maxN / 2)) break;
  } else {
    const maxN = Math.floor(memLimit / (r * 128));
    for (logN = 1; logN < 63; logN++) if (2 ** logN > Math.floor(maxN / 2)) break;
    const maxrp = Math.min(Math.floor(Math.floor(ops / 4) / 2 ** logN), 0x3fffffff);
    p = Math.floor(maxrp / r);
  }
  return { logN, r, p };
}

/** The 104-byte keystream minisign XORs over keynum, secret key and checksum. */
export async function kdfStream(
  passphrase: string,
  salt: Uint8Array,
  opsLimit: number,
  memLimit: number,
): Promise<Uint8Array> {
  const { logN, r, p } = scryptParams(opsLimit, memLimit);
  if (p < 1 || logN > 30) {
    throw new UsageError(
      `Cannot use the minisign secret key: unsupported scrypt limits (ops ${opsLimit}, mem ${memLimit})`,
    );
  }
  const N = 2 ** logN;
  const maxmem = 128 * r * (N + p) + 64 * 1024 * 1024;
  const key = await new Promise<Buffer>((resolve, reject) =>
    scrypt(passphrase, salt, 104, { N, r, p, maxmem }, (e, k) => e ? reject(e) : resolve(k))
  );
  return new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
}

/** minisign's secret key checksum: BLAKE2b-256("Ed" || keynum || secret key). */
export function checksum(keyNum: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return blake2b(32, new Uint8Array(ALG_ED), keyNum, secretKey);
}

/** Lines of a text file, without CR. */
export function fileLines(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, ""));
}

/** The parsed but not yet decrypted fields of a secret key file. */
export interface RawSecretKey {
  /** The decoded 158 bytes. */
  bytes: Uint8Array;
  /** Whether the KDF is scrypt. */
  encrypted: boolean;
}

/** Checks the structure of a secret key file without decrypting it. */
export function readSecretKeyFile(text: string): RawSecretKey {
  const lines = fileLines(text);
  const bytes = lines[0]?.startsWith(COMMENT_PREFIX) && lines[1] !== undefined
    ? decodeBase64Strict(lines[1].trim())
    : null;
  if (bytes === null || bytes.length !== SECRET_KEY_BYTES) {
    throw new UsageError("Cannot read the minisign secret key: not a minisign secret key file");
  }
  if (!sameBytes(bytes, ALG_ED)) {
    throw new UsageError("Cannot read the minisign secret key: unsupported signature algorithm");
  }
  if (!sameBytes(bytes, CHK_B2, 4)) {
    throw new UsageError("Cannot read the minisign secret key: unsupported checksum function");
  }
  let encrypted: boolean;
  if (sameBytes(bytes, KDF_SCRYPT, 2)) encrypted = true;
  else if (sameBytes(bytes, [0, 0], 2)) encrypted = false;
  else {
    throw new UsageError("Cannot read the minisign secret key: unsupported key derivation");
  }
  return { bytes, encrypted };
}

/** Decrypts (if needed) and checks a secret key read by {@linkcode readSecretKeyFile}. */
export async function unlockSecretKey(
  raw: RawSecretKey,
  passphrase: string | undefined,
): Promise<MinisignSecretKey> {
  const b = raw.bytes.slice();
  const dv = new DataView(b.buffer);
  if (raw.encrypted) {
    if (passphrase === undefined) {
      throw new UsageError(
        "Cannot read the minisign secret key: it is encrypted and no passphrase was given",
      );
    }
    const ops = dv.getBigUint64(38, true);
    const mem = dv.getBigUint64(46, true);
    if (ops > BigInt(Number.MAX_SAFE_INTEGER) || mem > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new UsageError("Cannot read the minisign secret key: scrypt limits out of range");
    }
    const stream = await kdfStream(passphrase, b.subarray(6, 38), Number(ops), Number(mem));
    for (let i = 0; i < 104; i++) b[54 + i]! ^= stream[i]!;
  }
  const keyNum = b.slice(54, 62);
  const secretKey = b.slice(62, 126);
  const chk = b.subarray(126, 158);
  const expected = checksum(keyNum, secretKey);
  // minisign -G -W leaves the checksum of an unencrypted key zeroed.
  const unchecked = !raw.encrypted && chk.every((x) => x === 0);
  if (!unchecked && !timingSafeEqual(chk, expected)) {
    throw new UsageError(
      raw.encrypted
        ? "Cannot decrypt the minisign secret key: wrong passphrase (checksum mismatch)"
        : "Cannot read the minisign secret key: checksum mismatch (corrupted key file)",
    );
  }
  const publicKey = secretKey.slice(32);
  const derived = rawPublic(ed25519PrivateKey(secretKey.subarray(0, 32)));
  if (!timingSafeEqual(derived, publicKey)) {
    throw new UsageError("Cannot read the minisign secret key: its public half does not match");
  }
  b.fill(0);
  return { keyNum, keyId: keyIdOf(keyNum), publicKey, secretKey, encrypted: raw.encrypted };
}
