/**
 * A map from git object ids to object ids (private), for the history rewrite.
 *
 * The ids are kept as 20 bytes in typed arrays (an open-addressing table), not as a `Map` of
 * 40-character strings: ~160 bytes per entry there (two strings and the table), 40-50 here. A
 * rewrite maps every object of the history, and most to themselves (unchanged objects), which
 * store no value at all. A 2 GiB memory's history has ~75,000 objects.
 *
 * @module
 */
import { hex } from "../bundle/_io.ts";
import { hexInto } from "./_git_objects.ts";

const ID = 20;
const SAME = -1;

/** Writes the 20 bytes of a 40-character lowercase hex id into `into`, or throws. */
function parseId(id: string, into: Uint8Array): void {
  if (!hexInto(id, into)) throw new TypeError(`Not a git object id: ${JSON.stringify(id)}`);
}

/** Old object id → new object id, by 20-byte ids; an id mapped to itself stores no value. */
export class OidMap implements Iterable<[string, string]> {
  /** Keys, `ID` bytes per slot. */
  #keys: Uint8Array;
  /** Per slot: 0 empty, {@linkcode SAME}, or 1 + the index of the value in `#values`. */
  #slots: Int32Array;
  /** Values that differ from their key, `ID` bytes each. */
  #values = new Uint8Array(ID * 64);
  #valueCount = 0;
  #size = 0;
  readonly #id = new Uint8Array(ID);
  readonly #to = new Uint8Array(ID);

  constructor() {
    this.#keys = new Uint8Array(ID * 1024);
    this.#slots = new Int32Array(1024);
  }

  /** Entries. */
  get size(): number {
    return this.#size;
  }

  /** The slot of the id in `#id`, or the empty slot where it would go. */
  #find(keys: Uint8Array, slots: Int32Array, id: Uint8Array): number {
    const mask = slots.length - 1;
    // Ids are hashes: their first bytes are uniform.
    let i = ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) & mask;
    for (;;) {
      if (slots[i] === 0) return i;
      const at = i * ID;
      let same = true;
      for (let k = 0; k < ID; k++) {
        if (keys[at + k] !== id[k]) {
          same = false;
          break;
        }
      }
      if (same) return i;
      i = (i + 1) & mask;
    }
  }

  /** The new id of `id`, or `undefined` if it has none. */
  get(id: string): string | undefined {
    parseId(id, this.#id);
    const s = this.#slots[this.#find(this.#keys, this.#slots, this.#id)]!;
    if (s === 0) return undefined;
    if (s === SAME) return id;
    return hex(this.#values.subarray((s - 1) * ID, s * ID));
  }

  /** Whether `id` has a new id. */
  has(id: string): boolean {
    parseId(id, this.#id);
    return this.#slots[this.#find(this.#keys, this.#slots, this.#id)] !== 0;
  }

  /** Maps `id` to `to` (replacing what it was mapped to). */
  set(id: string, to: string): this {
    // Both parsed before anything changes: a bad id leaves the map as it was.
    parseId(id, this.#id);
    if (to !== id) parseId(to, this.#to);
    let i = this.#find(this.#keys, this.#slots, this.#id);
    if (this.#slots[i] === 0) {
      if (2 * (this.#size + 1) > this.#slots.length) {
        this.#grow();
        i = this.#find(this.#keys, this.#slots, this.#id);
      }
      this.#keys.set(this.#id, i * ID);
      this.#size++;
    }
    if (to === id) {
      this.#slots[i] = SAME;
      return this;
    }
    const old = this.#slots[i]!;
    let v: number;
    if (old > 0) v = old - 1;
    else {
      v = this.#valueCount++;
      if (this.#valueCount * ID > this.#values.length) {
        const grown = new Uint8Array(this.#values.length * 2);
        grown.set(this.#values);
        this.#values = grown;
      }
    }
    this.#values.set(this.#to, v * ID);
    this.#slots[i] = v + 1;
    return this;
  }

  /** Doubles the table (kept at most half full). */
  #grow(): void {
    const keys = new Uint8Array(this.#keys.length * 2);
    const slots = new Int32Array(this.#slots.length * 2);
    const id = new Uint8Array(ID);
    for (let i = 0; i < this.#slots.length; i++) {
      const s = this.#slots[i]!;
      if (s === 0) continue;
      id.set(this.#keys.subarray(i * ID, i * ID + ID));
      const j = this.#find(keys, slots, id);
      keys.set(id, j * ID);
      slots[j] = s;
    }
    this.#keys = keys;
    this.#slots = slots;
  }

  /** Every `[id, new id]`, in the table's order. */
  *[Symbol.iterator](): Iterator<[string, string]> {
    for (let i = 0; i < this.#slots.length; i++) {
      const s = this.#slots[i]!;
      if (s === 0) continue;
      const key = hex(this.#keys.subarray(i * ID, i * ID + ID));
      yield [key, s === SAME ? key : hex(this.#values.subarray((s - 1) * ID, s * ID))];
    }
  }
}
