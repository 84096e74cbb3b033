/**
 * {@linkcode generateKeys}: the key files `memsnap keygen --out DIR` writes.
 *
 * @module
 */

import { join } from "node:path";
import { RefusedError } from "../errors.ts";
import { generateAgeIdentity } from "./age_keys.ts";
import { generateSigningKeyPair, type KdfLimits } from "./minisign_keys.ts";

/** Options of {@linkcode generateKeys}. */
export interface GenerateKeysOptions {
  /**
   * Encrypts the minisign secret key (`memsnap.key`) with this passphrase. The age identity
   * is never encrypted (like `age-keygen`); protect it with file permissions.
   *
   * @default {undefined}
   */
  passphrase?: string;
  /**
   * scrypt cost for the encrypted signing key.
   *
   * @default {minisign's "sensitive" limits}
   */
  kdfLimits?: KdfLimits;
}

/** What {@linkcode generateKeys} wrote. */
export interface GeneratedKeys {
  /** The minisign key id (16 uppercase hex digits). */
  keyId: string;
  /** The age recipient (`age1...`) that snapshots are encrypted to. */
  recipient: string;
  /** Absolute or relative paths of the four files, as joined from `outDir`. */
  files: {
    /** minisign public key: verifies signatures. */
    signingPublicKey: string;
    /** minisign secret key (0600): signs manifests. */
    signingSecretKey: string;
    /** age identity (0600): decrypts payloads. */
    ageIdentity: string;
    /** age recipient: encrypts payloads. */
    ageRecipient: string;
  };
}

/**
 * Generates a signing key pair and an age identity and writes them to `outDir`:
 *
 * - `memsnap.pub`: minisign public key (`minisign -V -p memsnap.pub` reads it);
 * - `memsnap.key`: minisign secret key, mode 0600, encrypted when a passphrase is given;
 * - `age.key`: age identity in `age-keygen` format (`# created:`, `# public key:`), mode 0600;
 * - `age.pub`: the age recipient, one line.
 *
 * A host that only takes snapshots needs `age.pub` (and `memsnap.key` to sign); a host that
 * restores also needs `age.key`.
 *
 * @param outDir The directory; created if missing.
 * @param options Passphrase for the signing key.
 * @returns The key id, the recipient and the file paths.
 * @throws {RefusedError} If any of the four files already exists; nothing is overwritten.
 *
 * @example
 * ```ts
 * import { generateKeys } from "./keys.ts";
 * const dir = await Deno.makeTempDir();
 * const keys = await generateKeys(dir);
 * console.log(keys.recipient.startsWith("age1")); // true
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function generateKeys(
  outDir: string,
  options: GenerateKeysOptions = {},
): Promise<GeneratedKeys> {
  const files = {
    signingPublicKey: join(outDir, "memsnap.pub"),
    signingSecretKey: join(outDir, "memsnap.key"),
    ageIdentity: join(outDir, "age.key"),
    ageRecipient: join(outDir, "age.pub"),
  };
  const existing: string[] = [];
  for (const f of Object.values(files)) {
    try {
      await Deno.lstat(f);
      existing.push(f);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  if (existing.length > 0) {
    throw new RefusedError(`Cannot generate keys: ${existing.join(", ")} already exists`, {
      hint: "Choose another --out directory or move the existing keys away",
    });
  }
  const signing = await generateSigningKeyPair({
    ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
    ...(options.kdfLimits === undefined ? {} : { kdfLimits: options.kdfLimits }),
  });
  const age = generateAgeIdentity();
  const created = new Date().toISOString().replace(/\.\d{3}Z$/, "Z");
  await Deno.mkdir(outDir, { recursive: true, mode: 0o700 });
  const writes: [string, string, number][] = [
    [files.signingSecretKey, signing.secretKey, 0o600],
    [
      files.ageIdentity,
      `# created: ${created}\n# public key: ${age.recipient}\n${age.identity}\n`,
      0o600,
    ],
    [files.signingPublicKey, signing.publicKey, 0o644],
    [files.ageRecipient, `${age.recipient}\n`, 0o644],
  ];
  const written: string[] = [];
  try {
    for (const [path, data, mode] of writes) {
      await Deno.writeTextFile(path, data, { createNew: true, mode });
      written.push(path);
      await Deno.chmod(path, mode); // the mode given at creation is subject to the umask
    }
  } catch (e) {
    for (const p of written) await Deno.remove(p).catch(() => {});
    if (e instanceof Deno.errors.AlreadyExists) {
      throw new RefusedError(`Cannot generate keys: a key file appeared in ${outDir} meanwhile`, {
        cause: e,
      });
    }
    throw e;
  }
  return { keyId: signing.keyId, recipient: age.recipient, files };
}
