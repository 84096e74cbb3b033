/**
 * Deterministic ustar/pax header encoding (private). The writer emits only what is here:
 * ustar regular-file headers (typeflag `0`), preceded by a pax `x` header when the path is
 * longer than 100 bytes or not ASCII, or the size does not fit 11 octal digits.
 *
 * @module
 */

export const BLOCK = 512;
const enc = new TextEncoder();
/** Largest size an 11-digit octal field holds. */
export const MAX_USTAR_SIZE = 0o77777777777;

/** What one header describes. */
export interface HeaderFields {
  path: string;
  size: number;
  mode: number;
  mtime: number;
}

function putString(b: Uint8Array, off: number, len: number, s: Uint8Array): void {
  b.set(s.length > len ? s.subarray(0, len) : s, off);
}

function putOctal(b: Uint8Array, off: number, len: number, v: number): void {
  // len-1 octal digits, zero padded, then NUL; written from the right, digit by digit.
  if (!Number.isSafeInteger(v) || v < 0 || v >= 8 ** (len - 1)) {
    throw new RangeError(`Cannot write the tar header: ${v} overflows`);
  }
  b[off + len - 1] = 0;
  for (let i = off + len - 2; i >= off; i--) {
    b[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
}

/** The fields every header shares: uid, gid, magic and version, devmajor, devminor. */
const TEMPLATE = (() => {
  const b = new Uint8Array(BLOCK);
  putOctal(b, 108, 8, 0);
  putOctal(b, 116, 8, 0);
  b.set(enc.encode("ustar\x0000"), 257);
  putOctal(b, 329, 8, 0);
  putOctal(b, 337, 8, 0);
  return b;
})();

function ustar(fields: HeaderFields, name: Uint8Array, typeflag: string): Uint8Array {
  const b = TEMPLATE.slice();
  putString(b, 0, 100, name);
  putOctal(b, 100, 8, fields.mode);
  putOctal(b, 124, 12, fields.size > MAX_USTAR_SIZE ? 0 : fields.size);
  putOctal(b, 136, 12, fields.mtime);
  b[156] = typeflag.charCodeAt(0);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  putOctal(b, 148, 7, sum); // 6 digits, NUL
  b[155] = 0x20;
  return b;
}

/** Sum of the template's bytes with the checksum field as spaces and typeflag `0`. */
const TEMPLATE_SUM = TEMPLATE.reduce((n, c) => n + c, 0) + 8 * 0x20 + 0x30;

/** Like {@linkcode putOctal} (the value already checked), returning the sum of the bytes written. */
function putOctalSum(b: Uint8Array, off: number, len: number, v: number): number {
  let sum = 0;
  b[off + len - 1] = 0;
  if (v < 0x80000000) {
    // (integer arithmetic: most values fit 31 bits, and the division loop showed in profiles)
    for (let i = off + len - 2, x = v | 0; i >= off; i--, x >>>= 3) {
      const c = 0x30 + (x & 7);
      b[i] = c;
      sum += c;
    }
    return sum;
  }
  for (let i = off + len - 2; i >= off; i--) {
    const c = 0x30 + (v % 8);
    b[i] = c;
    sum += c;
    v = Math.floor(v / 8);
  }
  return sum;
}

/**
 * Writes the header block(s) of a regular file into `b` at `off` (room for them must be
 * there) and returns their length: the same bytes as {@linkcode encodeHeader}, without an
 * allocation when one ustar block is enough (an ASCII path of at most 100 bytes).
 */
export function encodeHeaderInto(b: Uint8Array, off: number, fields: HeaderFields): number {
  const { path, size, mode, mtime } = fields;
  if (
    size > MAX_USTAR_SIZE || path.length > 100 || !ASCII.test(path) ||
    !(Number.isSafeInteger(mode) && mode >= 0 && mode < 8 ** 7) ||
    !(Number.isSafeInteger(size) && size >= 0) ||
    !(Number.isSafeInteger(mtime) && mtime >= 0 && mtime < 8 ** 11)
  ) {
    const h = encodeHeader(fields);
    b.set(h, off);
    return h.length;
  }
  b.set(TEMPLATE, off);
  let sum = TEMPLATE_SUM;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    b[off + i] = c;
    sum += c;
  }
  sum += putOctalSum(b, off + 100, 8, mode);
  sum += putOctalSum(b, off + 124, 12, size);
  sum += putOctalSum(b, off + 136, 12, mtime);
  b[off + 156] = 0x30;
  putOctal(b, off + 148, 7, sum); // 6 digits, NUL
  b[off + 155] = 0x20;
  return BLOCK;
}

/** One pax record, `"<len> key=value\n"`, where len counts the whole record. */
export function paxRecord(key: string, value: string): Uint8Array {
  const body = enc.encode(` ${key}=${value}\n`);
  let len = body.length + 1;
  while (String(len).length + body.length > len) len++;
  len = String(len).length + body.length;
  const out = new Uint8Array(len);
  out.set(enc.encode(String(len)), 0);
  out.set(body, len - body.length);
  return out;
}

/** Bytes of padding after `size` bytes of entry data. */
export function padding(size: number): number {
  const r = size % BLOCK;
  return r === 0 ? 0 : BLOCK - r;
}

const ASCII = /^[\x20-\x7e]*$/;

/** Encodes the header block(s) of a regular file: `[pax x header + data +] ustar header`. */
export function encodeHeader(fields: HeaderFields): Uint8Array {
  const name = enc.encode(fields.path);
  const needPath = name.length > 100 || !ASCII.test(fields.path);
  const needSize = fields.size > MAX_USTAR_SIZE;
  if (!needPath && !needSize) return ustar(fields, name, "0");
  const records: Uint8Array[] = [];
  if (needPath) records.push(paxRecord("path", fields.path));
  if (needSize) records.push(paxRecord("size", String(fields.size)));
  const paxLen = records.reduce((n, r) => n + r.length, 0);
  const fallback = name.map((c) => (c < 0x20 || c > 0x7e ? 0x5f : c)).subarray(0, 100);
  const paxHeader = ustar(
    { path: "", size: paxLen, mode: 0o644, mtime: fields.mtime },
    enc.encode("PaxHeader"),
    "x",
  );
  const total = BLOCK + paxLen + padding(paxLen) + BLOCK;
  const out = new Uint8Array(total);
  out.set(paxHeader, 0);
  let off = BLOCK;
  for (const r of records) {
    out.set(r, off);
    off += r.length;
  }
  out.set(ustar(fields, fallback, "0"), total - BLOCK);
  return out;
}

/** Length of what {@linkcode encodeHeader} gives for this path and size (mode, mtime aside). */
export function headerLength(path: string, size: number): number {
  // An ASCII string has as many bytes as UTF-16 units.
  if (size <= MAX_USTAR_SIZE && path.length <= 100 && ASCII.test(path)) return BLOCK;
  return encodeHeader({ path, size, mode: 0o644, mtime: 0 }).length;
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE: Uint8Array = new Uint8Array(2 * BLOCK);
