/**
 * examples/agent_runtime.ts: a dream cycle snapshots through the hooks; --serve takes a
 * final snapshot on SIGTERM and exits 0.
 */
import { assert, assertEquals } from "./_assert.ts";
import { join } from "node:path";
import { openStore } from "../store/open_store.ts";

const RUNTIME = new URL("../examples/agent_runtime.ts", import.meta.url).pathname;

async function createdBy(store: string): Promise<string[]> {
  const s = await openStore(store);
  try {
    return (await s.list({ agent: "runtime-agent" })).map((x) => x.created_by);
  } finally {
    await s.close();
  }
}

Deno.test("agent_runtime --dream snapshots before the dream and at shutdown", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-runtime-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        RUNTIME,
        "--home",
        join(root, "agent"),
        "--store",
        join(root, "store"),
        "--dream",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    assertEquals(await createdBy(join(root, "store")), ["pre-dream", "shutdown"]);
    const events = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) =>
      JSON.parse(l) as { type: string }
    );
    assertEquals(events.map((e) => e.type).filter((t) => t !== "memory-created"), [
      "snapshot-created",
      "dream-done",
      "snapshot-created",
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("agent_runtime --serve takes a shutdown snapshot on SIGTERM and exits 0", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-runtime-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        RUNTIME,
        "--home",
        join(root, "agent"),
        "--store",
        join(root, "store"),
        "--serve",
        "--tick-ms",
        "50",
        "--dream-every",
        "1000",
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes('"serving"')) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    await new Promise((r) => setTimeout(r, 500)); // let the agent write some memory
    child.kill("SIGTERM");
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += value;
    }
    const status = await child.status;
    await child.stderr.cancel();
    assertEquals(status.code, 0, rest);
    assert(rest.includes('"shutdown"'), rest);
    assertEquals(await createdBy(join(root, "store")), ["shutdown"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
