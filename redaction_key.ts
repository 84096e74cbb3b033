/**
 * The per-store key of redaction tokens, so the same secret gives the same token across
 * artifacts and snapshots of one store, without revealing it.
 *
 * @module
 */
import { join } from "node:path";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { UsageError } from "./errors.ts";
import type { Store } from "./store/types.ts";

/**
 * Returns the store's redaction key: `MEMSNAP_REDACTION_KEY` (64 hex chars) if set; else the
 * file `.memsnap/redaction.key` in a local store, created (0600) on first use; for remote
 * stores, a key file in this host's state dir (`$XDG_STATE_HOME/memsnap/redaction-keys/`),
 * never in the bucket, where it would let a reader test guesses of redacted secrets. Hosts
 * that share a remote store and want the same tokens set the same `MEMSNAP_REDACTION_KEY`.
 *
 * @param store The store.
 * @returns 32 key bytes.
 */
export async function redactionKey(store: Store): Promise<Uint8Array> {
  const env = Deno.env.get("MEMSNAP_REDACTION_KEY");
  if (env !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(env)) {
      throw new UsageError(
        "Cannot use MEMSNAP_REDACTION_KEY: expected 64 hex characters (32 bytes)",
      );
    }
    return new Uint8Array(Buffer.from(env, "hex"));
  }
  const dir = store.url.startsWith("s3://") ? remoteKeyDir(store.url) : join(store.url, ".memsnap");
  await Deno.mkdir(dir, { recursive: true });
  const path = join(dir, "redaction.key");
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (/^[0-9a-f]{64}$/.test(text)) return new Uint8Array(Buffer.from(text, "hex"));
    throw new UsageError(`Cannot use the redaction key ${path}: expected 64 hex characters`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // Written whole to a file of its own, then linked into place: the key file appears with its
  // content or not at all, so a process that reads it as another creates it (two agents'
  // first snapshots into a new store) never sees it empty; the first link wins.
  const key = crypto.getRandomValues(new Uint8Array(32));
  const tmp = join(dir, `.redaction.key.${crypto.randomUUID()}.tmp`);
  await Deno.writeTextFile(tmp, Buffer.from(key).toString("hex") + "\n", {
    createNew: true,
    mode: 0o600,
  });
  try {
    await Deno.link(tmp, path);
    return key;
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    return await redactionKey(store); // another process's key, whole
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

function remoteKeyDir(url: string): string {
  const base = Deno.env.get("XDG_STATE_HOME") ||
    join(Deno.env.get("HOME") ?? ".", ".local", "state");
  return join(
    base,
    "memsnap",
    "redaction-keys",
    createHash("sha256").update(url).digest("hex").slice(0, 16),
  );
}
