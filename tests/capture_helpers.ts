/**
 * Test helpers for the capture plugins: run captures into a fake payload, and restores with a
 * fake {@linkcode RestoreContext} whose `stage()` hands out directories in a temp folder.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { posix } from "node:path";
import type { JsonValue, Manifest, ManifestArtifact } from "../bundle/types.ts";
import type {
  ArtifactSource,
  CapturePlugin,
  RestoreContext,
  RestoreTarget,
} from "../capture/types.ts";
import type { Redactor } from "../redact/types.ts";
import type { ProgressReporter } from "../progress.ts";

/** A progress reporter that keeps warnings. */
export function recordingProgress(): ProgressReporter & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, progress() {}, warn: (m: string) => void warnings.push(m) };
}

/** The outcome of {@linkcode captureInto}. */
export interface Captured {
  manifest: Manifest;
  payloadDir: string;
  warnings: string[];
}

/** Captures with every plugin and writes their artifacts into `root/payload`. */
export async function captureInto(
  root: string,
  plugins: CapturePlugin[],
  redactor?: Redactor,
): Promise<Captured> {
  const payloadDir = posix.join(root, "payload");
  const progress = recordingProgress();
  const artifacts: ManifestArtifact[] = [];
  const captures: Record<string, JsonValue> = {};
  for (const plugin of plugins) {
    const staging = posix.join(root, "staging", plugin.name);
    await Deno.mkdir(staging, { recursive: true });
    const result = await plugin.capture({
      staging,
      redactor,
      signal: new AbortController().signal,
      progress,
    });
    if (result.meta !== undefined) captures[plugin.name] = result.meta;
    try {
      await writeArtifacts(result.artifacts);
    } finally {
      await result.release?.(); // as the snapshotter does once the bundle is written
    }
  }
  async function writeArtifacts(sources: ArtifactSource[]): Promise<void> {
    for (const a of sources) {
      if (artifacts.some((x) => x.path === a.path)) throw new Error(`duplicate ${a.path}`);
      const dest = posix.join(payloadDir, a.path);
      await Deno.mkdir(posix.dirname(dest), { recursive: true });
      const hash = createHash("sha256");
      let size = 0;
      using file = await Deno.open(dest, { write: true, create: true, truncate: true });
      for await (const chunk of await a.open()) {
        hash.update(chunk);
        size += chunk.byteLength;
        let off = 0;
        while (off < chunk.byteLength) off += await file.write(chunk.subarray(off));
      }
      if (size !== a.size) throw new Error(`${a.path}: size ${size} != declared ${a.size}`);
      // As the engine extracts: each file with exactly its artifact's mode.
      await Deno.chmod(dest, a.mode ?? 0o644);
      artifacts.push({
        path: a.path,
        kind: a.kind,
        size,
        sha256: hash.digest("hex"),
        ...(a.mode === undefined ? {} : { mode: a.mode }),
      });
    }
  }
  artifacts.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  const manifest = {
    format: "memsnap-bundle",
    manifest_version: 1,
    snapshot_id: "20261125T000000000Z-00000000",
    agent_id: "test",
    tenant: "default",
    label: null,
    created_at: "2026-11-25T00:00:00.000Z",
    created_by: "test",
    parent: null,
    artifacts,
    payload: {
      path: "payload.tar.zst",
      size: 0,
      sha256: "",
      compression: "zstd",
      encryption: null,
    },
    captures,
    redaction: {
      redacted: redactor !== undefined,
      packs: [],
      rules: [],
      skipped_binary: [],
    },
    tools: {},
  } satisfies Manifest;
  return { manifest, payloadDir, warnings: progress.warnings };
}

/** Restores with every plugin into staging under `root/staged`; returns target → staged path. */
export async function restoreInto(
  root: string,
  plugins: CapturePlugin[],
  captured: Captured,
  options: {
    payloadMovable?: boolean;
    /** Give plugins `artifactPaths` and an `artifacts` that throws when read (for plugins
     * that must restore from paths alone). */
    pathsOnly?: (plugin: CapturePlugin) => boolean;
  } = {},
): Promise<{ staged: Map<string, string>; targets: RestoreTarget[]; warnings: string[] }> {
  const staged = new Map<string, string>();
  const targets: RestoreTarget[] = [];
  const progress = recordingProgress();
  let n = 0;
  const stage = async (target: RestoreTarget): Promise<string> => {
    const known = staged.get(target.path);
    if (known !== undefined) return known;
    const path = posix.join(root, "staged", `${n++}-${posix.basename(target.path)}`);
    await Deno.mkdir(posix.dirname(path), { recursive: true });
    if (target.type === "dir") await Deno.mkdir(path);
    staged.set(target.path, path);
    targets.push(target);
    return path;
  };
  for (const plugin of plugins) {
    const artifacts = captured.manifest.artifacts.filter((a) => plugin.owns(a.path));
    const ctx: RestoreContext = options.pathsOnly?.(plugin)
      ? {
        manifest: captured.manifest,
        get artifacts(): ManifestArtifact[] {
          throw new Error(`${plugin.name} read artifacts; it was to read artifactPaths only`);
        },
        artifactPaths: artifacts.map((a) => a.path),
        payloadDir: captured.payloadDir,
        stage,
        signal: new AbortController().signal,
        progress,
      }
      : {
        manifest: captured.manifest,
        artifacts,
        payloadDir: captured.payloadDir,
        ...(options.payloadMovable ? { payloadMovable: true } : {}),
        stage,
        signal: new AbortController().signal,
        progress,
      };
    await plugin.restore(ctx);
  }
  return { staged, targets, warnings: progress.warnings };
}

