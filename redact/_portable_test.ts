import { deepStrictEqual, notStrictEqual, rejects, strictEqual } from "node:assert/strict";
import { createRedactor } from "./create_redactor.ts";
import { loadPack, loadPacks, loadPortablePacks, packSource } from "./load_pack.ts";
import { packsFingerprint } from "./_portable.ts";
import type { RulePack } from "./types.ts";

const KEY = new Uint8Array(32).fill(7);
const TEXT_A = "deploy with password=Hunter2Hunter2xyz and mail jane@acme.io\n";
const TEXT_B = "token: ghp_0123456789abcdefghijABCDEFGHIJ012345 for bob@example.org\n";

const TOML = `
[[rules]]
id = "acme-key"
description = "ACME key"
regex = '''acme_[0-9a-f]{16}'''
`;

Deno.test("packSource() gives the spec that loads a pack again: a built-in id or a file's absolute path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    strictEqual(packSource(await loadPack("secrets")), "secrets");
    strictEqual(packSource(await loadPack("pii")), "pii");
    await Deno.writeTextFile(`${dir}/acme.toml`, TOML);
    await Deno.writeTextFile(
      `${dir}/mine.ts`,
      `export const pack = { id: "mine", version: "1", rules: [{ id: "m", description: "m", pattern: /mine_[0-9]{4}/ }] };\n`,
    );
    // A relative spec resolves against baseDir; the source is absolute.
    strictEqual(packSource(await loadPack("acme.toml", { baseDir: dir })), `${dir}/acme.toml`);
    strictEqual(packSource(await loadPack(`${dir}/mine.ts`)), `${dir}/mine.ts`);
    const inCode: RulePack = { id: "x", version: "1", rules: [] };
    strictEqual(packSource(inCode), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Redactor.portable() is made again elsewhere with the same rules; absorb() adds its report", async () => {
  const packs = await loadPacks("secrets,pii");
  const here = createRedactor({ packs, key: KEY });
  const portable = here.portable()!;
  deepStrictEqual(portable.packs, ["secrets", "pii"]);
  deepStrictEqual(portable.key, KEY);
  strictEqual(portable.fingerprint, packsFingerprint(packs));
  // As a worker does: packs loaded again from the specs, a redactor of them and the key.
  const there = createRedactor({ packs: await loadPortablePacks(portable), key: portable.key });
  const a = here.redactString(TEXT_A, "memdir/a.md");
  const b = there.redactString(TEXT_B, "sqlite/mem.sqlite");
  here.absorb(there.report());
  // The same as one redactor doing both.
  const both = createRedactor({ packs, key: KEY });
  strictEqual(both.redactString(TEXT_A, "memdir/a.md"), a);
  strictEqual(both.redactString(TEXT_B, "sqlite/mem.sqlite"), b);
  notStrictEqual(b, TEXT_B);
  deepStrictEqual(here.report(), both.report());
  strictEqual(here.replacements, both.replacements);
  // A second absorb adds again (counts and artifacts merge).
  here.absorb(there.report());
  const rules = here.report().rules;
  for (const r of both.report().rules) {
    const merged = rules.find((x) => x.id === r.id)!;
    const fromThere = there.report().rules.find((x) => x.id === r.id)?.count ?? 0;
    strictEqual(merged.count, r.count + fromThere);
    deepStrictEqual(merged.artifacts, r.artifacts);
  }
});

Deno.test("Redactor.portable() is undefined when a pack was made in code", () => {
  const inCode: RulePack = {
    id: "inline",
    version: "1",
    rules: [{ id: "x", description: "x", pattern: /x{8}/ }],
  };
  strictEqual(createRedactor({ packs: [inCode], key: KEY }).portable(), undefined);
});

Deno.test("loadPortablePacks() refuses packs that changed since the redactor was made", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/acme.toml`, TOML);
    const packs = await loadPacks(["secrets", `${dir}/acme.toml`]);
    const portable = createRedactor({ packs, key: KEY }).portable()!;
    deepStrictEqual(
      (await loadPortablePacks(portable)).map((p) => p.id),
      ["secrets", "acme"],
    );
    await Deno.writeTextFile(`${dir}/acme.toml`, TOML.replace('"acme-key"', '"acme-key-2"'));
    await rejects(loadPortablePacks(portable), /not those of the snapshot's redactor/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
