// The engine's fast paths against a straightforward reference: leadingChars(), execAnchored() vs
// the plain exec loop, and Engine.find() vs a naive find (keywords by brute force, every regex
// by its plain global loop, windows recomputed) on random and adversarial texts.
import fc from "fast-check";
import { deepStrictEqual } from "node:assert/strict";
import { loadGitleaksPack, piiPack, secretsPack } from "../redact/mod.ts";
import type { RulePack } from "../redact/types.ts";
import { Engine, type Span } from "../redact/_engine.ts";
import { genericAssignmentRegex } from "../redact/packs/_generic.ts";
import { execAll, execAnchored, leadingChars, shannonEntropy } from "../redact/_util.ts";

const RUNS = Number(Deno.env.get("MEMSNAP_FUZZ_RUNS") ?? 150);
const FIXTURES = new URL("./fixtures/redact/", import.meta.url).pathname;
const gitleaks = loadGitleaksPack(await Deno.readTextFile(`${FIXTURES}gitleaks.toml`)).pack;

Deno.test("leadingChars() finds the literal first characters, and only those it is sure of", () => {
  const lc = (re: RegExp): string[] | undefined => leadingChars(re.source, re.flags);
  deepStrictEqual(lc(/AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35}/), ["A"]);
  deepStrictEqual(lc(/A(?:KIA|SIA)[A-Z2-7]{16}/), ["A"]);
  deepStrictEqual(lc(/[sr]k_(?:live|test)_/), ["s", "r"]);
  deepStrictEqual(lc(/-----BEGIN/), ["-"]);
  deepStrictEqual(lc(/\+\d+/), ["+"]);
  deepStrictEqual(lc(/\(x\)/), ["("]);
  deepStrictEqual(lc(/[:=>]x/), [":", "=", ">"]);
  deepStrictEqual(lc(/a+b/), ["a"]);
  deepStrictEqual(lc(/a(?:b|c)/), ["a"]);
  for (
    const re of [
      /a|b/, // top-level alternation
      /ab|[c]/,
      /a?b/, // optional first atom
      /a*b/,
      /a{0,2}b/,
      /abc/i, // case-insensitive
      /abc/v,
      /\dabc/, // class escapes
      /\w/,
      /[a-c]x/, // ranges
      /[^a]x/, // negated class
      /[-a]x/,
      /[abcde]x/, // too many
      new RegExp("[]a"), // empty class
      /(?:a)b/, // leading group
      /(?<=x)a/, // leading assertion
      /^a/,
      /.a/,
      /$/,
      /(?i:a)b/,
    ]
  ) deepStrictEqual(lc(re), undefined, String(re));
});

/** All non-empty matches of the plain loop, as [index, text, groups...]. */
function plain(re: RegExp, text: string): unknown[] {
  const out: unknown[] = [];
  execAll(re, text, (m) => out.push([m.index, ...m]));
  return out;
}

function anchored(re: RegExp, anchors: string[], text: string): unknown[] {
  const sticky = new RegExp(re.source, re.flags.replace("g", "") + "y");
  const out: unknown[] = [];
  execAnchored(re, sticky, anchors, text, (m) => out.push([m.index, ...m]));
  return out;
}

Deno.test("execAnchored() returns the plain loop's matches, sparse or dense anchors", () => {
  const patterns = [
    /A(?:KIA|B)(?<![A-Za-z0-9]A[A-Z]{1,3})[A-Z2-7]{2,4}(?![A-Za-z0-9])/g,
    /AA/g, // overlapping candidates: a match hides the next anchor
    /A[AB]*?B/g,
    /[:=](?<=[ka][:=])\s*(\w{2,})/g,
    /[ab](?=b)/g,
    /-(-+)x?/g,
  ];
  const piece = fc.constantFrom(
    "A",
    "AA",
    "AKIA",
    "AB",
    "AKIAZZ23",
    "B",
    "k:",
    "a=",
    ":",
    "=",
    " ",
    "\n",
    "x",
    "--",
    "-",
    "b",
    "é",
    "zzzzzzzzzzzz",
  );
  const text = fc.array(piece, { maxLength: 80 }).map((a) => a.join(""));
  fc.assert(
    fc.property(text, (t) => {
      for (const re of patterns) {
        const anchors = leadingChars(re.source, re.flags.replace("g", ""))!;
        deepStrictEqual(anchored(re, anchors, t), plain(re, t), `${re} on ${JSON.stringify(t)}`);
      }
    }),
    { numRuns: RUNS * 4 },
  );
  // Dense anchors switch to the plain loop part-way (after 1,024 misses): same matches.
  for (const re of patterns) {
    const anchors = leadingChars(re.source, re.flags.replace("g", ""))!;
    for (
      const t of [
        "A".repeat(5000) + "AKIAZZ23 " + "AB".repeat(3000) + " k: value a=xy ---x",
        "-".repeat(4000) + "x" + ":=".repeat(2000) + "k: ab",
        ("AKIA" + "A".repeat(60) + "ZZ2 ").repeat(200),
        "",
        "A",
      ]
    ) deepStrictEqual(anchored(re, anchors, t), plain(re, t), String(re));
  }
});