/** Lists a directory tree as sorted `rel -> description` (file bytes hash, mode, link target). */
export async function treeOf(
  root: string,
  skip: (rel: string) => boolean = (rel) => rel === ".git" || rel.startsWith(".git/"),
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    for await (const e of Deno.readDir(rel === "" ? root : posix.join(root, rel))) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      if (skip(r)) continue;
      const abs = posix.join(root, r);
      if (e.isSymlink) out[r] = `link:${await Deno.readLink(abs)}`;
      else if (e.isDirectory) await walk(r);
      else {
        const info = await Deno.stat(abs);
        const hash = createHash("sha256").update(await Deno.readFile(abs)).digest("hex");
        out[r] = `${hash}:${((info.mode ?? 0) & 0o111) !== 0 ? "x" : "-"}`;
      }
    }
  };
  await walk("");
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** A fake redactor replacing `SECRET123` (and nothing else) with `[REDACTED:fake:00000000]`. */
export function fakeRedactor(): Redactor & { calls: string[] } {
  const TOKEN = "[REDACTED:fake:00000000]";
  const calls: string[] = [];
  const skipped: string[] = [];
  let count = 0;
  const redactString = (text: string, artifact: string): string => {
    calls.push(artifact);
    const parts = text.split("SECRET123");
    count += parts.length - 1;
    return parts.join(TOKEN);
  };
  const isBinary = (b: Uint8Array): boolean => b.subarray(0, 8000).includes(0);
  const redactBytes = (bytes: Uint8Array, artifact: string): Uint8Array | undefined => {
    if (isBinary(bytes)) {
      skipped.push(artifact);
      return undefined;
    }
    return new TextEncoder().encode(redactString(new TextDecoder().decode(bytes), artifact));
  };
  const redactJson = (value: JsonValue, artifact: string): JsonValue => {
    if (typeof value === "string") return redactString(value, artifact);
    if (Array.isArray(value)) return value.map((v) => redactJson(v, artifact));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, redactJson(v, artifact)]),
      );
    }
    return value;
  };
  return {
    calls,
    redactString,
    redactBytes,
    redactJson,
    async redactFile(src: string, dest: string, artifact: string): Promise<boolean> {
      const out = redactBytes(await Deno.readFile(src), artifact);
      if (out === undefined) return false;
      await Deno.writeFile(dest, out);
      return true;
    },
    async redactSqlite(dbPath: string, artifact: string): Promise<void> {
      const { DatabaseSync } = await import("node:sqlite");
      const db = new DatabaseSync(dbPath);
      try {
        const all = db.prepare(
          "SELECT name, sql FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'",
        ).all() as { name: string; sql: string }[];
        const virtual = all.filter((t) => /^CREATE VIRTUAL TABLE/i.test(t.sql)).map((t) => t.name);
        const tables = all.filter((t) => !virtual.some((v) => t.name.startsWith(`${v}_`)));
        for (const { name } of tables) {
          const cols = db.prepare(`PRAGMA table_info("${name}")`).all() as { name: string }[];
          for (const c of cols) {
            db.prepare(
              `UPDATE "${name}" SET "${c.name}" = replace("${c.name}", 'SECRET123', ?) WHERE typeof("${c.name}") = 'text' AND "${c.name}" LIKE '%SECRET123%'`,
            ).run("[REDACTED:fake:00000000]");
          }
        }
        for (const v of virtual) db.exec(`INSERT INTO "${v}"("${v}") VALUES ('optimize')`);
        calls.push(artifact);
      } finally {
        db.close();
      }
    },
    report() {
      return {
        redacted: true,
        packs: [{ id: "fake", version: "1" }],
        rules: [{ id: "fake", count, artifacts: [...new Set(calls)].sort() }],
        skipped_binary: [...new Set(skipped)].sort(),
      };
    },
  };
}
