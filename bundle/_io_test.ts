import assert from "node:assert/strict";
import { readWholeFile, release } from "./_io.ts";
import { tempDir } from "../tests/_tools.ts";

Deno.test("readWholeFile() reads what Deno.readFileSync reads, in a buffer of the file's size", async () => {
  await using tmp = await tempDir();
  for (const size of [0, 1, 4095, 65_536, (1 << 20) + 7]) {
    const bytes = crypto.getRandomValues(new Uint8Array(Math.min(size, 65_536)));
    const data = new Uint8Array(size);
    for (let at = 0; at < size; at += bytes.length) data.set(bytes.subarray(0, size - at), at);
    const path = `${tmp.path}/f${size}`;
    Deno.writeFileSync(path, data);
    const got = readWholeFile(path);
    assert.deepEqual(got, Deno.readFileSync(path), `size ${size}`);
    assert.equal(got.buffer.byteLength, size + 1);
  }
  assert.throws(() => readWholeFile(`${tmp.path}/absent`), Deno.errors.NotFound);
});

Deno.test("readWholeFile() reads a file past the size it had when opened (a FIFO)", async () => {
  await using tmp = await tempDir();
  const fifo = `${tmp.path}/fifo`;
  assert((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success);
  const data = crypto.getRandomValues(new Uint8Array(50_000));
  Deno.writeFileSync(`${tmp.path}/src`, data);
  // Another process writes it (this thread blocks in the open until a writer comes).
  const child = new Deno.Command("sh", { args: ["-c", `cat "$0" > "$1"`, `${tmp.path}/src`, fifo] })
    .spawn();
  const got = readWholeFile(fifo);
  assert((await child.status).success);
  assert.deepEqual(got, data);
});

Deno.test("release() detaches a buffer (its memory is freed), and leaves a detached one alone", () => {
  const buf = new Uint8Array(1 << 20).buffer;
  release(buf);
  assert.equal(buf.byteLength, 0);
  assert.equal((buf as ArrayBuffer & { detached: boolean }).detached, true);
  release(buf); // no throw
});
