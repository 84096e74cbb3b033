/**
 * {@linkcode ageDecipher}: native, streaming age v1 decryption with X25519 identities.
 *
 * @module
 */

import type { KeyObject } from "node:crypto";
import { RefusedError, UsageError } from "../errors.ts";
import type { PayloadDecipher } from "./crypto_types.ts";
import {
  AGE_VERSION_LINE,
  CHUNK_SIZE,
  chunkOpener,
  corrupt,
  decodeIdentity,
  DEFAULT_MAX_SCRYPT_WORK_FACTOR,
  ENC_CHUNK_SIZE,
  findMacLine,
  headerMac,
  hkdf,
  incrementNonce,
  macEqual,
  MAX_HEADER_SIZE,
  type ParsedHeader,
  parseHeader,
  PAYLOAD_NONCE_SIZE,
  TAG_SIZE,
  unwrapScrypt,
  unwrapX25519,
  x25519PrivateKey,
  x25519PublicBytes,
} from "./age_format.ts";

interface Identity {
  key: KeyObject;
  pub: Uint8Array;
}

const MAGIC = new TextEncoder().encode(AGE_VERSION_LINE + "\n");

/** Options of {@linkcode ageDecipher}. */
export interface AgeDecipherOptions {
  /**
   * Passphrase for payloads encrypted with `age -p` (a lone scrypt stanza). Identities are
   * not tried on such files, and the passphrase is not tried on files with recipients.
   *
   * @default {undefined}
   */
  passphrase?: string;
  /**
   * Largest scrypt work factor (log2 N) accepted with a passphrase, as in age.
   *
   * @default {22}
   */
  maxScryptWorkFactor?: number;
}

/**
 * Creates a {@linkcode PayloadDecipher} that decrypts age v1 files with X25519 identities.
 *
 * Decryption is strict: a malformed header, non-canonical base64, a wrong header MAC, a
 * tampered or reordered chunk, a truncated stream or data after the final chunk make the
 * stream error; plaintext is only released chunk by chunk after its tag is checked.
 *
 * @param identities `AGE-SECRET-KEY-1...` strings (see {@linkcode parseIdentityFile}); may
 *   be empty when `options.passphrase` is given.
 * @param options A passphrase for `age -p` files, and the scrypt work factor limit.
 * @returns The decipher.
 * @throws {UsageError} If there is neither an identity nor a passphrase, or an identity is
 *   malformed (named by position, never echoed).
 *
 * The stream returned by `decrypt()` errors with:
 * - {@linkcode RefusedError} when no identity matches any recipient stanza, the passphrase
 *   is wrong, or the scrypt work factor is above the limit;
 * - {@linkcode CorruptBundleError} (a {@linkcode VerificationError}) when the ciphertext is
 *   malformed, tampered or truncated.
 *
 * @example Round trip
 * ```ts
 * import { ageCipher } from "./age_cipher.ts";
 * import { ageDecipher } from "./age_decipher.ts";
 * import { generateAgeIdentity } from "./age_keys.ts";
 *
 * const { identity, recipient } = generateAgeIdentity();
 * const plain = new TextEncoder().encode("memory");
 * const out = await new Response(
 *   ReadableStream.from([plain])
 *     .pipeThrough(ageCipher([recipient]).encrypt())
 *     .pipeThrough(ageDecipher([identity]).decrypt()),
 * ).text();
 * console.log(out); // memory
 * ```
 */
export function ageDecipher(
  identities: string[],
  options: AgeDecipherOptions = {},
): PayloadDecipher {
  if (identities.length === 0 && options.passphrase === undefined) {
    throw new UsageError("Cannot decrypt the payload: no age identity given");
  }
  const ids: Identity[] = identities.map((s, i) => {
    const scalar = decodeIdentity(s.trim());
    if (scalar === null) {
      throw new UsageError(
        `Cannot decrypt the payload: identity #${i + 1} is not an age X25519 identity`,
        { hint: "Expected AGE-SECRET-KEY-1... as written by age-keygen" },
      );
    }
    const key = x25519PrivateKey(scalar);
    return { key, pub: x25519PublicBytes(key) };
  });
  const secrets: Secrets = {
    ids,
    passphrase: options.passphrase,
    maxWorkFactor: options.maxScryptWorkFactor ?? DEFAULT_MAX_SCRYPT_WORK_FACTOR,
  };
  return { decrypt: (): TransformStream<Uint8Array, Uint8Array> => decryptStream(secrets) };
}

