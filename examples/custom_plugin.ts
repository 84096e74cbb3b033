/**
 * A custom capture plugin, written against the same interface as the built-in ones.
 *
 * It captures an agent's embedding index (a binary file plus a JSON header) as
 * `embeddings/index.bin` and `embeddings/header.json`, refuses to restore an index whose
 * dimension the runtime cannot load, and restores both files as one directory target.
 *
 * Run it: `deno run -A examples/custom_plugin.ts`. It captures a demo index, "packs" the
 * artifacts into a payload directory the way the bundle writer would, then restores through a
 * minimal restore context and checks the bytes came back.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import type {
  CaptureContext,
  CapturePlugin,
  CaptureResult,
  RestoreContext,
  RestorePlanEntry,
  RestoreTarget,
} from "../capture/mod.ts";
import { checkArtifactPaths } from "../capture/mod.ts";
import type { JsonValue, Manifest, ManifestArtifact } from "../bundle/types.ts";
import { UnsafeBundleError } from "../errors.ts";
import { noopProgress } from "../progress.ts";

/** Options of {@linkcode embeddingsPlugin}. */
export interface EmbeddingsPluginOptions {
  /** Directory holding `index.bin` and `header.json`. */
  dir: string;
  /**
   * The embedding dimensions this runtime can load.
   *
   * @default {[384, 768]}
   */
  supportedDimensions?: number[];
}

const defaults = {
  supportedDimensions: [384, 768],
} satisfies Partial<EmbeddingsPluginOptions>;

const PREFIX = "embeddings/";
const FILES = ["header.json", "index.bin"] as const;

/**
 * Creates the embeddings plugin.
 *
 * @param options Where the index lives and what the runtime supports.
 * @returns The plugin, named `"embeddings"`.
 */
