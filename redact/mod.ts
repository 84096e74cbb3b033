/**
 * Redaction: pluggable rule packs and the engine that rewrites secrets and PII out of every
 * artifact of a snapshot (text files, JSON state, SQLite databases, git blobs), replacing each
 * with `[REDACTED:<rule-id>:<8 hex of HMAC-SHA256(key, secret)>]`.
 *
 * Built-in packs: {@linkcode secretsPack} and {@linkcode piiPack}.
 *
 * @example Redacting text with the built-in packs
 * ```ts
 * import { createRedactor, piiPack, secretsPack } from "@memsnap/core/redact";
 * const redactor = createRedactor({ packs: [secretsPack, piiPack], key: new Uint8Array(32) });
 * const text = "db: postgres://app:Sup3rS3cret!@db.internal:5432/app, mail jane.doe@acme.io";
 * console.log(redactor.redactString(text, "memdir/notes.md"));
 * console.log(redactor.report());
 * ```
 *
 * @module
 */
export * from "./types.ts";
export * from "./create_redactor.ts";
export * from "./packs/secrets.ts";
export * from "./packs/pii.ts";
export * from "./scan.ts";
export * from "./load_pack.ts";
export * from "./load_gitleaks_pack.ts";
