/**
 * Bech32 (BIP 173) encoding and strict decoding, as age uses it for keys.
 *
 * Unlike BIP 173, there is no 90-character limit (age's identities and recipients are
 * longer when plugins are involved). Decoding rejects mixed case, bad characters, a bad
 * checksum and non-zero or excess padding bits, so every string has one canonical form.
 *
 * Private to `bundle/`.
 *
 * @module
 */

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) {
      if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
    }
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

function convertBits(data: Uint8Array | number[], from: number, to: number, pad: boolean) {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxv = (1 << to) - 1;
  for (const value of data) {
    acc = (acc << from) | value;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv) !== 0) {
    return null;
  }
  return out;
}

/**
 * Encodes bytes as bech32. The case of `hrp` decides the case of the result.
 *
 * @param hrp The human-readable part, e.g. `"age"` or `"AGE-SECRET-KEY-"`.
 * @param data The bytes.
 * @returns The bech32 string.
 */
export function bech32Encode(hrp: string, data: Uint8Array): string {
  const upper = hrp.toUpperCase() === hrp && hrp.toLowerCase() !== hrp;
  const lowHrp = hrp.toLowerCase();
  const words = convertBits(data, 8, 5, true)!;
  const mod = polymod([...hrpExpand(lowHrp), ...words, 0, 0, 0, 0, 0, 0]) ^ 1;
  let s = lowHrp + "1";
  for (const w of words) s += CHARSET[w];
  for (let i = 0; i < 6; i++) s += CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return upper ? s.toUpperCase() : s;
}

/**
 * Decodes a bech32 string strictly.
 *
 * @param s The string.
 * @returns The human-readable part (in the string's case) and the bytes, or `null` when the
 *   string is not valid canonical bech32.
 */
export function bech32Decode(s: string): { hrp: string; data: Uint8Array } | null {
  if (s.toLowerCase() !== s && s.toUpperCase() !== s) return null;
  const pos = s.lastIndexOf("1");
  if (pos < 1 || pos + 7 > s.length) return null;
  const hrp = s.slice(0, pos);
  for (let i = 0; i < hrp.length; i++) {
    const c = hrp.charCodeAt(i);
    if (c < 33 || c > 126) return null;
  }
  const lower = s.toLowerCase();
  const words: number[] = [];
  for (let i = pos + 1; i < lower.length; i++) {
    const w = CHARSET.indexOf(lower[i]!);
    if (w === -1) return null;
    words.push(w);
  }
  if (polymod([...hrpExpand(hrp.toLowerCase()), ...words]) !== 1) return null;
  const bytes = convertBits(words.slice(0, -6), 5, 8, false);
  if (bytes === null) return null;
  return { hrp, data: new Uint8Array(bytes) };
}
