// Private: compiles rule packs and finds secrets in text. Shared by the redactor and the scanner.
import type { RedactionRule, RulePack } from "./types.ts";
import {
  escapeRegExp,
  execAll,
  execAnchored,
  leadingChars,
  RULE_ID_RE,
  shannonEntropy,
  TOKEN_RE,
} from "./_util.ts";

/** A secret found in a text: `[start, end)` in UTF-16 units, and the rule that found it. */
export interface Span {
  start: number;
  end: number;
  rule: string;
  /** Position of the rule across all packs (pack order, then rule order). */
  order: number;
}

interface CompiledRule {
  id: string;
  order: number;
  re: RegExp | undefined;
  /**
   * When every match of `re` starts with one of a few literal characters: those characters,
   * and a sticky copy of `re` tried at each of their occurrences (see {@linkcode execAnchored}).
   */
  anchors: string[] | undefined;
  sticky: RegExp | undefined;
  fn: ((text: string) => Iterable<{ start: number; end: number }>) | undefined;
  /** Lowercased keywords (empty: the rule runs on the whole text). */
  keywords: string[];
  /** Key under which rules with the same keywords share their line windows in one `find`. */
  windowKey: string | undefined;
  group: number | "first";
  entropy: number;
  allowlist: { re: RegExp; target: "secret" | "match" | "line" }[];
  stopwords: string[];
  validate: ((secret: string) => boolean) | undefined;
  maxSpan: number | undefined;
}

/** Half-width of the window looked at around a keyword occurrence on a long line. */
const WINDOW = 4096;

function compileRule(
  rule: RedactionRule,
  order: number,
  packId: string,
): CompiledRule {
  if (typeof rule.id !== "string" || !RULE_ID_RE.test(rule.id)) {
    throw new TypeError(
      `Cannot compile pack "${packId}": rule id ${
        JSON.stringify(rule.id)
      } must match [A-Za-z0-9._-]+`,
    );
  }
  let re: RegExp | undefined;
  let sticky: RegExp | undefined;
  let anchors: string[] | undefined;
  let fn: CompiledRule["fn"];
  const group = rule.secretGroup ?? 0;
  if (rule.pattern instanceof RegExp) {
    let flags = rule.pattern.flags.replace(/[gyd]/g, "");
    if (group !== 0) flags += "d";
    re = new RegExp(rule.pattern.source, flags + "g");
    anchors = leadingChars(rule.pattern.source, flags);
    if (anchors !== undefined) sticky = new RegExp(rule.pattern.source, flags + "y");
  } else if (typeof rule.pattern === "function") {
    fn = rule.pattern;
  } else {
    throw new TypeError(
      `Cannot compile pack "${packId}": rule "${rule.id}" has no RegExp or function pattern`,
    );
  }
  const kws = (rule.keywords ?? []).filter((k) => k.length > 0).map((k) => k.toLowerCase());
  const keywords = [...new Set(kws)].sort();
  return {
    id: rule.id,
    order,
    re,
    anchors,
    sticky,
    fn,
    keywords,
    windowKey: rule.maxSpan === undefined ? keywords.join("\0") : undefined,
    group,
    entropy: rule.entropy ?? 0,
    allowlist: (rule.allowlist ?? []).map((a) => {
      const r = a instanceof RegExp ? a : a?.pattern;
      if (!(r instanceof RegExp)) {
        throw new TypeError(
          `Cannot compile pack "${packId}": rule "${rule.id}" has an allowlist entry that is not a RegExp`,
        );
      }
      return {
        re: new RegExp(r.source, r.flags.replace(/[gy]/g, "")),
        target: a instanceof RegExp ? rule.allowlistTarget ?? "secret" : a.target,
      };
    }),
    stopwords: (rule.stopwords ?? []).map((w) => w.toLowerCase()),
    validate: rule.validate,
    maxSpan: rule.maxSpan,
  };
}

