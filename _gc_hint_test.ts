import assert from "node:assert/strict";
import { GC_HINT_MIN_BYTES } from "./_gc_hint.ts";

type Hint = typeof import("./_gc_hint.ts");

/** A fresh instance of the module (it reads MEMSNAP_GC_HINTS once). */
async function fresh(tag: string): Promise<Hint> {
  return await import(`./_gc_hint.ts?${tag}`) as Hint;
}

/** Runs `fn` with `globalThis.gc` replaced by a counter (or removed, with `null`). */
function withGc(fn: (calls: () => number) => void, absent = false): void {
  const g = globalThis as { gc?: () => void };
  const saved = g.gc;
  let calls = 0;
  if (absent) delete g.gc;
  else g.gc = () => calls++;
  try {
    fn(() => calls);
  } finally {
    if (saved === undefined) delete g.gc;
    else g.gc = saved;
  }
}

Deno.test("phaseEnded() collects only a heap past the threshold, only where gc is exposed", async () => {
  const hint = await fresh("a");
  withGc(() => {
    hint.phaseEnded(GC_HINT_MIN_BYTES * 4);
    assert.equal(hint.gcHintStats.collections, 0);
  }, true);
  withGc((calls) => {
    hint.phaseEnded(GC_HINT_MIN_BYTES - 1);
    assert.equal(calls(), 0);
    hint.phaseEnded(GC_HINT_MIN_BYTES);
    assert.equal(calls(), 1);
    assert.equal(hint.gcHintStats.collections, 1);
    // The runtime's own figure by default: a number, compared the same way.
    hint.phaseEnded();
    assert.equal(calls() - 1, Deno.memoryUsage().heapUsed >= GC_HINT_MIN_BYTES ? 1 : 0);
  });
});

Deno.test("phaseEnded() does nothing with MEMSNAP_GC_HINTS=off", async () => {
  Deno.env.set("MEMSNAP_GC_HINTS", "off");
  try {
    const hint = await fresh("off");
    withGc((calls) => {
      hint.phaseEnded(GC_HINT_MIN_BYTES * 4);
      assert.equal(calls(), 0);
    });
  } finally {
    Deno.env.delete("MEMSNAP_GC_HINTS");
  }
});
