/**
 * minisign key files: generating a key pair and reading public and secret keys, in the exact
 * formats `minisign -G` writes (Ed25519; secret key optionally encrypted with scrypt).
 *
 * @module
 */

import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scrypt,
  timingSafeEqual,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { UsageError } from "../errors.ts";
import { blake2b } from "./_blake2b.ts";

const ALG_ED = [0x45, 0x64]; // "Ed"
const KDF_SCRYPT = [0x53, 0x63]; // "Sc"
const CHK_B2 = [0x42, 0x32]; // "B2"
const PUBLIC_KEY_BYTES = 42;
const SECRET_KEY_BYTES = 158;
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");
const COMMENT_PREFIX = "untrusted comment: ";

/** libsodium's `crypto_pwhash_scryptsalsa208sha256_OPSLIMIT_SENSITIVE`, minisign's default. */
export const MINISIGN_OPSLIMIT_SENSITIVE = 33554432;
/** libsodium's `crypto_pwhash_scryptsalsa208sha256_MEMLIMIT_SENSITIVE`, minisign's default. */
export const MINISIGN_MEMLIMIT_SENSITIVE = 1073741824;

/** A parsed minisign public key. */
export interface MinisignPublicKey {
  /** The 8-byte key id, as stored. */
  keyNum: Uint8Array;
  /** The key id as minisign prints it: 16 uppercase hex digits (little-endian number). */
  keyId: string;
  /** The raw Ed25519 public key (32 bytes). */
  publicKey: Uint8Array;
}

/** A decrypted minisign secret key. */
export interface MinisignSecretKey extends MinisignPublicKey {
  /** The Ed25519 secret key as libsodium stores it: seed (32) then public key (32). */
  secretKey: Uint8Array;
  /** Whether the key file was encrypted with a passphrase. */
  encrypted: boolean;
}

/** A new minisign key pair, as file contents. */
export interface SigningKeyPair {
  /** The key id, 16 uppercase hex digits. */
  keyId: string;
  /** `minisign.pub` contents: `untrusted comment: minisign public key <ID>` and the key. */
  publicKey: string;
  /** `minisign.key` contents. Keep it secret (mode 0600). */
  secretKey: string;
}

/** scrypt cost limits stored in an encrypted secret key (libsodium opslimit/memlimit). */
export interface KdfLimits {
  /** libsodium `opslimit`. */
  opsLimit: number;
  /** libsodium `memlimit` in bytes. */
  memLimit: number;
}

/** Options of {@linkcode generateSigningKeyPair}. */
export interface GenerateSigningKeyPairOptions {
  /**
   * Encrypts the secret key with this passphrase (scrypt, like `minisign -G`). Without it the
   * key is written unencrypted, like `minisign -G -W`.
   *
   * @default {undefined}
   */
  passphrase?: string;
  /**
   * scrypt cost of the encryption.
   *
   * @default {{ opsLimit: MINISIGN_OPSLIMIT_SENSITIVE, memLimit: MINISIGN_MEMLIMIT_SENSITIVE }}
   */
  kdfLimits?: KdfLimits;
}

/** Options of {@linkcode parseMinisignSecretKey}. */
export interface ParseMinisignSecretKeyOptions {
  /** The passphrase, required when the key file is encrypted. */
  passphrase?: string;
}

function keyIdOf(keyNum: Uint8Array): string {
  return Array.from(keyNum).reverse().map((b) => b.toString(16).padStart(2, "0")).join("")
    .toUpperCase();
}

