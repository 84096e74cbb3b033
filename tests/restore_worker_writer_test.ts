/**
 * A restore whose extraction writes through the writer worker (`bundle/_extract_worker.ts`,
 * used from 512 artifacts on; forced here on a small memory) gives back the same memory as the
 * synchronous writer: files, modes, git history, databases and state.
 */
import { assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { createSnapshotter } from "../snapshotter.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { openStore } from "../store/open_store.ts";
import { dream, fingerprint, generateSampleMemory } from "../examples/sample_memory.ts";
import { writerConfig } from "../bundle/_extract_worker.ts";

for (const [writer, min] of [["sync", Infinity], ["worker", 0]] as const) {
  Deno.test(`restore() through the ${writer} writer gives back the snapshot's memory exactly`, async () => {
    const saved = writerConfig.workerMinArtifacts;
    writerConfig.workerMinArtifacts = min;
    const root = await Deno.makeTempDir({ prefix: "memsnap-writer-" });
    const store = await openStore(join(root, "store"));
    try {
      const mem = await generateSampleMemory(join(root, "agent"), { notes: 40, facts: 30 });
      const exe = (await firstNote(mem.memdir))!;
      await Deno.chmod(join(mem.memdir, exe), 0o755);
      const snap = createSnapshotter({
        store,
        agent: "a1",
        captures: [
          memdirPlugin({ dir: mem.memdir }),
          gitPlugin({ dir: mem.memdir }),
          sqlitePlugin({ databases: mem.sqlite }),
          statePlugin({ files: mem.state }),
        ],
      });
      const first = await snap.snapshot({ redact: false });
      const original = await fingerprint(mem);
      const modes = await modesOf(mem.memdir);
      await dream(mem, 2);
      await snap.restore(first.info.id, { noPreSnapshot: true });
      assertEquals(await fingerprint(mem), original);
      const after = await modesOf(mem.memdir);
      assertEquals(after[exe], 0o755);
      // Ignored files (not captured) are left aside; every captured file has its mode back.
      for (const [p, m] of Object.entries(after)) assertEquals(m, modes[p], p);
    } finally {
      writerConfig.workerMinArtifacts = saved;
      await store.close();
      await Deno.remove(root, { recursive: true });
    }
  });
}

async function firstNote(dir: string): Promise<string | undefined> {
  for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(".md")) return e.name;
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && e.name !== ".git") {
      const inner = await firstNote(join(dir, e.name));
      if (inner) return join(e.name, inner);
    }
  }
  return undefined;
}

/** Path → permission bits of every file outside `.git`. */
async function modesOf(dir: string, prefix = ""): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (rel === ".git") continue;
    if (e.isDirectory) Object.assign(out, await modesOf(dir, rel));
    else if (e.isFile) out[rel] = (await Deno.lstat(join(dir, rel))).mode! & 0o777;
  }
  return out;
}
