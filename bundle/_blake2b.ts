/**
 * BLAKE2b (RFC 7693) with a variable output length, unkeyed.
 *
 * `node:crypto` only offers BLAKE2b-512, and BLAKE2b-256 is not a truncation of it (the output
 * length is part of the parameter block). minisign checksums secret keys with BLAKE2b-256.
 * This implementation uses BigInt and is meant for short inputs (keys, checksums).
 *
 * Private to `bundle/`.
 *
 * @module
 */

const MASK = 0xffffffffffffffffn;
const IV = [
  0x6a09e667f3bcc908n,
  0xbb67ae8584caa73bn,
  0x3c6ef372fe94f82bn,
  0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n,
  0x9b05688c2b3e6c1fn,
  0x1f83d9abfb41bd6bn,
  0x5be0cd19137e2179n,
];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

function rotr(x: bigint, n: bigint): bigint {
  return ((x >> n) | (x << (64n - n))) & MASK;
}

function compress(h: bigint[], block: Uint8Array, t: bigint, last: boolean): void {
  const m: bigint[] = new Array(16);
  const dv = new DataView(block.buffer, block.byteOffset, 128);
  for (let i = 0; i < 16; i++) m[i] = dv.getBigUint64(i * 8, true);
  const v = [...h, ...IV];
  v[12] = v[12]! ^ (t & MASK);
  v[13] = v[13]! ^ (t >> 64n);
  if (last) v[14] = v[14]! ^ MASK;
  const g = (a: number, b: number, c: number, d: number, x: bigint, y: bigint) => {
    v[a] = (v[a]! + v[b]! + x) & MASK;
    v[d] = rotr(v[d]! ^ v[a]!, 32n);
    v[c] = (v[c]! + v[d]!) & MASK;
    v[b] = rotr(v[b]! ^ v[c]!, 24n);
    v[a] = (v[a]! + v[b]! + y) & MASK;
    v[d] = rotr(v[d]! ^ v[a]!, 16n);
    v[c] = (v[c]! + v[d]!) & MASK;
    v[b] = rotr(v[b]! ^ v[c]!, 63n);
  };
  for (let r = 0; r < 12; r++) {
    const s = SIGMA[r % 10]!;
    g(0, 4, 8, 12, m[s[0]!]!, m[s[1]!]!);
    g(1, 5, 9, 13, m[s[2]!]!, m[s[3]!]!);
    g(2, 6, 10, 14, m[s[4]!]!, m[s[5]!]!);
    g(3, 7, 11, 15, m[s[6]!]!, m[s[7]!]!);
    g(0, 5, 10, 15, m[s[8]!]!, m[s[9]!]!);
    g(1, 6, 11, 12, m[s[10]!]!, m[s[11]!]!);
    g(2, 7, 8, 13, m[s[12]!]!, m[s[13]!]!);
    g(3, 4, 9, 14, m[s[14]!]!, m[s[15]!]!);
  }
  for (let i = 0; i < 8; i++) h[i] = h[i]! ^ v[i]! ^ v[i + 8]!;
}

/**
 * Hashes the concatenation of `parts` with unkeyed BLAKE2b.
 *
 * @param outLength Output length in bytes, 1 to 64.
 * @param parts The message, as one or more byte arrays.
 * @returns The digest.
 * @throws {RangeError} If `outLength` is out of range.
 */
export function blake2b(outLength: number, ...parts: Uint8Array[]): Uint8Array {
  if (!Number.isInteger(outLength) || outLength < 1 || outLength > 64) {
    throw new RangeError(`Cannot hash with BLAKE2b: output length ${outLength} is not 1..64`);
  }
  let total = 0;
  for (const p of parts) total += p.length;
  const msg = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    msg.set(p, o);
    o += p.length;
  }
  const h = [...IV];
  h[0] = h[0]! ^ BigInt(0x01010000 ^ outLength);
  const block = new Uint8Array(128);
  let off = 0;
  while (msg.length - off > 128) {
    block.set(msg.subarray(off, off + 128));
    off += 128;
    compress(h, block, BigInt(off), false);
  }
  block.fill(0);
  block.set(msg.subarray(off));
  compress(h, block, BigInt(msg.length), true);
  const out = new Uint8Array(64);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) dv.setBigUint64(i * 8, h[i]!, true);
  return out.slice(0, outLength);
}
