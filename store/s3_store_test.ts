import { startS3rver } from "../tests/_s3rver.ts";
import { S3Store, type S3StoreOptions } from "./s3_store.ts";
import { S3Client, type S3Config } from "./_s3_client.ts";
import { openStore } from "./open_store.ts";
import { prune } from "./prune.ts";
import { put, storeContract } from "../tests/store_contract.ts";
import { assert, assertEquals, assertRejects } from "../tests/store_assert.ts";
import { bundleBytes, manifest } from "../tests/store_fixtures.ts";
import { LockedError, NotFoundError, RefusedError, UsageError } from "../errors.ts";
import type { Store } from "./types.ts";

// One in-process s3rver on loopback for the whole file; the last test closes it.
const dir = await Deno.makeTempDir({ prefix: "memsnap-s3rver-" });
const server = await startS3rver(dir, ["test"]);
const endpoint = server.endpoint;
const creds: S3StoreOptions = {
  endpoint,
  region: "us-east-1",
  accessKeyId: "S3RVER",
  secretAccessKey: "S3RVER",
  env: {},
};

// A loopback proxy in front of s3rver that honours conditional writes (If-None-Match: *,
// If-Match on PUT, CompleteMultipartUpload and DELETE) as AWS S3 and R2 do, one request at a
// time, so the conditional code paths run in tests. s3rver alone ignores these headers.
let queue: Promise<unknown> = Promise.resolve();
const serial = <T>(fn: () => Promise<T>): Promise<T> => {
  const next = queue.then(fn, fn);
  queue = next.catch(() => {});
  return next;
};
const proxy = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen() {} },
  (req) =>
    serial(async () => {
      const u = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete("host");
      const inm = headers.get("if-none-match");
      const im = headers.get("if-match");
      headers.delete("if-none-match");
      headers.delete("if-match");
      const body = req.body ? new Uint8Array(await req.arrayBuffer()) : undefined;
      const conditional = (req.method === "PUT" && !u.searchParams.has("partNumber")) ||
        (req.method === "POST" && u.searchParams.has("uploadId")) ||
        (req.method === "DELETE" && !u.searchParams.has("uploadId"));
      if (conditional && (inm || im)) {
        const head = await fetch(`${endpoint}${u.pathname}`, { method: "HEAD", headers });
        await head.body?.cancel();
        const etag = head.headers.get("etag");
        if ((inm === "*" && head.ok) || (im && (!head.ok || etag !== im))) {
          return new Response(
            "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions " +
              "you specified did not hold</Message></Error>",
            { status: 412 },
          );
        }
      }
      const res = await fetch(`${endpoint}${u.pathname}${u.search}`, {
        method: req.method,
        headers,
        ...(body && body.length ? { body } : {}),
      });
      const out = req.method === "HEAD" ? null : new Uint8Array(await res.arrayBuffer());
      const h = new Headers(res.headers);
      h.delete("content-length");
      h.delete("transfer-encoding");
      if (req.method === "HEAD" || [204, 205, 304].includes(res.status)) {
        return new Response(null, { status: res.status, headers: res.headers });
      }
      return new Response(out, { status: res.status, headers: h });
    }),
);
const proxyEndpoint = `http://127.0.0.1:${proxy.addr.port}`;

async function fresh(
  extra: S3StoreOptions = {},
  probe = false,
): Promise<S3Store & AsyncDisposable> {
  const stateRoot = await Deno.makeTempDir({ prefix: "memsnap-s3state-" });
  // s3rver ignores conditional headers: say so instead of probing (the probe is tested below).
  const store = await S3Store.open(`s3://test/p-${crypto.randomUUID().slice(0, 8)}`, {
    ...creds,
    stateRoot,
    ...(probe ? {} : { conditionalWrites: false }),
    ...extra,
  });
  return Object.assign(store, {
    async [Symbol.asyncDispose]() {
      await store.close();
      await Deno.remove(stateRoot, { recursive: true });
    },
  });
}

storeContract("S3Store", fresh as () => Promise<Store & AsyncDisposable>, { sanitize: false });

const opts = { sanitizeOps: false, sanitizeResources: false };

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  }
  return out;
}

