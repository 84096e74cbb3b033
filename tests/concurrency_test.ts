/**
 * Processes racing on one agent: snapshots serialize into one parent chain, a killed
 * process's lock is recovered, and --no-wait exits 5 while the lock is held.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { generateSampleMemory } from "../examples/sample_memory.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

async function finish(
  child: Deno.ChildProcess,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await child.output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("four concurrent memsnap snapshot processes on one agent all succeed and form one parent chain", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-race-" });
  try {
    const mem = await generateSampleMemory(join(root, "agent"), { notes: 6, facts: 30 });
    const store = join(root, "store");
    const args = [
      "snapshot",
      "--store",
      store,
      "--agent",
      "a1",
      "--memdir",
      mem.memdir,
      "--sqlite",
      `long_term=${mem.sqlite.long_term}`,
      "--no-redact",
      "--json",
    ];
    const results = await Promise.all([0, 1, 2, 3].map(() => finish(spawn(args))));
    for (const r of results) assertEquals(r.code, 0, r.stderr);
    const list = await finish(spawn(["list", "--store", store, "--agent", "a1", "--json"]));
    const rows = JSON.parse(list.stdout) as { id: string; parent: string | null }[];
    assertEquals(rows.length, 4);
    assertEquals(rows[0]!.parent, null);
    for (let i = 1; i < rows.length; i++) {
      assertEquals(rows[i]!.parent, rows[i - 1]!.id, "parents form one chain");
    }
    const ids = new Set(results.map((r) => (JSON.parse(r.stdout) as { id: string }).id));
    assertEquals(ids.size, 4);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a lock left by a killed process is recovered, and --no-wait exits 5 while a live process holds it", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-lock-" });
  try {
    const mem = await generateSampleMemory(join(root, "agent"), { notes: 4, facts: 10 });
    const store = join(root, "store");
    // A process takes the agent's lock and holds it until killed.
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { openStore } from ${
          JSON.stringify(new URL("../store/open_store.ts", import.meta.url).href)
        };
         const s = await openStore(${JSON.stringify(store)});
         await s.lock("default", "a1", { timeoutMs: 0 });
         console.log("locked");
         await new Promise(() => setInterval(() => {}, 1000));`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = holder.stdout.getReader();
    const first = await reader.read();
    assert(new TextDecoder().decode(first.value).includes("locked"));
    const base = [
      "snapshot",
      "--store",
      store,
      "--agent",
      "a1",
      "--memdir",
      mem.memdir,
      "--no-redact",
    ];
    const busy = await finish(spawn([...base, "--no-wait"]));
    assertEquals(busy.code, 5, busy.stderr);
    assert(/held by pid \d+/.test(busy.stderr), busy.stderr);
    holder.kill("SIGKILL");
    await holder.status;
    reader.releaseLock();
    await holder.stdout.cancel().catch(() => {});
    await holder.stderr.cancel().catch(() => {});
    // The holder is dead: its lock is stale and the next snapshot recovers it.
    const ok = await finish(spawn([...base, "--lock-timeout", "10"]));
    assertEquals(ok.code, 0, ok.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