/** Compiled packs: finds secrets in text. */
export class Engine {
  readonly rules: readonly CompiledRule[];
  #scanner: KeywordScanner;
  /** Packs, in order, with versions. */
  readonly packs: readonly { id: string; version: string }[];

  constructor(packs: readonly RulePack[]) {
    const rules: CompiledRule[] = [];
    const owner = new Map<string, string>(); // rule id -> pack id
    const packIds = new Set<string>();
    for (const pack of packs) {
      if (packIds.has(pack.id)) {
        throw new TypeError(`Cannot compile packs: pack "${pack.id}" is given twice`);
      }
      packIds.add(pack.id);
      for (const rule of pack.rules) {
        let id = rule.id;
        const first = owner.get(id);
        if (first === pack.id) {
          throw new TypeError(
            `Cannot compile pack "${pack.id}": rule id "${rule.id}" is used twice in the pack`,
          );
        }
        // Packs often overlap (the built-in secrets pack and a gitleaks config both define
        // "github-fine-grained-pat"): every rule runs, a later pack's duplicate as "<pack>.<id>".
        if (first !== undefined) id = `${pack.id}.${rule.id}`;
        if (owner.has(id)) {
          throw new TypeError(`Cannot compile pack "${pack.id}": rule id "${id}" is already used`);
        }
        owner.set(id, pack.id);
        rules.push(compileRule(id === rule.id ? rule : { ...rule, id }, rules.length, pack.id));
      }
    }
    this.rules = rules;
    this.#scanner = new KeywordScanner(rules.flatMap((r) => r.keywords));
    // V8 interprets a regex on its first run and compiles it to native code on the next: run
    // every regex once on a tiny text so the first real (possibly huge) text gets native code.
    this.find("memsnap warm-up: key=value a@b.co 415-555-0100 [REDACTED:x:00000000]\n");
    for (const r of rules) {
      r.re?.exec("warm-up");
      r.sticky?.exec("warm-up");
      r.sticky?.exec("warm-up");
    }
    this.packs = packs.map((p) => ({ id: p.id, version: p.version }));
  }