Deno.test({
  name: "S3Store.readManifest() fetches only the manifest range, never the payload",
  ...opts,
  fn: async () => {
    await using s = await fresh();
    const m = manifest({});
    const payload = crypto.getRandomValues(new Uint8Array(60_000)); // random: incompressible
    const big = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i += payload.length) {
      big.set(payload.subarray(0, Math.min(payload.length, big.length - i)), i);
    }
    await put(s, m, big);
    const before = s.bytesDownloaded;
    assertEquals(await s.readManifest(m.snapshot_id), m);
    const fetched = s.bytesDownloaded - before;
    const total = bundleBytes(m, big).length;
    console.log(`manifest read fetched ${fetched} of ${total} bytes`);
    assert(fetched <= 16 * 1024, `fetched ${fetched} bytes`);
    // A fresh cache (another machine) lists by reading manifests only.
    await using s2 = await S3Store.open(s.url, { ...creds, stateRoot: await Deno.makeTempDir() });
    const b0 = s2.bytesDownloaded;
    assertEquals((await s2.list()).map((x) => x.id), [m.snapshot_id]);
    assert(s2.bytesDownloaded - b0 <= 16 * 1024);
  },
});

Deno.test({
  name: "S3Store.readManifest() widens its range for a manifest larger than the first chunk",
  ...opts,
  fn: async () => {
    await using s = await fresh();
    const m = manifest({});
    m.artifacts = Array.from({ length: 500 }, (_, i) => ({
      path: `memdir/notes/${String(i).padStart(4, "0")}.md`,
      kind: "file",
      size: i,
      sha256: "ab".repeat(32),
    }));
    const manifestBytes = new TextEncoder().encode(JSON.stringify(m)).length;
    assert(manifestBytes > 16 * 1024);
    await put(s, m, randomBytes(1024 * 1024));
    const before = s.bytesDownloaded;
    assertEquals((await s.readManifest(m.snapshot_id)).artifacts.length, 500);
    const fetched = s.bytesDownloaded - before;
    assert(fetched >= manifestBytes && fetched < 4 * manifestBytes, `fetched ${fetched}`);
  },
});

Deno.test({
  name: "S3Store uploads a bundle larger than the part size as a multipart upload",
  ...opts,
  fn: async () => {
    await using s = await fresh({ partSize: 64 * 1024 });
    const m = manifest({});
    const payload = randomBytes(300_000);
    let parts = 0;
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      if (String(input).includes("partNumber=")) parts++;
      return realFetch(input, init);
    };
    try {
      await put(s, m, payload);
    } finally {
      globalThis.fetch = realFetch;
    }
    const bytes = new Uint8Array(await new Response(await s.open(m.snapshot_id)).arrayBuffer());
    assertEquals(bytes, bundleBytes(m, payload));
    assertEquals((await s.list())[0]?.size, bundleBytes(m, payload).length);
    assertEquals(parts, Math.ceil(bundleBytes(m, payload).length / (64 * 1024)));
  },
});

Deno.test({
  name: "S3Store prune() removes objects; list agrees across two caches (paginated listing)",
  ...opts,
  fn: async () => {
    await using s = await fresh({ listPageSize: 2 });
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    for (let i = 0; i < 5; i++) await put(s, manifest({ at: new Date(t0 + i * 86_400_000) }));
    const all = await s.list();
    await s.pin(all[0]!.id, true);
    const r = await prune(s, { keepLast: 1 }, { now: new Date(t0 + 30 * 86_400_000) });
    assertEquals(r.removed.map((x) => x.id), all.slice(1, 4).map((x) => x.id));
    await using other = await S3Store.open(s.url, {
      ...creds,
      listPageSize: 3,
      stateRoot: await Deno.makeTempDir(),
    });
    const ids = (await other.list()).map((x) => [x.id, x.pinned]);
    assertEquals(ids, [[all[0]!.id, true], [all[4]!.id, false]]);
    assertEquals((await other.auditLog({ action: "prune" })).length, 3);
  },
});

Deno.test({
  name: "S3Store lock: a held lock refuses with LockedError, an expired lease is recovered",
  ...opts,
  fn: async () => {
    await using s = await fresh();
    const l = await s.lock("default", "a1", { timeoutMs: 0, leaseMs: 60_000 });
    await assertRejects(
      () => s.lock("default", "a1", { timeoutMs: 0 }),
      LockedError,
      `held by pid ${Deno.pid}`,
    );
    await l.release();
    // A lock object left by a host that died: its lease has expired.
    const client = new S3Client(1000, { ...creds, bucket: "test" } as S3Config);
    const key = `${s.prefix}/default/a1/.lock`;
    const stale = {
      host: "gone-host",
      pid: 42,
      created_at: "2020-01-01T00:00:00.000Z",
      expires_at: "2020-01-01T00:02:00.000Z",
      token: "old",
    };
    await client.put(key, new TextEncoder().encode(JSON.stringify(stale)));
    const l2 = await s.lock("default", "a1", { timeoutMs: 0 });
    await l2.release();
    // A live lease of another host is respected.
    await client.put(
      key,
      new TextEncoder().encode(
        JSON.stringify({ ...stale, expires_at: new Date(Date.now() + 60_000).toISOString() }),
      ),
    );
    await assertRejects(() => s.lock("default", "a1", { timeoutMs: 0 }), LockedError, "gone-host");
    await using probe = await fresh({}, true);
    assertEquals(await probe.conditionalWrites(), false);
  },
});

