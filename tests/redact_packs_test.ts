// Built-in packs: true and false positives for every rule, and the labelled corpus.
import { deepStrictEqual, ok } from "node:assert/strict";
import { createRedactor, piiPack, type RulePack, scanText, secretsPack } from "../redact/mod.ts";

const KEY = new Uint8Array(32).fill(3);
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
let seed = 7;
function rs(n: number, alpha = ALNUM): string {
  let o = "";
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    o += alpha[seed % alpha.length];
  }
  return o;
}

/** Rule id → lines holding exactly one secret of that rule (the secret is the 2nd element). */
const TRUE_POSITIVES: Record<string, [string, string][]> = {
  "aws-access-key-id": [
    [`key AKIA${(rs(16, B32))} used`, ""],
    [`AWS_ACCESS_KEY_ID=ASIA${rs(16, B32)}`, ""],
  ],
  "aws-secret-access-key": [
    [`aws_secret_access_key = ${rs(40, ALNUM + "/+")}`, ""],
    [`AWS_SECRET_ACCESS_KEY: "${rs(40, ALNUM + "/+")}"`, ""],
  ],
  "github-token": [
    [`ghp_${rs(36)}`, ""],
    [`url https://gho_${rs(36)}@github.com/x`, ""],
    [`GH=ghs_${rs(36)};`, ""],
  ],
  "github-fine-grained-pat": [[`github_pat_${rs(22)}_${rs(59)}`, ""]],
  "gitlab-pat": [[`token glpat-${rs(20, ALNUM + "_-")}`, ""]],
  "slack-token": [
    [`xoxb-${rs(12, "0123456789")}-${rs(13, "0123456789")}-${rs(24)}`, ""],
    [`xoxp-${rs(11, "0123456789")}-${rs(11, "0123456789")}-${rs(32, "0123456789abcdef")}`, ""],
    [`xapp-1-A${rs(10, B32)}-${rs(13, "0123456789")}-${rs(64, "0123456789abcdef")}`, ""],
  ],
  "slack-webhook": [[
    `https://hooks.slack.com/services/T${rs(8, B32)}/B${rs(8, B32)}/${rs(24)}`,
    "",
  ]],
  "stripe-key": [
    [`sk_live_${rs(24)}`, ""],
    [`rk_live_${rs(24)}`, ""],
    [`STRIPE=sk_test_${rs(24)}`, ""],
  ],
  "anthropic-api-key": [
    [`sk-ant-api03-${rs(93, ALNUM + "_-")}AA`, ""],
    [`sk-ant-admin01-${rs(93, ALNUM + "_-")}AA`, ""],
  ],
  "openai-api-key": [
    [`sk-proj-${rs(48, ALNUM + "_-")}T3BlbkFJ${rs(20)}`, ""],
    [`sk-${rs(20)}T3BlbkFJ${rs(20)}`, ""],
  ],
  "google-api-key": [[`AIza${rs(35, ALNUM + "_-")}`, ""]],
  "npm-token": [[`//registry.npmjs.org/:_authToken=npm_${rs(36)}`, ""]],
  "private-key": [
    [
      `-----BEGIN RSA PRIVATE KEY-----\n${rs(64, ALNUM + "+/")}\n${
        rs(64, ALNUM + "+/")
      }\n-----END RSA PRIVATE KEY-----`,
      "",
    ],
    [
      `-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA${rs(48, ALNUM + "+/")}\n${
        rs(70, ALNUM + "+/")
      }==\n-----END OPENSSH PRIVATE KEY-----`,
      "",
    ],
  ],
  "jwt": [[
    `Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.${rs(43, ALNUM + "_-")}`,
    "",
  ]],
  "url-credentials": [
    [`postgres://app:${rs(16)}@db.internal:5432/app`, ""],
    [`redis://default:${rs(20)}@cache:6379`, ""],
  ],
  "generic-secret": [
    [`password = "${rs(14)}!"`, ""],
    [`db_password: ${rs(12)}`, ""],
    [`api_key: ${rs(32)}`, ""],
    [`"client_secret": "${rs(40)}"`, ""],
    [`auth_token = '${rs(36)}'`, ""],
    ["the admin password is: Tr0ub4dor&3", ""],
  ],
  "email": [
    ["mail maria.gonzalez@acme-corp.com today", ""],
    ["cc jdoe+alerts@mail.fastmail.io", ""],
  ],
  "payment-card": [
    ["card 4111 1111 1111 1111 ok", ""],
    ["mc 5555-5555-5555-4444", ""],
    ["amex 378282246310005", ""],
    ["visa 4012888888881881.", ""],
  ],
  "phone-number": [
    ["call +1 415 555 0132", ""],
    ["office (212) 555-0187 after 9", ""],
    ["uk +44 7700 900123", ""],
    ["berlin 030 1234 5678", ""],
    ["phone: 415-555-0198", ""],
    ["de +4915112345678", ""],
  ],
};

