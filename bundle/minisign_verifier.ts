/**
 * {@linkcode minisignVerifier}: verifies `.minisig` signatures of manifests like
 * `minisign -V`, both prehashed (`ED`) and legacy (`Ed`) ones.
 *
 * @module
 */

import { createHash, verify } from "node:crypto";
import { Buffer } from "node:buffer";
import { VerificationError } from "../errors.ts";
import type { ManifestVerifier } from "./crypto_types.ts";
import { type MinisignPublicKey, parseMinisignPublicKey } from "./minisign_keys.ts";
import { decodeBase64Strict, ed25519PublicKey, keyIdOf } from "./minisign_format.ts";

/** A parsed `.minisig` file. */
export interface MinisignSignature {
  /** `true` for `ED` (Ed25519 over BLAKE2b-512 of the message), `false` for legacy `Ed`. */
  prehashed: boolean;
  /** The key id the signature claims, 16 uppercase hex digits. */
  keyId: string;
  /** The 8-byte key number. */
  keyNum: Uint8Array;
  /** The Ed25519 signature of the message (or its prehash). */
  signature: Uint8Array;
  /** The untrusted comment (without its prefix). */
  untrustedComment: string;
  /** The trusted comment (without its prefix). */
  trustedComment: string;
  /** The Ed25519 signature of `signature || trustedComment`. */
  globalSignature: Uint8Array;
}

function fail(check: string, detail: string): VerificationError {
  const message = `Cannot verify the manifest signature: ${detail}`;
  return new VerificationError(message, [{ check, path: "manifest.json.minisig", detail }]);
}

/**
 * Parses a `.minisig` file strictly.
 *
 * @param bytes The file bytes.
 * @returns The parsed signature.
 * @throws {VerificationError} If the file is malformed or the algorithm unsupported.
 *
 * @example
 * ```ts
 * import { parseMinisignSignature } from "./minisign_verifier.ts";
 * try {
 *   parseMinisignSignature(new TextEncoder().encode("not a signature"));
 * } catch (e) {
 *   console.log((e as Error).name); // VerificationError
 * }
 * ```
 */
export function parseMinisignSignature(bytes: Uint8Array): MinisignSignature {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fail("signature_format", "the signature file is not UTF-8 text");
  }
  const lines = text.split("\n").map((l) => l.replace(/\r$/, ""));
  while (lines.length > 4 && lines[lines.length - 1] === "") lines.pop();
  const [c1, s1, c2, s2] = lines;
  if (
    lines.length !== 4 || c1 === undefined || s1 === undefined || c2 === undefined ||
    s2 === undefined
  ) {
    throw fail("signature_format", "the signature file does not have 4 lines");
  }
  if (!c1.startsWith("untrusted comment: ")) {
    throw fail("signature_format", 'line 1 does not start with "untrusted comment: "');
  }
  if (!c2.startsWith("trusted comment: ")) {
    throw fail("signature_format", 'line 3 does not start with "trusted comment: "');
  }
  const sig = decodeBase64Strict(s1.trim());
  const global = decodeBase64Strict(s2.trim());
  if (sig === null || sig.length !== 74 || global === null || global.length !== 64) {
    throw fail("signature_format", "the signature lines are not valid base64 signatures");
  }
  let prehashed: boolean;
  if (sig[0] === 0x45 && sig[1] === 0x44) prehashed = true;
  else if (sig[0] === 0x45 && sig[1] === 0x64) prehashed = false;
  else throw fail("signature_format", "unsupported signature algorithm");
  const keyNum = sig.slice(2, 10);
  return {
    prehashed,
    keyNum,
    keyId: keyIdOf(keyNum),
    signature: sig.slice(10),
    untrustedComment: c1.slice("untrusted comment: ".length),
    trustedComment: c2.slice("trusted comment: ".length),
    globalSignature: global,
  };
}

/**
 * Creates a {@linkcode ManifestVerifier} for one minisign public key.
 *
 * `verify()` checks, like `minisign -V`: the key id, the signature of the manifest bytes
 * (prehashed `ED` or legacy `Ed`), and the global signature over the trusted comment.
 *
 * @param publicKey A minisign public key file's contents or its bare base64 key (`RW...`).
 * @returns The verifier.
 * @throws {UsageError} If `publicKey` is not a minisign public key.
 *
 * `verify()` rejects with {@linkcode VerificationError} when the signature file is
 * malformed, was made by another key ("signed by a different key (key id X, expected Y)"),
 * or does not hold for the manifest or the trusted comment.
 *
 * @example
 * ```ts
 * import { minisignSigner } from "./minisign_signer.ts";
 * import { minisignVerifier } from "./minisign_verifier.ts";
 * import { generateSigningKeyPair } from "./minisign_keys.ts";
 * import type { Manifest } from "./types.ts";
 *
 * const pair = await generateSigningKeyPair();
 * const manifest = {
 *   created_at: "2026-11-25T19:52:22.123Z",
 *   snapshot_id: "s1",
 *   payload: { sha256: "00".repeat(32) },
 * } as Manifest;
 * const bytes = new TextEncoder().encode("{}");
 * const sig = await minisignSigner(pair.secretKey).sign(bytes, manifest);
 * await minisignVerifier(pair.publicKey).verify(bytes, sig); // resolves
 * ```
 */
export function minisignVerifier(publicKey: string): ManifestVerifier {
  const pk: MinisignPublicKey = parseMinisignPublicKey(publicKey);
  const key = ed25519PublicKey(pk.publicKey);
  return {
    verify(manifestBytes: Uint8Array, signature: Uint8Array): Promise<void> {
      try {
        const s = parseMinisignSignature(signature);
        if (s.keyId !== pk.keyId) {
          throw fail(
            "signature_key",
            `signed by a different key (key id ${s.keyId}, expected ${pk.keyId})`,
          );
        }
        const message = s.prehashed
          ? createHash("blake2b512").update(manifestBytes).digest()
          : manifestBytes;
        if (!verify(null, message, key, s.signature)) {
          throw fail("signature", "the signature does not match manifest.json");
        }
        const signed = Buffer.concat([s.signature, Buffer.from(s.trustedComment, "utf8")]);
        if (!verify(null, signed, key, s.globalSignature)) {
          throw fail("signature_comment", "the trusted comment's signature does not hold");
        }
        return Promise.resolve();
      } catch (e) {
        return Promise.reject(e);
      }
    },
  };
}
