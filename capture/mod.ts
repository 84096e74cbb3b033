/**
 * Capture plugins: each captures one kind of agent state into artifacts and restores it by
 * writing into staging. The plugins are factories returning plain {@linkcode CapturePlugin}
 * objects; write your own through the same interface (see `docs/PLUGINS.md`).
 *
 * - {@linkcode memdirPlugin}: the memory directory's files, `memdir/<rel>`.
 * - {@linkcode gitPlugin}: the memory dir's full git history as a git bundle, `git/memdir.bundle`.
 * - {@linkcode sqlitePlugin}: consistent copies of live SQLite databases, `sqlite/<name>.sqlite`.
 * - {@linkcode statePlugin}: JSON state files and runtime values, `state/<name>.json`.
 * - {@linkcode checkArtifactPaths}: checks several plugins' artifacts (owned, safe, unique).
 *
 * @example Capturing a memory directory
 * ```ts
 * import { memdirPlugin } from "./mod.ts";
 * const plugin = memdirPlugin({ dir: "." });
 * console.log(plugin.name); // "memdir"
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./memdir.ts";
export * from "./git.ts";
export * from "./sqlite.ts";
export * from "./state.ts";
export * from "./check_artifact_paths.ts";
