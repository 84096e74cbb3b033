// loadGitleaksPack(), loadPack(), loadPacks(), scanText/scanFile/scanPaths.
import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import fc from "fast-check";
import { NotFoundError, UsageError } from "../errors.ts";
import {
  createRedactor,
  type Finding,
  loadGitleaksPack,
  loadPack,
  loadPacks,
  piiPack,
  scanFile,
  scanPaths,
  scanText,
  secretsPack,
} from "../redact/mod.ts";

const KEY = new Uint8Array(32).fill(4);
const FIXTURES = new URL("./fixtures/redact/", import.meta.url).pathname;
const TOML = await Deno.readTextFile(`${FIXTURES}gitleaks.toml`);

Deno.test("loadGitleaksPack() translates a realistic config and reports what it cannot", () => {
  const { pack, untranslated, pathAllowlists } = loadGitleaksPack(TOML, { id: "gl" });
  strictEqual(pack.id, "gl");
  const bad = new Map(untranslated.map((u) => [u.id, u.reason]));
  for (
    const id of [
      "unicode-letters",
      "ungreedy",
      "negated-posix",
      "any-byte",
      "midflag-alternation",
      "pkcs12-file",
      "(extend)",
    ]
  ) ok(bad.has(id), `${id} not reported`);
  ok(/Unicode/.test(bad.get("unicode-letters")!));
  ok(/path-only/.test(bad.get("pkcs12-file")!));
  const ids = pack.rules.map((r) => r.id);
  strictEqual(ids.length, 29);
  for (const u of untranslated) ok(!ids.includes(u.id) || u.reason.includes("allowlist"));
  ok(pathAllowlists.some((p) => p.id === "(global allowlist)" && p.paths.length === 2));
  ok(pathAllowlists.some((p) => p.id === "gcp-service-account"));
  // Every translated rule count: rules + untranslated rules = all [[rules]].
  strictEqual(ids.length + untranslated.filter((u) => u.id !== "(extend)").length, 35);
});

Deno.test("loadGitleaksPack() honours keywords, entropy, secretGroup and allowlists", () => {
  const { pack } = loadGitleaksPack(TOML);
  const r = createRedactor({ packs: [pack], key: KEY });
  const red = (s: string): string => r.redactString(s, "a");
  // (?i) flag, secret group "first": only the key is replaced, not the trailing quote.
  ok(
    /^k="\[REDACTED:stripe-access-token:[0-9a-f]{8}\]"$/.test(
      red('k="SK_LIVE_abcDEF123456789xyz"'),
    ),
  );
  // Global allowlist (target match): EXAMPLE keys stay.
  strictEqual(red("AKIAIOSFODNN7EXAMPLE"), "AKIAIOSFODNN7EXAMPLE");
  ok(red("AKIAZ7ZQWUXYVDCBA234 ").includes("[REDACTED:aws-access-token:"));
  // Global stopwords.
  strictEqual(
    red("ghp_placeholder0123456789abcdefghijklmno"),
    "ghp_placeholder0123456789abcdefghijklmno",
  );
  // Per-rule allowlist with regexTarget = line.
  strictEqual(red("api_key = Zx8Qw2Lp5Rt7Yu1Io3Pa test"), "api_key = Zx8Qw2Lp5Rt7Yu1Io3Pa test");
  ok(red("api_key = Zx8Qw2Lp5Rt7Yu1Io3Pa9Kd\n").includes("[REDACTED:generic-api-key:"));
  // Entropy: low-entropy value is left alone.
  strictEqual(red("api_key = aaaaaaaaaaaaaaaa\n"), "api_key = aaaaaaaaaaaaaaaa\n");
  // [[rules.allowlists]] form.
  strictEqual(
    red("AIzaSyabcdefghijklmnopqrstuvwxyz1234567 "),
    "AIzaSyabcdefghijklmnopqrstuvwxyz1234567 ",
  );
  // (?P<name>...), [[:alnum:]], \z.
  ok(/^acme_\[REDACTED:named-group-token:[0-9a-f]{8}\]$/.test(red("acme_" + "a1B2c3D4".repeat(3))));
  strictEqual(
    red("acme_" + "a1B2c3D4".repeat(3) + " more"),
    "acme_" + "a1B2c3D4".repeat(3) + " more",
  );
  // \A and [[:space:]] / [[:xdigit:]].
  const only = createRedactor({
    packs: [{ ...pack, rules: pack.rules.filter((x) => x.id === "anchored-config-line") }],
    key: KEY,
  });
  const hex = "secret: 0123456789abcdef0123456789abcdef";
  ok(only.redactString(hex, "a").includes("[REDACTED:anchored-config-line:"));
  // Documented limit: a rule with keywords sees the line holding the keyword, so \A and \z
  // anchor at that line's bounds rather than the whole text's.
  ok(only.redactString(`x\n${hex}`, "a").startsWith("x\nsecret: [REDACTED:"));
  strictEqual(only.redactString(`x ${hex}`, "a"), `x ${hex}`);
  // \Q..\E literal.
  ok(red("corp.key+123456789012").includes("[REDACTED:quoted-literal:"));
  strictEqual(red("corpXkey+123456789012"), "corpXkey+123456789012");
  // (?-i:...) inside an (?i) pattern.
  ok(red(`abcdefghij1234.atlasv1.${"a".repeat(64)}`).includes("hashicorp-tf-api-token"));
  strictEqual(red(`abcdefghij1234.ATLASV1.${"a".repeat(64)}`).includes("REDACTED"), false);
  // Inline (?i) mid-pattern: SG. prefix is case-sensitive, the rest is not.
  ok(red(`SG.${"Ab1".repeat(22)} `).includes("sendgrid-api-token"));
  // Multi-line rule: a PEM block is caught whole.
  const pem = `-----BEGIN PRIVATE KEY-----\n${
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".repeat(3)
  }\n-----END PRIVATE KEY-----`;
  ok(/^\[REDACTED:private-key:[0-9a-f]{8}\]$/.test(red(pem)));
});

