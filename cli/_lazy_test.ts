import assert from "node:assert/strict";
import { lazy } from "./_lazy.ts";
import { main } from "./main.ts";
import type { Command } from "./_spec.ts";

const CLI_DIR = new URL("./", import.meta.url);

/** The CLI's sources (tests and `_lazy.ts`, whose docs show both forms, excluded). */
async function sources(): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const e of Deno.readDir(CLI_DIR)) {
    if (!e.isFile || !e.name.endsWith(".ts") || e.name.endsWith("_test.ts")) continue;
    if (e.name === "_lazy.ts") continue;
    out.push([e.name, await Deno.readTextFile(new URL(e.name, CLI_DIR))]);
  }
  return out;
}

Deno.test("every lazy<typeof X>(path) call names the module X is the type of", async () => {
  let calls = 0;
  for (const [name, text] of await sources()) {
    for (const m of text.matchAll(/lazy<typeof (\w+)>\("([^"]+)"\)/g)) {
      calls++;
      const [, type, path] = m;
      assert.ok(
        text.includes(`import type * as ${type} from "../${path}";`),
        `${name}: lazy<typeof ${type}>("${path}") needs import type * as ${type} from "../${path}"`,
      );
      const mod = await lazy<Record<string, unknown>>(path!);
      assert.ok(Object.keys(mod).length > 0, `${path} exports nothing`);
    }
  }
  assert.ok(calls > 0);
});

Deno.test("the CLI does not import() a literal path (that would load its graph at start-up)", async () => {
  for (const [name, text] of await sources()) {
    for (const m of text.matchAll(/\bimport\(\s*["'`]([^"'`]+)["'`]\s*\)/g)) {
      assert.ok(
        m[1] === "../version.ts",
        `${name}: import("${m[1]}") is statically analyzable; use lazy() (see _lazy.ts)`,
      );
    }
  }
});

Deno.test("every command in the help loads from cli/<name>.ts with its name", async () => {
  const log = console.log;
  let help = "";
  console.log = (s: string) => void (help += s);
  try {
    assert.equal(await main(["--help"]), 0);
  } finally {
    console.log = log;
  }
  const names = [...help.matchAll(/^ {2}(\w+) {2,}/gm)].map((m) => m[1]!);
  assert.ok(names.length >= 18, help);
  for (const name of names) {
    const { command } = await lazy<{ command: Command }>(`cli/${name}.ts`);
    assert.equal(command.name, name);
  }
});

Deno.test("a command name that is an Object.prototype key is an unknown command (exit 2)", async () => {
  const { error, log } = console;
  console.error = console.log = () => {};
  try {
    for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      assert.equal(await main([name]), 2, name);
      assert.equal(await main(["help", name]), 0, name);
    }
  } finally {
    console.error = error;
    console.log = log;
  }
});