  /**
   * Finds every secret in `text`: non-overlapping spans, sorted by start. Existing replacement
   * tokens are never matched. `partial` is true when a dropped candidate stuck out of the span
   * that beat it (the caller rescans its output to reach a fixed point).
   */
  find(text: string): { spans: Span[]; partial: boolean } {
    const protectedSpans: [number, number][] = [];
    if (text.indexOf("[REDACTED:") >= 0) {
      TOKEN_RE.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = TOKEN_RE.exec(text)) !== null) {
        protectedSpans.push([m.index, m.index + m[0].length]);
      }
    }
    const cands: Span[] = [];
    const hits = this.#scanner.scan(text);
    // Rules with the same keywords (and no maxSpan) look at the same windows.
    let lineWindows: Map<string, [number, number][]> | undefined;
    for (const rule of this.rules) {
      const kws = rule.keywords;
      if (kws.length === 0) {
        this.#runRule(rule, text, 0, text.length, cands);
        continue;
      }
      if (hits.size === 0) continue;
      const cacheKey = rule.windowKey;
      let wins = cacheKey === undefined ? undefined : lineWindows?.get(cacheKey);
      if (wins === undefined) {
        let positions: number[] | undefined;
        if (kws.length === 1) positions = hits.get(kws[0]!);
        else {
          for (const k of kws) {
            const h = hits.get(k);
            if (h === undefined) continue;
            positions = positions === undefined ? h.slice() : positions.concat(h);
          }
          if (positions !== undefined && positions.length > 1) positions.sort((a, b) => a - b);
        }
        wins = positions === undefined ? [] : windows(text, positions, rule.maxSpan);
        if (cacheKey !== undefined) (lineWindows ??= new Map()).set(cacheKey, wins);
      }
      for (const [s, e] of wins) this.#runRule(rule, text, s, e, cands);
    }
    if (cands.length === 0) return { spans: [], partial: false };
    cands.sort((a, b) => a.start - b.start || b.end - a.end || a.order - b.order);
    const spans: Span[] = [];
    let partial = false;
    let lastEnd = -1;
    let p = 0;
    for (const c of cands) {
      if (c.end <= c.start) continue;
      while (p < protectedSpans.length && protectedSpans[p]![1] <= c.start) p++;
      const pr = protectedSpans[p];
      if (pr !== undefined && pr[0] < c.end) continue;
      if (c.start < lastEnd) {
        if (c.end > lastEnd) partial = true;
        continue;
      }
      spans.push(c);
      lastEnd = c.end;
    }
    return { spans, partial };
  }

  #runRule(rule: CompiledRule, text: string, ws: number, we: number, out: Span[]): void {
    const whole = ws === 0 && we === text.length;
    const sub = whole ? text : text.slice(ws, we);
    if (rule.re !== undefined) {
      const each = (m: RegExpExecArray): void => {
        let s = m.index;
        let e = s + m[0].length;
        if (rule.group !== 0) {
          const idx = m.indices;
          if (idx === undefined) return;
          let pair: [number, number] | undefined;
          if (rule.group === "first") {
            for (let g = 1; g < idx.length; g++) {
              const q = idx[g];
              if (q !== undefined && q[1] > q[0]) {
                pair = q;
                break;
              }
            }
            pair ??= [s, e];
          } else {
            pair = idx[rule.group];
          }
          if (pair === undefined) return;
          [s, e] = pair;
        }
        if (this.#accept(rule, sub, s, e, m.index, m.index + m[0].length)) {
          out.push({ start: ws + s, end: ws + e, rule: rule.id, order: rule.order });
        }
      };
      // Windows are short: the plain loop. A whole text jumps between anchor occurrences.
      if (whole && rule.sticky !== undefined) {
        execAnchored(rule.re, rule.sticky, rule.anchors!, sub, each);
      } else {
        execAll(rule.re, sub, each);
      }
    } else if (rule.fn !== undefined) {
      for (const { start, end } of rule.fn(sub)) {
        if (!(start >= 0 && end > start && end <= sub.length)) continue;
        if (this.#accept(rule, sub, start, end, start, end)) {
          out.push({ start: ws + start, end: ws + end, rule: rule.id, order: rule.order });
        }
      }
    }
  }

  #accept(
    rule: CompiledRule,
    text: string,
    s: number,
    e: number,
    ms: number,
    me: number,
  ): boolean {
    const secret = text.slice(s, e);
    if (rule.entropy > 0 && shannonEntropy(secret) < rule.entropy) return false;
    if (rule.stopwords.length > 0) {
      const low = secret.toLowerCase();
      for (const w of rule.stopwords) if (low.includes(w)) return false;
    }
    for (const a of rule.allowlist) {
      let target = secret;
      if (a.target === "match") target = text.slice(ms, me);
      else if (a.target === "line") {
        const ls = text.lastIndexOf("\n", ms - 1) + 1;
        let le = text.indexOf("\n", me);
        if (le < 0) le = text.length;
        target = text.slice(ls, le);
      }
      if (a.re.test(target)) return false;
    }
    if (rule.validate !== undefined && !rule.validate(secret)) return false;
    return true;
  }
}

/** Windows `[start, end)` around each keyword occurrence (sorted positions), merged. */
function windows(
  text: string,
  positions: number[],
  maxSpan: number | undefined,
): [number, number][] {
  const out: [number, number][] = [];
  const n = text.length;
  let covered = -1;
  for (const p of positions) {
    if (p < covered) continue;
    const from = p > WINDOW ? p - WINDOW : 0;
    const back = text.slice(from, p).lastIndexOf("\n");
    const ls = back < 0 ? from : from + back + 1;
    let le: number;
    if (maxSpan !== undefined) {
      le = Math.min(n, p + maxSpan);
    } else {
      const fwd = text.slice(p, Math.min(n, p + WINDOW)).indexOf("\n");
      le = fwd < 0 ? Math.min(n, p + WINDOW) : p + fwd;
    }
    const last = out[out.length - 1];
    if (last !== undefined && ls <= last[1]) {
      if (le > last[1]) last[1] = le;
    } else {
      out.push([ls, le]);
    }
    covered = le;
  }
  return out;
}