interface Secrets {
  ids: Identity[];
  passphrase: string | undefined;
  maxWorkFactor: number;
}

function checkMac(fileKey: Uint8Array, parsed: ParsedHeader): Uint8Array {
  if (!macEqual(headerMac(fileKey, parsed.macInput), parsed.mac)) {
    throw corrupt("age_header_mac", "the age header MAC does not match (tampered header)");
  }
  return fileKey;
}

/** Finds the file key; synchronous unless a passphrase (scrypt) stanza must be tried. */
function unlockHeader(header: Uint8Array, secrets: Secrets): Uint8Array | Promise<Uint8Array> {
  const parsed = parseHeader(header);
  const scryptStanza = parsed.stanzas.find((s) => s.type === "scrypt");
  if (scryptStanza !== undefined) {
    if (parsed.stanzas.length > 1) {
      throw corrupt("age_header", "an scrypt stanza must be the only stanza of an age header");
    }
    if (secrets.passphrase === undefined) {
      throw new RefusedError("Cannot decrypt the payload: no identity matches its recipients", {
        hint: "The payload is encrypted with a passphrase, not to a recipient",
      });
    }
    return unwrapScrypt(scryptStanza, secrets.passphrase, secrets.maxWorkFactor).then((key) => {
      if (key === null) throw new RefusedError("Cannot decrypt the payload: wrong passphrase");
      return checkMac(key, parsed);
    });
  }
  let fileKey: Uint8Array | null = null;
  for (const stanza of parsed.stanzas) {
    if (stanza.type !== "X25519") continue;
    for (const id of secrets.ids) {
      fileKey = unwrapX25519(stanza, id);
      if (fileKey !== null) break;
    }
    if (fileKey !== null) break;
  }
  if (fileKey === null) {
    throw new RefusedError("Cannot decrypt the payload: no identity matches its recipients", {
      hint: "Pass the age identity of one of the recipients the bundle was encrypted to",
    });
  }
  return checkMac(fileKey, parsed);
}

