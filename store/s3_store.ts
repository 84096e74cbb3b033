// Copyright memsnap authors. MIT license.
/**
 * A store on S3-compatible object storage (AWS S3, Cloudflare R2, MinIO, ...).
 *
 * @module
 */
import { noopProgress, type ProgressReporter } from "../progress.ts";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { NotFoundError, RefusedError, UsageError } from "../errors.ts";
import type { Manifest } from "../bundle/types.ts";
import type {
  AuditFilter,
  AuditRecord,
  DeleteOptions,
  HeldLock,
  ListFilter,
  LockOptions,
  PendingBundle,
  SnapshotInfo,
  Store,
} from "./types.ts";
import { Catalog, type CatalogRow, rowOf } from "./_catalog.ts";
import { checkManifest, pendingBundle } from "./_pending.ts";
import { checkName, describeAgent, isName, randomHex } from "./_names.ts";
import { readManifestStream } from "./_read_manifest.ts";
import { matchesAudit, resolveIn } from "./_resolve.ts";
import { S3Client } from "./_s3_client.ts";
import { lockObject } from "./_s3_lock.ts";

/** Options of {@linkcode S3Store.open}; each falls back to the usual AWS environment. */
export interface S3StoreOptions {
  /** Endpoint URL; default `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`; none means AWS. */
  endpoint?: string;
  /** Region; default `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`. */
  region?: string;
  /** Access key id; default `AWS_ACCESS_KEY_ID`. */
  accessKeyId?: string;
  /** Secret access key; default `AWS_SECRET_ACCESS_KEY`. */
  secretAccessKey?: string;
  /** Session token; default `AWS_SESSION_TOKEN`. */
  sessionToken?: string;
  /**
   * Multipart part size in bytes (bundles larger than this are uploaded in parts, one part
   * in memory at a time). S3 requires at least 5 MiB except for the last part.
   *
   * @default {8388608}
   */
  partSize?: number;
  /** Receives `upload` progress (bytes sent) while a bundle is uploaded. */
  progress?: ProgressReporter;
  /**
   * Directory for the local cache catalog, pending files and state dirs; default
   * `$XDG_STATE_HOME/memsnap/<hash of url>` or `~/.local/state/memsnap/<hash of url>`.
   */
  stateRoot?: string;
  /**
   * Whether the server honours conditional PUTs (`If-None-Match: *`, `If-Match`); probed
   * once when not given.
   */
  conditionalWrites?: boolean;
  /**
   * Keys per ListObjectsV2 page.
   *
   * @default {1000}
   */
  listPageSize?: number;
  /** Environment to read instead of `Deno.env` (tests). */
  env?: Record<string, string | undefined>;
}

const MANIFEST_FIRST_CHUNK = 16 * 1024;
const MANIFEST_READS_IN_FLIGHT = 8;

/** Parses `s3://bucket/prefix`. */
function parseUrl(url: string): { bucket: string; prefix: string } {
  const m = url.match(/^s3:\/\/([^/]+)\/?(.*)$/);
  if (!m || !m[1]) {
    throw new UsageError(`Cannot open store ${url}: expected s3://bucket/prefix`);
  }
  const prefix = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
  if (prefix.split("/").some((s) => s === "." || s === "..")) {
    throw new UsageError(`Cannot open store ${url}: the prefix may not contain . or ..`);
  }
  return { bucket: m[1], prefix };
}

/**
 * A store on S3-compatible object storage at `s3://bucket/prefix`.
 *
 * - Bundles: `<prefix>/<tenant>/<agent>/<id>.msnap`, written once (conditional
 *   `If-None-Match: *` where supported), by one PUT or a multipart upload streamed from the
 *   local pending file part by part.
 * - Pins: empty marker objects `<id>.pin` beside the bundle.
 * - Catalog: the bundles' manifests are the truth. A local SQLite cache catalog (in the
 *   state root) is reconciled on every list with one ListObjectsV2 pass (1 request per 1000
 *   objects); a manifest is fetched (a ranged GET of the first tar entry) only for bundles
 *   the cache has not seen.
 * - Audit log: one object per record, `<prefix>/audit/<time>-<host>-<pid>-<random>.json`.
 * - Locks: `<prefix>/<tenant>/<agent>/.lock` with a lease; conditional writes make creation
 *   and stale takeover exclusive; without them the lock is best effort (see docs/STORE.md).
 *
 * @example Open with the environment's credentials
 * ```ts ignore
 * import { S3Store } from "./s3_store.ts";
 * // AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (MinIO/R2)
 * const store = await S3Store.open("s3://my-bucket/memsnap");
 * console.log(await store.list({ agent: "a1" }));
 * await store.close();
 * ```
 */
