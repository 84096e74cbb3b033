/**
 * Resolving `<id|path>` arguments.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Manifest } from "../bundle/types.ts";
import { readManifest } from "../bundle/read_manifest.ts";
import { NotFoundError, UsageError } from "../errors.ts";
import type { Store } from "../store/types.ts";
import type { Flags } from "./_spec.ts";
import { storeFrom, str } from "./_context.ts";
import { lazy } from "./_lazy.ts";
import type * as SnapshotterModule from "../snapshotter.ts";

/** Whether an argument names a bundle file rather than a snapshot id. */
export function isPathRef(ref: string): boolean {
  return ref.includes("/") || ref.endsWith(".msnap");
}

/** Opens the store if `--store` was given (required when `ref` is an id). */
export async function maybeStore(
  flags: Flags,
  ref: string,
  command: string,
): Promise<Store | undefined> {
  if (str(flags, "store")) return await storeFrom(flags, command);
  if (!isPathRef(ref)) {
    throw new UsageError(`Cannot resolve snapshot "${ref}": --store is required to look up ids`, {
      hint: `pass --store DIR, or give the path of a .msnap file`,
    });
  }
  return undefined;
}

/** Reads a bundle's manifest (only the first entry), from a file path or the store. */
export async function manifestOf(
  store: Store | undefined,
  ref: string,
  flags: Flags,
): Promise<Manifest> {
  if (!isPathRef(ref) && store) {
    const agent = str(flags, "agent"), tenant = str(flags, "tenant");
    const filter = ref === "latest"
      ? { ...(agent ? { agent } : {}), ...(tenant ? { tenant } : {}) }
      : {};
    const info = await store.resolve(ref, filter);
    return await store.readManifest(info.id);
  }
  const path = resolve(ref);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`Cannot open the bundle: ${path} does not exist`);
    }
    throw new UsageError(`Cannot open the bundle ${path}: ${(e as Error).message}`);
  }
  return await readManifest(file.readable);
}

/** Opens the whole bundle as a stream. */
export async function streamOf(
  store: Store | undefined,
  ref: string,
  flags: Flags,
): Promise<ReadableStream<Uint8Array>> {
  if (store) {
    const agent = str(flags, "agent"), tenant = str(flags, "tenant");
    const { openBundleRef } = await lazy<typeof SnapshotterModule>("snapshotter.ts");
    return (await openBundleRef(store, ref, {
      ...(agent ? { agent } : {}),
      ...(tenant ? { tenant } : {}),
    })).stream;
  }
  const path = resolve(ref);
  try {
    return (await Deno.open(path, { read: true })).readable;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`Cannot open the bundle: ${path} does not exist`);
    }
    throw new UsageError(`Cannot open the bundle ${path}: ${(e as Error).message}`);
  }
}
