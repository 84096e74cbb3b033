import assert from "node:assert/strict";
import { NotFoundError, UsageError } from "../errors.ts";
import type { JsonValue } from "../bundle/types.ts";
import { statePlugin } from "./state.ts";
import { captureInto, fakeRedactor, restoreInto } from "../tests/capture_helpers.ts";
import { tempDir } from "../tests/_tools.ts";

Deno.test("statePlugin() stores canonical JSON and restores files and values", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/session.json`;
  await Deno.writeTextFile(
    file,
    '{\n  "z": 1, "a": {"y": [1, "é", null], "b": false}, "m": 1.5\n}\n',
  );
  const restored: [string, JsonValue][] = [];
  const plugin = statePlugin({
    files: { session: file },
    values: { "runtime.counters": () => Promise.resolve({ b: 2, a: 1 }) },
    restore: (name, value) => {
      restored.push([name, value]);
      return Promise.resolve();
    },
  });
  const captured = await captureInto(tmp.path, [plugin]);
  assert.deepEqual(captured.manifest.artifacts.map((a) => [a.path, a.kind]), [
    ["state/runtime.counters.json", "state"],
    ["state/session.json", "state"],
  ]);
  assert.equal(
    await Deno.readTextFile(`${captured.payloadDir}/state/session.json`),
    '{"a":{"b":false,"y":[1,"é",null]},"m":1.5,"z":1}',
  );
  const { staged } = await restoreInto(tmp.path, [plugin], captured);
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(staged.get(file)!)),
    JSON.parse(await Deno.readTextFile(file)),
  );
  assert.deepEqual(restored, [["runtime.counters", { a: 1, b: 2 }]]);
});

Deno.test("statePlugin() reports invalid JSON with the file and position", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/broken.json`;
  await Deno.writeTextFile(file, '{\n  "a": 1,\n  "b": tru\n}');
  await assert.rejects(
    () => captureInto(tmp.path, [statePlugin({ files: { broken: file } })]),
    (e: unknown) => {
      assert(e instanceof UsageError);
      assert(e.message.includes(file), e.message);
      assert.match(e.message, /line 3, column \d+ \(position \d+\)/);
      return true;
    },
  );
  await assert.rejects(
    () => captureInto(tmp.path, [statePlugin({ files: { gone: `${tmp.path}/gone.json` } })]),
    NotFoundError,
  );
});

Deno.test("statePlugin() redacts values and warns about values it cannot restore", async () => {
  await using tmp = await tempDir();
  const plugin = statePlugin({ values: { creds: () => ({ token: "x SECRET123 y" }) } });
  const captured = await captureInto(tmp.path, [plugin], fakeRedactor());
  assert.equal(
    await Deno.readTextFile(`${captured.payloadDir}/state/creds.json`),
    '{"token":"x [REDACTED:fake:00000000] y"}',
  );
  const { warnings } = await restoreInto(tmp.path, [plugin], captured);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /no restore callback/);
});

Deno.test("statePlugin() rejects invalid and duplicate names", () => {
  assert.throws(() => statePlugin({ files: { "../x": "a.json" } }), UsageError);
  assert.throws(() => statePlugin({ files: { a: "a.json" }, values: { a: () => 1 } }), UsageError);
});

Deno.test("statePlugin() re-reads a state file caught mid-write until it parses", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/cursor.json`;
  await Deno.writeTextFile(file, '{"last_message_id": "msg_1'); // a writer is mid-write
  const done = new Promise<void>((resolve) =>
    setTimeout(async () => {
      await Deno.writeTextFile(file, '{"last_message_id": "msg_12"}');
      resolve();
    }, 80)
  );
  const captured = await captureInto(tmp.path, [statePlugin({ files: { cursor: file } })]);
  await done;
  const text = await Deno.readTextFile(`${captured.payloadDir}/state/cursor.json`);
  assert.equal(text, '{"last_message_id":"msg_12"}');
});

Deno.test("statePlugin() refuses a file or value over maxBytes, before reading the file", async () => {
  await using tmp = await tempDir();
  const file = `${tmp.path}/big.json`;
  const big = JSON.stringify({ items: Array.from({ length: 4000 }, (_, i) => `item ${i}`) });
  await Deno.writeTextFile(file, big);
  const refused = (name: string) => (e: unknown) => {
    assert(e instanceof UsageError, String(e));
    assert.match(
      e.message,
      new RegExp(`Cannot capture state ${name}.*over the state plugin's limit of 0\\.0 MiB`),
    );
    assert.match(e.hint ?? "", /memory dir or a SQLite database/);
    return true;
  };
  await assert.rejects(
    () => captureInto(tmp.path, [statePlugin({ files: { big: file }, maxBytes: 1000 })]),
    refused("big"),
  );
  // Not read: a file that is not JSON at all is refused for its size, not its syntax.
  await Deno.writeTextFile(file, "x".repeat(5000));
  await assert.rejects(
    () => captureInto(tmp.path, [statePlugin({ files: { big: file }, maxBytes: 1000 })]),
    refused("big"),
  );
  await assert.rejects(
    () =>
      captureInto(tmp.path, [
        statePlugin({ values: { v: () => ({ s: "y".repeat(2000) }) }, maxBytes: 1000 }),
      ]),
    refused("v"),
  );
  // At the limit exactly, captured.
  const exact = JSON.stringify({ s: "z".repeat(992) });
  assert.equal(exact.length, 1000);
  await Deno.writeTextFile(file, exact);
  const r = await captureInto(tmp.path, [statePlugin({ files: { big: file }, maxBytes: 1000 })]);
  assert.deepEqual(r.manifest.artifacts.map((a) => [a.path, a.size]), [["state/big.json", 1000]]);
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => statePlugin({ maxBytes: bad }), UsageError);
  }
});
