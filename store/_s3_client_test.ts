import { signV4 } from "./_s3_client.ts";
import { assertEquals } from "../tests/store_assert.ts";

// The worked examples of AWS's "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk" (S3 API reference).
const creds = {
  region: "us-east-1",
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
  date: new Date("2013-05-24T00:00:00Z"),
};
const EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const sig = (h: Record<string, string>) => h.authorization?.match(/Signature=([0-9a-f]+)/)?.[1];

Deno.test("signV4() matches AWS's GET object example", () => {
  const h = signV4({
    ...creds,
    method: "GET",
    url: new URL("https://examplebucket.s3.amazonaws.com/test.txt"),
    headers: { range: "bytes=0-9" },
    payloadHash: EMPTY,
  });
  assertEquals(sig(h), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  assertEquals(
    h.authorization?.split(", ")[1],
    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date",
  );
});

Deno.test("signV4() matches AWS's PUT object example", () => {
  const h = signV4({
    ...creds,
    method: "PUT",
    url: new URL("https://examplebucket.s3.amazonaws.com/test%24file.text"),
    headers: { date: "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY" },
    payloadHash: "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
  });
  assertEquals(sig(h), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
});

Deno.test("signV4() matches AWS's GET bucket lifecycle and list objects examples", () => {
  const lifecycle = signV4({
    ...creds,
    method: "GET",
    url: new URL("https://examplebucket.s3.amazonaws.com/?lifecycle="),
    headers: {},
    payloadHash: EMPTY,
  });
  assertEquals(sig(lifecycle), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  const list = signV4({
    ...creds,
    method: "GET",
    url: new URL("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J"),
    headers: {},
    payloadHash: EMPTY,
  });
  assertEquals(sig(list), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
});
