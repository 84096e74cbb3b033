// Private: compiles rule packs and finds secrets in text. Shared by the redactor and the scanner.
import type { RedactionRule, RulePack } from "./types.ts";
import { escapeRegExp, RULE_ID_RE, shannonEntropy, TOKEN_RE } from "./_util.ts";

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
  fn: ((text: string) => Iterable<{ start: number; end: number }>) | undefined;
  prefilter: RegExp | undefined;
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
  prefilters: Map<string, RegExp>,
): CompiledRule {
  if (typeof rule.id !== "string" || !RULE_ID_RE.test(rule.id)) {
    throw new TypeError(
      `Cannot compile pack "${packId}": rule id ${
        JSON.stringify(rule.id)
      } must match [A-Za-z0-9._-]+`,
    );
  }
  let re: RegExp | undefined;
  let fn: CompiledRule["fn"];
  const group = rule.secretGroup ?? 0;
  if (rule.pattern instanceof RegExp) {
    let flags = rule.pattern.flags.replace(/[gyd]/g, "") + "g";
    if (group !== 0) flags += "d";
    re = new RegExp(rule.pattern.source, flags);
  } else if (typeof rule.pattern === "function") {
    fn = rule.pattern;
  } else {
    throw new TypeError(
      `Cannot compile pack "${packId}": rule "${rule.id}" has no RegExp or function pattern`,
    );
  }
  const kws = (rule.keywords ?? []).filter((k) => k.length > 0).map((k) => k.toLowerCase());
  let prefilter: RegExp | undefined;
  if (kws.length > 0) {
    const src = trieSource([...new Set(kws)].sort());
    prefilter = prefilters.get(src);
    if (prefilter === undefined) {
      prefilter = new RegExp(src, "gi");
      prefilters.set(src, prefilter);
    }
  }
  return {
    id: rule.id,
    order,
    re,
    fn,
    prefilter,
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
  /** Packs, in order, with versions. */
  readonly packs: readonly { id: string; version: string }[];

  constructor(packs: readonly RulePack[]) {
    const rules: CompiledRule[] = [];
    const seen = new Set<string>();
    const packIds = new Set<string>();
    const prefilters = new Map<string, RegExp>();
    for (const pack of packs) {
      if (packIds.has(pack.id)) {
        throw new TypeError(`Cannot compile packs: pack "${pack.id}" is given twice`);
      }
      packIds.add(pack.id);
      for (const rule of pack.rules) {
        if (seen.has(rule.id)) {
          throw new TypeError(
            `Cannot compile pack "${pack.id}": rule id "${rule.id}" is already used by another rule`,
          );
        }
        seen.add(rule.id);
        rules.push(compileRule(rule, rules.length, pack.id, prefilters));
      }
    }
    this.rules = rules;
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
    const prefilterHits = new Map<RegExp, [number, number][]>();
    for (const rule of this.rules) {
      if (rule.prefilter === undefined) {
        this.#runRule(rule, text, 0, text.length, cands);
        continue;
      }
      let wins = prefilterHits.get(rule.prefilter);
      if (wins === undefined || rule.maxSpan !== undefined) {
        wins = windows(text, rule.prefilter, rule.maxSpan);
        if (rule.maxSpan === undefined) prefilterHits.set(rule.prefilter, wins);
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
    const sub = ws === 0 && we === text.length ? text : text.slice(ws, we);
    if (rule.re !== undefined) {
      const re = rule.re;
      re.lastIndex = 0;
      let m: RegExpExecArray | null;
      while ((m = re.exec(sub)) !== null) {
        if (m[0].length === 0) {
          re.lastIndex++;
          continue;
        }
        let s = m.index;
        let e = s + m[0].length;
        if (rule.group !== 0) {
          const idx = m.indices;
          if (idx === undefined) continue;
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
          if (pair === undefined) continue;
          [s, e] = pair;
        }
        if (this.#accept(rule, sub, s, e, m.index, m.index + m[0].length)) {
          out.push({ start: ws + s, end: ws + e, rule: rule.id, order: rule.order });
        }
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

/** Windows `[start, end)` around each keyword occurrence, merged, sorted. */
function windows(text: string, prefilter: RegExp, maxSpan: number | undefined): [number, number][] {
  const out: [number, number][] = [];
  prefilter.lastIndex = 0;
  let m: RegExpExecArray | null;
  const n = text.length;
  while ((m = prefilter.exec(text)) !== null) {
    const p = m.index;
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
    if (le > prefilter.lastIndex) prefilter.lastIndex = le;
  }
  return out;
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