/** Lines no rule may touch: look-alikes, placeholders, documentation examples. */
const FALSE_POSITIVES: string[] = [
  "deployed version 2.3.1 on 2024-05-01 at 10:30",
  "commit 3f9a2b1c4d5e6f708192a3b4c5d6e7f8091a2b3c fixed it",
  "sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "request 123e4567-e89b-12d3-a456-426614174000 timed out",
  "base64 aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Qgb2YgYmFzZTY0IGVuY29kaW5n",
  "AWS docs: AKIAIOSFODNN7EXAMPLE",
  "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  "export OPENAI_API_KEY=YOUR_API_KEY",
  "token = <token>",
  "password: changeme",
  "password=${DB_PASSWORD}",
  "api_key: xxxxxxxxxxxxxxxx",
  "secret: process.env.SECRET_VALUE",
  "the user forgot their password again",
  "tokens: 4096 per request",
  "max_tokens=100000000",
  "tokenizer: BertWordPieceTokenizer",
  "ghp_short is not a token",
  "github_pat_tooshort",
  "glpat-short",
  "xoxb-your-token-here",
  "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
  "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
  "task-manager-service-configuration-value",
  "sk-learn is different",
  "AIzaShort",
  "npm_package_name",
  "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
  "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo\n-----END PUBLIC KEY-----",
  "eyJhbGciOiJIUzI1NiJ9 header only",
  "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJlc2lnbmF0dXJl (no alg)",
  "postgres://localhost:5432/app",
  "https://user:password@host.example",
  "postgres://app:${DB_PASS}@db",
  "ssh git@github.com:acme/app.git",
  "write to alice@example.com",
  "logo@2x.png",
  "npm i @memsnap/core@0.1.0",
  "ts 1700000000000",
  "order 4111111111111112 fails luhn",
  "build 20240501 and version 10.15.7",
  "ip 192.168.100.200 port 5432",
  "2024-05-01T10:00:00Z",
  "zip 94105-1234",
  "cost 1234 5678 9012 units",
  "room 415",
  "pwd prints the directory",
  "private_key_path: ./keys/id_ed25519",
  "[REDACTED:github-token:0123abcd] already redacted",
];

Deno.test("secretsPack and piiPack: every rule has true-positive fixtures", () => {
  const ids = [...secretsPack.rules, ...piiPack.rules].map((r) => r.id).sort();
  deepStrictEqual(ids, Object.keys(TRUE_POSITIVES).sort());
});

for (const [rule, cases] of Object.entries(TRUE_POSITIVES)) {
  Deno.test(`${rule}: redacts its true positives`, () => {
    for (const [line] of cases) {
      const findings = scanText(line, [secretsPack, piiPack]);
      deepStrictEqual(findings.map((f) => f.rule), [rule], `in ${JSON.stringify(line)}`);
      const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
      const out = r.redactString(line, "a");
      ok(new RegExp(`\\[REDACTED:${rule}:[0-9a-f]{8}\\]`).test(out), out);
    }
  });
}

Deno.test("secretsPack and piiPack: leave look-alikes and placeholders alone", () => {
  const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
  for (const line of FALSE_POSITIVES) {
    deepStrictEqual(r.redactString(line, "a"), line, `changed ${JSON.stringify(line)}`);
  }
  deepStrictEqual(r.report().rules, []);
});

Deno.test("url-credentials: redacts only the password", () => {
  const r = createRedactor({ packs: [secretsPack], key: KEY });
  const out = r.redactString("postgres://app:S3cr3tPassw0rd@db:5432/x", "a");
  ok(/^postgres:\/\/app:\[REDACTED:url-credentials:[0-9a-f]{8}\]@db:5432\/x$/.test(out), out);
});

Deno.test("private-key: redacts the whole block, header to footer", () => {
  const block = TRUE_POSITIVES["private-key"]![0]![0];
  const r = createRedactor({ packs: [secretsPack], key: KEY });
  const out = r.redactString(`before\n${block}\nafter`, "a");
  ok(/^before\n\[REDACTED:private-key:[0-9a-f]{8}\]\nafter$/.test(out), out);
});

Deno.test("labelled corpus: precision and recall are 1 with the default packs", async () => {
  const text = await Deno.readTextFile(
    new URL("./fixtures/redact/corpus.tsv", import.meta.url),
  );
  const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
  const wrong: string[] = [];
  let n = 0;
  for (const l of text.split("\n")) {
    if (l.length === 0 || l.startsWith("#")) continue;
    const [label, line] = l.split("\t") as [string, string];
    const hit = r.redactString(line, "c") !== line;
    if ((label === "secret") !== hit) wrong.push(`${label}: ${line}`);
    n++;
  }
  ok(n > 80);
  deepStrictEqual(wrong, []);
});

Deno.test("packs: keywords are optional, pattern functions work", () => {
  const pack: RulePack = {
    id: "custom",
    version: "1",
    rules: [{
      id: "ticket",
      description: "internal ticket ids",
      pattern: (text) => {
        const out: { start: number; end: number }[] = [];
        for (const m of text.matchAll(/TCK-\d{4}/g)) {
          out.push({ start: m.index, end: m.index + m[0].length });
        }
        return out;
      },
    }],
  };
  const r = createRedactor({ packs: [pack], key: KEY });
  ok(/^see \[REDACTED:ticket:[0-9a-f]{8}\]$/.test(r.redactString("see TCK-1234", "a")));
});
