/**
 * The built-in `secrets` pack: credentials of common services, private keys, JWTs, passwords in
 * connection URLs and generic `password=`/`token:` assignments of high-entropy values.
 *
 * @module
 */
import type { RedactionRule, RulePack } from "../types.ts";
import { genericAssignmentRegex } from "./_generic.ts";
import { charClasses, decodeBase64Url, isPlaceholder, shannonEntropy } from "../_util.ts";

/** Documentation example values (AWS's `...EXAMPLE` keys) are left alone. */
const AWS_EXAMPLE = /EXAMPLE/;

const hasDigit = (s: string): boolean => /\d/.test(s);

/** `password = ...`, `api_key: ...`: group 1 is set for password-like names, group 2 is the value. */
const GENERIC = genericAssignmentRegex();

function genericValueOk(value: string, password: boolean): boolean {
  if (isPlaceholder(value) || /^\d+$/.test(value) || /:\/\/|^\.{0,2}\//.test(value)) return false;
  if (charClasses(value) < 2) return false;
  return password
    ? value.length >= 6 && shannonEntropy(value) >= 2.5
    : value.length >= 12 && shannonEntropy(value) >= 3.2;
}

function* genericAssignments(text: string): Iterable<{ start: number; end: number }> {
  GENERIC.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = GENERIC.exec(text)) !== null) {
    const value = m[2]!;
    const end = m.index + m[0].length;
    if (genericValueOk(value, m[1] !== undefined)) yield { start: end - value.length, end };
  }
}

const rules: RedactionRule[] = [
  {
    id: "aws-access-key-id",
    description: "AWS access key id (AKIA, ASIA, ABIA, ACCA followed by 16 base32 characters)",
    pattern: /A(?:KIA|SIA|BIA|CCA)(?<![A-Za-z0-9]A[A-Z]{3})[A-Z2-7]{16}(?![A-Za-z0-9])/,
    allowlist: [AWS_EXAMPLE],
  },
  {
    id: "aws-secret-access-key",
    description: "AWS secret access key assigned to aws_secret_access_key or similar",
    pattern:
      /(?:aws[_.-]?)?secret[_.-]?(?:access[_.-]?)?key["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/i,
    keywords: ["secret_access_key", "secret-access-key", "secret_key"],
    secretGroup: 1,
    entropy: 3.5,
    allowlist: [AWS_EXAMPLE],
  },
  {
    id: "github-token",
    description: "GitHub classic token (ghp_, gho_, ghu_, ghs_, ghr_)",
    pattern: /gh[pousr]_(?<![A-Za-z0-9_]gh._)[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])/,
    keywords: ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
    entropy: 3,
  },
  {
    id: "github-fine-grained-pat",
    description: "GitHub fine-grained personal access token (github_pat_...)",
    pattern:
      /github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9]{22}_[A-Za-z0-9]{59}(?![A-Za-z0-9_])/,
    keywords: ["github_pat_"],
  },
  {
    id: "gitlab-pat",
    description: "GitLab personal access token (glpat-...)",
    pattern: /glpat-(?<![A-Za-z0-9_-]glpat-)[A-Za-z0-9_-]{20,}(?:\.[A-Za-z0-9_-]+)*/,
    keywords: ["glpat-"],
    entropy: 3,
  },
  {
    id: "slack-token",
    description: "Slack token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xapp-)",
    pattern: /x(?:ox[bpars]|app)-(?<![A-Za-z0-9-]x[a-z]{3}-)[0-9A-Za-z]+(?:-[0-9A-Za-z]+){1,6}/,
    keywords: ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"],
    validate: (s) => s.length >= 24 && hasDigit(s) && !isPlaceholder(s.slice(5)),
  },
  {
    id: "slack-webhook",
    description: "Slack incoming webhook URL (the path after hooks.slack.com/services/)",
    pattern:
      /https?:\/\/hooks\.slack\.com\/(?:services|workflows|triggers)\/([A-Za-z0-9+/_-]{20,})/,
    keywords: ["slack.com/services/", "slack.com/workflows/", "slack.com/triggers/"],
    secretGroup: 1,
    validate: (s) => hasDigit(s) && !isPlaceholder(s),
  },
  {
    id: "stripe-key",
    description: "Stripe secret or restricted key (sk_live_, rk_live_, sk_test_, rk_test_)",
    pattern:
      /[sr]k_(?:live|test)_(?<![A-Za-z0-9_][sr]k_[a-z]{4}_)[0-9A-Za-z]{10,247}(?![A-Za-z0-9_])/,
    keywords: ["sk_live_", "rk_live_", "sk_test_", "rk_test_"],
    entropy: 3,
  },
  {
    id: "anthropic-api-key",
    description: "Anthropic API or admin key (sk-ant-api03-..., sk-ant-admin01-...)",
    pattern: /sk-ant-(?<![A-Za-z0-9_-]sk-ant-)(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_-]{20,}/,
    keywords: ["sk-ant-"],
    entropy: 3,
  },
  {
    id: "openai-api-key",
    description: "OpenAI API key (sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...)",
    pattern:
      /sk-(?<![A-Za-z0-9_-]sk-)(?!ant-)(?:(?:proj|svcacct|admin|None)-)?[A-Za-z0-9_-]{20,}(?![A-Za-z0-9_-])/,
    keywords: ["sk-"],
    entropy: 3.5,
    validate: (s) => hasDigit(s) && charClasses(s) >= 3,
  },
  {
    id: "google-api-key",
    description: "Google API key (AIza followed by 35 characters)",
    pattern: /AIza(?<![A-Za-z0-9_-]AIza)[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])/,
  },
  {
    id: "npm-token",
    description: "npm access token (npm_ followed by 36 characters)",
    pattern: /npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36}(?![A-Za-z0-9_])/,
    keywords: ["npm_"],
    entropy: 3,
  },
  {
    id: "private-key",
    description: "PEM or OpenSSH private key block (the whole block)",
    pattern:
      /-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[\s\S]{1,32768}?-----END \1-----/,
    keywords: ["-----begin"],
    maxSpan: 40000,
    validate: (s) => {
      const body = s.replace(/^-----BEGIN[^\n]*\n?|-----END[^\n]*$/g, "")
        .replace(/^[A-Za-z-]+:.*$/gm, "").replace(/\s+/g, "");
      return /^[A-Za-z0-9+/=]{64,}$/.test(body);
    },
  },
  {
    id: "jwt",
    description: "JSON Web Token (three base64url parts; the header decodes to JSON with alg)",
    pattern: /eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}/,
    keywords: ["eyj"],
    validate: (s) => {
      const header = decodeBase64Url(s.slice(0, s.indexOf(".")));
      if (header === undefined) return false;
      try {
        const h = JSON.parse(header);
        return typeof h === "object" && h !== null && typeof h.alg === "string";
      } catch {
        return false;
      }
    },
  },
  {
    id: "url-credentials",
    description: "Password inside a connection URL (scheme://user:PASSWORD@host)",
    pattern:
      /(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,30}:\/\/[^\s:@/?#"'<>[\]]{0,256}:([^\s@/?#"'<>]{1,256})@[A-Za-z0-9[]/,
    keywords: ["://"],
    secretGroup: 1,
    validate: (s) => !isPlaceholder(s),
  },
  {
    id: "generic-secret",
    description:
      "A value assigned to a password/secret/token/api_key/credential-like name: passwords need 6+ chars of 2+ character classes, other names 12+ chars and entropy >= 3.2; placeholders are left alone",
    pattern: genericAssignments,
  },
];

