/**
 * The capture plugin interface: a plugin both captures and restores its artifacts.
 *
 * @module
 */
import type { ArtifactKind, JsonValue, Manifest, ManifestArtifact } from "../bundle/types.ts";
import type { ProgressReporter } from "../progress.ts";
import type { Redactor } from "../redact/types.ts";

/** A source of bytes for one artifact, packed into the payload by the bundle writer. */
export interface ArtifactSource {
  /** Payload path, e.g. `memdir/notes/a.md`. Plugin-prefixed, `/`-separated, relative. */
  path: string;
  /** Artifact kind. */
  kind: ArtifactKind;
  /** Exact size in bytes of what `open()` yields. */
  size: number;
  /** Unix mode bits when not `0o644` (e.g. `0o755`). */
  mode?: number;
  /** Opens the bytes. Called once, when the writer reaches this artifact. */
  open(): Promise<ReadableStream<Uint8Array>>;
  /**
   * Optional: reads the bytes synchronously into `into` (at least `size + 1` bytes long, so
   * that a source longer than declared shows) and returns how many were read. The writer calls
   * it instead of `open()` for artifacts up to 1 MiB, once, reading straight into its tar
   * buffer: 10,000 small files cost far less this way than through a stream and a buffer each.
   */
  readInto?(into: Uint8Array): number;
}

/** What a capture plugin gets. */
export interface CaptureContext {
  /** A fresh private directory for the plugin's temporary copies (removed after packing). */
  staging: string;
  /** The redactor to apply to every artifact, or `undefined` when redaction is off. */
  redactor: Redactor | undefined;
  /** Aborts the capture. */
  signal: AbortSignal;
  /** Progress and warnings. */
  progress: ProgressReporter;
}

/** What a capture plugin returns. */
export interface CaptureResult {
  /** The artifacts to pack. Paths must be unique across all plugins. */
  artifacts: ArtifactSource[];
  /** Metadata stored in the manifest under `captures[plugin.name]` (git HEAD, user_version...). */
  meta?: JsonValue;
  /**
   * Optional: called once when the snapshot no longer reads the artifacts (after the bundle is
   * written, or when the snapshot fails), to free what keeps them consistent, e.g. the read
   * transaction under which the sqlite plugin packs a live database file as it is.
   */
  release?(): Promise<void> | void;
}

/**
 * A live location a restore replaces as one unit: a directory (the memory dir, with its
 * `.git`) or a file (a database, a state file). The restore engine swaps targets atomically
 * under a journal; plugins only write into staging.
 */
export interface RestoreTarget {
  /** Absolute path of the live file or directory. */
  path: string;
  /** `"dir"` or `"file"`. */
  type: "dir" | "file";
  /**
   * Sibling files that belong to the target and must not survive it, e.g. a database's
   * `-wal` and `-shm`. They are moved aside with the old target and restored on rollback.
   */
  companions?: string[];
}

/** What a plugin gets when staging a restore. */
export interface RestoreContext {
  /** The manifest of the bundle being restored. */
  manifest: Manifest;
  /** The plugin's artifacts from the manifest (already verified). */
  artifacts: ManifestArtifact[];
  /**
   * Optional: the paths of `artifacts`, in the same order. The restore engine sets it, and makes
   * `artifacts` only when a plugin first reads it: a plugin that needs paths alone reads this
   * instead (an entry per artifact is ~140 bytes: 30 MB for the 211,000 loose objects of a
   * 200,000-note memory's history), falling back to `artifacts` when it is not set.
   */
  artifactPaths?: readonly string[];
  /**
   * Absolute path of the extracted, verified payload; artifact `p` is at `join(payloadDir, p)`.
   * Read-only for the plugin unless `payloadMovable` is set.
   */
  payloadDir: string;
  /**
   * Set by the restore engine when `payloadDir` is its own fresh extraction for this restore
   * (removed afterwards) and no other plugin owns this plugin's artifacts: the plugin may then
   * move its own artifacts out (rename them into staging instead of linking or copying them;
   * nothing reads them after its `restore()`, which runs once). Extracted files have exactly
   * their artifact's mode (`0o644` when unset). When unset, the payload must be left intact: a
   * caller may restore several times from one payload dir.
   */
  payloadMovable?: boolean;
  /**
   * Returns the staging path for a target. The engine creates the staging location next to
   * the target (same filesystem, so the swap is a rename). For a `"dir"` target the returned
   * directory exists and is empty; several plugins may fill the same dir target (memdir and
   * git both fill the memory dir). For a `"file"` target the returned path does not exist yet.
   */
  stage(target: RestoreTarget): Promise<string>;
  /** Aborts the restore. */
  signal: AbortSignal;
  /** Progress and warnings. */
  progress: ProgressReporter;
}

/** A human-readable restore plan entry for `restore --dry-run`. */
export interface RestorePlanEntry {
  /** The live target path. */
  target: string;
  /** What will happen, e.g. `"replace database"`, `"add file"`. */
  action: string;
  /** Extra detail, e.g. git HEAD from → to. */
  detail?: string;
  /**
   * Set on a summary entry of a restore's result: it stands for this many changes of `action`
   * under the directory `target` (see `RestoreOptions.planLimit`). Plugins do not set it.
   */
  count?: number;
}

/**
 * A capture plugin. It owns the payload paths under its prefix, captures them, and restores
 * them by writing into staging; the engine swaps staged targets into place.
 *
 * @example A custom plugin capturing one file
 * ```ts
 * import type { CapturePlugin } from "./types.ts";
 * const plugin: CapturePlugin = {
 *   name: "notes",
 *   owns: (path) => path.startsWith("notes/"),
 *   async capture() {
 *     const bytes = new TextEncoder().encode("hello");
 *     return {
 *       artifacts: [{
 *         path: "notes/hello.txt", kind: "notes", size: bytes.length,
 *         open: () => Promise.resolve(new Blob([bytes]).stream()),
 *       }],
 *     };
 *   },
 *   async restore() {},
 * };
 * console.log(plugin.name);
 * ```
 */
export interface CapturePlugin {
  /** Unique name; also the key of its metadata in `manifest.captures`. */
  name: string;
  /** Plugin version. */
  version?: string;
  /** Whether a payload path belongs to this plugin. */
  owns(path: string): boolean;
  /**
   * Absolute path of what this plugin restores into (the memory dir for the memdir and git
   * plugins). The restore extracts the payload on that path's filesystem when the store's
   * state dir is on another one (the first plugin that sets it decides), so that `restore()`
   * can move the extracted files into staging instead of copying each of them.
   */
  restoresInto?: string;
  /** Captures the live state. Never modifies it. */
  capture(ctx: CaptureContext): Promise<CaptureResult>;
  /** Stages the plugin's artifacts for restore. Never touches live state. */
  restore(ctx: RestoreContext): Promise<void>;
  /** Describes what a restore would change (for `--dry-run`). */
  plan?(
    ctx: Omit<RestoreContext, "stage" | "payloadDir"> & { payloadDir?: string },
  ): Promise<RestorePlanEntry[]>;
  /**
   * Restore gate: reasons to refuse restoring this manifest (e.g. a database's `user_version`
   * newer than the runtime supports). An empty array allows the restore.
   */
  check?(manifest: Manifest): string[];
}
