// createRedactor(): tokens, determinism, idempotence, overlaps, report, bytes, files, JSON.
import { deepStrictEqual, notStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { createRedactor, piiPack, type RulePack, secretsPack } from "../redact/mod.ts";

const KEY = new Uint8Array(32).fill(1);
const KEY2 = new Uint8Array(32).fill(2);
const GH = "ghp_Zq7Xw3Vb9Nm1Kp5Lr8Ts2Uy4Wa6Cd0Ef2Gh4J";
const AKIA = "AKIAZ7ZQWUXYVDCBA234";
const TOKEN_RE = /\[REDACTED:[a-z0-9-]+:[0-9a-f]{8}\]/g;
const packs = [secretsPack, piiPack];

Deno.test("createRedactor() replaces a secret with [REDACTED:<rule>:<8 hex of HMAC>]", async () => {
  const r = createRedactor({ packs, key: KEY });
  const out = r.redactString(`t ${GH} end`, "a");
  const k = await crypto.subtle.importKey("raw", KEY, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(GH)));
  const hex = [...mac.slice(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
  strictEqual(out, `t [REDACTED:github-token:${hex}] end`);
});

Deno.test("createRedactor() gives the same token for the same secret and key, across redactors", () => {
  const a = createRedactor({ packs, key: KEY }).redactString(`x ${GH}`, "a");
  const b = createRedactor({ packs, key: KEY }).redactString(`y ${GH}`, "b");
  strictEqual(a.slice(2), b.slice(2));
  const c = createRedactor({ packs, key: KEY2 }).redactString(`x ${GH}`, "a");
  notStrictEqual(a, c);
});

Deno.test("createRedactor() refuses a short key and duplicate rule ids", () => {
  throws(() => createRedactor({ packs, key: new Uint8Array(8) }), TypeError);
  throws(() => createRedactor({ packs: [secretsPack, secretsPack], key: KEY }), TypeError);
  const bad: RulePack = {
    id: "x",
    version: "1",
    rules: [{ id: "bad id!", description: "", pattern: /x/ }],
  };
  throws(() => createRedactor({ packs: [bad], key: KEY }), TypeError);
});

Deno.test("redactString() is idempotent and never matches a token again", () => {
  const r = createRedactor({ packs, key: KEY });
  const text = `a ${GH}\npassword: Hunter2Hunter2\njane@acme.io ${AKIA}\n`;
  const once = r.redactString(text, "a");
  const twice = r.redactString(once, "a");
  strictEqual(twice, once);
  strictEqual(once.match(TOKEN_RE)?.length, 4);
  // Tokens inside a secret-looking context stay as they are.
  const ctx = `api_key: ${once.match(TOKEN_RE)![0]}`;
  strictEqual(r.redactString(ctx, "a"), ctx);
});

Deno.test("redactString() resolves overlaps: earliest start, then longest, then pack order", () => {
  const pack: RulePack = {
    id: "o",
    version: "1",
    rules: [
      { id: "short", description: "", pattern: /abc/ },
      { id: "long", description: "", pattern: /abcdef/ },
      { id: "later", description: "", pattern: /cdefgh/ },
      { id: "same", description: "", pattern: /abc/ },
    ],
  };
  const r = createRedactor({ packs: [pack], key: KEY });
  const out = r.redactString("abcdefgh", "a");
  ok(/^\[REDACTED:long:[0-9a-f]{8}\]gh$/.test(out), out);
  strictEqual(r.redactString(out, "a"), out);
  const r2 = createRedactor({ packs: [pack], key: KEY });
  ok(/^\[REDACTED:short:[0-9a-f]{8}\]$/.test(r2.redactString("abc", "a")));
});

Deno.test("report() lists packs, rules sorted by id with sorted artifacts, never a secret", () => {
  const r = createRedactor({ packs, key: KEY });
  r.redactString(`${GH} and ${AKIA}`, "memdir/b.md");
  r.redactString(`${GH}`, "memdir/a.md");
  r.redactBytes(new Uint8Array([0, 1, 2]), "memdir/z.bin");
  r.redactBytes(new Uint8Array([0xff, 0xfe, 0x41]), "memdir/y.bin");
  const rep = r.report();
  deepStrictEqual(rep, {
    redacted: true,
    packs: [{ id: "secrets", version: "1.0.0" }, { id: "pii", version: "1.0.0" }],
    rules: [
      { id: "aws-access-key-id", count: 1, artifacts: ["memdir/b.md"] },
      { id: "github-token", count: 2, artifacts: ["memdir/a.md", "memdir/b.md"] },
    ],
    skipped_binary: ["memdir/y.bin", "memdir/z.bin"],
  });
  const json = JSON.stringify(rep);
  ok(!json.includes(GH) && !json.includes(AKIA) && !json.includes("REDACTED"));
});

Deno.test("report() is identical for any key when nothing matched", () => {
  const a = createRedactor({ packs, key: KEY });
  const b = createRedactor({ packs, key: KEY2 });
  a.redactString("plain notes", "a");
  b.redactString("plain notes", "a");
  strictEqual(JSON.stringify(a.report()), JSON.stringify(b.report()));
});

Deno.test("redactBytes() keeps bytes (BOM included) and returns undefined for binary", () => {
  const r = createRedactor({ packs, key: KEY });
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("hi\r\n")]);
  strictEqual(r.redactBytes(bom, "a"), bom);
  const withSecret = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(GH)]);
  const out = r.redactBytes(withSecret, "a")!;
  deepStrictEqual([...out.slice(0, 3)], [0xef, 0xbb, 0xbf]);
  strictEqual(r.redactBytes(new Uint8Array([104, 0, 105]), "bin"), undefined);
  deepStrictEqual(r.report().skipped_binary, ["bin"]);
});