Deno.test({
  name: "S3Store.open() reports missing credentials and a missing bucket clearly",
  ...opts,
  fn: async () => {
    const e = await assertRejects(
      () => openStore("s3://test/x", { env: {} }),
      UsageError,
      "no S3 credentials",
    );
    assert(String((e as UsageError).hint).includes("AWS_ACCESS_KEY_ID"));
    await assertRejects(
      () => S3Store.open("s3://no-such-bucket/x", { ...creds, stateRoot: dir }),
      NotFoundError,
      "does not exist",
    );
    const bad = await assertRejects(
      () => S3Store.open("s3://test/x", { ...creds, accessKeyId: "WRONG", stateRoot: dir }),
      UsageError,
      "InvalidAccessKeyId",
    );
    assert(String((bad as UsageError).hint).includes("AWS_SECRET_ACCESS_KEY"));
  },
});

Deno.test({
  name: "S3Store with conditional writes: probe, duplicate commit refused, lock is exclusive",
  ...opts,
  fn: async () => {
    await using a = await fresh({ endpoint: proxyEndpoint }, true);
    assertEquals(await a.conditionalWrites(), true);
    const prefix = a.url.slice("s3://test/".length);
    const stores = await Promise.all(
      [0, 1, 2].map(async () =>
        await S3Store.open(a.url, {
          ...creds,
          endpoint: proxyEndpoint,
          stateRoot: await Deno.makeTempDir(),
        })
      ),
    );
    try {
      // The same id committed from two "hosts": one wins, the other is refused.
      const m = manifest({});
      const results = await Promise.allSettled(stores.slice(0, 2).map((s) => put(s, m)));
      assertEquals(results.filter((r) => r.status === "fulfilled").length, 1);
      const failed = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
      assert(failed.reason instanceof RefusedError, String(failed.reason));
      // Three "hosts" race a stale lock, then take turns: a shared counter sees every turn.
      const client = new S3Client(
        1000,
        { ...creds, endpoint: proxyEndpoint, bucket: "test" } as S3Config,
      );
      const lockKey = `${prefix}/default/a1/.lock`;
      await client.put(
        lockKey,
        new TextEncoder().encode(JSON.stringify({
          host: "gone",
          pid: 1,
          created_at: "2020-01-01T00:00:00.000Z",
          expires_at: "2020-01-01T00:00:01.000Z",
          token: "stale",
        })),
      );
      const counterKey = `${prefix}/counter`;
      await client.put(counterKey, new TextEncoder().encode("0"));
      const ROUNDS = 4;
      await Promise.all(stores.map(async (s) => {
        for (let i = 0; i < ROUNDS; i++) {
          const l = await s.lock("default", "a1", { timeoutMs: 60_000 });
          const n = Number(await (await client.get(counterKey))!.text());
          await new Promise((r) => setTimeout(r, 5));
          await client.put(counterKey, new TextEncoder().encode(String(n + 1)));
          await l.release();
        }
      }));
      assertEquals(Number(await (await client.get(counterKey))!.text()), 3 * ROUNDS);
      // A refresh of a lock taken over is detected (lost).
      const held = await stores[0]!.lock("default", "a2", { timeoutMs: 0, leaseMs: 90 });
      await client.put(
        `${prefix}/default/a2/.lock`,
        new TextEncoder().encode(JSON.stringify({
          host: "other",
          pid: 7,
          created_at: new Date().toISOString(),
          expires_at: new Date(Date.now() + 60_000).toISOString(),
          token: "theirs",
        })),
      );
      for (let i = 0; i < 40 && !held.lost; i++) await new Promise((r) => setTimeout(r, 25));
      assert(held.lost, "lock marked lost");
      await held.release();
      assert((await client.get(`${prefix}/default/a2/.lock`)) !== undefined, "their lock kept");
    } finally {
      for (const s of stores) {
        await s.close();
        await Deno.remove(s.stateRoot, { recursive: true });
      }
    }
  },
});

Deno.test({
  name: "S3Store teardown: close s3rver",
  ...opts,
  fn: async () => {
    await proxy.shutdown();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  },
});
