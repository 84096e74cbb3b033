import assert from "node:assert/strict";
import { tempDir } from "../tests/_tools.ts";
import { SpilledArtifact, SpillFile } from "./_spill.ts";

Deno.test("SpillFile reads back every range appended, with reads and appends interleaved", async () => {
  await using tmp = await tempDir();
  const spill = new SpillFile(`${tmp.path}/x.spill`);
  try {
    const chunks: { at: number; bytes: Uint8Array }[] = [];
    for (let i = 0; i < 50; i++) {
      const bytes = new Uint8Array((i * 7919) % 5000).map((_, k) => (k * 31 + i) & 255);
      chunks.push({ at: spill.append(bytes), bytes });
      // A read between appends must not move where the next append goes.
      const back = chunks[(i * 13) % chunks.length]!;
      const into = new Uint8Array(back.bytes.length + 1);
      assert.equal(spill.readAt(back.at, back.bytes.length, into), back.bytes.length);
      assert.deepEqual(into.subarray(0, back.bytes.length), back.bytes);
    }
    assert.equal(spill.size, chunks.reduce((n, c) => n + c.bytes.length, 0));
    assert.equal(Deno.statSync(spill.path).size, spill.size);
    for (const c of chunks) {
      const into = new Uint8Array(c.bytes.length);
      spill.readAt(c.at, c.bytes.length, into);
      assert.deepEqual(into, c.bytes);
    }
    assert.throws(() => spill.readAt(spill.size - 1, 2, new Uint8Array(2)), RangeError);
    assert.throws(() => spill.readAt(0, 4, new Uint8Array(3)), RangeError);
  } finally {
    spill.close();
    spill.close();
  }
});

Deno.test("SpillFile refuses a path that exists, and creates nothing until an append", async () => {
  await using tmp = await tempDir();
  const lazy = new SpillFile(`${tmp.path}/lazy.spill`);
  lazy.close();
  assert.throws(() => Deno.statSync(`${tmp.path}/lazy.spill`), Deno.errors.NotFound);
  Deno.writeTextFileSync(`${tmp.path}/taken`, "someone's");
  const spill = new SpillFile(`${tmp.path}/taken`);
  assert.throws(() => spill.append(new Uint8Array(1)), Deno.errors.AlreadyExists);
  spill.close();
  assert.equal(Deno.readTextFileSync(`${tmp.path}/taken`), "someone's");
});

Deno.test("SpilledArtifact yields its range through readInto and open", async () => {
  await using tmp = await tempDir();
  const spill = new SpillFile(`${tmp.path}/a.spill`);
  try {
    spill.append(new TextEncoder().encode("before"));
    const at = spill.append(new TextEncoder().encode("the note"));
    spill.append(new TextEncoder().encode("after"));
    const a = new SpilledArtifact("memdir/n.md", 8, spill, at, 0o755);
    assert.equal(a.kind, "file");
    assert.equal(a.mode, 0o755);
    const into = new Uint8Array(64);
    assert.equal(a.readInto(into), 8);
    assert.equal(new TextDecoder().decode(into.subarray(0, 8)), "the note");
    let text = "";
    for await (const c of await a.open()) text += new TextDecoder().decode(c);
    assert.equal(text, "the note");
    assert.equal(new SpilledArtifact("memdir/m.md", 3, spill, 0).mode, undefined);
  } finally {
    spill.close();
  }
});
