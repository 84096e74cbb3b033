/**
 * Progress reporting. Engines never print; they call a {@linkcode ProgressReporter}.
 *
 * @module
 */

/** One progress event. */
export interface ProgressEvent {
  /** The phase, e.g. `"capture"`, `"pack"`, `"verify"`, `"restore"`, `"upload"`. */
  phase: string;
  /** Bytes (or items) done so far in this phase. */
  done: number;
  /** Total bytes (or items) if known. */
  total?: number;
  /** What is being worked on, e.g. an artifact path. */
  item?: string;
}

/** Receives progress events and warnings from engines. */
export interface ProgressReporter {
  /** Called as work advances. */
  progress(event: ProgressEvent): void;
  /** Called for a non-fatal problem the user should see. */
  warn(message: string): void;
}

/** A reporter that ignores everything. */
export const noopProgress: ProgressReporter = {
  progress(): void {},
  warn(): void {},
};