Deno.test("loadGitleaksPack() refuses text that is not a gitleaks config", () => {
  throws(() => loadGitleaksPack("not = [toml"), UsageError);
  throws(() => loadGitleaksPack('title = "x"'), UsageError);
});

Deno.test("loadPack() resolves built-ins, modules and gitleaks configs", async () => {
  strictEqual(await loadPack("secrets"), secretsPack);
  strictEqual(await loadPack("pii"), piiPack);
  const acme = await loadPack("custom_pack.ts", { baseDir: FIXTURES });
  deepStrictEqual([acme.id, acme.version, acme.rules.length], ["acme", "2.1.0", 2]);
  const r = createRedactor({ packs: [acme], key: KEY });
  const out = r.redactString(
    "EMP-123456 paid to DE89370400440532013000, not DE00370400440532013000",
    "a",
  );
  ok(
    /^\[REDACTED:acme-employee-id:[0-9a-f]{8}\] paid to \[REDACTED:iban:[0-9a-f]{8}\], not DE00/
      .test(out),
    out,
  );
  const seen: string[] = [];
  const gl = await loadPack(`${FIXTURES}gitleaks.toml`, {
    onUntranslated: (_spec, u) => seen.push(...u.map((x) => x.id)),
  });
  strictEqual(gl.id, "gitleaks");
  ok(seen.includes("ungreedy"));
});

Deno.test("loadPack() refuses unknown specs, missing files, bad packs, silent drops", async () => {
  await rejects(loadPack("nope"), UsageError);
  await rejects(loadPack("./missing.ts", { baseDir: FIXTURES }), NotFoundError);
  await rejects(loadPack("bad_pack.ts", { baseDir: FIXTURES }), (e: Error) => {
    ok(e instanceof UsageError);
    ok(e.message.includes("rules[0].pattern must be a RegExp or a function"), e.message);
    return true;
  });
  await rejects(loadPack(`${FIXTURES}gitleaks.toml`), (e: Error) => {
    ok(e instanceof UsageError && e.message.includes("ungreedy"), e.message);
    return true;
  });
});

Deno.test("loadPacks() splits a list and refuses duplicates", async () => {
  const packs = await loadPacks(" secrets, pii ,custom_pack.ts", { baseDir: FIXTURES });
  deepStrictEqual(packs.map((p) => p.id), ["secrets", "pii", "acme"]);
  await rejects(loadPacks("secrets,secrets"), UsageError);
  await rejects(loadPacks(""), UsageError);
});

const GH = "ghp_Zq7Xw3Vb9Nm1Kp5Lr8Ts2Uy4Wa6Cd0Ef2Gh4J";

Deno.test("scanText() reports rule, line, column and a masked preview, never the secret", () => {
  const f = scanText(`first line\n  token ${GH} and jane@acme.io\n`, [secretsPack, piiPack]);
  deepStrictEqual(f, [
    { rule: "github-token", line: 2, column: 9, length: 41, preview: "ghp_…(41)" },
    { rule: "email", line: 2, column: 55, length: 12, preview: "ja…(12)" },
  ]);
  ok(!JSON.stringify(f).includes(GH.slice(4, 12)));
});