// ---- The reference find: no scanner, no anchors, no shared windows. ----

const WINDOW = 4096;

function lowerAscii(c: number): number {
  return c >= 65 && c <= 90 ? c | 32 : c;
}

/** Start positions of `kw` (lowercase) in `text`, ASCII case-insensitive, by brute force. */
function occurrences(text: string, kw: string): number[] {
  const out: number[] = [];
  outer: for (let i = 0; i + kw.length <= text.length; i++) {
    for (let j = 0; j < kw.length; j++) {
      if (lowerAscii(text.charCodeAt(i + j)) !== kw.charCodeAt(j)) continue outer;
    }
    out.push(i);
  }
  return out;
}

/** The documented windows: the line around each occurrence (clamped), or maxSpan after it. */
function refWindows(text: string, positions: number[], maxSpan?: number): [number, number][] {
  const out: [number, number][] = [];
  let covered = -1;
  for (const p of positions) {
    if (p < covered) continue;
    let ls = p;
    while (ls > 0 && ls > p - WINDOW && text[ls - 1] !== "\n") ls--;
    let le: number;
    if (maxSpan !== undefined) le = Math.min(text.length, p + maxSpan);
    else {
      le = p;
      while (le < text.length && le < p + WINDOW && text[le] !== "\n") le++;
    }
    const last = out[out.length - 1];
    if (last !== undefined && ls <= last[1]) last[1] = Math.max(last[1], le);
    else out.push([ls, le]);
    covered = le;
  }
  return out;
}

function refFind(engine: Engine, text: string): { spans: Span[]; partial: boolean } {
  const protectedSpans: [number, number][] = [];
  const tok = /\[REDACTED:[A-Za-z0-9._-]+:[0-9a-f]{8}\]/g;
  let m: RegExpExecArray | null;
  while ((m = tok.exec(text)) !== null) protectedSpans.push([m.index, m.index + m[0].length]);
  const cands: Span[] = [];
  for (const rule of engine.rules) {
    let regions: [number, number][] = [[0, text.length]];
    if (rule.keywords.length > 0) {
      const positions = [...new Set(rule.keywords.flatMap((k) => occurrences(text, k)))]
        .sort((a, b) => a - b);
      regions = refWindows(text, positions, rule.maxSpan);
    }
    for (const [ws, we] of regions) {
      const sub = text.slice(ws, we);
      const found: { s: number; e: number; ms: number; me: number }[] = [];
      if (rule.re !== undefined) {
        const re = new RegExp(rule.re.source, rule.re.flags);
        while ((m = re.exec(sub)) !== null) {
          if (m[0].length === 0) {
            re.lastIndex++;
            continue;
          }
          let [s, e] = [m.index, m.index + m[0].length];
          if (rule.group === "first") {
            const pair = m.indices!.slice(1).find((q) => q !== undefined && q[1] > q[0]);
            if (pair !== undefined) [s, e] = pair;
          } else if (rule.group !== 0) {
            const pair = m.indices![rule.group];
            if (pair === undefined) continue;
            [s, e] = pair;
          }
          found.push({ s, e, ms: m.index, me: m.index + m[0].length });
        }
      } else {
        for (const { start, end } of rule.fn!(sub)) {
          if (start >= 0 && end > start && end <= sub.length) {
            found.push({ s: start, e: end, ms: start, me: end });
          }
        }
      }
      for (const { s, e, ms, me } of found) {
        const secret = sub.slice(s, e);
        if (rule.entropy > 0 && shannonEntropy(secret) < rule.entropy) continue;
        if (rule.stopwords.some((w) => secret.toLowerCase().includes(w))) continue;
        const allowed = rule.allowlist.some((a) => {
          let target = secret;
          if (a.target === "match") target = sub.slice(ms, me);
          else if (a.target === "line") {
            const ls = sub.lastIndexOf("\n", ms - 1) + 1;
            const le = sub.indexOf("\n", me);
            target = sub.slice(ls, le < 0 ? sub.length : le);
          }
          return a.re.test(target);
        });
        if (allowed || (rule.validate !== undefined && !rule.validate(secret))) continue;
        cands.push({ start: ws + s, end: ws + e, rule: rule.id, order: rule.order });
      }
    }
  }
  cands.sort((a, b) => a.start - b.start || b.end - a.end || a.order - b.order);
  const spans: Span[] = [];
  let partial = false;
  let lastEnd = -1;
  for (const c of cands) {
    if (protectedSpans.some(([ps, pe]) => ps < c.end && c.start < pe)) continue;
    if (c.start < lastEnd) {
      if (c.end > lastEnd) partial = true;
      continue;
    }
    spans.push(c);
    lastEnd = c.end;
  }
  return { spans, partial };
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const rs = (n: number, seed: number): string => {
  let o = "";
  for (let i = 0; i < n; i++) o += ALNUM[(seed * 31 + i * 17 + ((i * i) % 7)) % ALNUM.length];
  return o;
};

/** Fragments that trigger (or nearly trigger) every rule, plus separators and noise. */
const FRAGMENTS = [
  "AKIA" + "Z7ZQWUXYVDCBA234",
  "AKIA",
  "ASIAZ7ZQ",
  "AIza" + rs(35, 1),
  "AIza",
  "ghp_" + rs(36, 2),
  "gho_",
  "github_pat_" + rs(22, 3) + "_" + rs(59, 4),
  "glpat-" + rs(20, 5),
  "xoxb-1234" + rs(12, 6) + "-" + rs(24, 7),
  "https://hooks.slack.com/services/T0" + rs(24, 8),
  "sk_live_" + rs(24, 9),
  "sk-ant-api03-" + rs(40, 10),
  "sk-proj-" + rs(40, 11) + "9aZ",
  "sk-",
  "npm_" + rs(36, 12),
  "-----BEGIN RSA PRIVATE KEY-----\n" + rs(64, 13) + "\n-----END RSA PRIVATE KEY-----",
  "-----BEGIN",
  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZw",
  "eyJ",
  "postgres://app:" + rs(14, 14) + "@db.internal:5432/app",
  "://",
  "password = " + rs(12, 15) + "7!",
  "api_key: " + rs(20, 16),
  "Secret_Token => '" + rs(16, 17) + "'",
  "token is " + rs(18, 18),
  "secret_access_key=" + rs(40, 19),
  "jane.doe@acme-mail.com",
  "git@github.com",
  "a@b",
  "@",
  "4111 1111 1111 1111",
  "4111111111111112",
  "+1 415 555 0132",
  "(415) 555-0132",
  "020 7946 0958",
  "2024-05-01T10:20:30Z",
  "v1.2.3",
  "[REDACTED:email:0123abcd]",
  "[REDACTED:",
  ":",
  "=",
  ">",
  "-",
  "_",
  " ",
  "  ",
  "\n",
  "\t",
  '"',
  "é日本",
  "A",
  "AAAA",
  "the agent noted ",
  "key: value ",
];

const texts = fc.array(fc.constantFrom(...FRAGMENTS), { maxLength: 40 }).map((a) => a.join(""));

function check(engine: Engine, text: string): void {
  deepStrictEqual(engine.find(text), refFind(engine, text), JSON.stringify(text.slice(0, 300)));
}

Deno.test("Engine.find() equals the reference find on random texts (built-in packs)", () => {
  const engine = new Engine([secretsPack, piiPack]);
  fc.assert(fc.property(texts, (t) => check(engine, t)), { numRuns: RUNS * 3 });
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (t) => check(engine, t)), {
    numRuns: RUNS,
  });
});

