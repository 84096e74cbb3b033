// Copyright memsnap authors. MIT license.
/**
 * Where bundles live: a local directory with a SQLite catalog, or S3-compatible object
 * storage; per-agent locks with leases; and restic-style retention.
 *
 * - {@linkcode openStore} opens a directory or `s3://bucket/prefix`.
 * - {@linkcode LocalStore}: `<store>/<tenant>/<agent>/<snapshot-id>.msnap`, catalog in
 *   `<store>/catalog.sqlite`, crash-safe commit order, rebuildable catalog.
 * - {@linkcode lockFile}: a lock file with a refreshed lease and race-safe stale recovery.
 *
 * @example List an agent's snapshots
 * ```ts
 * import { openStore } from "./mod.ts";
 * const dir = await Deno.makeTempDir();
 * const store = await openStore(dir);
 * const lock = await store.lock("default", "a1", { timeoutMs: 0 });
 * try {
 *   console.log(await store.list({ agent: "a1" })); // []
 * } finally {
 *   await lock.release();
 *   await store.close();
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./local_store.ts";
export * from "./lock_file.ts";
export * from "./open_store.ts";
export * from "./parse_duration.ts";
export * from "./plan_prune.ts";
export * from "./prune.ts";
export * from "./validate_retention_policy.ts";
export * from "./s3_store.ts";
