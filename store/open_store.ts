// Copyright memsnap authors. MIT license.
/**
 * Opens a store from the location the user wrote.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import type { Store } from "./types.ts";
import { LocalStore, type LocalStoreOptions } from "./local_store.ts";
import type { S3StoreOptions } from "./s3_store.ts";

/** Options of {@linkcode openStore}: those of the local store and of the S3 store. */
export interface OpenStoreOptions extends LocalStoreOptions, S3StoreOptions {
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
  if (url.startsWith("s3://")) {
    // Imported on demand: a local store need not load the S3 client.
    const { S3Store } = await import("./s3_store.ts");
    return await S3Store.open(url, options);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !url.startsWith("file://")) {
    throw new UsageError(`Cannot open store ${url}: unknown scheme`, {
      hint: "Use a directory path or s3://bucket/prefix.",
    });
  }
  if (url.startsWith("file://")) {
    // Loaded only for a URL: `node:url` costs every command ~5 ms at start-up.
    const { fileURLToPath } = await import("node:url");
    return await LocalStore.open(fileURLToPath(url), options);
  }
  return await LocalStore.open(url, options);
}
