// Copyright memsnap authors. MIT license.
// Private: what local and S3 locks share: staleness and the LockedError message.
import { LockedError } from "../errors.ts";
import type { LockOwner } from "./types.ts";

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_LEASE_MS = 120_000;

/**
 * Whether a process with this id is alive on this host. `EPERM` (it exists but belongs to
 * another user) counts as alive. `node:process` (the only way to send signal 0) is loaded
 * here, when a lock is found held: loading it costs every command ~10 ms at start-up.
 */
export async function pidAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const { default: process } = await import("node:process");
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code !== "ESRCH";
  }
}

/** Stale: the lease expired (any host), or the pid is dead on this host. */
export async function isStale(owner: LockOwner, host: string, now: number): Promise<boolean> {
  if (Date.parse(owner.expires_at) < now) return true;
  return owner.host === host && owner.pid !== Deno.pid && owner.pid > 0 &&
    !(await pidAlive(owner.pid));
}

/** The error for a lock held past the timeout. */
export function lockedError(what: string, current: LockOwner | undefined): LockedError {
  const who = current
    ? `held by pid ${current.pid} on host ${current.host} since ${current.created_at}`
    : "held by another process";
  return new LockedError(`Cannot lock ${what}: ${who}`, {
    hint: current
      ? `Wait for it to finish; if that process is gone, the lock is recovered when its ` +
        `lease ends (${current.expires_at}), or at once from the same host.`
      : "Try again.",
  });
}

/** Checks lock options. */
export function lockTimes(options: { timeoutMs?: number; leaseMs?: number }): {
  timeoutMs: number;
  leaseMs: number;
} {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  if (!(timeoutMs >= 0)) {
    throw new RangeError(`Cannot lock: timeoutMs must be >= 0, got ${timeoutMs}`);
  }
  if (!(leaseMs > 0) || !Number.isFinite(leaseMs)) {
    throw new RangeError(`Cannot lock: leaseMs must be a positive number, got ${leaseMs}`);
  }
  return { timeoutMs, leaseMs };
}

/** Sleeps, rejecting with the signal's reason when aborted. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(id);
      reject(signal?.reason);
    };
    const id = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
