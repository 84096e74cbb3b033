/**
 * {@linkcode loadPack} and {@linkcode loadPacks}: resolve pack specs ("secrets", "pii", a
 * TypeScript/JavaScript module, a gitleaks TOML config) to rule packs.
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { pathToFileURL } from "node:url";
import { NotFoundError, UsageError } from "../errors.ts";
import type { PortableRedactor, RulePack } from "./types.ts";
import { packsFingerprint } from "./_portable.ts";
import { secretsPack } from "./packs/secrets.ts";
import { piiPack } from "./packs/pii.ts";
import { loadGitleaksPack, type UntranslatedRule } from "./load_gitleaks_pack.ts";

/** Options of {@linkcode loadPack}. */
export interface LoadPackOptions {
  /**
   * Directory relative paths are resolved against.
   *
   * @default {Deno.cwd()}
   */
  baseDir?: string;
  /**
   * Called with the rules of a gitleaks config that could not be translated. Without it, a
   * config with untranslatable rules is refused, so no rule is ever dropped silently.
   */
  onUntranslated?: (spec: string, untranslated: UntranslatedRule[]) => void;
}

const BUILTIN: Record<string, RulePack> = { secrets: secretsPack, pii: piiPack };

/** Where each pack {@linkcode loadPack} loaded from a file came from: its absolute path. */
const SOURCES = new WeakMap<RulePack, string>();

/**
 * The spec that loads `pack` again, in another isolate (a worker) too: the built-in pack's id,
 * or the absolute path of the file {@linkcode loadPack} loaded it from; `undefined` for a pack
 * made in code (it can only be used where it is).
 *
 * @param pack A pack.
 * @returns Its spec, or `undefined`.
 *
 * @example
 * ```ts
 * import { loadPack, packSource } from "./load_pack.ts";
 * console.log(packSource(await loadPack("secrets"))); // "secrets"
 * console.log(packSource({ id: "mine", version: "1", rules: [] })); // undefined
 * ```
 */
export function packSource(pack: RulePack): string | undefined {
  for (const [id, p] of Object.entries(BUILTIN)) if (p === pack) return id;
  return SOURCES.get(pack);
}

/**
 * Checks that `value` is a {@linkcode RulePack}; throws a {@linkcode UsageError} naming the
 * first bad field.
 */
function validatePack(value: unknown, spec: string): RulePack {
  const fail = (what: string): never => {
    throw new UsageError(`Cannot load pack "${spec}": ${what}`, {
      hint: "A pack module exports `pack` (or a default export) of shape { id, version, rules }",
    });
  };
  if (typeof value !== "object" || value === null) return fail("the export is not an object");
  const p = value as Record<string, unknown>;
  if (typeof p.id !== "string" || p.id.length === 0) fail("id must be a non-empty string");
  if (typeof p.version !== "string") fail("version must be a string");
  if (!Array.isArray(p.rules)) return fail("rules must be an array");
  for (const [i, r] of (p.rules as unknown[]).entries()) {
    const at = `rules[${i}]`;
    if (typeof r !== "object" || r === null) fail(`${at} is not an object`);
    const rule = r as Record<string, unknown>;
    if (typeof rule.id !== "string" || !/^[A-Za-z0-9._-]+$/.test(rule.id)) {
      fail(`${at}.id must be a string of [A-Za-z0-9._-]`);
    }
    if (typeof rule.description !== "string") fail(`${at}.description must be a string`);
    if (!(rule.pattern instanceof RegExp) && typeof rule.pattern !== "function") {
      fail(`${at}.pattern must be a RegExp or a function`);
    }
    if (
      rule.keywords !== undefined &&
      !(Array.isArray(rule.keywords) && rule.keywords.every((k) => typeof k === "string"))
    ) fail(`${at}.keywords must be an array of strings`);
    if (rule.entropy !== undefined && typeof rule.entropy !== "number") {
      fail(`${at}.entropy must be a number`);
    }
    if (
      rule.allowlist !== undefined &&
      !(Array.isArray(rule.allowlist) &&
        rule.allowlist.every((a) =>
          a instanceof RegExp ||
          (typeof a === "object" && a !== null && (a as { pattern?: unknown }).pattern instanceof
              RegExp)
        ))
    ) fail(`${at}.allowlist must be an array of RegExp`);
    if (
      rule.secretGroup !== undefined && rule.secretGroup !== "first" &&
      !(Number.isInteger(rule.secretGroup) && (rule.secretGroup as number) >= 0)
    ) fail(`${at}.secretGroup must be a non-negative integer or "first"`);
    if (rule.validate !== undefined && typeof rule.validate !== "function") {
      fail(`${at}.validate must be a function`);
    }
  }
  return p as unknown as RulePack;
}

