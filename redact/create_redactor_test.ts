// Tests of redactFile()'s byte path: unchanged stretches copied from the bytes read, only the
// tokens encoded, and the string path kept where bytes cannot stand for the string.
import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { createRedactor } from "./create_redactor.ts";
import { piiPack, secretsPack } from "./mod.ts";
import type { RulePack } from "./types.ts";

const KEY = new Uint8Array(32).fill(3);

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** redactFile over `text` in small blocks equals redactString over it whole, report included. */
async function sameAsWhole(
  dir: string,
  text: string,
  packs: RulePack[],
  chunks: number[],
  overlap: number,
): Promise<void> {
  await Deno.writeTextFile(`${dir}/in`, text);
  const whole = createRedactor({ packs, key: KEY });
  const expected = whole.redactString(text, "a");
  for (const chunkSize of chunks) {
    const r = createRedactor({ packs, key: KEY, chunkSize, overlap });
    strictEqual(await r.redactFile(`${dir}/in`, `${dir}/out`, "a"), true);
    // (bytes: a lone surrogate in the string is written as U+FFFD)
    deepStrictEqual(
      await Deno.readFile(`${dir}/out`),
      new TextEncoder().encode(expected),
      `chunk ${chunkSize}`,
    );
    deepStrictEqual(r.report(), whole.report(), `chunk ${chunkSize}`);
    strictEqual(r.replacements, whole.replacements);
  }
}

Deno.test("redactFile() byte path: ASCII and multi-byte text with secrets in every block", async () => {
  await withTmp(async (dir) => {
    let text = "";
    for (let i = 0; i < 300; i++) {
      const tail = i % 3 === 0 ? "é日本😀" : i % 3 === 1 ? "plain" : "Ω≈ç√";
      text += `line ${i} ${tail} key AKIAZ7ZQWUXYVDCB${String(1000 + i).slice(-4)}AB ` +
        `mail me at user${i}@example.com ${tail}\n`;
    }
    await sameAsWhole(dir, text, [secretsPack, piiPack], [256, 1000, 4096], 200);
    const ascii = text.replace(/[^ -~\n]/g, "x");
    await sameAsWhole(dir, ascii, [secretsPack, piiPack], [256, 4096], 200);
  });
});

Deno.test("redactFile() takes the string path for a span inside a surrogate pair", async () => {
  await withTmp(async (dir) => {
    // Without the u flag, [^ ]{3} matches single UTF-16 units: the span ends between the two
    // halves of 😀, which the string path encodes as U+FFFD (the byte path cannot).
    const pack: RulePack = {
      id: "t",
      version: "1",
      rules: [{ id: "half", description: "ends mid-pair", pattern: /QZ[^ \n]{3}/ }],
    };
    let text = "";
    for (let i = 0; i < 200; i++) text += `row ${i} QZab😀c and QZabc plain\n`;
    const expected = createRedactor({ packs: [pack], key: KEY }).redactString(text, "a");
    strictEqual(expected.isWellFormed(), false);
    await sameAsWhole(dir, text, [pack], [300, 2048], 128);
  });
});

Deno.test("redactFile() takes the string path when overlapping matches need a rescan", async () => {
  await withTmp(async (dir) => {
    // "long" wins at its start; "tail" starts inside it and sticks out (a partial find): the
    // string path rescans the output, as redactString does.
    const pack: RulePack = {
      id: "t",
      version: "1",
      rules: [
        { id: "long", description: "x", pattern: /XXXX-[0-9]{4}/ },
        { id: "tail", description: "y", pattern: /[0-9]{2}YYYY/ },
      ],
    };
    let text = "";
    for (let i = 0; i < 200; i++) text += `item ${i} XXXX-12${String(10 + (i % 90))}YYYY end\n`;
    await sameAsWhole(dir, text, [pack], [300, 2048], 128);
  });
});

Deno.test("redactFile() byte path: a file without findings and one with a finding at its very end", async () => {
  await withTmp(async (dir) => {
    const clean = "nothing to see here, just words\n".repeat(500);
    await Deno.writeTextFile(`${dir}/in`, clean);
    const r = createRedactor({ packs: [secretsPack], key: KEY, chunkSize: 512, overlap: 64 });
    strictEqual(await r.redactFile(`${dir}/in`, `${dir}/out`, "a"), true);
    deepStrictEqual(await Deno.readFile(`${dir}/out`), await Deno.readFile(`${dir}/in`));
    strictEqual(r.replacements, 0);
    await sameAsWhole(dir, clean + "AKIAZ7ZQWUXYVDCBA234", [secretsPack], [512, 700], 64);
  });
});
