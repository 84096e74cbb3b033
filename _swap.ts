/**
 * The atomic swap of restore targets under a journal.
 *
 * Every target (the memory dir, each database, each state file) is staged next to itself, on
 * the same filesystem, so each swap is a rename. The journal, written before the first rename,
 * lists every target with its staging and "old" locations; each step is inferable from the
 * filesystem, so a crash at any point can be completed or rolled back by {@linkcode recoverSwap}:
 *
 * 1. `phase: "swapping"` written (fsynced).
 * 2. For each target: live (and companions) renamed into its old dir; staged renamed to live.
 * 3. `phase: "committed"` written. From here on the restore is done; cleanup is idempotent.
 * 4. Old dirs moved aside (kept) or removed; the journal is deleted.
 *
 * Any failure before 3 rolls every target back (reverse order), leaving the old state.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { RestoreTarget } from "./capture/types.ts";
import { RollbackError } from "./errors.ts";

/** The filesystem operations the swap needs; injectable to test faults. */
export interface SwapFs {
  rename(from: string, to: string): Promise<void>;
  remove(path: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  exists(path: string): Promise<boolean>;
  syncDir(path: string): Promise<void>;
  writeFileAtomic(path: string, data: string): Promise<void>;
  readText(path: string): Promise<string | undefined>;
}

/** The default {@linkcode SwapFs} on the real filesystem. */
export const realSwapFs: SwapFs = {
  rename: (from, to) => Deno.rename(from, to),
  remove: (path) => Deno.remove(path, { recursive: true }),
  mkdir: (path) => Deno.mkdir(path, { recursive: true }),
  async exists(path) {
    try {
      await Deno.lstat(path);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
  },
  async syncDir(path) {
    const f = await Deno.open(path, { read: true });
    try {
      await f.sync();
    } finally {
      f.close();
    }
  },
  async writeFileAtomic(path, data) {
    // (named as JOURNAL_TMP matches for the journal)
    const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      await f.write(new TextEncoder().encode(data));
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
    await realSwapFs.syncDir(dirname(path));
  },
  async readText(path) {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  },
};

/** One target in the journal. */
export interface JournalTarget extends RestoreTarget {
  /** Directory next to the target holding the staged replacement at `<stageDir>/t`. */
  stageDir: string;
  /** Directory next to the target receiving the old live state at `<oldDir>/t`. */
  oldDir: string;
  /** Whether the live target existed when the restore was planned. */
  existed: boolean;
}

/** The restore journal. */
export interface Journal {
  version: 1;
  restore_id: string;
  tenant: string;
  agent_id: string;
  snapshot_id: string;
  pre_snapshot_id: string | null;
  started_at: string;
  phase: "staging" | "swapping" | "committed";
  /** Whether old state is kept aside after commit (else removed; see `beforeCleanup`). */
  keep_old: boolean;
  targets: JournalTarget[];
}

/** Name of the journal file inside the agent's state dir. */
export const JOURNAL_FILE = "restore-journal.json";

/**
 * The temporary file of a journal write (`writeFileAtomic`: the path, `.tmp-` and 8 hex
 * digits): a restore killed before its rename leaves it.
 */
export const JOURNAL_TMP: RegExp = /^restore-journal\.json\.tmp-[0-9a-f]{8}$/;

/** Where the staged replacement of a target lives. */
export function stagedPath(t: JournalTarget): string {
  return join(t.stageDir, "t");
}

/** Where the old live target is moved. */
export function oldPath(t: JournalTarget): string {
  return join(t.oldDir, "t");
}

function oldCompanionPath(t: JournalTarget, companion: string): string {
  return join(t.oldDir, "c-" + basename(companion));
}

/** Creates the journal entry for a target, choosing its stage and old locations. */
export function planTarget(
  target: RestoreTarget,
  restoreId: string,
  index: number,
): Omit<JournalTarget, "existed"> {
  const parent = dirname(target.path);
  const base = basename(target.path);
  return {
    ...target,
    stageDir: join(parent, `.memsnap-stage-${restoreId}-${index}-${base}`),
    oldDir: join(parent, `.memsnap-old-${restoreId}-${index}-${base}`),
  };
}

/** Writes the journal durably. */
export async function writeJournal(fs: SwapFs, stateDir: string, journal: Journal): Promise<void> {
  await fs.mkdir(stateDir);
  await fs.writeFileAtomic(join(stateDir, JOURNAL_FILE), JSON.stringify(journal, null, 2));
}

/** Reads the journal of an agent, if a restore was interrupted. */
export async function readJournal(fs: SwapFs, stateDir: string): Promise<Journal | undefined> {
  const text = await fs.readText(join(stateDir, JOURNAL_FILE));
  if (text === undefined) return undefined;
  const j = JSON.parse(text) as Journal;
  if (j.version !== 1 || !Array.isArray(j.targets)) {
    throw new Error(
      `Cannot read the restore journal ${join(stateDir, JOURNAL_FILE)}: unknown version`,
    );
  }
  return j;
}

async function removeJournal(fs: SwapFs, stateDir: string): Promise<void> {
  const p = join(stateDir, JOURNAL_FILE);
  if (await fs.exists(p)) await fs.remove(p);
  await fs.syncDir(stateDir);
}

/** Moves one target's live state aside and its staged state into place. */
async function swapOne(fs: SwapFs, t: JournalTarget): Promise<void> {
  await fs.mkdir(t.oldDir);
  if (await fs.exists(t.path)) await fs.rename(t.path, oldPath(t));
  for (const c of t.companions ?? []) {
    if (await fs.exists(c)) await fs.rename(c, oldCompanionPath(t, c));
  }
  await fs.syncDir(t.oldDir);
  await fs.rename(stagedPath(t), t.path);
  await fs.syncDir(dirname(t.path));
}

/**
 * Puts one target back as it was. Idempotent: infers from the filesystem how far the swap got.
 */
async function rollbackOne(fs: SwapFs, t: JournalTarget): Promise<void> {
  const liveExists = await fs.exists(t.path);
  const stagedExists = await fs.exists(stagedPath(t));
  const oldExists = await fs.exists(oldPath(t));
  // The staged replacement was placed if it is gone from staging and something is live that is
  // not the old state (the old state is either in oldDir or never existed).
  const placed = !stagedExists && liveExists && (oldExists || !t.existed);
  if (placed) {
    await fs.mkdir(t.stageDir);
    await fs.rename(t.path, stagedPath(t));
  }
  if (oldExists) await fs.rename(oldPath(t), t.path);
  for (const c of t.companions ?? []) {
    const oc = oldCompanionPath(t, c);
    if (await fs.exists(oc)) {
      if (await fs.exists(c)) await fs.remove(c);
      await fs.rename(oc, c);
    }
  }
  await fs.syncDir(dirname(t.path));
  if (await fs.exists(t.stageDir)) await fs.remove(t.stageDir);
  if (await fs.exists(t.oldDir)) await fs.remove(t.oldDir);
}

/** Where a target's old state is kept after a restore: beside it, outside it. */
export function asidePath(j: Pick<Journal, "restore_id">, t: RestoreTarget): string {
  return join(dirname(t.path), ".memsnap-aside", j.restore_id, basename(t.path));
}

/** After commit: keeps (aside) or removes each old state, and removes staging leftovers. */
async function cleanupOne(fs: SwapFs, j: Journal, t: JournalTarget): Promise<string | undefined> {
  let kept: string | undefined;
  if (await fs.exists(t.oldDir)) {
    let hasOld = await fs.exists(oldPath(t));
    for (const c of t.companions ?? []) hasOld ||= await fs.exists(oldCompanionPath(t, c));
    if (j.keep_old && hasOld) {
      const dest = asidePath(j, t);
      await fs.mkdir(dirname(dest));
      if (await fs.exists(dest)) await fs.remove(dest);
      await fs.rename(t.oldDir, dest);
      kept = dest;
    } else {
      await fs.remove(t.oldDir);
    }
  }
  if (await fs.exists(t.stageDir)) await fs.remove(t.stageDir);
  return kept;
}

/** Result of a swap. */
export interface SwapResult {
  /** Where old state was kept, if anywhere. */
  aside: string[];
}

/**
 * Swaps every staged target into place. On failure rolls every target back and rethrows.
 *
 * @param fs The filesystem layer.
 * @param stateDir The agent's state dir holding the journal.
 * @param journal The journal in phase `"staging"` with every target staged.
 * @param beforeCleanup Called after commit, before cleanup (to trim aside state).
 */
export async function runSwap(
  fs: SwapFs,
  stateDir: string,
  journal: Journal,
  beforeCleanup?: (j: Journal) => Promise<void>,
): Promise<SwapResult> {
  journal.phase = "swapping";
  await writeJournal(fs, stateDir, journal);
  try {
    for (const t of journal.targets) await swapOne(fs, t);
    journal.phase = "committed";
    await writeJournal(fs, stateDir, journal);
  } catch (error) {
    // Not committed (or the commit record may not be durable): put every target back.
    await rollbackAll(fs, journal);
    await removeJournal(fs, stateDir);
    throw error;
  }
  if (beforeCleanup) await beforeCleanup(journal);
  return await finishCommitted(fs, stateDir, journal);
}

async function rollbackAll(fs: SwapFs, journal: Journal): Promise<void> {
  const errors: unknown[] = [];
  for (const t of [...journal.targets].reverse()) {
    try {
      await rollbackOne(fs, t);
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length > 0) {
    const first = errors[0] instanceof Error ? errors[0].message : String(errors[0]);
    throw new RollbackError(
      `Cannot roll back the restore ${journal.restore_id}: ${errors.length} target(s) failed (${first})`,
      {
        cause: new AggregateError(errors),
        hint:
          `the journal is kept; fix the cause and run "memsnap recover --store ... --agent ${journal.agent_id}"`,
      },
    );
  }
}

async function finishCommitted(
  fs: SwapFs,
  stateDir: string,
  journal: Journal,
): Promise<SwapResult> {
  const aside: string[] = [];
  for (const t of journal.targets) {
    const kept = await cleanupOne(fs, journal, t);
    if (kept) aside.push(kept);
  }
  await removeJournal(fs, stateDir);
  return { aside };
}

/** What recovery did. */
export interface RecoverResult {
  /** `"none"` (no journal), `"rolled_back"` or `"completed"`. */
  outcome: "none" | "rolled_back" | "completed";
  /** The interrupted journal, if any. */
  journal?: Journal;
  /** Where old state was kept. */
  aside: string[];
}

/**
 * Completes or rolls back an interrupted restore: a committed journal is completed, anything
 * earlier is rolled back, so live state is entirely the old or entirely the restored one.
 * `beforeCleanup` is the same hook as {@linkcode runSwap}'s, run before a completion's cleanup.
 */
export async function recoverSwap(
  fs: SwapFs,
  stateDir: string,
  beforeCleanup?: (j: Journal) => Promise<void>,
): Promise<RecoverResult> {
  const journal = await readJournal(fs, stateDir);
  if (!journal) return { outcome: "none", aside: [] };
  if (journal.phase === "committed") {
    // Same cleanup as an uninterrupted swap (idempotent: it may have run in part already).
    if (beforeCleanup) await beforeCleanup(journal);
    const r = await finishCommitted(fs, stateDir, journal);
    return { outcome: "completed", journal, aside: r.aside };
  }
  await rollbackAll(fs, journal);
  await removeJournal(fs, stateDir);
  return { outcome: "rolled_back", journal, aside: [] };
}