Deno.test("redactJson() redacts string values, keeps keys and structure, uses the key as context", () => {
  const r = createRedactor({ packs, key: KEY });
  const input = {
    [GH]: "a secret used as a key stays (documented)",
    password: "Hunter2Hunter2",
    nested: [{ token: GH, n: 1, ok: true, nil: null }],
    note: "mail jane@acme.io",
    plain: "Hunter2Hunter2",
  };
  const out = r.redactJson(input, "state/s.json") as Record<string, unknown>;
  deepStrictEqual(Object.keys(out), Object.keys(input));
  ok(/^\[REDACTED:generic-secret:[0-9a-f]{8}\]$/.test(out.password as string));
  strictEqual(out.plain, "Hunter2Hunter2");
  const nested = (out.nested as Record<string, unknown>[])[0]!;
  ok(/^\[REDACTED:github-token:/.test(nested.token as string));
  deepStrictEqual([nested.n, nested.ok, nested.nil], [1, true, null]);
  ok(/^mail \[REDACTED:email:/.test(out.note as string));
});

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "memsnap_redact_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("redactFile() catches secrets planted exactly across chunk boundaries", async () => {
  await withTmp(async (dir) => {
    const chunk = 1024;
    const filler = "lorem ipsum dolor sit amet\n";
    let text = "";
    const planted: string[] = [];
    for (let b = 1; b <= 8; b++) {
      // Place a secret so the boundary at b * chunk falls at offset b*3 inside it.
      const secret = b % 2 === 0
        ? GH.slice(0, -4) + "ABCDEFGHI"[b]!.repeat(4)
        : `AKIAZ7ZQWUXYVDCB${"ABCDEFGHI"[b]!.repeat(4)}`;
      const cut = (b * 3) % secret.length || 1;
      while (text.length < b * chunk - cut - 1) {
        text += filler.slice(0, b * chunk - cut - 1 - text.length);
      }
      text += " " + secret + " ";
      strictEqual(text.indexOf(secret), b * chunk - cut);
      planted.push(secret);
    }
    text += "tail\n";
    await Deno.writeTextFile(`${dir}/in.md`, text);
    const r = createRedactor({ packs, key: KEY, chunkSize: chunk, overlap: 256 });
    strictEqual(await r.redactFile(`${dir}/in.md`, `${dir}/out.md`, "memdir/in.md"), true);
    const out = await Deno.readTextFile(`${dir}/out.md`);
    for (const s of planted) ok(!out.includes(s), `survived: ${s}`);
    const whole = createRedactor({ packs, key: KEY }).redactString(text, "x");
    strictEqual(out, whole);
  });
});

