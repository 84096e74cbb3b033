// Copyright memsnap authors. MIT license.
// Private: a small S3 client: SigV4 signing over fetch, the few calls the store needs.
import { createHash, createHmac } from "node:crypto";
import { MemsnapError, NotFoundError, UsageError } from "../errors.ts";

/** Connection settings. */
export interface S3Config {
  /** Endpoint URL (MinIO, R2, s3rver); path-style addressing is used when given. */
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  bucket: string;
}

/** One listed object. */
export interface S3Object {
  key: string;
  size: number;
  etag: string;
}

/** An S3 error response, parsed from its XML body. */
export class S3Error extends MemsnapError {
  override readonly code: string = "s3";
  /** HTTP status. */
  readonly status: number;
  /** S3 error code, e.g. `NoSuchKey`. */
  readonly s3Code: string;

  constructor(status: number, s3Code: string, message: string, hint?: string) {
    super(message, hint === undefined ? {} : { hint });
    this.status = status;
    this.s3Code = s3Code;
  }
}

const ENV_HINT = "Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN for " +
  "temporary credentials), AWS_REGION, and AWS_ENDPOINT_URL for MinIO, R2 or another " +
  "S3-compatible server.";

const hex = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");
const hmac = (key: Uint8Array | string, data: string) =>
  new Uint8Array(createHmac("sha256", key).update(data).digest());

/** RFC 3986 encoding, as SigV4 wants it. */
function enc(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function xmlText(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'").replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
    .replace(/&amp;/g, "&");
}

function tag(xml: string, name: string): string | undefined {
  const m = xml.match(new RegExp(`<${name}>([\\s\\S]*?)</${name}>`));
  return m?.[1] === undefined ? undefined : xmlText(m[1]);
}

/** What {@linkcode signV4} signs. */
export interface SignInput {
  method: string;
  /** The full URL; its path and query must already be in canonical (RFC 3986) encoding. */
  url: URL;
  /** Extra headers to sign and send (lowercase names). */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body (`x-amz-content-sha256`). */
  payloadHash: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  date: Date;
}

/**
 * Signs a request with AWS Signature Version 4 for S3: returns the headers to send (all
 * given headers plus `x-amz-date`, `x-amz-content-sha256` and `authorization`; `host` is
 * signed but left to fetch).
 */
export function signV4(i: SignInput): Record<string, string> {
  const amzDate = i.date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {
    ...i.headers,
    host: i.url.host,
    "x-amz-date": amzDate,
    "x-amz-content-sha256": i.payloadHash,
  };
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(headers[n]).trim()}\n`).join("");
  const signed = names.join(";");
  const query = i.url.search.replace(/^\?/, "");
  const canonical = [i.method, i.url.pathname, query, canonicalHeaders, signed, i.payloadHash]
    .join("\n");
  const scope = `${day}/${i.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(canonical)].join("\n");
  let k = hmac(`AWS4${i.secretAccessKey}`, day);
  k = hmac(k, i.region);
  k = hmac(k, "s3");
  k = hmac(k, "aws4_request");
  const signature = createHmac("sha256", k).update(toSign).digest("hex");
  const out: Record<string, string> = { ...headers };
  delete out.host;
  out.authorization = `AWS4-HMAC-SHA256 Credential=${i.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signed}, Signature=${signature}`;
  return out;
}

/** Request options. */
export interface S3RequestOptions {
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Statuses returned to the caller instead of thrown. */
  allow?: number[];
  signal?: AbortSignal;
}

/** The client. */
export class S3Client {
  readonly config: S3Config;
  /** Bytes of response bodies read through {@linkcode S3Client.countBody}. */
  bytesDownloaded = 0;
  /** Number of requests sent. */
  requests = 0;

  /** Keys per listing page. */
  readonly pageSize: number;

  constructor(pageSize: number, config: S3Config) {
    this.pageSize = pageSize;
    this.config = config;
  }

