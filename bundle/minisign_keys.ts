/**
 * minisign key files: generating a key pair and reading public and secret keys, in the exact
 * formats `minisign -G` writes (Ed25519; secret key optionally encrypted with scrypt).
 *
 * @module
 */

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { UsageError } from "../errors.ts";
import {
  ALG_ED,
  b64std,
  checksum,
  CHK_B2,
  COMMENT_PREFIX,
  decodeBase64Strict,
  fileLines,
  KDF_SCRYPT,
  kdfStream,
  keyIdOf,
  PUBLIC_KEY_BYTES,
  rawPublic,
  readSecretKeyFile,
  sameBytes,
  SECRET_KEY_BYTES,
  unlockSecretKey,
} from "./minisign_format.ts";

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
