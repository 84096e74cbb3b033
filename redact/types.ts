/**
 * The redactor contract capture plugins apply to the captured copies of every artifact.
 *
 * @module
 */
import type { JsonValue, RedactionReport } from "../bundle/types.ts";

/** One rule of a pack. */
export interface RedactionRule {
  /** Stable id, e.g. `"github-pat"`. Appears in replacement tokens and reports. */
  id: string;
  /** What the rule finds. */
  description: string;
  /**
   * The pattern (global flag is added). Either a RegExp, or a function for what a regex cannot
   * express, returning the secret spans found in `text`.
   */
  pattern: RegExp | ((text: string) => Iterable<{ start: number; end: number }>);
  /** Case-insensitive keywords; when given, the rule only runs where one occurs. */
  keywords?: string[];
  /** Minimum Shannon entropy (bits per char) of the secret for a match to count. */
  entropy?: number;
  /**
   * Matches whose secret matches any of these are left alone. A plain RegExp is tested against
   * {@linkcode RedactionRule.allowlistTarget}; `{ pattern, target }` names its own target.
   */
  allowlist?: (RegExp | { pattern: RegExp; target: "secret" | "match" | "line" })[];
  /**
   * Capture group holding the secret (default 0: the whole match). `"first"` takes the first
   * capture group that matched something, else the whole match (gitleaks' rule when no group
   * is named).
   */
  secretGroup?: number | "first";
  /**
   * What {@linkcode RedactionRule.allowlist} is tested against: the secret (default), the whole
   * match, or the line holding the match (gitleaks' `regexTarget`).
   */
  allowlistTarget?: "secret" | "match" | "line";
  /** Case-insensitive words: a secret containing one of them is left alone (gitleaks' stopwords). */
  stopwords?: string[];
  /**
   * For a rule with keywords whose matches span lines (e.g. PEM blocks): how many characters
   * after a keyword occurrence the rule may look. Without it, a rule with keywords looks at the
   * line holding each occurrence (clamped to 4096 characters either side).
   */
  maxSpan?: number;
  /** Extra validation of the secret (e.g. a Luhn check). */
  validate?: (secret: string) => boolean;
}

/** A rule pack. */
export interface RulePack {
  /** Pack id, e.g. `"secrets"`. */
  id: string;
  /** Pack version. */
  version: string;
  /** The rules. */
  rules: RedactionRule[];
}

/**
 * Applies rule packs to captured copies. One redactor is used for one snapshot: it accumulates
 * the report. Replacements are `[REDACTED:<rule-id>:<8 hex of HMAC-SHA256(key, secret)>]`.
 */
export interface Redactor {
  /** Redacts a string (one artifact's text, or a JSON/SQLite string value). */
  redactString(text: string, artifact: string): string;
  /**
   * Redacts bytes if they are text; returns `undefined` (and records the artifact as skipped)
   * when they look binary.
   */
  redactBytes(bytes: Uint8Array, artifact: string): Uint8Array | undefined;
  /**
   * Redacts a text file into another file, streaming in chunks with overlap so a secret that
   * crosses a chunk boundary is still caught. Returns `false` (nothing written) if binary.
   */
  redactFile(src: string, dest: string, artifact: string): Promise<boolean>;
  /** Redacts every string value of a JSON value. */
  redactJson(value: JsonValue, artifact: string): JsonValue;
  /**
   * Redacts text values of every table of a SQLite database in place (a captured copy, never
   * the live database), keeping full-text-search indexes consistent. With `vacuum: false` the
   * file is not rebuilt afterwards: for a caller that runs `VACUUM` itself (the sqlite plugin
   * does, on a worker), which no old value survives either.
   */
  redactSqlite(dbPath: string, artifact: string, options?: { vacuum?: boolean }): Promise<void>;
  /** The report so far (never contains a secret). */
  report(): RedactionReport;
  /**
   * Optional: how to make the same redactor in another isolate (a worker), when every pack can
   * be loaded again there (built-in packs and packs loaded from files; see `packSource`);
   * `undefined` otherwise. A plugin may then redact on a worker, with a redactor made from it,
   * and hand that redactor's report to {@linkcode Redactor.absorb}.
   */
  portable?(): PortableRedactor | undefined;
  /**
   * Optional, with {@linkcode Redactor.portable}: adds the report of a redactor made from this
   * one's portable form (what it replaced, and skipped as binary) to this one's.
   */
  absorb?(report: RedactionReport): void;
}

/** A redactor in a form another isolate can make again (see {@linkcode Redactor.portable}). */
export interface PortableRedactor {
  /** The packs' specs (`loadPack`), in order. */
  packs: string[];
  /** The redaction key. */
  key: Uint8Array;
  /** The packs' ids, versions and rule ids: a load elsewhere must give the same. */
  fingerprint: string;
}