function decryptStream(secrets: Secrets): TransformStream<Uint8Array, Uint8Array> {
  let state: "header" | "nonce" | "payload" = "header";
  let head = new Uint8Array(4096);
  let headLen = 0;
  let macLineAt = -1;
  let fileKey: Uint8Array | null = null;
  let opener: ReturnType<typeof chunkOpener> | null = null;
  const nonce = new Uint8Array(12);
  let chunkIndex = 0;
  const buf = new Uint8Array(ENC_CHUNK_SIZE);
  let fill = 0;

  /** Where a chunk that failed goes when it is tried with the other last-chunk flag. */
  let scratch: Uint8Array | undefined;
  const tryOpen = (ct: Uint8Array, last: boolean, out: Uint8Array, at: number): boolean => {
    nonce[11] = last ? 1 : 0;
    return opener!.open(ct, nonce, out, at);
  };

  /** Opens one chunk into `out` at `at`; returns the offset after its plaintext. */
  const open = (ct: Uint8Array, last: boolean, out: Uint8Array, at: number): number => {
    if (!tryOpen(ct, last, out, at)) {
      // Name the likely cause: a final chunk followed by more bytes, or a stream cut at a
      // chunk boundary; otherwise the chunk was tampered with.
      scratch ??= new Uint8Array(CHUNK_SIZE);
      if (ct.length === ENC_CHUNK_SIZE && tryOpen(ct, !last, scratch, 0)) {
        throw last
          ? corrupt("age_truncated", `the age payload is truncated after chunk ${chunkIndex}`)
          : corrupt("age_trailing_data", "data follows the final chunk of the age payload");
      }
      throw corrupt("age_chunk", `payload chunk ${chunkIndex} failed authentication`);
    }
    const n = Math.max(0, ct.length - TAG_SIZE);
    if (last && n === 0 && chunkIndex > 0) {
      throw corrupt("age_chunk", "the age payload ends with an empty chunk");
    }
    incrementNonce(nonce);
    chunkIndex++;
    return at + n;
  };

  // Feeds payload bytes; releases the plaintext of the chunks they complete, in one buffer
  // (a full chunk is opened only once more bytes follow: the last chunk has its own flag).
  const payload = (input: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>) => {
    const chunks = Math.floor((fill + input.length) / ENC_CHUNK_SIZE);
    const out = new Uint8Array(chunks * CHUNK_SIZE);
    let at = 0;
    let off = 0;
    while (off < input.length) {
      if (fill === ENC_CHUNK_SIZE) {
        at = open(buf, false, out, at);
        fill = 0;
      }
      if (fill === 0 && input.length - off > ENC_CHUNK_SIZE) {
        at = open(input.subarray(off, off + ENC_CHUNK_SIZE), false, out, at);
        off += ENC_CHUNK_SIZE;
        continue;
      }
      const n = Math.min(ENC_CHUNK_SIZE - fill, input.length - off);
      buf.set(input.subarray(off, off + n), fill);
      fill += n;
      off += n;
    }
    if (at > 0) controller.enqueue(out.subarray(0, at));
  };

  // After the header: the payload nonce, then STREAM chunks.
  const afterHeader = (
    input: Uint8Array,
    controller: TransformStreamDefaultController<Uint8Array>,
  ): void => {
    if (state === "nonce") {
      const need = PAYLOAD_NONCE_SIZE - fill;
      buf.set(input.subarray(0, need), fill);
      fill += Math.min(need, input.length);
      if (fill < PAYLOAD_NONCE_SIZE) return;
      opener = chunkOpener(hkdf(fileKey!, buf.slice(0, PAYLOAD_NONCE_SIZE), "payload"));
      fileKey = null;
      fill = 0;
      state = "payload";
      input = input.subarray(need);
    }
    payload(input, controller);
  };

  return new TransformStream<Uint8Array, Uint8Array>({
    transform(input, controller): void | Promise<void> {
      if (state !== "header") return afterHeader(input, controller);
      if (headLen === 0) {
        // Common case: the whole header is in the first piece; parse it in place.
        const at = findMacLine(input, 0, input.length);
        const nl = at === -1 ? -1 : input.subarray(at + 1).indexOf(0x0a);
        if (nl !== -1) return unlock(input.subarray(0, at + nl + 2), input.subarray(at + nl + 2));
        if (input.length > MAX_HEADER_SIZE) {
          throw corrupt("age_header", `the age header is larger than ${MAX_HEADER_SIZE} bytes`);
        }
      }
      if (headLen + input.length > head.length) {
        const grown = new Uint8Array(Math.max(head.length * 2, headLen + input.length));
        grown.set(head.subarray(0, headLen));
        head = grown;
      }
      head.set(input, headLen);
      const prevLen = headLen;
      headLen += input.length;
      const cmp = Math.min(headLen, MAGIC.length);
      for (let i = 0; i < cmp; i++) {
        if (head[i] !== MAGIC[i]) throw corrupt("age_header", "not an age v1 file");
      }
      if (macLineAt === -1) macLineAt = findMacLine(head, Math.max(0, prevLen - 3), headLen);
      const nl = macLineAt === -1 ? -1 : head.subarray(macLineAt + 1, headLen).indexOf(0x0a);
      if (nl === -1) {
        if (headLen > MAX_HEADER_SIZE) {
          throw corrupt("age_header", `the age header is larger than ${MAX_HEADER_SIZE} bytes`);
        }
        return;
      }
      const headerEnd = macLineAt + 1 + nl + 1;
      const whole = head.subarray(0, headLen);
      head = new Uint8Array(0);
      return unlock(whole.subarray(0, headerEnd), whole.subarray(headerEnd));

      function unlock(header: Uint8Array, rest: Uint8Array): void | Promise<void> {
        for (let i = 0; i < MAGIC.length; i++) {
          if (header[i] !== MAGIC[i]) throw corrupt("age_header", "not an age v1 file");
        }
        const unlocked = unlockHeader(header, secrets);
        const proceed = (k: Uint8Array): void => {
          fileKey = k;
          state = "nonce";
          afterHeader(rest, controller);
        };
        return unlocked instanceof Promise ? unlocked.then(proceed) : proceed(unlocked);
      }
    },
    flush(controller) {
      if (state === "header") {
        throw corrupt("age_truncated", "the age file ends inside its header");
      }
      if (state === "nonce") {
        throw corrupt("age_truncated", "the age file ends before its payload nonce");
      }
      if (fill < TAG_SIZE) {
        throw corrupt(
          "age_truncated",
          fill === 0 && chunkIndex === 0
            ? "the age payload is missing"
            : "the age payload is truncated",
        );
      }
      const out = new Uint8Array(fill - TAG_SIZE);
      try {
        open(buf.subarray(0, fill), true, out, 0);
      } finally {
        opener?.free();
        opener = null;
      }
      controller.enqueue(out);
    },
  });
}
