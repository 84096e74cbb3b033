import assert from "node:assert/strict";
import { startTrimming, trimStats, whileTrimming } from "./_malloc_trim.ts";

const glibc = Deno.build.os === "linux" && (() => {
  try {
    Deno.dlopen("libc.so.6", { malloc_trim: { parameters: ["usize"], result: "i32" } }).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test("startTrimming() trims while any caller runs, and stops with the last", async () => {
  const before = trimStats.calls;
  const stopA = startTrimming(5);
  const stopB = startTrimming(5); // nested: shares the one timer
  await new Promise((r) => setTimeout(r, 40));
  stopA();
  stopA(); // twice is once
  const mid = trimStats.calls;
  await new Promise((r) => setTimeout(r, 40));
  if (glibc) {
    assert.ok(mid > before, "malloc_trim was called");
    assert.ok(trimStats.calls > mid, "still trimming while B runs");
  } else {
    assert.equal(trimStats.calls, before); // a no-op elsewhere
  }
  stopB();
  const end = trimStats.calls;
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(trimStats.calls, end, "no timer left after the last stop");
  // (the test sanitizer also fails a test that leaves an interval running)
});

Deno.test("whileTrimming() returns and throws what the function does, and stops", async () => {
  assert.equal(await whileTrimming(() => Promise.resolve(7)), 7);
  await assert.rejects(() => whileTrimming(() => Promise.reject(new Error("boom"))), /boom/);
  const end = trimStats.calls;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(trimStats.calls, end);
});

Deno.test({
  name: "MEMSNAP_MALLOC_TRIM=off switches it off",
  ignore: !glibc,
  async fn() {
    const code = `
      import { startTrimming, trimStats } from ${
      JSON.stringify(import.meta.resolve("./_malloc_trim.ts"))
    };
      const stop = startTrimming(2);
      await new Promise((r) => setTimeout(r, 30));
      stop();
      console.log(trimStats.calls);`;
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", "-A", code] as string[],
        env,
        stdout: "piped",
      }).output();
      return Number(new TextDecoder().decode(out.stdout).trim());
    };
    assert.ok((await run({})) > 0);
    assert.equal(await run({ MEMSNAP_MALLOC_TRIM: "off" }), 0);
  },
});
