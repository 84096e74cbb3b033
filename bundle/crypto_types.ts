/**
 * Hooks through which bundle encryption (age) and signing (minisign) plug into the bundle
 * core. The bundle core never sees keys; it only streams bytes through these objects.
 *
 * Nothing in the manifest depends on ciphertext bytes other than `payload.size` and
 * `payload.sha256`, so a payload re-encrypted by another tool stays valid once those two
 * fields are updated (and the manifest re-signed).
 *
 * @module
 */
import type { Manifest } from "./types.ts";

/** Encrypts the compressed payload (`payload.tar.zst` → `payload.tar.zst.age`). */
export interface PayloadCipher {
  /** The encryption scheme; always `"age"` in format v1. */
  scheme: "age";
  /** Recipient fingerprints recorded in the manifest (`payload.encryption.recipients`). */
  recipients: string[];
  /** Returns a fresh transform from plaintext to ciphertext; called once per bundle. */
  encrypt(): TransformStream<Uint8Array, Uint8Array>;
  /**
   * Optional: a fresh synchronous encryptor giving the same output as `encrypt()`, which the
   * bundle writer prefers (no stream between it and the compressor, and no buffer per chunk).
   */
  sealer?(): PayloadSealer;
}

/**
 * A synchronous encryptor (see {@linkcode PayloadCipher.sealer}). Each output is a view that
 * may be overwritten by the next call: the caller writes or copies it before calling again.
 */
export interface PayloadSealer {
  /** Encrypts the next plaintext bytes; returns the ciphertext they complete (maybe empty). */
  update(input: Uint8Array): Uint8Array;
  /** Ends the plaintext; returns the rest of the ciphertext. */
  final(): Uint8Array;
  /** Releases the encryptor without ending it (after an error). */
  dispose(): void;
}

/** Decrypts an encrypted payload. */
export interface PayloadDecipher {
  /**
   * Returns a fresh transform from ciphertext to plaintext; called once per read. It must
   * error (not end early) if the ciphertext is truncated or fails authentication, with a
   * `VerificationError` (e.g. `CorruptBundleError`): the reader reports those as verification
   * failures, and rethrows anything else (a `RefusedError` for a wrong identity, say).
   */
  decrypt(): TransformStream<Uint8Array, Uint8Array>;
}

/** Signs the manifest bytes (minisign). */
export interface ManifestSigner {
  /**
   * Signs the canonical manifest bytes.
   *
   * @param manifestBytes The exact bytes of `manifest.json`.
   * @param manifest The parsed manifest (for a trusted comment, say).
   * @returns The full `manifest.json.minisig` file bytes.
   */
  sign(manifestBytes: Uint8Array, manifest: Manifest): Promise<Uint8Array>;
}

/** Verifies a manifest signature. */
export interface ManifestVerifier {
  /**
   * Verifies `signature` (the `.minisig` file bytes) over `manifestBytes`.
   *
   * @throws {VerificationError} If the signature does not hold.
   */
  verify(manifestBytes: Uint8Array, signature: Uint8Array): Promise<void>;
}
