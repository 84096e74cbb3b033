/**
 * s3rver, a real S3-protocol server, on loopback for tests.
 *
 * @module
 */
import S3rver from "s3rver";
import crypto_ from "node:crypto";
import { Buffer } from "node:buffer";

// s3rver makes ListObjectsV2 continuation tokens with DES, which Deno's node:crypto lacks:
// give it an identity "cipher" so paginated listings work against the test server.
const nodeCrypto = crypto_ as unknown as Record<string, unknown>;
for (const name of ["createCipheriv", "createDecipheriv"]) {
  const orig = nodeCrypto[name] as (...a: unknown[]) => unknown;
  nodeCrypto[name] = (alg: string, ...rest: unknown[]) =>
    alg === "des"
      ? {
        update: (d: string | Uint8Array, e?: BufferEncoding) =>
          typeof d === "string" ? Buffer.from(d, e) : Buffer.from(d),
        final: () => Buffer.alloc(0),
      }
      : orig(alg, ...rest);
}

/** A running s3rver. */
export interface TestS3 {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 (a free port) storing into `dir`, with the given buckets. */
export async function startS3rver(dir: string, buckets: string[]): Promise<TestS3> {
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory: dir,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  const { port } = await server.run() as unknown as { port: number };
  return { endpoint: `http://127.0.0.1:${port}`, close: () => server.close() };
}