Deno.test("redactFile() handles multi-byte characters split across blocks", async () => {
  await withTmp(async (dir) => {
    const text = "é".repeat(700) + ` ${GH} ` + "日本語".repeat(500) + `\n${AKIA}\n`;
    await Deno.writeTextFile(`${dir}/in.md`, text);
    const r = createRedactor({ packs, key: KEY, chunkSize: 333, overlap: 100 });
    await r.redactFile(`${dir}/in.md`, `${dir}/out.md`, "a");
    const whole = createRedactor({ packs, key: KEY }).redactString(text, "a");
    strictEqual(await Deno.readTextFile(`${dir}/out.md`), whole);
  });
});

Deno.test("redactFile() keeps span offsets right after 4-byte characters (surrogate pairs) in a block", async () => {
  await withTmp(async (dir) => {
    // Lines of emoji (4 bytes, two UTF-16 units each) and secrets, over many small blocks, so
    // cuts fall after surrogate pairs and secrets sit on both sides of them.
    let text = "";
    for (let i = 0; i < 40; i++) {
      text += "😀🎉 note ".repeat(i % 7 + 1) + `${i % 2 === 0 ? GH : AKIA} é日😀\n`;
    }
    await Deno.writeTextFile(`${dir}/in.md`, text);
    for (const chunk of [200, 333, 512]) {
      const r = createRedactor({ packs, key: KEY, chunkSize: chunk, overlap: 120 });
      strictEqual(await r.redactFile(`${dir}/in.md`, `${dir}/out.md`, "a"), true);
      const whole = createRedactor({ packs, key: KEY }).redactString(text, "a");
      strictEqual(await Deno.readTextFile(`${dir}/out.md`), whole);
      ok(!whole.includes(GH) && !whole.includes(AKIA));
    }
  });
});

Deno.test("redactFile() skips binary files (NUL, invalid UTF-8 later on) and writes nothing", async () => {
  await withTmp(async (dir) => {
    await Deno.writeFile(`${dir}/nul.bin`, new Uint8Array([1, 2, 0, 3]));
    const late = new Uint8Array(5000).fill(97);
    late[4000] = 0xff;
    await Deno.writeFile(`${dir}/late.txt`, late);
    const r = createRedactor({ packs, key: KEY, chunkSize: 1024, overlap: 64 });
    strictEqual(await r.redactFile(`${dir}/nul.bin`, `${dir}/o1`, "nul.bin"), false);
    strictEqual(await r.redactFile(`${dir}/late.txt`, `${dir}/o2`, "late.txt"), false);
    await Deno.stat(`${dir}/o1`).then(() => ok(false, "o1 written"), () => {});
    await Deno.stat(`${dir}/o2`).then(() => ok(false, "o2 written"), () => {});
    deepStrictEqual(r.report().skipped_binary, ["late.txt", "nul.bin"]);
  });
});

Deno.test("redactFile() copies a file without secrets byte for byte", async () => {
  await withTmp(async (dir) => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("a\r\nb\n")]);
    await Deno.writeFile(`${dir}/in`, bytes);
    const r = createRedactor({ packs, key: KEY });
    await r.redactFile(`${dir}/in`, `${dir}/out`, "a");
    deepStrictEqual(await Deno.readFile(`${dir}/out`), bytes);
    await Deno.writeFile(`${dir}/empty`, new Uint8Array());
    strictEqual(await r.redactFile(`${dir}/empty`, `${dir}/out2`, "e"), true);
    strictEqual((await Deno.readFile(`${dir}/out2`)).length, 0);
  });
});