/**
 * Resolves one pack spec: `"secrets"`, `"pii"`, a path to a `.ts`/`.js` module whose `pack`
 * export (or default export) is a {@linkcode RulePack}, or a path to a gitleaks `.toml` config.
 *
 * @param spec The spec.
 * @param options Base directory and the handler of untranslated gitleaks rules.
 * @returns The pack.
 * @throws {NotFoundError} When the file does not exist.
 * @throws {UsageError} When the spec is unknown, the module's export is not a pack, or a
 * gitleaks config has untranslatable rules and no `onUntranslated` handler is given.
 *
 * @example Resolving a built-in pack
 * ```ts
 * import { loadPack } from "@memsnap/core/redact";
 * const pack = await loadPack("secrets");
 * console.log(pack.id, pack.rules.length);
 * ```
 */
export async function loadPack(spec: string, options: LoadPackOptions = {}): Promise<RulePack> {
  const builtin = BUILTIN[spec];
  if (builtin !== undefined) return builtin;
  if (!/\.(?:[cm]?[jt]s|tsx|jsx|toml)$/.test(spec)) {
    throw new UsageError(
      `Cannot load pack "${spec}": not a built-in pack ("secrets", "pii") nor a .ts/.js/.toml path`,
    );
  }
  const path = isAbsolute(spec) ? spec : join(options.baseDir ?? Deno.cwd(), spec);
  try {
    await Deno.stat(path);
  } catch (e) {
    throw new NotFoundError(`Cannot load pack "${spec}": ${path} does not exist`, { cause: e });
  }
  if (spec.endsWith(".toml")) {
    const { pack, untranslated } = loadGitleaksPack(await Deno.readTextFile(path), {
      id: spec.replace(/^.*[\\/]/, "").replace(/\.toml$/, ""),
    });
    if (untranslated.length > 0) {
      if (options.onUntranslated === undefined) {
        throw new UsageError(
          `Cannot load pack "${spec}": ${untranslated.length} rule(s) cannot be translated: ${
            untranslated.map((u) => `${u.id} (${u.reason})`).join("; ")
          }`,
          { hint: "Fix or remove those rules, or accept them with an onUntranslated handler" },
        );
      }
      options.onUntranslated(spec, untranslated);
    }
    SOURCES.set(pack, path);
    return pack;
  }
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (e) {
    throw new UsageError(`Cannot load pack "${spec}": ${(e as Error).message}`, { cause: e });
  }
  const pack = validatePack(mod.pack ?? mod.default, spec);
  SOURCES.set(pack, path);
  return pack;
}

/**
 * Resolves a comma-separated list (or an array) of pack specs, e.g.
 * `"secrets,pii,./my_pack.ts"`.
 *
 * @param specs The specs.
 * @param options As for {@linkcode loadPack}.
 * @returns The packs, in order.
 * @throws {UsageError} As {@linkcode loadPack}, and when the list is empty or names a pack twice.
 *
 * @example Loading the default packs
 * ```ts
 * import { loadPacks } from "@memsnap/core/redact";
 * const packs = await loadPacks("secrets,pii");
 * console.log(packs.map((p) => p.id)); // ["secrets", "pii"]
 * ```
 */
export async function loadPacks(
  specs: string | string[],
  options: LoadPackOptions = {},
): Promise<RulePack[]> {
  const list = (Array.isArray(specs) ? specs : specs.split(","))
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (list.length === 0) throw new UsageError("Cannot load packs: the list is empty");
  const packs: RulePack[] = [];
  for (const spec of list) {
    const p = await loadPack(spec, options);
    if (packs.some((q) => q.id === p.id)) {
      throw new UsageError(`Cannot load packs: pack id "${p.id}" is given twice`);
    }
    packs.push(p);
  }
  return packs;
}

/**
 * Loads the packs of a redactor's portable form (`Redactor.portable`), as a plugin does on a
 * worker to redact with the same rules: `createRedactor({ packs, key: portable.key })` then
 * gives the same output and tokens as the snapshot's redactor. Untranslated gitleaks rules are
 * accepted (the snapshot's load accepted them already).
 *
 * @param portable The redactor's portable form.
 * @returns The packs, in order.
 * @throws {Error} If the packs loaded are not those the redactor was made of (a pack file was
 * edited since), and as {@linkcode loadPacks}.
 *
 * @example
 * ```ts
 * import { createRedactor, loadPacks, loadPortablePacks } from "@memsnap/core/redact";
 * const key = new Uint8Array(32);
 * const portable = createRedactor({ packs: await loadPacks("secrets"), key }).portable()!;
 * // On a worker:
 * const there = createRedactor({ packs: await loadPortablePacks(portable), key: portable.key });
 * console.log(there.redactString("password=Hunter2Hunter2x", "a").startsWith("password=[REDACTED"));
 * ```
 */
export async function loadPortablePacks(portable: PortableRedactor): Promise<RulePack[]> {
  const packs = await loadPacks(portable.packs, { onUntranslated: () => {} });
  if (packsFingerprint(packs) !== portable.fingerprint) {
    throw new Error(
      "Cannot load the redaction packs again: they are not those of the snapshot's redactor " +
        "(was a pack file edited?)",
    );
  }
  return packs;
}
