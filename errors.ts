/**
 * The error hierarchy memsnap throws, and the one table that maps errors to exit codes.
 *
 * Programmer errors use built-in classes (TypeError, RangeError). Domain errors callers catch
 * are {@linkcode MemsnapError} subclasses; each carries a stable `code` and an `exitCode`.
 *
 * @module
 */

/** Exit codes of the CLI, one table in one place. */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** A bug or an unexpected failure (stack is printed). */
  Internal: 1,
  /** Bad flags, arguments or config. */
  Usage: 2,
  /** A bundle failed verification (corrupt, tampered, bad signature). */
  VerificationFailed: 3,
  /** Refused: unsupported version, mismatched agent/tenant, unsafe bundle, missing key. */
  Refused: 4,
  /** The agent's lock is held by another process. */
  Locked: 5,
  /** Cancelled by the user (SIGINT). */
  Cancelled: 130,
} as const;

/** One of the values of {@linkcode ExitCode}. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** Options shared by every memsnap error. */
export interface MemsnapErrorOptions {
  /** The underlying cause. */
  cause?: unknown;
  /** A hint telling the user how to fix the problem. */
  hint?: string;
}

/**
 * Base class of memsnap's domain errors. Messages read "Cannot <action>: <state>".
 *
 * @example Catching a memsnap error
 * ```ts
 * import { MemsnapError, UsageError } from "./errors.ts";
 * try {
 *   throw new UsageError("Cannot parse flags: unknown flag --foo");
 * } catch (e) {
 *   if (e instanceof MemsnapError) console.log(e.code, e.exitCode);
 * }
 * ```
 */
export class MemsnapError extends Error {
  /** Stable machine-readable code, e.g. `"usage"`. */
  readonly code: string = "internal";
  /** The CLI exit code for this error. */
  readonly exitCode: ExitCodeValue = ExitCode.Internal;
  /** A hint telling the user how to fix the problem, if any. */
  readonly hint: string | undefined;

  /**
   * Creates an error.
   *
   * @param message The message, "Cannot <action>: <state>".
   * @param options The cause and a hint.
   */
  constructor(message: string, options: MemsnapErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

/** Bad flags, arguments or configuration (exit 2). */
export class UsageError extends MemsnapError {
  /** Stable code: `"usage"`. */
  override readonly code: string = "usage";
  /** Exit code: `ExitCode.Usage`. */
  override readonly exitCode: ExitCodeValue = ExitCode.Usage;
}

/** A path or object the user named does not exist (exit 2). */
export class NotFoundError extends MemsnapError {
  /** Stable code: `"not_found"`. */
  override readonly code: string = "not_found";
  /** Exit code: `ExitCode.Usage`. */
  override readonly exitCode: ExitCodeValue = ExitCode.Usage;
}

/** One failed check of a verification. */
export interface VerificationFailure {
  /** Which check failed, e.g. `"artifact_hash"`, `"payload_hash"`, `"missing"`, `"extra"`. */
  check: string;
  /** The artifact or entry the check concerns, if any. */
  path?: string;
  /** Human-readable detail. */
  detail: string;
}

/** A bundle failed verification: corrupt, truncated, tampered, bad signature (exit 3). */
export class VerificationError extends MemsnapError {
  /** Stable code: `"verification_failed"`. */
  override readonly code: string = "verification_failed";
  /** Exit code: `ExitCode.VerificationFailed`. */
  override readonly exitCode: ExitCodeValue = ExitCode.VerificationFailed;
  /** Every failed check. */
  readonly failures: VerificationFailure[];

  /**
   * Creates a verification error.
   *
   * @param message The message.
   * @param failures The failed checks.
   * @param options The cause and a hint.
   */
  constructor(
    message: string,
    failures: VerificationFailure[] = [],
    options: MemsnapErrorOptions = {},
  ) {
    super(message, options);
    this.failures = failures;
  }
}

/** The bundle's bytes break the format: bad checksum, truncation, bad zstd (exit 3). */
export class CorruptBundleError extends VerificationError {
  /** Stable code: `"corrupt_bundle"`. */
  override readonly code: string = "corrupt_bundle";
  /** The reader rule that was broken, e.g. `"header_checksum"`, `"truncated"`. */
  readonly rule: string;
  /** The entry concerned, if known. */
  readonly entry: string | undefined;

  /**
   * Creates the error.
   *
   * @param rule The broken rule.
   * @param entry The entry concerned.
   * @param message The message.
   * @param options The cause and a hint.
   */
  constructor(
    rule: string,
    entry: string | undefined,
    message: string,
    options: MemsnapErrorOptions = {},
  ) {
    super(message, [{
      check: rule,
      ...(entry === undefined ? {} : { path: entry }),
      detail: message,
    }], options);
    this.rule = rule;
    this.entry = entry;
  }
}

/** Refused: unsupported version, mismatched agent or tenant, newer schema, missing key (exit 4). */
export class RefusedError extends MemsnapError {
  /** Stable code: `"refused"`. */
  override readonly code: string = "refused";
  /** Exit code: `ExitCode.Refused`. */
  override readonly exitCode: ExitCodeValue = ExitCode.Refused;
}

/**
 * The bundle breaks a safety rule of the reader: path escape, link, device, duplicate,
 * caps on size/count/window exceeded (exit 4). Nothing outside staging has been written.
 */
export class UnsafeBundleError extends RefusedError {
  /** Stable code: `"unsafe_bundle"`. */
  override readonly code: string = "unsafe_bundle";
  /** The reader rule that was broken, e.g. `"path_escape"`, `"entry_type"`, `"max_entries"`. */
  readonly rule: string;
  /** The entry concerned, if known. */
  readonly entry: string | undefined;

  /**
   * Creates the error.
   *
   * @param rule The broken rule.
   * @param entry The entry concerned.
   * @param message The message.
   * @param options The cause and a hint.
   */
  constructor(
    rule: string,
    entry: string | undefined,
    message: string,
    options: MemsnapErrorOptions = {},
  ) {
    super(message, options);
    this.rule = rule;
    this.entry = entry;
  }
}

/**
 * A failed restore could not be rolled back completely (a disk or permission failure during
 * the rollback). The journal is kept; `memsnap recover` finishes the rollback (exit 1).
 */
export class RollbackError extends MemsnapError {
  /** Stable code: `"rollback_failed"`. */
  override readonly code: string = "rollback_failed";
}

/** The agent's lock is held by another live process (exit 5). */
export class LockedError extends MemsnapError {
  /** Stable code: `"locked"`. */
  override readonly code: string = "locked";
  /** Exit code: `ExitCode.Locked`. */
  override readonly exitCode: ExitCodeValue = ExitCode.Locked;
}

/** The operation was cancelled (exit 130). */
export class CancelledError extends MemsnapError {
  /** Stable code: `"cancelled"`. */
  override readonly code: string = "cancelled";
  /** Exit code: `ExitCode.Cancelled`. */
  override readonly exitCode: ExitCodeValue = ExitCode.Cancelled;
}

/**
 * Maps any thrown value to the CLI exit code. Non-memsnap errors are internal (1).
 *
 * @param error The thrown value.
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import { exitCodeOf, LockedError } from "./errors.ts";
 * console.log(exitCodeOf(new LockedError("Cannot snapshot: lock held"))); // 5
 * ```
 */
export function exitCodeOf(error: unknown): ExitCodeValue {
  if (error instanceof MemsnapError) return error.exitCode;
  if (error instanceof DOMException && error.name === "AbortError") return ExitCode.Cancelled;
  return ExitCode.Internal;
}
