// Copyright memsnap authors. MIT license.
// Private helpers: the pending-bundle protocol both stores share.
import { RefusedError, UsageError } from "../errors.ts";
import type { Manifest } from "../bundle/types.ts";
import type { PendingBundle, SnapshotInfo } from "./types.ts";
import { checkName, describeAgent } from "./_names.ts";

/**
 * Checks a manifest's names, and that it is the snapshot a pending bundle was created for
 * (when `tenant`, `agentId` and `id` are given).
 */
export function checkManifest(
  manifest: Manifest,
  tenant?: string,
  agentId?: string,
  id?: string,
): void {
  checkName("tenant", manifest.tenant);
  checkName("agent id", manifest.agent_id);
  checkName("snapshot id", manifest.snapshot_id);
  if (
    (tenant !== undefined && manifest.tenant !== tenant) ||
    (agentId !== undefined && manifest.agent_id !== agentId) ||
    (id !== undefined && manifest.snapshot_id !== id)
  ) {
    throw new RefusedError(
      `Cannot commit snapshot ${id}: the manifest is for snapshot ${manifest.snapshot_id} ` +
        `of ${describeAgent(manifest.tenant, manifest.agent_id)}`,
    );
  }
}

/**
 * Creates the empty temp file `path` and the pending bundle around it: `commit` checks the
 * manifest, hands the file to `place` (which makes it durable and visible), and removes the
 * temp file if `place` left it; commit and abort are each allowed once.
 */
export async function pendingBundle(
  path: string,
  tenant: string,
  agentId: string,
  snapshotId: string,
  place: (path: string, manifest: Manifest) => Promise<SnapshotInfo>,
): Promise<PendingBundle> {
  await Deno.writeFile(path, new Uint8Array(), { createNew: true });
  let done = false;
  return {
    path,
    commit: async (manifest: Manifest): Promise<SnapshotInfo> => {
      if (done) {
        throw new UsageError(`Cannot commit snapshot ${snapshotId}: already committed or aborted`);
      }
      checkManifest(manifest, tenant, agentId, snapshotId);
      const info = await place(path, manifest);
      done = true;
      await Deno.remove(path).catch(() => {});
      return info;
    },
    abort: async (): Promise<void> => {
      done = true;
      await Deno.remove(path).catch(() => {});
    },
  };
}
