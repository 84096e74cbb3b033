/**
 * Checks the artifacts several capture plugins produced before they are packed.
 *
 * @module
 */
import { UsageError } from "../errors.ts";
import type { ArtifactSource, CapturePlugin } from "./types.ts";

/** One plugin's capture output, as {@linkcode checkArtifactPaths} reads it. */
export interface PluginArtifacts {
  /** The plugin (its name and `owns()`). */
  plugin: Pick<CapturePlugin, "name" | "owns">;
  /** The artifacts it returned. */
  artifacts: readonly Pick<ArtifactSource, "path">[];
}

/** Plugin names: lowercase, digits, `_`, `.`, `-`, at most 64 characters. */
const PLUGIN_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/**
 * Checks the artifacts of every plugin of one capture: plugin names are valid and unique, every
 * path is relative, `/`-separated and normalized (no empty, `.` or `..` segment, no `\`, no
 * NUL), belongs to the plugin that produced it (`owns()`), and no path is produced twice.
 *
 * @param results Each plugin with the artifacts it returned.
 * @throws {UsageError} Naming the plugin(s) and the path at fault.
 *
 * @example Two plugins producing the same path
 * ```ts
 * import { checkArtifactPaths } from "./check_artifact_paths.ts";
 * const owns = () => true;
 * try {
 *   checkArtifactPaths([
 *     { plugin: { name: "a", owns }, artifacts: [{ path: "x/1" }] },
 *     { plugin: { name: "b", owns }, artifacts: [{ path: "x/1" }] },
 *   ]);
 * } catch (e) {
 *   console.log((e as Error).message);
 *   // Cannot capture: plugins "a" and "b" both produce artifact "x/1"
 * }
 * ```
 */
export function checkArtifactPaths(results: readonly PluginArtifacts[]): void {
  const byPath = new Map<string, string>();
  const names = new Set<string>();
  for (const { plugin, artifacts } of results) {
    if (!PLUGIN_NAME.test(plugin.name)) {
      throw new UsageError(
        `Cannot capture: plugin name "${plugin.name}" must match ${PLUGIN_NAME.source}`,
      );
    }
    if (names.has(plugin.name)) {
      throw new UsageError(`Cannot capture: two plugins are named "${plugin.name}"`);
    }
    names.add(plugin.name);
    for (const { path } of artifacts) {
      const parts = path.split("/");
      if (
        path.startsWith("/") || path.includes("\\") || path.includes("\0") ||
        parts.length < 2 || parts.some((p) => p === "" || p === "." || p === "..")
      ) {
        throw new UsageError(
          `Cannot capture: plugin "${plugin.name}" produced an invalid artifact path "${path}"`,
          { hint: "Artifact paths are relative, /-separated, under the plugin's own prefix" },
        );
      }
      if (!plugin.owns(path)) {
        throw new UsageError(
          `Cannot capture: plugin "${plugin.name}" produced artifact "${path}" it does not own`,
        );
      }
      const other = byPath.get(path);
      if (other !== undefined) {
        throw new UsageError(
          other === plugin.name
            ? `Cannot capture: plugin "${other}" produces artifact "${path}" twice`
            : `Cannot capture: plugins "${other}" and "${plugin.name}" both produce artifact "${path}"`,
        );
      }
      byPath.set(path, plugin.name);
    }
  }
}