  #url(key: string): URL {
    const path = key.split("/").map(enc).join("/");
    const { endpoint, bucket, region } = this.config;
    if (endpoint) {
      const base = endpoint.replace(/\/+$/, "");
      return new URL(`${base}/${enc(bucket)}${key ? `/${path}` : ""}`);
    }
    return new URL(`https://${bucket}.s3.${region}.amazonaws.com/${path}`);
  }

  /** Sends a signed request; non-2xx statuses not in `allow` throw an {@linkcode S3Error}. */
  async request(method: string, key: string, o: S3RequestOptions = {}): Promise<Response> {
    const url = this.#url(key);
    const query = Object.entries(o.query ?? {}).sort(([a, va], [b, vb]) =>
      a < b ? -1 : a > b ? 1 : va < vb ? -1 : va > vb ? 1 : 0
    );
    const canonicalQuery = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&");
    if (canonicalQuery) url.search = canonicalQuery;
    const body = o.body ?? new Uint8Array();
    const headers: Record<string, string> = {};
    if (this.config.sessionToken) headers["x-amz-security-token"] = this.config.sessionToken;
    for (const [k, v] of Object.entries(o.headers ?? {})) headers[k.toLowerCase()] = v;
    const sendHeaders = signV4({
      method,
      url,
      headers,
      payloadHash: hex(body),
      region: this.config.region,
      accessKeyId: this.config.accessKeyId,
      secretAccessKey: this.config.secretAccessKey,
      date: new Date(),
    });
    this.requests++;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: sendHeaders,
        ...(o.body ? { body: o.body as Uint8Array<ArrayBuffer> } : {}),
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") throw e;
      throw new MemsnapError(
        `Cannot reach ${url.origin} for s3://${this.config.bucket}/${key}: ${(e as Error).message}`,
        { cause: e, hint: "Check AWS_ENDPOINT_URL and the network." },
      );
    }
    if (res.ok || o.allow?.includes(res.status)) return res;
    throw await this.#error(method, key, res);
  }

  async #error(method: string, key: string, res: Response): Promise<Error> {
    const text = method === "HEAD" ? "" : await res.text().catch(() => "");
    const code = tag(text, "Code") ?? (res.status === 404 ? "NotFound" : `HTTP${res.status}`);
    const detail = tag(text, "Message") ?? res.statusText;
    const where = `s3://${this.config.bucket}/${key}`;
    const msg = `Cannot ${method} ${where}: ${code}${
      detail ? `: ${detail}` : ""
    } (HTTP ${res.status})`;
    if (code === "NoSuchBucket") {
      return new NotFoundError(
        `Cannot use bucket ${this.config.bucket}: it does not exist (${detail})`,
        {
          hint:
            "Create the bucket, or check the store URL s3://bucket/prefix and AWS_ENDPOINT_URL.",
        },
      );
    }
    if (code === "NoSuchKey" || code === "NotFound") return new NotFoundError(msg);
    if (
      [
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AuthorizationHeaderMalformed",
      ].includes(code) ||
      res.status === 403
    ) {
      return new UsageError(msg, { hint: ENV_HINT });
    }
    return new S3Error(res.status, code, msg);
  }

  /** Counts the bytes of a response body as they are read. */
  countBody(res: Response): ReadableStream<Uint8Array> {
    const body = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, c) => {
          this.bytesDownloaded += chunk.length;
          c.enqueue(chunk);
        },
      }),
    );
  }

  /** PutObject; returns the status (200, or an allowed one like 412) and the ETag. */
  async put(
    key: string,
    body: Uint8Array,
    headers: Record<string, string> = {},
    allow: number[] = [],
  ): Promise<{ status: number; etag: string }> {
    const res = await this.request("PUT", key, { body, headers, allow });
    await res.body?.cancel();
    return { status: res.status, etag: res.headers.get("etag") ?? "" };
  }

  /** GetObject as a response (body streaming); `undefined` when missing. */
  async get(key: string, range?: [number, number]): Promise<Response | undefined> {
    const res = await this.request("GET", key, {
      ...(range ? { headers: { range: `bytes=${range[0]}-${range[1]}` } } : {}),
      allow: [404, 416],
    });
    if (res.status === 404) {
      await res.body?.cancel();
      return undefined;
    }
    return res;
  }

  /** HeadObject; `undefined` when missing. */
  async head(key: string): Promise<{ size: number; etag: string } | undefined> {
    const res = await this.request("HEAD", key, { allow: [404] });
    await res.body?.cancel();
    if (res.status === 404) return undefined;
    return {
      size: Number(res.headers.get("content-length") ?? 0),
      etag: res.headers.get("etag") ?? "",
    };
  }

  /** DeleteObject (missing is fine). */
  async delete(key: string, headers: Record<string, string> = {}): Promise<number> {
    const res = await this.request("DELETE", key, { headers, allow: [404, 412] });
    await res.body?.cancel();
    return res.status;
  }

  /** ListObjectsV2 over a prefix, following continuation tokens. */
  async *list(prefix: string, maxKeys: number = this.pageSize): AsyncGenerator<S3Object> {
    let token: string | undefined;
    do {
      const query: Record<string, string> = {
        "list-type": "2",
        prefix,
        "max-keys": String(maxKeys),
      };
      if (token) query["continuation-token"] = token;
      const res = await this.request("GET", "", { query });
      const xml = await res.text();
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const c = m[1] ?? "";
        yield {
          key: tag(c, "Key") ?? "",
          size: Number(tag(c, "Size") ?? 0),
          etag: tag(c, "ETag") ?? "",
        };
      }
      token = tag(xml, "IsTruncated") === "true" ? tag(xml, "NextContinuationToken") : undefined;
    } while (token);
  }

  /** CreateMultipartUpload; returns the upload id. */
  async createMultipart(key: string): Promise<string> {
    const res = await this.request("POST", key, { query: { uploads: "" } });
    const id = tag(await res.text(), "UploadId");
    if (!id) {
      throw new S3Error(res.status, "NoUploadId", `Cannot start upload of ${key}: no UploadId`);
    }
    return id;
  }

  /** UploadPart; returns the part's ETag. */
  async uploadPart(key: string, uploadId: string, part: number, body: Uint8Array): Promise<string> {
    const res = await this.request("PUT", key, {
      query: { partNumber: String(part), uploadId },
      body,
    });
    await res.body?.cancel();
    return res.headers.get("etag") ?? "";
  }

  /** CompleteMultipartUpload. Returns the status (200, or an allowed 412). */
  async completeMultipart(
    key: string,
    uploadId: string,
    etags: string[],
    headers: Record<string, string> = {},
  ): Promise<number> {
    const xml = `<CompleteMultipartUpload>${
      etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`)
        .join("")
    }</CompleteMultipartUpload>`;
    const res = await this.request("POST", key, {
      query: { uploadId },
      body: new TextEncoder().encode(xml),
      headers,
      allow: [412],
    });
    const text = await res.text();
    // S3 may answer 200 with an error document.
    if (res.status === 200 && text.includes("<Error>")) {
      throw new S3Error(
        200,
        tag(text, "Code") ?? "Error",
        `Cannot complete upload of ${key}: ${tag(text, "Message")}`,
      );
    }
    return res.status;
  }

  /** AbortMultipartUpload (best effort). */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const res = await this.request("DELETE", key, { query: { uploadId }, allow: [404] }).catch(
      () => undefined,
    );
    await res?.body?.cancel();
  }
}
