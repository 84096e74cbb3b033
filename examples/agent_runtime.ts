/**
 * A small but honest agent runtime wired to memsnap through hooks.
 *
 * The agent keeps a git memory dir, SQLite databases and JSON state (generated on first run).
 * A "dream" pass consolidates notes and rewrites rows after emitting `pre-dream`, so memsnap
 * snapshots the memory first. On exit it emits `shutdown`, and memsnap takes a final snapshot
 * within the deadline.
 *
 * ```sh
 * deno run -A examples/agent_runtime.ts --home ./agent --store ./snaps --dream   # one dream cycle
 * deno run -A examples/agent_runtime.ts --home ./agent --store ./snaps --serve   # until SIGINT/SIGTERM
 * ```
 *
 * Each memsnap event is printed as one JSON line on stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { createHooks } from "../hooks/create_hooks.ts";
import { installShutdownSignals } from "../hooks/shutdown_signals.ts";
import { gitPlugin, memdirPlugin, sqlitePlugin, statePlugin } from "../capture/mod.ts";
import { loadPacks } from "../redact/load_pack.ts";
import { openStore } from "../store/open_store.ts";
import { createSnapshotter } from "../snapshotter.ts";
import { redactionKey } from "../redaction_key.ts";
import { commitAll, dream, generateSampleMemory, type SampleMemory } from "./sample_memory.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    home: { type: "string" },
    store: { type: "string" },
    agent: { type: "string", default: "runtime-agent" },
    dream: { type: "boolean" },
    serve: { type: "boolean" },
    "tick-ms": { type: "string", default: "200" },
    "dream-every": { type: "string", default: "10" },
    "deadline-ms": { type: "string", default: "30000" },
  },
  strict: true,
});
if (!args.values.home || !args.values.store || (!args.values.dream && !args.values.serve)) {
  console.error("usage: agent_runtime.ts --home DIR --store DIR (--dream | --serve) [--agent ID]");
  Deno.exit(2);
}
const home = resolve(args.values.home);
const agentId = args.values.agent!;
const log = (event: Record<string, unknown>): void =>
  console.log(JSON.stringify({ at: new Date().toISOString(), ...event }));

// The agent's memory: created on first run, reused after.
let mem: SampleMemory;
try {
  await Deno.stat(join(home, "memory"));
  mem = {
    home,
    memdir: join(home, "memory"),
    sqlite: {
      long_term: join(home, "db/long_term.sqlite"),
      vector: join(home, "db/vector.sqlite"),
    },
    state: {
      extract_cursor: join(home, "state/extract_cursor.json"),
      last_dream: join(home, "state/last_dream.json"),
    },
  };
} catch {
  await Deno.mkdir(home, { recursive: true });
  mem = await generateSampleMemory(home);
  log({ type: "memory-created", home });
}

// memsnap: a store, the capture plugins for this memory, redaction, and the hooks.
const store = await openStore(
  args.values.store.startsWith("s3://") ? args.values.store : resolve(args.values.store),
);
const snapshotter = createSnapshotter({
  store,
  agent: agentId,
  captures: [
    memdirPlugin({ dir: mem.memdir }),
    gitPlugin({ dir: mem.memdir }),
    sqlitePlugin({ databases: mem.sqlite, maxUserVersion: { long_term: 3, vector: 1 } }),
    statePlugin({ files: mem.state }),
  ],
  redact: { packs: await loadPacks("secrets,pii"), key: await redactionKey(store) },
});
snapshotter.on((e) => {
  if (e.type === "snapshot-created") {
    log({
      type: e.type,
      id: e.info.id,
      created_by: e.info.created_by,
      parent: e.info.parent,
      skipped: e.skipped,
    });
  } else if (e.type === "snapshot-failed") {
    log({
      type: e.type,
      created_by: e.createdBy,
      error: String((e.error as Error)?.message ?? e.error),
    });
  } else log({ ...e });
});
const hooks = createHooks();
snapshotter.attach(hooks);

/** Writes a state file as a careful runtime does: a temp file renamed over the old one. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}

let round = 0;
async function dreamCycle(): Promise<void> {
  round++;
  const pre = await hooks.emit("pre-dream", { agentId, dreamId: `dream-${round}` });
  // pre-dream is best-effort: a failed snapshot is reported, and the dream goes on.
  for (const f of pre.failures) {
    log({ type: "hook-failure", hook: f.hook, plugin: f.plugin, error: f.error.message });
  }
  let error: unknown;
  try {
    await dream(mem, round);
    const db = new DatabaseSync(mem.sqlite.long_term!);
    db.prepare("INSERT INTO dream_runs(started_at, notes_merged) VALUES (?, ?)").run(Date.now(), 3);
    db.close();
    await writeAtomic(
      mem.state.last_dream!,
      JSON.stringify({ run_id: round, finished_at: new Date().toISOString(), notes_merged: 3 }),
    );
    log({ type: "dream-done", round });
  } catch (e) {
    error = e;
  }
  await hooks.emit("post-dream", {
    agentId,
    dreamId: `dream-${round}`,
    succeeded: error === undefined,
    error,
  });
  if (error) throw error;
}

/** The agent at work: remembers a fact and appends to a note. */
let tick = 0;
async function work(): Promise<void> {
  tick++;
  const db = new DatabaseSync(mem.sqlite.long_term!);
  db.exec("PRAGMA busy_timeout=5000");
  db.prepare("INSERT INTO facts(subject, fact, created_at) VALUES (?, ?, ?)").run(
    "conversation",
    `observation ${tick} at ${new Date().toISOString()}`,
    Date.now(),
  );
  db.close();
  await Deno.writeTextFile(join(mem.memdir, "notes/journal.md"), `- tick ${tick}\n`, {
    append: true,
  });
  if (tick % 5 === 0) {
    await commitAll(mem.memdir, `Journal up to tick ${tick}`, Math.floor(Date.now() / 1000));
  }
  // Rewritten in place, as many runtimes do: a snapshot can catch it mid-write, and the state
  // plugin re-reads it until it parses.
  await Deno.writeTextFile(
    mem.state.extract_cursor!,
    JSON.stringify({ last_message_id: `msg_${tick}`, updated_at: new Date().toISOString() }),
  );
}

const deadlineMs = Number(args.values["deadline-ms"]);
if (args.values.dream) {
  await dreamCycle();
  const r = await hooks.emit("shutdown", {
    agentId,
    signalName: "exit",
    deadline: Date.now() + deadlineMs,
  });
  for (const f of r.failures) {
    log({ type: "hook-failure", hook: f.hook, plugin: f.plugin, error: f.error.message });
  }
  await store.close();
  Deno.exit(r.failures.length === 0 ? 0 : 1);
}

// --serve: work until SIGINT/SIGTERM; the helper emits `shutdown` within the deadline, then exits.
let stopping = false;
installShutdownSignals(hooks, {
  deadlineMs,
  context: { agentId },
  onResult: (r, err) => {
    stopping = true;
    log({
      type: "shutdown",
      failures: r?.failures.length ?? null,
      error: err ? String(err) : undefined,
    });
  },
});
log({ type: "serving", agent: agentId, pid: Deno.pid });
const tickMs = Number(args.values["tick-ms"]);
const dreamEvery = Number(args.values["dream-every"]);
while (!stopping) {
  await work();
  if (tick % dreamEvery === 0) await dreamCycle();
  await new Promise((r) => setTimeout(r, tickMs));
}
