/**
 * SHA-256 for the extraction's writer workers (private), without `node:crypto` when the system
 * libcrypto is available: importing `node:crypto` loads the Node compatibility layer into the
 * worker's isolate, ~10 MiB more per worker (measured: `diff` of two 200,000-note bundles
 * peaked at 275-290 MiB with it, 257-266 before the workers hashed, 260 without it). Synchronous calls: the worker
 * has nothing else to do meanwhile. Same digests either way (tests compare them).
 *
 * @module
 */
import { dlopenFirst, env, ffiGranted } from "./_env.ts";
import { EVP_DIGEST_SYMBOLS } from "./_evp_digest.ts";
import { libcryptoPaths } from "./_libcrypto.ts";

/** A SHA-256 in pieces: `begin`, `update`s, `end`. One at a time per hasher. */
export interface WorkerSha256 {
  begin(): void;
  update(bytes: Uint8Array): void;
  /** Writes the digest (32 bytes) into `into` at `at`. */
  end(into: Uint8Array, at: number): void;
}

/** Two hashers (a whole file, and the file open across batches) by libcrypto, if available. */
export function libWorkerSha256(): [WorkerSha256, WorkerSha256] | undefined {
  const lib = ffiGranted() && env("MEMSNAP_CRYPTO") !== "builtin"
    ? dlopenFirst(libcryptoPaths(), EVP_DIGEST_SYMBOLS, (_path, dl) => dl.symbols)
    : undefined;
  const md = lib?.EVP_sha256() ?? null;
  if (lib === undefined || md === null) return undefined;
  const make = (): WorkerSha256 => {
    const ctx = lib.EVP_MD_CTX_new();
    if (ctx === null) throw new Error("libcrypto EVP_MD_CTX_new failed");
    const check = (ok: number, what: string): void => {
      if (ok !== 1) throw new Error(`libcrypto ${what} failed`);
    };
    return {
      begin: () => check(lib.EVP_DigestInit_ex(ctx, md, null), "EVP_DigestInit_ex"),
      update: (b) => check(lib.EVP_DigestUpdate(ctx, b, BigInt(b.length)), "EVP_DigestUpdate"),
      end(into, at) {
        check(lib.EVP_DigestFinal_ex(ctx, into.subarray(at, at + 32), null), "EVP_DigestFinal_ex");
      },
    };
  };
  return [make(), make()];
}

/** The same by `node:crypto` (loaded only then). */
export async function nodeWorkerSha256(): Promise<[WorkerSha256, WorkerSha256]> {
  const { createHash } = await import("node:crypto");
  const make = (): WorkerSha256 => {
    let h: ReturnType<typeof createHash> | undefined;
    return {
      begin: () => void (h = createHash("sha256")),
      update: (b) => void h!.update(b),
      end(into, at) {
        into.set(h!.digest(), at);
        h = undefined;
      },
    };
  };
  return [make(), make()];
}