Deno.test("Engine.find() equals the reference find with a gitleaks pack overlapping the built-ins", () => {
  const packs: RulePack[] = [secretsPack, piiPack, gitleaks];
  const engine = new Engine(packs);
  fc.assert(fc.property(texts, (t) => check(engine, t)), { numRuns: RUNS });
});

Deno.test("Engine.find() equals the reference find on adversarial texts", () => {
  const engine = new Engine([secretsPack, piiPack]);
  const secret = "AKIAZ7ZQWUXYVDCBA234 AIza" + rs(35, 20) + " password=" + rs(12, 21) + "7!";
  const cases = [
    "",
    "A".repeat(70_000) + " " + secret, // dense anchors: the plain loop takes over
    ":".repeat(50_000) + " key: " + secret,
    ("AKIA" + "A".repeat(30) + " ").repeat(2_000) + secret,
    "x".repeat(10_000) + secret + "y".repeat(10_000), // one long line: clamped windows
    ("a@b.co " + "1".repeat(20) + " ").repeat(1_000),
    (secret + "\n").repeat(300),
    "-".repeat(20_000) + "-----BEGIN RSA PRIVATE KEY-----\n" + rs(64, 22) +
    "\n-----END RSA PRIVATE KEY-----",
    "[REDACTED:email:0123abcd]".repeat(100) + secret,
    "é日本".repeat(5_000) + secret + "\u2028" + secret,
  ];
  for (const t of cases) check(engine, t);
});

Deno.test("generic-secret: the value prefilter leaves the regex's matches unchanged", () => {
  const fast = genericAssignmentRegex();
  const ref = genericAssignmentRegex(false);
  const piece = fc.constantFrom(
    "password",
    "Passwd",
    "pwd",
    "secret",
    "api_key",
    "AccessKey",
    "token",
    "credentials",
    "_prod",
    "Value",
    "s",
    '"',
    "'",
    "`",
    " is ",
    " was ",
    " ",
    "\t",
    ":",
    "=",
    ":=",
    "=>",
    ">",
    "\n",
    "abc",
    "a1B2c3D4",
    "x7!",
    "12:30",
    ".",
    ",",
    ";",
    "(",
    "]",
    "é",
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 40 }).map((a) => a.join("")), (t) => {
      deepStrictEqual(plain(fast, t), plain(ref, t), JSON.stringify(t));
    }),
    { numRuns: RUNS * 10 },
  );
});
