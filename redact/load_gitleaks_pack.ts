/**
 * {@linkcode loadGitleaksPack}: turns a gitleaks TOML config into a {@linkcode RulePack}.
 *
 * @module
 */
import { parse } from "smol-toml";
import { UsageError } from "../errors.ts";
import type { RedactionRule, RulePack } from "./types.ts";
import { translateRe2 } from "./_re2.ts";
import { RULE_ID_RE } from "./_util.ts";

/** Options of {@linkcode loadGitleaksPack}. */
export interface LoadGitleaksPackOptions {
  /**
   * The pack id.
   *
   * @default {"gitleaks"}
   */
  id?: string;
  /**
   * The pack version.
   *
   * @default {"1"}
   */
  version?: string;
}

/** A rule, or a part of one, that could not be translated. */
export interface UntranslatedRule {
  /** The rule id; `"(global allowlist)"` or `"(extend)"` for config-level parts. */
  id: string;
  /** Why. A rule kept without a part says so (e.g. "allowlist regex ... dropped"). */
  reason: string;
}

/** What {@linkcode loadGitleaksPack} returns. */
export interface GitleaksPackResult {
  /** The translated rules. */
  pack: RulePack;
  /** Every rule or part of a rule that was not translated, by rule id. Never silently empty. */
  untranslated: UntranslatedRule[];
  /**
   * Path allowlists found in the config, recorded but not applied: memsnap redacts every
   * artifact whatever its path, so a path allowlist cannot leave a secret in a bundle.
   */
  pathAllowlists: { id: string; paths: string[] }[];
}

type Target = "secret" | "match" | "line";
interface ParsedAllowlist {
  regexes: RegExp[];
  target: Target;
  stopwords: string[];
}

const asStrings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];

function parseAllowlist(
  al: Record<string, unknown>,
  ownerId: string,
  untranslated: UntranslatedRule[],
  pathAllowlists: { id: string; paths: string[] }[],
): ParsedAllowlist | undefined {
  const target = al.regexTarget === "match" || al.regexTarget === "line"
    ? al.regexTarget
    : "secret";
  const paths = asStrings(al.paths);
  if (paths.length > 0) pathAllowlists.push({ id: ownerId, paths });
  if (asStrings(al.commits).length > 0) {
    untranslated.push({
      id: ownerId,
      reason: "allowlist commits ignored: memsnap does not scan by commit",
    });
  }
  const condition = typeof al.condition === "string" ? al.condition.toUpperCase() : "OR";
  const hasRegexOrStop = asStrings(al.regexes).length + asStrings(al.stopwords).length > 0;
  if (condition === "AND" && paths.length > 0 && hasRegexOrStop) {
    untranslated.push({
      id: ownerId,
      reason: "AND allowlist combining paths with regexes/stopwords dropped (paths do not apply)",
    });
    return undefined;
  }
  if (
    condition === "AND" && asStrings(al.regexes).length > 0 && asStrings(al.stopwords).length > 0
  ) {
    untranslated.push({
      id: ownerId,
      reason: "AND allowlist combining regexes with stopwords applied as OR",
    });
  }
  const regexes: RegExp[] = [];
  for (const r of asStrings(al.regexes)) {
    const t = translateRe2(r);
    if (t.ok) regexes.push(t.regexp);
    else {
      untranslated.push({
        id: ownerId,
        reason: `allowlist regex ${JSON.stringify(r)} dropped: ${t.reason}`,
      });
    }
  }
  return { regexes, target, stopwords: asStrings(al.stopwords) };
}