Deno.test("scanFile() and scanPaths() find secrets across blocks, skip binaries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memsnap_scan_" });
  try {
    const big = "x".repeat(1500) + "\n" + "y".repeat(500) + ` ${GH}\n`;
    await Deno.mkdir(`${dir}/sub`);
    await Deno.mkdir(`${dir}/.git`);
    await Deno.writeTextFile(`${dir}/sub/b.md`, big);
    await Deno.writeTextFile(`${dir}/a.md`, "mail jane@acme.io\n");
    await Deno.writeTextFile(`${dir}/.git/config`, GH);
    await Deno.writeFile(`${dir}/c.bin`, new Uint8Array([0, 1, 2]));
    const one = await scanFile(`${dir}/sub/b.md`, [secretsPack], { chunkSize: 1024 });
    deepStrictEqual(one.map((x) => [x.rule, x.line, x.column]), [["github-token", 2, 502]]);
    const skipped: string[] = [];
    const all: Finding[] = [];
    for await (
      const x of scanPaths([dir], [secretsPack, piiPack], {
        chunkSize: 1024,
        onSkip: (p, why) => skipped.push(`${p.slice(dir.length)}:${why}`),
      })
    ) all.push(x);
    deepStrictEqual(all.map((x) => [x.path!.slice(dir.length), x.rule, x.line]), [
      ["/a.md", "email", 1],
      ["/sub/b.md", "github-token", 2],
    ]);
    deepStrictEqual(skipped, ["/c.bin:binary"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function translated(regex: string): RegExp | string {
  const { pack, untranslated } = loadGitleaksPack(
    `[[rules]]\nid = "r"\nregex = '''${regex}'''\n`,
  );
  if (untranslated.length > 0) return untranslated[0]!.reason;
  return pack.rules[0]!.pattern as RegExp;
}

Deno.test("loadGitleaksPack() translates RE2 constructs to equivalent JS", () => {
  const cases: [string, string[], string[]][] = [
    // [re2, must match, must not match]
    ["(?i)abc", ["xABCx"], ["abd"]],
    ["(?s)a.b", ["a\nb"], ["ab"]],
    ["a(?i)bc", ["aBC"], ["ABC"]],
    ["(a(?i)b)c", ["aBc"], ["aBC"]],
    ["x(?-i:Y)z", ["xYz"], ["xyz"]],
    ["(?i)x(?-i:Y)z", ["XYZ"], ["Xyz"]],
    ["(?P<v>[0-9]+)", ["42"], ["x"]],
    ["[[:alpha:]]+[[:digit:]]", ["ab1"], ["1"]],
    ["[[:xdigit:][:space:]]{3}", ["a f"], ["xyz"]],
    ["[]a]b", ["]b", "ab"], ["cb"]],
    ["\\Qa.b*\\E", ["a.b*"], ["axb"]],
    ["\\x{41}\\x{263A}", ["A\u263a"], ["A"]],
    ["\\Aabc", ["abc"], ["xabc"]],
    ["abc\\z", ["xabc"], ["abc\n"]],
  ];
  for (const [re2, yes, no] of cases) {
    const re = translated(re2);
    ok(re instanceof RegExp, `${re2}: ${re}`);
    for (const s of yes) ok(new RegExp(re.source, re.flags).test(s), `${re2} should match ${s}`);
    for (const s of no) {
      ok(!new RegExp(re.source, re.flags).test(s), `${re2} should not match ${s}`);
    }
  }
  for (
    const [re2, why] of [
      ["\\pL+", /Unicode/],
      ["(?U)a+", /ungreedy/],
      ["\\C", /\\C/],
      ["[[:^alpha:]]", /negated/],
      ["a(?i)b|c", /alternation/],
      ["\\x{1F600}", /BMP/],
      ["(a", /parenthes|refused/],
    ] as const
  ) {
    const r = translated(re2);
    ok(typeof r === "string" && why.test(r), `${re2}: ${String(r)}`);
  }
});

Deno.test("scanFile() finds what scanText() finds, whatever the file's size against its blocks (property)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memsnap_scan_" });
  try {
    const piece = fc.constantFrom(
      "plain words here",
      `token ${GH}`,
      "mail jane.doe@acme.io",
      "ünïcödé text",
      "x".repeat(300),
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(piece, { maxLength: 40 }),
        fc.constantFrom(-1, 0, 1, 7),
        async (lines, delta) => {
          const text = lines.join("\n");
          const bytes = new TextEncoder().encode(text);
          const path = `${dir}/f${n++}.md`;
          await Deno.writeFile(path, bytes);
          // Blocks around the file's size (one read, or the end in a second one) and small ones.
          const chunkSize = Math.max(16, bytes.length + delta);
          const want = scanText(text, [secretsPack, piiPack]).map((
            f,
          ) => [f.rule, f.line, f.column]);
          for (const size of [chunkSize, 64]) {
            const got = await scanFile(path, [secretsPack, piiPack], { chunkSize: size });
            deepStrictEqual(got.map((f) => [f.rule, f.line, f.column]), want, `chunk ${size}`);
          }
        },
      ),
      { numRuns: 60 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
