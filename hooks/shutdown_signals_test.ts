import assert from "node:assert/strict";
import { createHooks } from "./create_hooks.ts";
import { installShutdownSignals } from "./shutdown_signals.ts";

const MOD = import.meta.resolve("./mod.ts");
const isWindows = Deno.build.os === "windows";

/**
 * Runs `body` in a child Deno process with `hooks` (a registry), `install` and `say` in scope;
 * each step waits for a stdout line, then sends a signal. Returns the exit status and stdout.
 */
async function runChild(
  body: string,
  steps: { waitFor: string; send?: Deno.Signal }[],
): Promise<{ code: number; signal: Deno.Signal | null; lines: string[] }> {
  const code = `
    import { createHooks, installShutdownSignals as install } from ${JSON.stringify(MOD)};
    const hooks = createHooks();
    const say = (line) => console.log(line);
    setInterval(() => {}, 60_000);
    ${body}
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const lines: string[] = [];
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const stderr = new Response(child.stderr).text();
  let step = 0;
  const act = (): void => {
    while (step < steps.length && lines.includes(steps[step]!.waitFor)) {
      const s = steps[step++]!;
      if (s.send !== undefined) child.kill(s.send);
    }
  };
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const parts = buffer.split("\n");
    buffer = parts.pop()!;
    lines.push(...parts);
    act();
  }
  if (buffer !== "") lines.push(buffer);
  const status = await child.status;
  const err = await stderr;
  assert.equal(step, steps.length, `child stopped early; stdout ${lines.join("|")}; ${err}`);
  return { code: status.code, signal: status.signal, lines };
}

Deno.test({
  name: "installShutdownSignals() runs shutdown LIFO on SIGTERM and exits 0",
  ignore: isWindows,
  async fn() {
    const { code, lines } = await runChild(
      `
      for (const name of ["store", "capture", "runtime"]) {
        hooks.on("shutdown", async (ctx) => {
          await new Promise((r) => setTimeout(r, 1));
          say(name + " " + ctx.signalName + " " + (ctx.deadline > Date.now()));
        }, { plugin: name });
      }
      install(hooks, { deadlineMs: 30_000 });
      say("ready");
      `,
      [{ waitFor: "ready", send: "SIGTERM" }],
    );
    assert.deepEqual(lines, [
      "ready",
      "runtime SIGTERM true",
      "capture SIGTERM true",
      "store SIGTERM true",
    ]);
    assert.equal(code, 0);
  },
});

Deno.test({
  name: "installShutdownSignals() keeps going past a failing handler and exits 1",
  ignore: isWindows,
  async fn() {
    const { code, lines } = await runChild(
      `
      hooks.on("shutdown", () => say("first-registered"), { plugin: "a" });
      hooks.on("shutdown", () => { throw new Error("flush failed"); }, { plugin: "b" });
      install(hooks, {
        deadlineMs: 30_000,
        onResult: (r) => say("failed " + r.failures.map((f) => f.plugin).join(",")),
      });
      say("ready");
      `,
      [{ waitFor: "ready", send: "SIGINT" }],
    );
    assert.deepEqual(lines, ["ready", "first-registered", "failed b"]);
    assert.equal(code, 1);
  },
});

Deno.test({
  name: "installShutdownSignals() exits 1 when a handler outlives the deadline",
  ignore: isWindows,
  async fn() {
    const { code, lines } = await runChild(
      `
      hooks.on("shutdown", () => new Promise(() => {}), { plugin: "stuck" });
      install(hooks, {
        deadlineMs: 50,
        onResult: (r) => say("timedOut " + r.timedOut.join(",")),
      });
      say("ready");
      `,
      [{ waitFor: "ready", send: "SIGTERM" }],
    );
    assert.deepEqual(lines, ["ready", "timedOut stuck"]);
    assert.equal(code, 1);
  },
});

Deno.test({
  name: "installShutdownSignals() exits 130 on a second signal",
  ignore: isWindows,
  async fn() {
    const { code, lines } = await runChild(
      `
      hooks.on("shutdown", () => { say("started"); return new Promise(() => {}); },
        { plugin: "slow", timeout: 60_000 });
      install(hooks, { deadlineMs: 60_000 });
      say("ready");
      `,
      [{ waitFor: "ready", send: "SIGTERM" }, { waitFor: "started", send: "SIGTERM" }],
    );
    assert.deepEqual(lines, ["ready", "started"]);
    assert.equal(code, 130);
  },
});

Deno.test({
  name: "installShutdownSignals() disposer removes the listeners",
  ignore: isWindows,
  async fn() {
    const { signal, lines } = await runChild(
      `
      hooks.on("shutdown", () => say("ran"), { plugin: "p" });
      const dispose = install(hooks, { deadlineMs: 1_000 });
      dispose();
      dispose();
      say("ready");
      `,
      [{ waitFor: "ready", send: "SIGTERM" }],
    );
    assert.deepEqual(lines, ["ready"]);
    assert.equal(signal, "SIGTERM");
  },
});

Deno.test("installShutdownSignals() refuses a non-positive deadline", () => {
  const hooks = createHooks();
  assert.throws(() => installShutdownSignals(hooks, { deadlineMs: 0 }), RangeError);
  assert.throws(() => installShutdownSignals(hooks, { deadlineMs: NaN }), RangeError);
});

Deno.test({
  name: "installShutdownSignals() passes its exit function the shutdown's exit code",
  ignore: isWindows,
  async fn() {
    const hooks = createHooks();
    const seen: string[] = [];
    let release = (): void => {};
    hooks.on("shutdown", (ctx) => {
      seen.push(`${ctx.signalName} ${ctx.agentId}`);
      return new Promise<void>((r) => release = r);
    }, { plugin: "p" });
    const codes: number[] = [];
    let exited = (): void => {};
    const dispose = installShutdownSignals(hooks, {
      deadlineMs: 60_000,
      exit: (c) => {
        codes.push(c);
        exited();
      },
      signals: ["SIGUSR2"],
      context: { agentId: "a1" },
    });
    try {
      let done = new Promise<void>((r) => exited = r);
      Deno.kill(Deno.pid, "SIGUSR2");
      while (seen.length === 0) await new Promise((r) => setTimeout(r, 1));
      done = new Promise<void>((r) => exited = r);
      Deno.kill(Deno.pid, "SIGUSR2");
      await done;
      assert.deepEqual(codes, [130]);
      done = new Promise<void>((r) => exited = r);
      release();
      await done;
      assert.deepEqual(codes, [130, 0]);
      assert.deepEqual(seen, ["SIGUSR2 a1"]);
    } finally {
      dispose();
    }
  },
});
