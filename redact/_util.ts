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

/**
 * Calls `each` for every non-empty match of the global `re` in `text`, left to right, as the
 * plain `re.exec` loop finds them (an empty match moves on by one character).
 */
export function execAll(re: RegExp, text: string, each: (m: RegExpExecArray) => void): void {
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    each(m);
  }
}

/**
 * Same matches, in the same order, as {@linkcode execAll}, for a regex whose every match starts
 * with one of `anchors` (single characters, see {@linkcode leadingChars}): jumps from one anchor
 * occurrence to the next with `indexOf` (memchr speed) and tries `sticky` (the same regex with
 * the `y` flag) there, instead of letting the regex engine test every position. A sticky match
 * at `i` is the match a global scan reaching `i` finds, and no match starts between anchors.
 * Where anchors are dense (more than one failed try per 64 characters so far, after 1,024),
 * the rest of the text gets the plain loop, which is then cheaper.
 */
export function execAnchored(
  re: RegExp,
  sticky: RegExp,
  anchors: readonly string[],
  text: string,
  each: (m: RegExpExecArray) => void,
): void {
  const n = anchors.length;
  const next: number[] = new Array(n).fill(-2);
  let pos = 0;
  let misses = 0;
  for (;;) {
    let i = -1;
    for (let k = 0; k < n; k++) {
      let q = next[k]!;
      if (q !== -1 && q < pos) next[k] = q = text.indexOf(anchors[k]!, pos);
      if (q >= 0 && (i < 0 || q < i)) i = q;
    }
    if (i < 0) return;
    sticky.lastIndex = i;
    const m = sticky.exec(text);
    if (m === null || m[0].length === 0) {
      pos = i + 1;
      if (++misses > 1024 && misses * 64 > i) break;
      continue;
    }
    each(m);
    pos = i + m[0].length;
  }
  re.lastIndex = pos;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    each(m);
  }
}

/** Characters that are literal at the start of a pattern (outside a class, unescaped). */
const LITERAL_START = /^[A-Za-z0-9 !"#%&',\-/:;<=>@_`~]$/;

/**
 * The characters every match of the regex `source` (with `flags`) starts with, when they are a
 * few literals (a leading literal, escaped punctuation, or a class of up to 4 such characters)
 * and the pattern has no top-level alternation; otherwise `undefined`. Conservative: anything
 * it does not recognise (case-insensitive or `v`-mode patterns, ranges, escapes like `\d`,
 * leading groups or assertions, an optional first atom) gives `undefined`.
 */
export function leadingChars(source: string, flags: string): string[] | undefined {
  if (/[iv]/.test(flags)) return undefined;
  // No top-level "|": it would let a match start with another branch.
  let depth = 0;
  let inClass = false;
  for (let j = 0; j < source.length; j++) {
    const c = source[j];
    if (c === "\\") j++;
    else if (inClass) {
      if (c === "]") inClass = false;
    } else if (c === "[") inClass = true;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "|" && depth === 0) return undefined;
  }
  const literal = (c: string | undefined): boolean => c !== undefined && LITERAL_START.test(c);
  const escaped = (c: string | undefined): boolean =>
    c !== undefined && /^[$()*+.\/?[\\\]^{|}\-]$/.test(c);
  let chars: string[];
  let end: number;
  const c0 = source[0];
  if (literal(c0)) {
    chars = [c0!];
    end = 1;
  } else if (c0 === "\\" && escaped(source[1])) {
    chars = [source[1]!];
    end = 2;
  } else if (c0 === "[" && source[1] !== "^") {
    chars = [];
    let j = 1;
    for (; j < source.length && source[j] !== "]"; j++) {
      const c = source[j]!;
      if (c === "\\" && escaped(source[j + 1])) chars.push(source[++j]!);
      else if (c !== "-" && c !== "\\" && c !== "[" && literal(c)) chars.push(c);
      else return undefined;
    }
    if (j >= source.length || chars.length === 0 || chars.length > 4) return undefined;
    end = j + 1;
  } else {
    return undefined;
  }
  const q = source[end];
  if (q === "?" || q === "*" || q === "{") return undefined;
  return [...new Set(chars)];
}