function b64std(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Strict standard base64 (padding as libsodium's ORIGINAL variant writes it). */
export function decodeBase64Strict(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  const bytes = Buffer.from(s, "base64");
  if (b64std(bytes) !== s) return null;
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function sameBytes(a: Uint8Array, b: ArrayLike<number>, at = 0): boolean {
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

function rawPublic(key: KeyObject): Uint8Array {
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
async function kdfStream(
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

function checksum(keyNum: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return blake2b(32, new Uint8Array(ALG_ED), keyNum, secretKey);
}

function fileLines(text: string): string[] {
  return text.split("\n").map((l) => l.replace(/\r$/, ""));
}

/**
 * Generates an Ed25519 key pair in minisign's file formats (`minisign -G`).
 *
 * @param options A passphrase to encrypt the secret key, and the scrypt cost.
 * @returns The key id and the public and secret key file contents.
 *
 * @example Unencrypted, like `minisign -G -W`
 * ```ts
 * import { generateSigningKeyPair } from "./minisign_keys.ts";
 * const pair = await generateSigningKeyPair();
 * console.log(pair.publicKey.startsWith("untrusted comment: minisign public key ")); // true
 * ```
 */
export async function generateSigningKeyPair(
  options: GenerateSigningKeyPairOptions = {},
): Promise<SigningKeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const seed = new Uint8Array(der.subarray(der.length - 32));
  const pub = rawPublic(publicKey);
  const keyNum = new Uint8Array(randomBytes(8));
  const sk = new Uint8Array(64);
  sk.set(seed);
  sk.set(pub, 32);

  const pk = new Uint8Array(PUBLIC_KEY_BYTES);
  pk.set(ALG_ED);
  pk.set(keyNum, 2);
  pk.set(pub, 10);

  // sig_alg, kdf_alg, chk_alg, kdf_salt[32], opslimit le64, memlimit le64, keynum, sk, chk
  const file = new Uint8Array(SECRET_KEY_BYTES);
  const dv = new DataView(file.buffer);
  file.set(ALG_ED, 0);
  file.set(CHK_B2, 4);
  file.set(keyNum, 54);
  file.set(sk, 62);
  // minisign -G -W leaves the checksum zeroed; we always write it, which every reader accepts.
  file.set(checksum(keyNum, sk), 126);
  if (options.passphrase !== undefined) {
    const limits = options.kdfLimits ??
      { opsLimit: MINISIGN_OPSLIMIT_SENSITIVE, memLimit: MINISIGN_MEMLIMIT_SENSITIVE };
    const salt = new Uint8Array(randomBytes(32));
    file.set(KDF_SCRYPT, 2);
    file.set(salt, 6);
    dv.setBigUint64(38, BigInt(limits.opsLimit), true);
    dv.setBigUint64(46, BigInt(limits.memLimit), true);
    const stream = await kdfStream(options.passphrase, salt, limits.opsLimit, limits.memLimit);
    for (let i = 0; i < 104; i++) file[54 + i]! ^= stream[i]!;
  }
  sk.fill(0);
  return {
    keyId: keyIdOf(keyNum),
    publicKey: `${COMMENT_PREFIX}minisign public key ${keyIdOf(keyNum)}\n${b64std(pk)}\n`,
    secretKey: `${COMMENT_PREFIX}minisign encrypted secret key\n${b64std(file)}\n`,
  };
}

/**
 * Parses a minisign public key: the contents of a `.pub` file, or the bare base64 key line
 * (as given to `minisign -P`).
 *
 * @param text The file contents or the base64 string.
 * @returns The key id and raw Ed25519 public key.
 * @throws {UsageError} If it is not a minisign Ed25519 public key.
 *
 * @example
 * ```ts
 * import { generateSigningKeyPair, parseMinisignPublicKey } from "./minisign_keys.ts";
 * const pair = await generateSigningKeyPair();
 * console.log(parseMinisignPublicKey(pair.publicKey).keyId === pair.keyId); // true
 * ```
 */
export function parseMinisignPublicKey(text: string): MinisignPublicKey {
  const lines = fileLines(text.trim());
  let line: string | undefined;
  if (lines.length === 1) line = lines[0];
  else if (lines.length === 2 && lines[0]!.startsWith(COMMENT_PREFIX)) line = lines[1];
  const bytes = line === undefined ? null : decodeBase64Strict(line.trim());
  if (bytes === null || bytes.length !== PUBLIC_KEY_BYTES) {
    throw new UsageError("Cannot read the minisign public key: not a minisign public key", {
      hint: "Expected a minisign .pub file or its base64 key line (RW...)",
    });
  }
  if (!sameBytes(bytes, ALG_ED)) {
    throw new UsageError("Cannot read the minisign public key: unsupported signature algorithm");
  }
  const keyNum = bytes.slice(2, 10);
  return { keyNum, keyId: keyIdOf(keyNum), publicKey: bytes.slice(10) };
}

/** The parsed but not yet decrypted fields of a secret key file. */
interface RawSecretKey {
  bytes: Uint8Array;
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

/**
 * Parses and, when it is encrypted, decrypts a minisign secret key file.
 *
 * @param text The secret key file contents.
 * @param options The passphrase of an encrypted key.
 * @returns The key id, public key and 64-byte Ed25519 secret key.
 * @throws {UsageError} If the file is malformed, the passphrase is missing or wrong.
 *
 * @example
 * ```ts
 * import { generateSigningKeyPair, parseMinisignSecretKey } from "./minisign_keys.ts";
 * const pair = await generateSigningKeyPair();
 * const key = await parseMinisignSecretKey(pair.secretKey);
 * console.log(key.keyId === pair.keyId, key.encrypted); // true false
 * ```
 */
export async function parseMinisignSecretKey(
  text: string,
  options: ParseMinisignSecretKeyOptions = {},
): Promise<MinisignSecretKey> {
  return await unlockSecretKey(readSecretKeyFile(text), options.passphrase);
}