Deno.test("redactString() finds secrets anywhere on very long lines (minified JSON)", () => {
  const parts: string[] = [];
  const secrets: string[] = [];
  for (let i = 0; i < 50; i++) {
    parts.push(`"k${i}":"${"v".repeat(3000)}"`);
    const s = `ghp_${"Zq7Xw3Vb9Nm1Kp5Lr8Ts2Uy4Wa6Cd0Ef2Gh4J".slice(0, 34)}${
      String.fromCharCode(65 + (i % 26))
    }${i % 10}`;
    secrets.push(s);
    parts.push(`"t${i}":"${s}","password":"Pw${i}xYz!${i}9"`);
  }
  const line = `{${parts.join(",")}}`;
  ok(line.length > 150_000 && !line.includes("\n"));
  const r = createRedactor({ packs, key: KEY });
  const out = r.redactString(line, "state/min.json");
  for (const s of secrets) ok(!out.includes(s), s);
  strictEqual(r.report().rules.find((x) => x.id === "github-token")?.count, 50);
  strictEqual(r.report().rules.find((x) => x.id === "generic-secret")?.count, 50);
});

Deno.test("redactFile() on a line longer than four blocks equals whole-string redaction", async () => {
  await withTmp(async (dir) => {
    const words: string[] = [];
    for (let i = 0; i < 3000; i++) {
      words.push(i % 97 === 0 ? `${GH.slice(0, -2)}${i % 10}x` : "word");
    }
    const text = words.join(" ");
    await Deno.writeTextFile(`${dir}/in`, text);
    const r = createRedactor({ packs, key: KEY, chunkSize: 512, overlap: 128 });
    await r.redactFile(`${dir}/in`, `${dir}/out`, "a");
    const whole = createRedactor({ packs, key: KEY }).redactString(text, "a");
    strictEqual(await Deno.readTextFile(`${dir}/out`), whole);
    ok(!whole.includes(GH.slice(0, 20)));
  });
});

Deno.test("createRedactor() runs rules that several packs share, the later one under its pack's prefix", () => {
  const mine: RulePack = {
    id: "mine",
    version: "1",
    rules: [{ id: "github-token", description: "project tokens", pattern: /proj_[a-z0-9]{12}/ }],
  };
  const r = createRedactor({ packs: [secretsPack, mine], key: new Uint8Array(32) });
  const out = r.redactString(
    "ghp_R2d2C3p0BB8kX9qLmN4vT7wZ1yA5sE6uJ0hF and proj_abcdef123456",
    "a.md",
  );
  ok(
    /\[REDACTED:github-token:[0-9a-f]{8}\] and \[REDACTED:mine\.github-token:[0-9a-f]{8}\]/.test(
      out,
    ),
    out,
  );
  const twice: RulePack = { id: "twice", version: "1", rules: [mine.rules[0]!, mine.rules[0]!] };
  throws(() => createRedactor({ packs: [twice], key: new Uint8Array(32) }), TypeError);
});

Deno.test("redactFile() gives the same bytes, report and result on both sides of the one-read size", async () => {
  await withTmp(async (dir) => {
    const chunk = 2048;
    const line = `note ${GH} and ${AKIA} é\n`;
    for (const size of [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk + 7, 5 * chunk]) {
      let text = line.repeat(Math.ceil(size / line.length) + 1);
      text = text.slice(0, size);
      await Deno.writeTextFile(`${dir}/in`, text);
      const r = createRedactor({ packs, key: KEY, chunkSize: chunk, overlap: 256 });
      const whole = createRedactor({ packs, key: KEY });
      const bytes = await Deno.readFile(`${dir}/in`);
      const expected = whole.redactBytes(bytes, "a");
      await Deno.writeFile(`${dir}/out`, new Uint8Array([1, 2, 3])); // stale output
      const done = await r.redactFile(`${dir}/in`, `${dir}/out`, "a");
      strictEqual(done, expected !== undefined, `size ${size}`);
      if (expected === undefined) {
        await Deno.stat(`${dir}/out`).then(() => ok(false, "out kept"), () => {});
      } else {
        deepStrictEqual(await Deno.readFile(`${dir}/out`), expected, `size ${size}`);
      }
      deepStrictEqual(r.report(), whole.report(), `size ${size}`);
    }
    const bin = new Uint8Array(100).fill(97);
    bin[10] = 0;
    await Deno.writeFile(`${dir}/bin`, bin);
    await Deno.writeFile(`${dir}/out`, new Uint8Array([1]));
    const r = createRedactor({ packs, key: KEY });
    strictEqual(await r.redactFile(`${dir}/bin`, `${dir}/out`, "bin"), false);
    await Deno.stat(`${dir}/out`).then(() => ok(false, "out kept"), () => {});
    deepStrictEqual(r.report().skipped_binary, ["bin"]);
  });
});