/**
 * The built-in `secrets` pack.
 *
 * | rule | finds |
 * |---|---|
 * | `aws-access-key-id` | `AKIA`/`ASIA`... key ids (docs' `...EXAMPLE` keys left alone) |
 * | `aws-secret-access-key` | 40-char secret after `aws_secret_access_key =` |
 * | `github-token`, `github-fine-grained-pat` | `ghp_`... and `github_pat_...` |
 * | `gitlab-pat` | `glpat-...` |
 * | `slack-token`, `slack-webhook` | `xoxb-`... tokens, `hooks.slack.com/services/...` |
 * | `stripe-key` | `sk_live_`, `rk_live_`, `sk_test_`, `rk_test_` |
 * | `anthropic-api-key`, `openai-api-key` | `sk-ant-api03-...`, `sk-proj-...`, `sk-...` |
 * | `google-api-key`, `npm-token` | `AIza...`, `npm_...` |
 * | `private-key` | a whole PEM/OpenSSH private key block |
 * | `jwt` | JWTs whose header decodes to JSON with `alg` |
 * | `url-credentials` | the password in `scheme://user:PASSWORD@host` |
 * | `generic-secret` | `password=...`, `api_key: ...`, `"client_secret": "..."` (entropy, placeholders skipped) |
 *
 * @example Redacting a GitHub token
 * ```ts
 * import { createRedactor, secretsPack } from "@memsnap/core/redact";
 * const r = createRedactor({ packs: [secretsPack], key: new Uint8Array(32) });
 * const out = r.redactString("token ghp_" + "a1B2c3D4e5".repeat(4).slice(0, 36), "notes.md");
 * console.log(out); // token [REDACTED:github-token:........]
 * ```
 */
export const secretsPack: RulePack = {
  id: "secrets",
  version: "1.0.0",
  rules,
};