export class S3Store implements Store, AsyncDisposable {
  /** The store location as given. */
  readonly url: string;
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix (no leading or trailing slash; may be empty). */
  readonly prefix: string;
  /** The local directory for the cache catalog, pending files and state dirs. */
  readonly stateRoot: string;
  #client: S3Client;
  #catalog: Catalog;
  #partSize: number;
  #conditional: boolean | undefined;
  #progress: ProgressReporter = noopProgress;

  private constructor(
    url: string,
    client: S3Client,
    prefix: string,
    stateRoot: string,
    catalog: Catalog,
    partSize: number,
    conditional: boolean | undefined,
  ) {
    this.url = url;
    this.bucket = client.config.bucket;
    this.prefix = prefix;
    this.stateRoot = stateRoot;
    this.#client = client;
    this.#catalog = catalog;
    this.#partSize = partSize;
    this.#conditional = conditional;
  }

  /**
   * Opens `s3://bucket/prefix`, checking credentials and that the bucket exists.
   *
   * @param url The store URL.
   * @param options Connection settings (default: the AWS environment variables).
   * @returns The store.
   * @throws {UsageError} when the URL is malformed or credentials are missing or refused.
   * @throws {NotFoundError} when the bucket does not exist.
   */
  static async open(url: string, options: S3StoreOptions = {}): Promise<S3Store> {
    const { bucket, prefix } = parseUrl(url);
    const env = (name: string): string | undefined =>
      options.env ? options.env[name] : Deno.env.get(name);
    const accessKeyId = options.accessKeyId ?? env("AWS_ACCESS_KEY_ID");
    const secretAccessKey = options.secretAccessKey ?? env("AWS_SECRET_ACCESS_KEY");
    if (!accessKeyId || !secretAccessKey) {
      throw new UsageError(`Cannot open store ${url}: no S3 credentials`, {
        hint: "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for " +
          "temporary credentials); for MinIO or Cloudflare R2 also AWS_ENDPOINT_URL and AWS_REGION.",
      });
    }
    const endpoint = options.endpoint ?? env("AWS_ENDPOINT_URL_S3") ?? env("AWS_ENDPOINT_URL");
    const sessionToken = options.sessionToken ?? env("AWS_SESSION_TOKEN");
    const client = new S3Client(options.listPageSize ?? 1000, {
      bucket,
      region: options.region ?? env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? "us-east-1",
      accessKeyId,
      secretAccessKey,
      ...(endpoint ? { endpoint } : {}),
      ...(sessionToken ? { sessionToken } : {}),
    });
    const partSize = options.partSize ?? 8 * 1024 * 1024;
    if (!(partSize >= 1)) {
      throw new RangeError(`Cannot open store ${url}: bad partSize ${partSize}`);
    }
    // Checks credentials and bucket in one cheap request.
    for await (const _ of client.list(prefix ? `${prefix}/` : "", 1)) break;
    const hash = createHash("sha256").update(`s3://${bucket}/${prefix}`).update(endpoint ?? "")
      .digest("hex").slice(0, 16);
    const home = env("HOME") ?? ".";
    const stateRoot = options.stateRoot ??
      join(env("XDG_STATE_HOME") || join(home, ".local", "state"), "memsnap", hash);
    await Deno.mkdir(join(stateRoot, "tmp"), { recursive: true });
    const catalog = new Catalog(join(stateRoot, "catalog.sqlite"));
    const store = new S3Store(
      url,
      client,
      prefix,
      stateRoot,
      catalog,
      partSize,
      options.conditionalWrites,
    );
    if (options.progress) store.#progress = options.progress;
    return store;
  }