Deno.test("redactBytes() of content seen before gives the same bytes and report as redacting it again", () => {
  const enc = new TextEncoder();
  const note = enc.encode(`${"filler line\n".repeat(40)}a ${GH}\njane@acme.io ${AKIA}\n`);
  const plain = enc.encode("nothing to see here\n".repeat(40));
  const bin = new Uint8Array(600).fill(7);
  bin[3] = 0;
  const cached = createRedactor({ packs, key: KEY });
  const fresh = () => createRedactor({ packs, key: KEY });
  // Reference: every call on a redactor that never saw the content.
  const refs = ["memdir/a.md", "git/memdir.bundle:a.md", "memdir/b.md"].map((artifact) => {
    const r = fresh();
    return { artifact, out: r.redactBytes(note.slice(), artifact)!, report: r.report() };
  });
  const outs = refs.map((ref) => cached.redactBytes(note.slice(), ref.artifact)!);
  for (const [i, ref] of refs.entries()) deepStrictEqual(outs[i], ref.out);
  // A hit hands out its own copy: changing it changes nothing later.
  outs[1]!.fill(0);
  deepStrictEqual(cached.redactBytes(note.slice(), "memdir/c.md"), refs[0]!.out);
  // No findings: the input itself; binary: undefined and reported as skipped, each time.
  const p1 = plain.slice();
  strictEqual(cached.redactBytes(p1, "memdir/p.md"), p1);
  const p2 = plain.slice();
  strictEqual(cached.redactBytes(p2, "git/memdir.bundle:p.md"), p2);
  strictEqual(cached.redactBytes(bin, "memdir/x.bin"), undefined);
  strictEqual(cached.redactBytes(bin.slice(), "git/memdir.bundle:x.bin"), undefined);
  // The report counts every artifact's replacements, as four separate redactions would.
  const report = cached.report();
  const perCall = refs[0]!.report.rules;
  deepStrictEqual(
    report.rules,
    perCall.map((r) => ({
      id: r.id,
      count: r.count * 4,
      artifacts: ["git/memdir.bundle:a.md", "memdir/a.md", "memdir/b.md", "memdir/c.md"],
    })),
  );
  deepStrictEqual(report.skipped_binary, ["git/memdir.bundle:x.bin", "memdir/x.bin"]);
  strictEqual(cached.replacements, perCall.reduce((n, r) => n + r.count, 0) * 4);
});

Deno.test("redactBytes() stays exact for repeated content once kept results reach their limit", () => {
  const enc = new TextEncoder();
  // Six distinct ~1 MiB texts with findings: more than the 2 MiB of results kept.
  const texts = Array.from(
    { length: 6 },
    (_, i) => enc.encode(`${i}\n${"lorem ipsum dolor\n".repeat(58_000)}key ${AKIA}\n`),
  );
  const cached = createRedactor({ packs, key: KEY });
  for (let round = 0; round < 2; round++) {
    for (const [i, t] of texts.entries()) {
      const artifact = `r${round}/t${i}`;
      const want = createRedactor({ packs, key: KEY }).redactBytes(t.slice(), artifact);
      deepStrictEqual(cached.redactBytes(t.slice(), artifact), want, artifact);
    }
  }
  deepStrictEqual(
    cached.report().rules.map((r) => [r.id, r.count, r.artifacts.length]),
    [["aws-access-key-id", 12, 12]],
  );
});
