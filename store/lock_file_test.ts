import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { lockFile } from "./lock_file.ts";
import { LockedError } from "../errors.ts";
import { assert, assertEquals, assertRejects } from "../tests/store_assert.ts";
import type { LockOwner } from "./types.ts";

const MODULE = pathToFileURL(join(import.meta.dirname!, "lock_file.ts")).href;

/** Spawns a deno process running `code` with the lock module imported as `lockFile`. */
function child(code: string, args: string[] = []): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", `import { lockFile } from ${JSON.stringify(MODULE)};\n${code}`, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** Reads stdout until a line equals `want`. */
async function waitLine(
  p: Deno.ChildProcess,
  want: string,
): Promise<ReadableStreamDefaultReader<string>> {
  const reader = p.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!buf.split("\n").includes(want)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`child ended before printing ${want}: ${buf}`);
    buf += value;
  }
  return reader;
}

Deno.test("lockFile() contention between two processes: timeout 0 fails, then acquires after release", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a1.lock");
  const p = child(
    `
    const l = await lockFile(Deno.args[0], { timeoutMs: 0 });
    console.log("locked");
    for await (const _ of Deno.stdin.readable) { /* wait for stdin to close */ }
    await l.release();
    console.log("released");
  `,
    [path],
  );
  const reader = await waitLine(p, "locked");
  const e = await assertRejects(
    () => lockFile(path, { timeoutMs: 0, what: "agent a1" }),
    LockedError,
  );
  assert(e.message.startsWith(`Cannot lock agent a1: held by pid ${p.pid} on host `), e.message);
  await assertRejects(() => lockFile(path, { timeoutMs: 150 }), LockedError);
  const waiting = lockFile(path, { timeoutMs: 30_000 });
  await p.stdin.close();
  const l = await waiting;
  const owner = JSON.parse(await Deno.readTextFile(path)) as LockOwner;
  assertEquals(owner.pid, Deno.pid);
  assertEquals(owner.token, l.token);
  await l.release();
  await reader.cancel();
  await p.status;
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lockFile() recovers the stale lock of a killed process", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a1.lock");
  const p = child(
    `
    await lockFile(Deno.args[0], { timeoutMs: 0, leaseMs: 600000 });
    console.log("locked");
    setInterval(() => {}, 1000);
  `,
    [path],
  );
  const reader = await waitLine(p, "locked");
  await assertRejects(() => lockFile(path, { timeoutMs: 0 }), LockedError);
  p.kill("SIGKILL");
  await p.status; // reaped: the pid is dead, not a zombie
  await reader.cancel();
  await p.stdin.close().catch(() => {});
  const l = await lockFile(path, { timeoutMs: 0 });
  assertEquals((JSON.parse(await Deno.readTextFile(path)) as LockOwner).token, l.token);
  await l.release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lockFile() recovers an expired lease from another host", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a1.lock");
  const stale: LockOwner = {
    host: "some-other-host",
    pid: 1,
    created_at: "2020-01-01T00:00:00.000Z",
    expires_at: "2020-01-01T00:02:00.000Z",
    token: "old",
  };
  await Deno.writeTextFile(path, JSON.stringify(stale));
  const l = await lockFile(path, { timeoutMs: 0 });
  assertEquals((JSON.parse(await Deno.readTextFile(path)) as LockOwner).token, l.token);
  await l.release();
  // A live lease on another host is respected.
  await Deno.writeTextFile(
    path,
    JSON.stringify({ ...stale, expires_at: new Date(Date.now() + 60_000).toISOString() }),
  );
  await assertRejects(() => lockFile(path, { timeoutMs: 0 }), LockedError, "some-other-host");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lockFile() refreshes its lease and release() keeps a lock that is no longer ours", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a1.lock");
  const l = await lockFile(path, { timeoutMs: 0, leaseMs: 300 });
  const first = JSON.parse(await Deno.readTextFile(path)) as LockOwner;
  // Lease periods later the lock is still held (refreshed), not stale. Poll: on a loaded
  // machine the refresh timer (every 100 ms here) can be late, so allow up to 5 s.
  let later = first;
  for (let i = 0; i < 100 && later.expires_at <= first.expires_at; i++) {
    await new Promise((r) => setTimeout(r, 50));
    later = JSON.parse(await Deno.readTextFile(path)) as LockOwner;
  }
  assert(later.expires_at > first.expires_at, "lease refreshed");
  // Someone else's lock replaces ours: release must not remove it.
  await Deno.writeTextFile(path, JSON.stringify({ ...later, token: "theirs" }));
  await l.release();
  assertEquals((JSON.parse(await Deno.readTextFile(path)) as LockOwner).token, "theirs");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lockFile() gives mutual exclusion to concurrent processes racing a stale lock", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a1.lock");
  const counter = join(dir, "counter");
  await Deno.writeTextFile(counter, "0");
  // A stale lock all children see at start.
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      host: "gone",
      pid: 1,
      created_at: "2020-01-01T00:00:00.000Z",
      expires_at: "2020-01-01T00:00:01.000Z",
      token: "stale",
    }),
  );
  const N = 3, ROUNDS = 15;
  const procs = Array.from({ length: N }, () =>
    child(
      `
      const [path, counter, rounds] = Deno.args;
      for (let i = 0; i < Number(rounds); i++) {
        const l = await lockFile(path, { timeoutMs: 60000 });
        const n = Number(await Deno.readTextFile(counter));
        await new Promise((r) => setTimeout(r, 2));
        await Deno.writeTextFile(counter, String(n + 1));
        await l.release();
      }
    `,
      [path, counter, String(ROUNDS)],
    ));
  for (const p of procs) {
    await p.stdin.close();
    await p.stdout.cancel();
    assert((await p.status).success);
  }
  assertEquals(Number(await Deno.readTextFile(counter)), N * ROUNDS);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lockFile() wait is aborted by the signal", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "a1.lock");
  const l = await lockFile(path, { timeoutMs: 0 });
  const ac = new AbortController();
  const waiting = lockFile(path, { timeoutMs: 60_000, signal: ac.signal });
  setTimeout(() => ac.abort(new DOMException("stop", "AbortError")), 50);
  await assertRejects(() => waiting, DOMException);
  await l.release();
  await Deno.remove(dir, { recursive: true });
});
