/**
 * {@linkcode minisignSigner}: signs manifests with a minisign secret key, producing the exact
 * `.minisig` files `minisign -S` writes (prehashed "ED" signatures).
 *
 * @module
 */

import { createHash, sign } from "node:crypto";
import { Buffer } from "node:buffer";
import { UsageError } from "../errors.ts";
import type { ManifestSigner } from "./crypto_types.ts";
import type { Manifest } from "./types.ts";
import type { MinisignSecretKey } from "./minisign_keys.ts";
import { ed25519PrivateKey, readSecretKeyFile, unlockSecretKey } from "./minisign_format.ts";

/** The untrusted comment minisign writes by default. */
const DEFAULT_UNTRUSTED_COMMENT = "signature from minisign secret key";
const MAX_TRUSTED_COMMENT = 8192 - "trusted comment: ".length - 1;

/** Options of {@linkcode minisignSigner}. */
export interface MinisignSignerOptions {
  /** Passphrase of an encrypted secret key file. */
  passphrase?: string;
  /**
   * Builds the trusted comment (signed, shown by `minisign -V`). One line.
   *
   * @default {defaultTrustedComment}
   */
  trustedComment?: (manifest: Manifest) => string;
  /**
   * The untrusted comment (not signed).
   *
   * @default {"signature from minisign secret key"}
   */
  untrustedComment?: string;
}

/**
 * The default trusted comment: `timestamp:<unix seconds of created_at>`, the snapshot id and
 * the payload's SHA-256, tab-separated like minisign's own `timestamp:…\tfile:…`.
 *
 * @param manifest The manifest being signed.
 * @returns The trusted comment.
 *
 * @example
 * ```ts
 * import { defaultTrustedComment } from "./minisign_signer.ts";
 * import type { Manifest } from "./types.ts";
 * const m = {
 *   created_at: "2026-11-25T19:52:22.123Z",
 *   snapshot_id: "20261125T195222123Z-1a2b3c4d",
 *   payload: { sha256: "ab".repeat(32) },
 * } as Manifest;
 * console.log(defaultTrustedComment(m).split("\t")[0]); // timestamp:1795636342
 * ```
 */
export function defaultTrustedComment(manifest: Manifest): string {
  const seconds = Math.floor(Date.parse(manifest.created_at) / 1000);
  return `timestamp:${Number.isFinite(seconds) ? seconds : 0}\tsnapshot:${manifest.snapshot_id}` +
    `\tpayload_sha256:${manifest.payload.sha256}`;
}

function checkComment(what: string, c: string, max: number): void {
  if (/[\r\n]/.test(c)) {
    throw new UsageError(`Cannot sign the manifest: the ${what} comment spans several lines`);
  }
  if (new TextEncoder().encode(c).length > max) {
    throw new UsageError(`Cannot sign the manifest: the ${what} comment is too long`);
  }
}

/**
 * Creates a {@linkcode ManifestSigner} from a minisign secret key file.
 *
 * Signatures are prehashed (algorithm `ED`: Ed25519 over BLAKE2b-512 of the manifest) with a
 * trusted comment and its global signature, exactly as `minisign -S` writes them, so
 * `minisign -V -p memsnap.pub -m manifest.json` verifies them. Ed25519 is deterministic and
 * the default trusted comment uses the manifest's `created_at`, so the same manifest and key
 * always give the same signature file.
 *
 * The key file's structure is checked at once; an encrypted key is decrypted on first use.
 *
 * @param secretKeyFileText The contents of a minisign secret key file.
 * @param options Passphrase, trusted and untrusted comments.
 * @returns The signer.
 * @throws {UsageError} If the key file is malformed, or (from `sign()`) the passphrase is
 *   missing or wrong, or a comment is not one line.
 *
 * @example
 * ```ts
 * import { minisignSigner } from "./minisign_signer.ts";
 * import { generateSigningKeyPair } from "./minisign_keys.ts";
 * import type { Manifest } from "./types.ts";
 *
 * const pair = await generateSigningKeyPair();
 * const manifest = {
 *   created_at: "2026-11-25T19:52:22.123Z",
 *   snapshot_id: "20261125T195222123Z-1a2b3c4d",
 *   payload: { sha256: "00".repeat(32) },
 * } as Manifest;
 * const sig = await minisignSigner(pair.secretKey).sign(new TextEncoder().encode("{}"), manifest);
 * console.log(new TextDecoder().decode(sig).split("\n")[2]?.startsWith("trusted comment: ")); // true
 * ```
 */
export function minisignSigner(
  secretKeyFileText: string,
  options: MinisignSignerOptions = {},
): ManifestSigner {
  const raw = readSecretKeyFile(secretKeyFileText);
  const untrusted = options.untrustedComment ?? DEFAULT_UNTRUSTED_COMMENT;
  checkComment("untrusted", untrusted, 1024 - "untrusted comment: ".length - 1);
  const trustedOf = options.trustedComment ?? defaultTrustedComment;
  let key: Promise<MinisignSecretKey> | undefined;
  return {
    async sign(manifestBytes: Uint8Array, manifest: Manifest): Promise<Uint8Array> {
      const trusted = trustedOf(manifest);
      checkComment("trusted", trusted, MAX_TRUSTED_COMMENT);
      key ??= unlockSecretKey(raw, options.passphrase);
      const k = await key.catch((e) => {
        key = undefined;
        throw e;
      });
      const priv = ed25519PrivateKey(k.secretKey.subarray(0, 32));
      const prehash = createHash("blake2b512").update(manifestBytes).digest();
      const sig = sign(null, prehash, priv);
      const sigStruct = new Uint8Array(74);
      sigStruct.set([0x45, 0x44]); // "ED"
      sigStruct.set(k.keyNum, 2);
      sigStruct.set(sig, 10);
      const global = sign(null, Buffer.concat([sig, Buffer.from(trusted, "utf8")]), priv);
      const text =
        `untrusted comment: ${untrusted}\n${Buffer.from(sigStruct).toString("base64")}\n` +
        `trusted comment: ${trusted}\n${global.toString("base64")}\n`;
      return new TextEncoder().encode(text);
    },
  };
}