export function embeddingsPlugin(options: EmbeddingsPluginOptions): CapturePlugin {
  const dir = posix.resolve(options.dir);
  const supported = options.supportedDimensions ?? defaults.supportedDimensions;

  return {
    name: "embeddings",
    version: "1",
    // 1. Own a prefix: every artifact path starts with it.
    owns: (path: string): boolean => path.startsWith(PREFIX),

    // 2. Capture: never modify live state. Copy into ctx.staging whatever must be frozen or
    //    redacted; stream the rest. `size` must be exact: the writer fails if it changes.
    async capture(ctx: CaptureContext): Promise<CaptureResult> {
      let headerBytes: Uint8Array = await Deno.readFile(`${dir}/header.json`);
      const header = JSON.parse(new TextDecoder().decode(headerBytes)) as {
        dimensions: number;
        count: number;
      };
      // Freeze the index: copy it, so a writer changing it mid-pack cannot break the bundle.
      const copy = posix.join(ctx.staging, "index.bin");
      await Deno.copyFile(`${dir}/index.bin`, copy);
      // Text goes through the redactor when there is one (it leaves binary bytes alone).
      if (ctx.redactor) {
        headerBytes = ctx.redactor.redactBytes(headerBytes, `${PREFIX}header.json`) ?? headerBytes;
      }
      ctx.progress.progress({ phase: "capture", done: 1, total: 1, item: `${PREFIX}index.bin` });
      return {
        artifacts: [
          {
            path: `${PREFIX}header.json`,
            kind: "embeddings",
            size: headerBytes.byteLength,
            open: () => Promise.resolve(new Blob([headerBytes.slice()]).stream()),
          },
          {
            path: `${PREFIX}index.bin`,
            kind: "embeddings",
            size: (await Deno.stat(copy)).size,
            open: async () => (await Deno.open(copy)).readable,
          },
        ],
        // 3. Metadata lands in manifest.captures.embeddings, readable without the payload.
        meta: { dimensions: header.dimensions, count: header.count },
      };
    },

    // 4. A restore gate: reasons to refuse, read from the manifest alone.
    check(manifest: Manifest): string[] {
      const meta = manifest.captures.embeddings as { dimensions?: number } | undefined;
      const dims = meta?.dimensions;
      return dims === undefined || supported.includes(dims) ? [] : [
        `Cannot restore embeddings: dimension ${dims} is not one of ${supported.join(", ")}`,
      ];
    },

    // 5. Restore: write ONLY into staging from ctx.stage(); the engine swaps it in atomically.
    async restore(ctx: RestoreContext): Promise<void> {
      for (const a of ctx.artifacts) {
        if (!FILES.includes(a.path.slice(PREFIX.length) as typeof FILES[number])) {
          throw new UnsafeBundleError("unknown_artifact", a.path, `Cannot restore ${a.path}`);
        }
      }
      const staged = await ctx.stage({ path: dir, type: "dir" });
      for (const a of ctx.artifacts) {
        await Deno.copyFile(
          posix.join(ctx.payloadDir, a.path),
          posix.join(staged, a.path.slice(PREFIX.length)),
        );
      }
    },

    // 6. Optional: what a restore would change, for `restore --dry-run`.
    plan(ctx): Promise<RestorePlanEntry[]> {
      const meta = ctx.manifest.captures.embeddings as { count?: number } | undefined;
      return Promise.resolve([
        { target: dir, action: "replace embeddings", detail: `${meta?.count ?? "?"} vectors` },
      ]);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Demo: what the Snapshotter and the restore engine do with a plugin, in miniature.
// ---------------------------------------------------------------------------------------------

async function sha256(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

if (import.meta.main) {
  const root = await Deno.makeTempDir({ prefix: "memsnap-example-" });
  try {
    const live = `${root}/embeddings`;
    await Deno.mkdir(live);
    const vectors = new Float32Array(384 * 4).map((_, i) => Math.sin(i));
    await Deno.writeFile(`${live}/index.bin`, new Uint8Array(vectors.buffer));
    await Deno.writeTextFile(`${live}/header.json`, JSON.stringify({ dimensions: 384, count: 4 }));

    const plugin = embeddingsPlugin({ dir: live });

    // Capture into a private staging dir, then "pack" every artifact into a payload dir.
    const staging = await Deno.makeTempDir({ dir: root });
    const result = await plugin.capture({
      staging,
      redactor: undefined,
      signal: new AbortController().signal,
      progress: noopProgress,
    });
    checkArtifactPaths([{ plugin, artifacts: result.artifacts }]);
    const payloadDir = `${root}/payload`;
    const artifacts: ManifestArtifact[] = [];
    for (const a of result.artifacts) {
      const dest = posix.join(payloadDir, a.path);
      await Deno.mkdir(posix.dirname(dest), { recursive: true });
      await Deno.writeFile(dest, await a.open());
      artifacts.push({ path: a.path, kind: a.kind, size: a.size, sha256: await sha256(dest) });
    }
    const manifest = {
      captures: { embeddings: result.meta ?? null } as Record<string, JsonValue>,
      artifacts,
    } as Manifest; // a real manifest has many more fields

    // Gate, then restore into a staged directory.
    const refused = plugin.check?.(manifest) ?? [];
    if (refused.length > 0) throw new Error(refused.join("\n"));
    const stagedDirs = new Map<string, string>();
    await plugin.restore({
      manifest,
      artifacts,
      payloadDir,
      signal: new AbortController().signal,
      progress: noopProgress,
      async stage(target: RestoreTarget): Promise<string> {
        const path = `${root}/staged-${stagedDirs.size}`;
        await Deno.mkdir(path);
        stagedDirs.set(target.path, path);
        return path;
      },
    });
    const restored = stagedDirs.get(live)!;
    for (const f of FILES) {
      const same = (await sha256(`${live}/${f}`)) === (await sha256(`${restored}/${f}`));
      console.log(`${f}: ${same ? "restored identical" : "DIFFERS"}`);
      if (!same) Deno.exitCode = 1;
    }
    console.log(
      "gate for a 1536-dim runtime:",
      embeddingsPlugin({ dir: live, supportedDimensions: [1536] }).check!(manifest),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}