  /** Bytes of object bodies downloaded by reads through this store (diagnostics, tests). */
  get bytesDownloaded(): number {
    return this.#client.bytesDownloaded;
  }

  #key(rel: string): string {
    return this.prefix ? `${this.prefix}/${rel}` : rel;
  }

  #rel(tenant: string, agentId: string, id: string): string {
    return `${tenant}/${agentId}/${id}.msnap`;
  }

  #info(row: CatalogRow): SnapshotInfo {
    return {
      id: row.id,
      parent: row.parent,
      agent_id: row.agent_id,
      tenant: row.tenant,
      created_at: row.created_at,
      created_by: row.created_by,
      label: row.label,
      size: row.size,
      path: `s3://${this.bucket}/${this.#key(row.rel)}`,
      encrypted: row.encrypted === 1,
      redacted: row.redacted === 1,
      pinned: row.pinned === 1,
    };
  }

  /**
   * Whether the server honours conditional PUTs, probed once per store with the small
   * object `<prefix>/.conditional-probe` (kept, so later probes answer in one request):
   * `PUT If-None-Match: *` answering `412` when the object exists means yes.
   *
   * @returns `true` when conditional writes are honoured.
   */
  async conditionalWrites(): Promise<boolean> {
    if (this.#conditional !== undefined) return this.#conditional;
    const key = this.#key(".conditional-probe");
    const body = new TextEncoder().encode("memsnap probe of If-None-Match support\n");
    const once = async () =>
      (await this.#client.put(key, body, { "if-none-match": "*" }, [400, 409, 412, 501])).status;
    const a = await once();
    this.#conditional = a === 412 || (a === 200 && (await once()) === 412);
    return this.#conditional;
  }

  /** Reads the manifest through lazily fetched ranges (16 KiB, then doubling). */
  #readManifestKey(key: string): Promise<Manifest> {
    let offset = 0;
    let chunk = MANIFEST_FIRST_CHUNK;
    let ended = false;
    const client = this.#client;
    const source = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (ended) return c.close();
        const res = await client.get(key, [offset, offset + chunk - 1]);
        if (!res) {
          c.error(new NotFoundError(`Cannot read s3://${client.config.bucket}/${key}: gone`));
          return;
        }
        if (res.status === 416) {
          await res.body?.cancel();
          return c.close();
        }
        const bytes = new Uint8Array(await new Response(client.countBody(res)).arrayBuffer());
        if (res.status === 200 && offset > 0) {
          c.enqueue(bytes.subarray(offset)); // server ignored Range
          ended = true;
          return;
        }
        if (res.status === 200) ended = true;
        if (bytes.length < chunk) ended = true;
        offset += bytes.length;
        chunk *= 2;
        c.enqueue(bytes);
      },
    });
    return readManifestStream(source);
  }

  /** Reconciles the cache catalog with one listing of the bucket prefix. */
  async #sync(): Promise<void> {
    const base = this.prefix ? `${this.prefix}/` : "";
    const bundles = new Map<string, number>();
    const pins = new Set<string>();
    for await (const o of this.#client.list(base)) {
      const rel = o.key.slice(base.length);
      const parts = rel.split("/");
      if (parts.length !== 3 || !isName(parts[0]!) || !isName(parts[1]!)) continue;
      if (rel.endsWith(".msnap")) bundles.set(rel, o.size);
      else if (rel.endsWith(".pin")) pins.add(rel.slice(0, -".pin".length) + ".msnap");
    }
    const known = new Map(this.#catalog.all().map((r) => [r.rel, r]));
    const gone = [...known.values()].filter((r) => !bundles.has(r.rel)).map((r) => r.id);
    if (gone.length) this.#catalog.delete(gone);
    const upserts: CatalogRow[] = [];
    const pinChanges: { id: string; pinned: boolean }[] = [];
    const toRead: [string, number, boolean][] = [];
    for (const [rel, size] of bundles) {
      const row = known.get(rel);
      const pinned = pins.has(rel);
      if (row && row.size === size) {
        if ((row.pinned === 1) !== pinned) pinChanges.push({ id: row.id, pinned });
      } else toRead.push([rel, size, pinned]);
    }
    // New bundles: read their manifests, a few ranged GETs at a time.
    let next = 0;
    const worker = async () => {
      while (next < toRead.length) {
        const [rel, size, pinned] = toRead[next++]!;
        const [tenant, agent, file] = rel.split("/") as [string, string, string];
        let manifest: Manifest;
        try {
          manifest = await this.#readManifestKey(this.#key(rel));
        } catch {
          continue; // unreadable: not listed (verify reports it)
        }
        if (
          manifest.tenant !== tenant || manifest.agent_id !== agent ||
          `${manifest.snapshot_id}.msnap` !== file
        ) continue;
        upserts.push(rowOf(manifest, size, rel, pinned));
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(MANIFEST_READS_IN_FLIGHT, toRead.length) }, worker),
    );
    if (upserts.length) this.#catalog.upsertMany(upserts);
    for (const p of pinChanges) this.#catalog.setPinned(p.id, p.pinned);
  }

  /**
   * Lists snapshots, oldest first (one listing pass, then the cache catalog).
   *
   * @param filter Filters; all given must match.
   * @returns The snapshots.
   */
  async list(filter: ListFilter = {}): Promise<SnapshotInfo[]> {
    await this.#sync();
    return this.#catalog.query(filter).map((r) => this.#info(r));
  }

  /**
   * Resolves a full id, a unique prefix, or `latest` (within the filter).
   *
   * @param id The id, prefix or `latest`.
   * @param filter Filters the candidates.
   * @returns The snapshot.
   * @throws {NotFoundError} when nothing or more than one snapshot matches.
   */
  async resolve(id: string, filter: ListFilter = {}): Promise<SnapshotInfo> {
    await this.#sync();
    return resolveIn(id, filter, (q) => this.#catalog.query(q).map((r) => this.#info(r)));
  }

  async #row(id: string): Promise<CatalogRow> {
    let row = this.#catalog.get(id);
    if (!row) {
      await this.#sync();
      row = this.#catalog.get(id);
    }
    if (!row) {
      throw new NotFoundError(`Cannot find snapshot ${id}: not in store ${this.url}`, {
        hint: "Run `memsnap list` to see the snapshots.",
      });
    }
    return row;
  }

  /**
   * Reads only the manifest: ranged GETs of the first tar entry, never the payload.
   *
   * @param id The exact snapshot id.
   * @returns The manifest.
   * @throws {NotFoundError} when no snapshot has that id.
   */
  async readManifest(id: string): Promise<Manifest> {
    return await this.#readManifestKey(this.#key((await this.#row(id)).rel));
  }

  /**
   * Opens a bundle as a byte stream (one streaming GET).
   *
   * @param id The exact snapshot id.
   * @returns The stream.
   * @throws {NotFoundError} when no snapshot has that id.
   */
  async open(id: string): Promise<ReadableStream<Uint8Array>> {
    const row = await this.#row(id);
    const res = await this.#client.get(this.#key(row.rel));
    if (!res) {
      this.#catalog.delete([id]);
      throw new NotFoundError(`Cannot open snapshot ${id}: its object is gone from ${this.url}`);
    }
    return this.#client.countBody(res);
  }

  /**
   * Always `undefined`: bundles are remote.
   *
   * @param _id The snapshot id.
   * @returns `undefined`.
   */
  localPath(_id: string): string | undefined {
    return undefined;
  }

  /** Uploads a local file to a key, refusing to overwrite. */
  async #upload(file: string, key: string, id: string): Promise<number> {
    const size = (await Deno.stat(file)).size;
    const conditional = await this.conditionalWrites();
    const refuse = () =>
      new RefusedError(`Cannot add snapshot ${id}: it is already in store ${this.url}`);
    if (await this.#client.head(key)) throw refuse();
    const cond: Record<string, string> = conditional ? { "if-none-match": "*" } : {};
    const item = key.slice(key.lastIndexOf("/") + 1);
    if (size <= this.#partSize) {
      const r = await this.#client.put(key, await Deno.readFile(file), cond, [412]);
      if (r.status === 412) throw refuse();
      this.#progress.progress({ phase: "upload", done: size, total: size, item });
      return size;
    }
    const f = await Deno.open(file, { read: true });
    const uploadId = await this.#client.createMultipart(key);
    try {
      const etags: string[] = [];
      let sent = 0;
      const buf = new Uint8Array(this.#partSize);
      for (let part = 1;; part++) {
        let n = 0;
        while (n < buf.length) {
          const r = await f.read(buf.subarray(n));
          if (r === null) break;
          n += r;
        }
        if (n === 0) break;
        etags.push(await this.#client.uploadPart(key, uploadId, part, buf.slice(0, n)));
        sent += n;
        this.#progress.progress({ phase: "upload", done: sent, total: size, item });
        if (n < buf.length) break;
      }
      const status = await this.#client.completeMultipart(key, uploadId, etags, cond);
      if (status === 412) throw refuse();
      return size;
    } catch (e) {
      await this.#client.abortMultipart(key, uploadId);
      throw e;
    } finally {
      f.close();
    }
  }

  async #store(file: string, manifest: Manifest): Promise<SnapshotInfo> {
    const rel = this.#rel(manifest.tenant, manifest.agent_id, manifest.snapshot_id);
    const existing = this.#catalog.get(manifest.snapshot_id);
    if (existing && existing.rel !== rel) {
      throw new RefusedError(
        `Cannot add snapshot ${manifest.snapshot_id}: it is already in store ${this.url}`,
      );
    }
    const size = await this.#upload(file, this.#key(rel), manifest.snapshot_id);
    const row = rowOf(manifest, size, rel, false);
    this.#catalog.upsertMany([row]);
    return this.#info(row);
  }

  /**
   * Starts writing a bundle: a local pending file in the state root, uploaded on commit.
   *
   * @param tenant The tenant.
   * @param agentId The agent id.
   * @param snapshotId The new snapshot's id.
   * @returns The pending bundle.
   * @throws {UsageError} when a name is not a safe key segment.
   */
  async create(tenant: string, agentId: string, snapshotId: string): Promise<PendingBundle> {
    checkName("tenant", tenant);
    checkName("agent id", agentId);
    checkName("snapshot id", snapshotId);
    const path = join(this.stateRoot, "tmp", `${snapshotId}.${randomHex()}.partial`);
    return await pendingBundle(path, tenant, agentId, snapshotId, (p, m) => this.#store(p, m));
  }

  /**
   * Uploads an existing bundle (already verified by the caller).
   *
   * @param path The bundle file.
   * @param manifest Its manifest.
   * @returns The stored snapshot.
   * @throws {RefusedError} when the snapshot id is already in the store.
   */
  importFile(path: string, manifest: Manifest): Promise<SnapshotInfo> {
    checkManifest(manifest);
    return this.#store(path, manifest);
  }

  /**
   * Deletes a snapshot: the bundle object, its pin marker, then the cache row.
   *
   * @param id The exact snapshot id.
   * @param options `force` deletes even a pinned or the agent's last snapshot.
   * @throws {NotFoundError} when no snapshot has that id.
   * @throws {RefusedError} when pinned or the agent's last, without `force`.
   */
  async delete(id: string, options: DeleteOptions = {}): Promise<void> {
    await this.#sync();
    const row = await this.#row(id);
    if (!options.force) {
      if (row.pinned) {
        throw new RefusedError(`Cannot delete snapshot ${id}: it is pinned`, {
          hint: "Unpin it first, or force.",
        });
      }
      if (this.#catalog.count(row.tenant, row.agent_id) <= 1) {
        throw new RefusedError(
          `Cannot delete snapshot ${id}: it is the last snapshot of ${
            describeAgent(row.tenant, row.agent_id)
          }`,
          { hint: "Force to delete it anyway." },
        );
      }
    }
    await this.#client.delete(this.#key(row.rel));
    await this.#client.delete(this.#key(`${row.rel.slice(0, -".msnap".length)}.pin`));
    this.#catalog.delete([id]);
  }

  /**
   * Pins or unpins a snapshot (an empty marker object `<id>.pin`).
   *
   * @param id The exact snapshot id.
   * @param pinned Pin or unpin.
   * @throws {NotFoundError} when no snapshot has that id.
   */
  async pin(id: string, pinned: boolean): Promise<void> {
    const row = await this.#row(id);
    const key = this.#key(`${row.rel.slice(0, -".msnap".length)}.pin`);
    if (pinned) await this.#client.put(key, new Uint8Array());
    else await this.#client.delete(key);
    this.#catalog.setPinned(id, pinned);
  }

  /**
   * Takes the lock of one agent: the object `<prefix>/<tenant>/<agent>/.lock`.
   *
   * @param tenant The tenant.
   * @param agentId The agent id.
   * @param options Timeout (default 60 000 ms, `0` fails at once), lease, abort signal.
   * @returns The held lock.
   * @throws {LockedError} when another live holder keeps it past the timeout.
   */
  async lock(tenant: string, agentId: string, options: LockOptions = {}): Promise<HeldLock> {
    checkName("tenant", tenant);
    checkName("agent id", agentId);
    return await lockObject(this.#client, this.#key(`${tenant}/${agentId}/.lock`), {
      ...options,
      what: describeAgent(tenant, agentId),
      conditional: await this.conditionalWrites(),
    });
  }

  /**
   * A local state directory for the agent: `<stateRoot>/<tenant>/<agent>` (created).
   *
   * @param tenant The tenant.
   * @param agentId The agent id.
   * @returns The directory.
   */
  async stateDir(tenant: string, agentId: string): Promise<string> {
    checkName("tenant", tenant);
    checkName("agent id", agentId);
    const dir = join(this.stateRoot, tenant, agentId);
    await Deno.mkdir(dir, { recursive: true });
    return dir;
  }

  /**
   * Writes one audit record as its own object (S3 has no append).
   *
   * @param record The record.
   */
  async audit(record: AuditRecord): Promise<void> {
    const stamp = record.at.replace(/[-:.]/g, "");
    const host = record.host.replace(/[^A-Za-z0-9._-]/g, "_");
    const key = this.#key(`audit/${stamp}-${host}-${record.pid}-${randomHex(4)}.json`);
    await this.#client.put(key, new TextEncoder().encode(JSON.stringify(record)), {
      "content-type": "application/json",
    });
  }

  /**
   * Reads the audit records, oldest first.
   *
   * @param filter Filters; all given must match.
   * @returns The records.
   */
  async auditLog(filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    for await (const o of this.#client.list(this.#key("audit/"))) {
      if (!o.key.endsWith(".json")) continue;
      const res = await this.#client.get(o.key);
      if (!res) continue;
      try {
        const r = JSON.parse(await res.text()) as AuditRecord;
        if (matchesAudit(r, filter)) out.push(r);
      } catch {
        // skip a malformed record
      }
    }
    return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /**
   * Rebuilds the cache catalog from the bundles' manifests (ranged reads).
   *
   * @returns How many bundles were indexed.
   */
  async reindex(): Promise<number> {
    this.#catalog.delete(this.#catalog.all().map((r) => r.id));
    await this.#sync();
    for await (const e of Deno.readDir(join(this.stateRoot, "tmp"))) {
      const p = join(this.stateRoot, "tmp", e.name);
      const st = await Deno.stat(p).catch(() => undefined);
      if (
        e.name.endsWith(".partial") && st && Date.now() - (st.mtime?.getTime() ?? 0) > 3_600_000
      ) {
        await Deno.remove(p).catch(() => {});
      }
    }
    return this.#catalog.all().length;
  }

  /** Closes the cache catalog. */
  close(): Promise<void> {
    this.#catalog.close();
    return Promise.resolve();
  }

  /** Closes the store (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
