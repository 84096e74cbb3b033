// Copyright memsnap authors. MIT license.
/**
 * A lock file with a lease: the local store's per-agent lock.
 *
 * @module
 */
import { dirname } from "node:path";
import type { HeldLock, LockOptions, LockOwner } from "./types.ts";
import { randomHex } from "./_names.ts";
import { isStale, lockedError, lockTimes, sleep } from "./_lock_owner.ts";

/** Options of {@linkcode lockFile}. */
export interface LockFileOptions extends LockOptions {
  /**
   * What the lock protects, for messages: `"agent a1"`.
   *
   * @default {"the lock file"}
   */
  what?: string;
}

/** A breaker file older than this is left from a crashed process and removed. */
const BREAKER_STALE_MS = 30_000;
/** A lock file that does not parse (being written without link support) counts as held this long. */
const UNPARSABLE_GRACE_MS = 10_000;

async function readOwner(path: string): Promise<LockOwner | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    const o = JSON.parse(text) as LockOwner;
    if (typeof o.token === "string" && typeof o.expires_at === "string") return o;
  } catch {
    // fall through
  }
  let mtime = Date.now();
  try {
    mtime = (await Deno.stat(path)).mtime?.getTime() ?? mtime;
  } catch {
    // vanished
  }
  return {
    host: "?",
    pid: 0,
    created_at: new Date(mtime).toISOString(),
    expires_at: new Date(mtime + UNPARSABLE_GRACE_MS).toISOString(),
    token: `unparsable:${text}`,
  };
}

/** Creates the lock file with its full content atomically; `false` if it exists. */
async function tryCreate(path: string, owner: LockOwner): Promise<boolean> {
  const text = JSON.stringify(owner);
  const tmp = `${path}.${owner.token}.tmp`;
  await Deno.writeTextFile(tmp, text, { createNew: true });
  try {
    await Deno.link(tmp, path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.AlreadyExists) return false;
    // No hard links on this file system: O_EXCL create, then write.
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(text));
      } finally {
        f.close();
      }
      return true;
    } catch (e2) {
      if (e2 instanceof Deno.errors.AlreadyExists) return false;
      throw e2;
    }
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * Removes a stale lock, race-safely: only the holder of the breaker file (O_EXCL) may remove
 * it, and only if the lock still holds exactly what was seen stale.
 */
async function breakStale(path: string, seen: LockOwner): Promise<boolean> {
  const breaker = `${path}.break`;
  try {
    await Deno.writeTextFile(breaker, `${Deno.pid}`, { createNew: true });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    try {
      const st = await Deno.stat(breaker);
      if (Date.now() - (st.mtime?.getTime() ?? Date.now()) > BREAKER_STALE_MS) {
        await Deno.remove(breaker);
      }
    } catch {
      // gone already
    }
    return false;
  }
  try {
    const now = await readOwner(path);
    if (now && now.token === seen.token && now.expires_at === seen.expires_at) {
      await Deno.remove(path).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
    return true;
  } finally {
    await Deno.remove(breaker).catch(() => {});
  }
}

class FileLock implements HeldLock {
  readonly token: string;
  #path: string;
  #owner: LockOwner;
  #leaseMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lost = false;
  #released = false;

  constructor(path: string, owner: LockOwner, leaseMs: number) {
    this.#path = path;
    this.#owner = owner;
    this.token = owner.token;
    this.#leaseMs = leaseMs;
    this.#schedule();
  }

  get lost(): boolean {
    return this.#lost;
  }

  #schedule(): void {
    const timer = setTimeout(() => this.#refresh(), Math.max(1, Math.floor(this.#leaseMs / 3)));
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  async #refresh(): Promise<void> {
    this.#timer = undefined;
    if (this.#released || this.#lost) return;
    try {
      const now = await readOwner(this.#path);
      if (this.#released) return;
      if (!now || now.token !== this.token) {
        this.#lost = true;
        return;
      }
      const next = {
        ...this.#owner,
        expires_at: new Date(Date.now() + this.#leaseMs).toISOString(),
      };
      const tmp = `${this.#path}.${this.token}.${randomHex(4)}.tmp`;
      await Deno.writeTextFile(tmp, JSON.stringify(next));
      await Deno.rename(tmp, this.#path);
      this.#owner = next;
    } catch {
      // A transient failure: the next refresh tries again; the lease has slack.
    }
    if (!this.#released && !this.#lost) this.#schedule();
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#lost) return;
    const now = await readOwner(this.#path);
    if (now && now.token === this.token) {
      await Deno.remove(this.#path).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/**
 * Takes an exclusive lock held as a file containing JSON
 * `{host, pid, created_at, expires_at, token}`.
 *
 * The file is created atomically with its content (hard link of a written temp file, or an
 * `O_EXCL` create where links are not supported). While held, a timer (unref'd, so it never
 * keeps the process alive) refreshes the lease every `leaseMs / 3`. Waiters poll with
 * exponential backoff up to `timeoutMs`. A lock is stale, and is recovered, when its lease
 * expired (any host) or its pid is dead on this host; recovery is race-safe (a breaker file
 * taken with `O_EXCL`, then a re-check that the lock is still the one seen stale).
 * {@linkcode HeldLock.release} removes the file only if it still holds our token.
 *
 * @param path The lock file's path (its directory is created if missing).
 * @param options Timeout, lease, abort signal, and what the lock protects (for messages).
 * @returns The held lock.
 * @throws {LockedError} when another live holder keeps the lock past `timeoutMs`.
 * @throws {RangeError} when `timeoutMs` or `leaseMs` is invalid.
 *
 * @example Take and release a lock
 * ```ts
 * import { lockFile } from "./lock_file.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = await lockFile(`${dir}/a1.lock`, { timeoutMs: 0, what: "agent a1" });
 * try {
 *   // ... exclusive work ...
 * } finally {
 *   await lock.release();
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function lockFile(path: string, options: LockFileOptions = {}): Promise<HeldLock> {
  const { timeoutMs, leaseMs } = lockTimes(options);
  if (!(leaseMs > 0) || !Number.isFinite(leaseMs)) {
    throw new RangeError(`Cannot lock: leaseMs must be a positive number, got ${leaseMs}`);
  }
  const what = options.what ?? "the lock file";
  const signal = options.signal;
  const host = Deno.hostname();
  const token = `${Date.now().toString(36)}-${randomHex(8)}`;
  const start = Date.now();
  await Deno.mkdir(dirname(path), { recursive: true });
  let backoff = 25;
  let spins = 0;
  for (;;) {
    signal?.throwIfAborted();
    const now = Date.now();
    const owner: LockOwner = {
      host,
      pid: Deno.pid,
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + leaseMs).toISOString(),
      token,
    };
    if (await tryCreate(path, owner)) return new FileLock(path, owner, leaseMs);
    const current = await readOwner(path);
    if (current === undefined && spins++ < 20) continue; // released meanwhile: retry at once
    if (current && await isStale(current, host, Date.now())) {
      if (await breakStale(path, current) && spins++ < 20) continue;
    }
    const waited = Date.now() - start;
    if (waited >= timeoutMs) {
      throw lockedError(what, current);
    }
    spins = 0;
    await sleep(Math.min(backoff, timeoutMs - waited), signal);
    backoff = Math.min(backoff * 2, 1000);
  }
}
