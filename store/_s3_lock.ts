// Copyright memsnap authors. MIT license.
// Private: a lock object with a lease on S3 (conditional writes where the server has them).
import type { HeldLock, LockOptions, LockOwner } from "./types.ts";
import type { S3Client } from "./_s3_client.ts";
import { randomHex } from "./_names.ts";
import { isStale, lockedError, lockTimes, sleep } from "./_lock_owner.ts";

interface Current {
  owner: LockOwner;
  etag: string;
}

async function read(client: S3Client, key: string): Promise<Current | undefined> {
  const res = await client.get(key);
  if (!res) return undefined;
  const text = await res.text();
  try {
    const owner = JSON.parse(text) as LockOwner;
    return { owner, etag: res.headers.get("etag") ?? "" };
  } catch {
    return undefined;
  }
}

/** Options of {@linkcode lockObject}. */
export interface LockObjectOptions extends LockOptions {
  what: string;
  /** The server honours `If-None-Match: *` and `If-Match` on PUT. */
  conditional: boolean;
}

const BEST_EFFORT_SETTLE_MS = 200;

class S3Lock implements HeldLock {
  readonly token: string;
  #client: S3Client;
  #key: string;
  #owner: LockOwner;
  #etag: string;
  #leaseMs: number;
  #conditional: boolean;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #lost = false;
  #released = false;

  constructor(
    client: S3Client,
    key: string,
    owner: LockOwner,
    etag: string,
    leaseMs: number,
    conditional: boolean,
  ) {
    this.#client = client;
    this.#key = key;
    this.#owner = owner;
    this.token = owner.token;
    this.#etag = etag;
    this.#leaseMs = leaseMs;
    this.#conditional = conditional;
    this.#schedule();
  }

  get lost(): boolean {
    return this.#lost;
  }

  #schedule(): void {
    const t = setTimeout(() => this.#refresh(), Math.max(1, Math.floor(this.#leaseMs / 3)));
    Deno.unrefTimer(t);
    this.#timer = t;
  }

  async #refresh(): Promise<void> {
    this.#timer = undefined;
    if (this.#released || this.#lost) return;
    try {
      const cur = await read(this.#client, this.#key);
      if (this.#released) return;
      if (!cur || cur.owner.token !== this.token) {
        this.#lost = true;
        return;
      }
      const next = {
        ...this.#owner,
        expires_at: new Date(Date.now() + this.#leaseMs).toISOString(),
      };
      const r = await this.#client.put(
        this.#key,
        new TextEncoder().encode(JSON.stringify(next)),
        this.#conditional ? { "if-match": cur.etag } : {},
        [409, 412],
      );
      if (r.status === 412) this.#lost = true;
      else if (r.status === 200) {
        this.#owner = next;
        this.#etag = r.etag;
      }
    } catch {
      // transient: retried at the next refresh
    }
    if (!this.#released && !this.#lost) this.#schedule();
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#lost) return;
    const cur = await read(this.#client, this.#key);
    if (cur && cur.owner.token === this.token) {
      await this.#client.delete(this.#key, this.#conditional ? { "if-match": cur.etag } : {});
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/**
 * Takes a lock object. With conditional writes, creation is `PUT If-None-Match: *` and a
 * stale takeover is `PUT If-Match: <stale etag>`, so exactly one contender wins. Without,
 * it is best effort: HEAD, PUT, wait, read back and compare tokens.
 */
export async function lockObject(
  client: S3Client,
  key: string,
  options: LockObjectOptions,
): Promise<HeldLock> {
  const { timeoutMs, leaseMs } = lockTimes(options);
  const { signal, conditional, what } = options;
  const host = Deno.hostname();
  const token = `${Date.now().toString(36)}-${randomHex(8)}`;
  const start = Date.now();
  let backoff = 50;
  let spins = 0;
  const owned = (owner: LockOwner, etag: string) =>
    new S3Lock(client, key, owner, etag, leaseMs, conditional);
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
    const body = new TextEncoder().encode(JSON.stringify(owner));
    const bestEffort = async (): Promise<HeldLock | undefined> => {
      const r = await client.put(key, body);
      await sleep(BEST_EFFORT_SETTLE_MS, signal);
      const back = await read(client, key);
      return back?.owner.token === token ? owned(owner, back.etag || r.etag) : undefined;
    };
    if (conditional) {
      const r = await client.put(key, body, { "if-none-match": "*" }, [409, 412]);
      if (r.status === 200) return owned(owner, r.etag);
    } else if (!(await client.head(key))) {
      const l = await bestEffort();
      if (l) return l;
    }
    const current = await read(client, key);
    if (current === undefined && spins++ < 20) continue;
    if (current && await isStale(current.owner, host, Date.now())) {
      if (conditional) {
        const r = await client.put(key, body, { "if-match": current.etag }, [409, 412]);
        if (r.status === 200) return owned(owner, r.etag);
      } else {
        const l = await bestEffort();
        if (l) return l;
      }
      if (spins++ < 20) continue;
    }
    const waited = Date.now() - start;
    if (waited >= timeoutMs) throw lockedError(what, current?.owner);
    spins = 0;
    await sleep(Math.min(backoff, timeoutMs - waited), signal);
    backoff = Math.min(backoff * 2, 2000);
  }
}
