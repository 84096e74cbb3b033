import assert from "node:assert/strict";
import fc from "fast-check";
import { bech32Decode, bech32Encode } from "./_bech32.ts";

const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

Deno.test("bech32Decode() decodes an age recipient and bech32Encode() restores it", () => {
  const d = bech32Decode(RECIPIENT);
  assert.ok(d);
  assert.equal(d.hrp, "age");
  assert.equal(d.data.length, 32);
  assert.equal(bech32Encode("age", d.data), RECIPIENT);
});

Deno.test("bech32Decode() accepts BIP 173 test vectors", () => {
  for (
    const s of [
      "A12UEL5L",
      "a12uel5l",
      "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
      "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
    ]
  ) assert.ok(bech32Decode(s), s);
});

Deno.test("bech32Decode() rejects mixed case, bad checksum, bad characters", () => {
  assert.equal(bech32Decode(RECIPIENT.replace("q", "Q")), null);
  assert.equal(bech32Decode(RECIPIENT.slice(0, -1) + "q"), null);
  assert.equal(bech32Decode(RECIPIENT.replace("z", "b")), null);
  assert.equal(bech32Decode("1qqqqqq"), null);
  assert.equal(bech32Decode("age1"), null);
});

Deno.test("bech32Encode() round trips arbitrary bytes in both cases", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, upper) => {
    const hrp = upper ? "AGE-SECRET-KEY-" : "age";
    const s = bech32Encode(hrp, bytes);
    assert.equal(s, upper ? s.toUpperCase() : s.toLowerCase());
    const d = bech32Decode(s);
    assert.ok(d);
    assert.equal(d.hrp, hrp);
    assert.deepEqual(d.data, bytes);
  }));
});