/**
 * Preference of anchor characters: the rarer in prose, the earlier. A letter is searched in
 * both cases (keywords are case-insensitive).
 */
const ANCHORS = "_@/:=-jqxzk.";

/**
 * Finds case-insensitive keyword occurrences. A keyword holding punctuation is found by
 * `indexOf` of its rarest punctuation character (memchr speed) and verified in place; one pass
 * per character serves every keyword sharing it. Other keywords get one trie-factored regex.
 */
class KeywordScanner {
  #anchored = new Map<string, { kw: string; offset: number }[]>();
  #regex: RegExp | undefined;
  #plain: string[] = [];

  constructor(keywords: string[]) {
    const plain: string[] = [];
    for (const kw of new Set(keywords)) {
      let best = -1;
      for (const a of ANCHORS) {
        const i = kw.indexOf(a);
        if (i >= 0) {
          best = i;
          break;
        }
      }
      if (best < 0) {
        plain.push(kw);
        continue;
      }
      const ch = kw[best]!;
      for (const c of new Set([ch, ch.toUpperCase()])) {
        let g = this.#anchored.get(c);
        if (g === undefined) this.#anchored.set(c, g = []);
        g.push({ kw, offset: best });
      }
    }
    if (plain.length > 0) this.#regex = new RegExp(trieSource(plain.sort()), "gi");
    this.#plain = plain;
  }

  /** Keyword → sorted start positions of its occurrences. */
  scan(text: string): Map<string, number[]> {
    const hits = new Map<string, number[]>();
    const add = (kw: string, p: number): void => {
      let a = hits.get(kw);
      if (a === undefined) hits.set(kw, a = []);
      a.push(p);
    };
    for (const [ch, kws] of this.#anchored) {
      let i = text.indexOf(ch);
      while (i >= 0) {
        for (const { kw, offset } of kws) {
          const s = i - offset;
          if (s >= 0 && matchesLower(text, s, kw)) add(kw, s);
        }
        i = text.indexOf(ch, i + 1);
      }
    }
    if (this.#regex !== undefined) {
      const re = this.#regex;
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(text)) !== null) {
        const found = m[0].toLowerCase();
        add(found, m.index);
        // A shorter keyword that is a prefix of the one found occurs here too.
        for (const k of this.#plain) {
          if (k.length < found.length && found.startsWith(k)) add(k, m.index);
        }
      }
    }
    return hits;
  }
}

/** Whether `text` at `s` equals the lowercase `kw`, ignoring ASCII case. */
function matchesLower(text: string, s: number, kw: string): boolean {
  if (s + kw.length > text.length) return false;
  for (let j = 0; j < kw.length; j++) {
    let c = text.charCodeAt(s + j);
    if (c >= 65 && c <= 90) c |= 32;
    if (c !== kw.charCodeAt(j)) return false;
  }
  return true;
}

/** A regex source matching any of `words`, factored as a trie (V8 scans it much faster). */
function trieSource(words: string[]): string {
  if (words.includes("")) {
    const rest = words.filter((w) => w !== "");
    return rest.length === 0 ? "" : `(?:${trieSource(rest)})?`;
  }
  const groups = new Map<string, string[]>();
  for (const w of words) {
    const c = w[0]!;
    let g = groups.get(c);
    if (g === undefined) groups.set(c, g = []);
    g.push(w.slice(1));
  }
  const alts = [...groups].map(([c, rest]) =>
    escapeRegExp(c) + (rest.length === 1 ? escapeRegExp(rest[0]!) : trieSource(rest))
  );
  return alts.length === 1 ? alts[0]! : `(?:${alts.join("|")})`;
}
