// Properties (fast-check): idempotence, no generated secret survives, chunked == whole.
import fc from "fast-check";
import { ok, strictEqual } from "node:assert/strict";
import { createRedactor, piiPack, secretsPack } from "../redact/mod.ts";

const KEY = new Uint8Array(32).fill(8);
const packs = [secretsPack, piiPack];
const RUNS = Number(Deno.env.get("MEMSNAP_FUZZ_RUNS") ?? 150);

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".split("");
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".split("");
const str = (chars: string[], n: number): fc.Arbitrary<string> =>
  fc.array(fc.constantFrom(...chars), { minLength: n, maxLength: n }).map((a) => a.join(""));
/** High-entropy strings: rejects the rare low-entropy draw a real token never is. */
const varied = (chars: string[], n: number): fc.Arbitrary<string> =>
  str(chars, n).filter((s) =>
    entropy(s) >= Math.min(3.5, Math.log2(n) - 0.5) && /\d/.test(s) && /[a-z]/.test(s) &&
    /[A-Z]/.test(s)
  );

function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const k of counts.values()) h -= (k / s.length) * Math.log2(k / s.length);
  return h;
}

/** One generated secret of each family, as it would appear in a note. */
const secret: fc.Arbitrary<string> = fc.oneof(
  str(B32, 16).map((s) => `AKIA${s}`),
  varied(ALNUM, 36).map((s) => `ghp_${s}`),
  fc.tuple(varied(ALNUM, 22), varied(ALNUM, 59)).map(([a, b]) => `github_pat_${a}_${b}`),
  varied(ALNUM, 20).map((s) => `glpat-${s}`),
  varied(ALNUM, 24).map((s) => `sk_live_${s}`),
  varied(ALNUM, 40).map((s) => `sk-proj-${s}9aZ`),
  varied(ALNUM, 60).map((s) => `sk-ant-api03-${s}AA`),
  varied(ALNUM, 35).map((s) => `AIza${s}`),
  varied(ALNUM, 36).map((s) => `npm_${s}`),
  fc.tuple(varied(ALNUM, 12), varied(ALNUM, 24)).map(([a, b]) => `xoxb-1234${a}-${b}`),
  varied(ALNUM, 16).map((s) => `postgres://app:${s}@db:5432/x`),
  varied(ALNUM, 14).map((s) => `password = ${s}7!`),
  fc.tuple(str("abcdefghij".split(""), 6), str("klmnop".split(""), 5)).map(([a, b]) =>
    `${a}.${b}@acme-mail.com`
  ),
);

const filler = fc.array(
  fc.constantFrom(
    "the agent noted ",
    "deploy v1.2.3 ",
    "2024-05-01 ",
    "\n",
    "commit 3f9a2b1c ",
    "é日本 ",
    "key: value ",
    "- item\n",
  ),
  { maxLength: 30 },
).map((a) => a.join(""));

const noteWithSecrets = fc.array(fc.tuple(filler, secret), { minLength: 1, maxLength: 6 }).map(
  (parts) => ({
    text: parts.map(([f, s]) => `${f} ${s} `).join("") + "\n",
    secrets: parts.map(([, s]) => s),
  }),
);

/** The part of a generated secret that must not survive (the password of a URL, ...). */
function core(s: string): string {
  const url = /:\/\/app:([^@]+)@/.exec(s);
  if (url !== null) return url[1]!;
  if (s.startsWith("password = ")) return s.slice("password = ".length);
  return s;
}

Deno.test("property: redaction is idempotent", () => {
  const r = createRedactor({ packs, key: KEY });
  fc.assert(
    fc.property(
      fc.oneof(noteWithSecrets.map((n) => n.text), fc.string({ maxLength: 300 })),
      (t) => {
        const once = r.redactString(t, "a");
        strictEqual(r.redactString(once, "a"), once);
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("property: no secret of a generated family survives", () => {
  const r = createRedactor({ packs, key: KEY });
  fc.assert(
    fc.property(noteWithSecrets, ({ text, secrets }) => {
      const out = r.redactString(text, "a");
      for (const s of secrets) ok(!out.includes(core(s)), `survived: ${s}\nin: ${out}`);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("property: chunked file redaction equals whole-string redaction", async () => {
  const dir = await Deno.makeTempDir({ prefix: "memsnap_redact_prop_" });
  try {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(noteWithSecrets, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 64, max: 2048 }),
        fc.integer({ min: 200, max: 400 }),
        async (notes, chunkSize, overlap) => {
          const text = notes.map((n) => n.text).join("");
          const src = `${dir}/in${i}`;
          const dest = `${dir}/out${i++}`;
          await Deno.writeTextFile(src, text);
          const r = createRedactor({ packs, key: KEY, chunkSize, overlap });
          await r.redactFile(src, dest, "a");
          const whole = createRedactor({ packs, key: KEY }).redactString(text, "a");
          strictEqual(await Deno.readTextFile(dest), whole);
          for (const n of notes) for (const s of n.secrets) ok(!whole.includes(core(s)));
        },
      ),
      { numRuns: Math.max(30, Math.floor(RUNS / 3)) },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