/** Whether a pattern may match across lines (then the rule gets a `maxSpan`). */
function spansLines(source: string, flags: string): boolean {
  return flags.includes("s") || /\\n|\[\\s\\S|\[\\S\\s|\\r/.test(source);
}

/**
 * Translates a gitleaks TOML config into a rule pack. RE2 syntax is rewritten for JS
 * (`(?i)` → flag, inline flag groups → `(?i:...)`, `(?P<n>` → `(?<n>`, `\z` → end of input,
 * `\A` → start, `[[:alpha:]]` → ranges, `\Q..\E`); `keywords`, `entropy`, `secretGroup`,
 * per-rule and global allowlists (regexes with their `regexTarget`, stopwords) are honoured.
 * Path allowlists are recorded, not applied. Whatever cannot be translated (path-only rules,
 * `\p{...}`, `(?U)`, `[extend]`, ...) is listed in `untranslated` by rule id.
 *
 * @param tomlText The config's text.
 * @param options The pack's id and version.
 * @returns The pack, the untranslated parts, and the recorded path allowlists.
 * @throws {UsageError} When the text is not TOML or has no `[[rules]]` array.
 *
 * @example Loading a one-rule config
 * ```ts
 * import { createRedactor, loadGitleaksPack } from "@memsnap/core/redact";
 * import { deepStrictEqual as assertEquals } from "node:assert/strict";
 * const { pack, untranslated } = loadGitleaksPack(`
 * [[rules]]
 * id = "acme-token"
 * description = "Acme API token"
 * regex = '''(?i)\\b(acme_[a-z0-9]{32})\\b'''
 * keywords = ["acme_"]
 * `);
 * assertEquals(untranslated, []);
 * const r = createRedactor({ packs: [pack], key: new Uint8Array(32) });
 * console.log(r.redactString("t=acme_" + "0123456789abcdef".repeat(2), "a.md"));
 * ```
 */
export function loadGitleaksPack(
  tomlText: string,
  options: LoadGitleaksPackOptions = {},
): GitleaksPackResult {
  let doc: Record<string, unknown>;
  try {
    doc = parse(tomlText) as Record<string, unknown>;
  } catch (e) {
    throw new UsageError(`Cannot load the gitleaks config: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const untranslated: UntranslatedRule[] = [];
  const pathAllowlists: { id: string; paths: string[] }[] = [];
  if (doc.extend !== undefined) {
    untranslated.push({
      id: "(extend)",
      reason:
        "[extend] not followed: load the extended config too, or add the built-in secrets pack",
    });
  }
  const globals: ParsedAllowlist[] = [];
  const globalTables = [
    ...(doc.allowlist !== undefined ? [doc.allowlist] : []),
    ...(Array.isArray(doc.allowlists) ? doc.allowlists : []),
  ] as Record<string, unknown>[];
  for (const al of globalTables) {
    if (asStrings(al.targetRules).length > 0) {
      // Applied below only to the named rules.
      continue;
    }
    const p = parseAllowlist(al, "(global allowlist)", untranslated, pathAllowlists);
    if (p !== undefined) globals.push(p);
  }
  const targeted = globalTables.filter((al) => asStrings(al.targetRules).length > 0);
  const rulesIn = doc.rules;
  if (!Array.isArray(rulesIn)) {
    throw new UsageError("Cannot load the gitleaks config: it has no [[rules]] array");
  }
  const rules: RedactionRule[] = [];
  const ids = new Set<string>();
  for (const [n, raw] of (rulesIn as Record<string, unknown>[]).entries()) {
    const id = typeof raw.id === "string" ? raw.id : `rules[${n}]`;
    if (!RULE_ID_RE.test(id)) {
      untranslated.push({ id, reason: "rule id has characters outside [A-Za-z0-9._-]" });
      continue;
    }
    if (ids.has(id)) {
      untranslated.push({ id, reason: "duplicate rule id" });
      continue;
    }
    if (typeof raw.regex !== "string" || raw.regex.length === 0) {
      untranslated.push({
        id,
        reason: raw.path !== undefined
          ? "path-only rule: memsnap matches content, not file paths"
          : "rule has no regex",
      });
      continue;
    }
    const t = translateRe2(raw.regex);
    if (!t.ok) {
      untranslated.push({ id, reason: t.reason });
      continue;
    }
    if (raw.path !== undefined) {
      pathAllowlists.push({ id, paths: [`(rule path filter) ${String(raw.path)}`] });
    }
    const allowlist: { pattern: RegExp; target: Target }[] = [];
    const stopwords: string[] = [];
    const ruleTables = [
      ...(raw.allowlist !== undefined ? [raw.allowlist] : []),
      ...(Array.isArray(raw.allowlists) ? raw.allowlists : []),
      ...targeted.filter((al) => asStrings(al.targetRules).includes(id)),
    ] as Record<string, unknown>[];
    const parsed = [
      ...globals,
      ...ruleTables.flatMap((al) => {
        const p = parseAllowlist(al, id, untranslated, pathAllowlists);
        return p === undefined ? [] : [p];
      }),
    ];
    for (const p of parsed) {
      for (const r of p.regexes) allowlist.push({ pattern: r, target: p.target });
      stopwords.push(...p.stopwords);
    }
    const rule: RedactionRule = {
      id,
      description: typeof raw.description === "string" ? raw.description : id,
      pattern: t.regexp,
      secretGroup: typeof raw.secretGroup === "number" && raw.secretGroup > 0
        ? raw.secretGroup
        : "first",
    };
    const keywords = asStrings(raw.keywords);
    if (keywords.length > 0) rule.keywords = keywords;
    if (typeof raw.entropy === "number" && raw.entropy > 0) rule.entropy = raw.entropy;
    if (allowlist.length > 0) rule.allowlist = allowlist;
    if (stopwords.length > 0) rule.stopwords = stopwords;
    if (spansLines(t.source, t.flags)) rule.maxSpan = 40000;
    ids.add(id);
    rules.push(rule);
  }
  return {
    pack: { id: options.id ?? "gitleaks", version: options.version ?? "1", rules },
    untranslated,
    pathAllowlists,
  };
}
