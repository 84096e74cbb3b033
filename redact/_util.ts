// Private helpers of the redact module: entropy, Luhn, placeholders, base64url.

/** Shannon entropy of `s` in bits per character (0 for the empty string). */
export function shannonEntropy(s: string): number {
  const n = s.length;
  if (n === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const k of counts.values()) {
    const p = k / n;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Whether the digits of `s` (other characters ignored) pass the Luhn check. */
export function luhn(s: string): boolean {
  let sum = 0;
  let dbl = false;
  let digits = 0;
  for (let i = s.length - 1; i >= 0; i--) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    digits++;
    let d = c;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return digits > 0 && sum % 10 === 0;
}

const PLACEHOLDER =
  /^(?:x+|X+|\*+|\.+|…|0+|changeme|change_?me|password|passwd|pass|secret|token|redacted|example|dummy|sample|test|testing|null|nil|none|undefined|true|false|empty|todo|tbd|fixme|placeholder|(?:your|my|insert|replace|enter)(?:[_-]\w*|(?:api)?(?:password|passwd|pass|secret|token|key)\w*))$/i;
const REFERENCE =
  /^(?:\$\{[^}]*\}?|\$\(|\$[A-Za-z_]|%[A-Za-z_]+%|\{\{|<[^>]*>?|\[[A-Z_]+\]|process\.env|os\.environ|os\.getenv|env\.|env\(|getenv|secrets\.|vault:|ENV\[)/;
const ENV_NAME = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;

/**
 * Whether a candidate secret is a placeholder or a reference rather than a value:
 * `YOUR_API_KEY`, `<token>`, `changeme`, `xxx`, `${VAR}`, `process.env.X`, `***`...
 */
export function isPlaceholder(secret: string): boolean {
  const s = secret.replace(/^["'`]+|["'`]+$/g, "");
  if (s.length === 0) return true;
  if (PLACEHOLDER.test(s) || REFERENCE.test(s) || ENV_NAME.test(s)) return true;
  if (/x{4,}|X{4,}|\*{3,}|\.{3}|…|<|>/.test(s)) return true;
  if (/example|sample|dummy|placeholder/i.test(s)) return true;
  if (/^(?:your|my|the|some)[-_ ]/i.test(s) || /[-_](?:here|goes[-_]here)$/i.test(s)) return true;
  return false;
}

/** Number of character classes (lower, upper, digit, other) present in `s`. */
export function charClasses(s: string): number {
  let l = 0, u = 0, d = 0, o = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 97 && c <= 122) l = 1;
    else if (c >= 65 && c <= 90) u = 1;
    else if (c >= 48 && c <= 57) d = 1;
    else o = 1;
  }
  return l + u + d + o;
}

/** Decodes base64url (no padding needed) to a string, or `undefined` when invalid. */
export function decodeBase64Url(s: string): string | undefined {
  try {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const pad = b64.length % 4 === 0 ? "" : "=".repeat(4 - (b64.length % 4));
    const bin = atob(b64 + pad);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** Escapes a string for use inside a RegExp. */
export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\\/-]/g, "\\$&");
}

/** The shape of a replacement token; rule ids are restricted to these characters. */
export const TOKEN_RE: RegExp = /\[REDACTED:[A-Za-z0-9._-]+:[0-9a-f]{8}\]/g;

/** Valid rule id. */
export const RULE_ID_RE: RegExp = /^[A-Za-z0-9._-]+$/;
