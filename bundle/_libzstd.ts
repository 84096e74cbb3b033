/**
 * The system libzstd through FFI (private), when it is available.
 *
 * Deno 2.9.6's built-in zstd (`node:zlib`) is about 1.5-2x slower per byte than the system
 * libzstd and runs only synchronously. The system library, opened with `Deno.dlopen`, compresses
 * and decompresses in `nonblocking` calls that run on native threads: several calls in flight use
 * several cores with no worker isolate, while the calling thread keeps working.
 *
 * {@linkcode libzstd} returns the bindings, or `undefined` (callers then use the built-in zstd)
 * when:
 * - the FFI permission is not granted (it is never requested: no prompt),
 * - `MEMSNAP_ZSTD=builtin` is set (forces the built-in path),
 * - no library opens: `MEMSNAP_LIBZSTD` (a file path) if set, else `libzstd.so.1`,
 *   `libzstd.so`, `libzstd.1.dylib` (the dynamic loader's search path).
 *
 * Frames from different libzstd builds may differ in bytes (they decode to the same data).
 *
 * Buffers passed to the asynchronous calls must not be detached, resized or written until the
 * returned promise settles; each context serves one call at a time.
 *
 * @module
 */
import { dlopenFirst, env, ffiGranted } from "./_env.ts";

/** `ZSTD_CONTENTSIZE_UNKNOWN`: the frame header does not record the content size. */
export const CONTENTSIZE_UNKNOWN = 0xffffffffffffffffn;
/** `ZSTD_CONTENTSIZE_ERROR`: not a valid zstd frame header (or too short to tell). */
export const CONTENTSIZE_ERROR = 0xfffffffffffffffen;

/** Compression parameter ids (`ZSTD_cParameter`), the same numbers as `node:zlib` `constants`. */
export const ZSTD_c = {
  compressionLevel: 100,
  windowLog: 101,
  contentSizeFlag: 200,
  checksumFlag: 201,
  dictIDFlag: 202,
  nbWorkers: 400,
} as const;

/** Decompression parameter ids (`ZSTD_dParameter`). */
export const ZSTD_d = {
  windowLogMax: 100,
} as const;

const SYMBOLS = {
  ZSTD_versionString: { parameters: [], result: "pointer" },
  ZSTD_isError: { parameters: ["usize"], result: "u32" },
  ZSTD_getErrorName: { parameters: ["usize"], result: "pointer" },
  ZSTD_compressBound: { parameters: ["usize"], result: "usize" },
  ZSTD_compress: {
    parameters: ["buffer", "usize", "buffer", "usize", "i32"],
    result: "usize",
    nonblocking: true,
  },
  ZSTD_createCCtx: { parameters: [], result: "pointer" },
  ZSTD_freeCCtx: { parameters: ["pointer"], result: "usize" },
  ZSTD_CCtx_setParameter: { parameters: ["pointer", "i32", "i32"], result: "usize" },
  ZSTD_compress2: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "usize",
    nonblocking: true,
  },
  ZSTD_getFrameContentSize: { parameters: ["buffer", "usize"], result: "u64" },
  ZSTD_findFrameCompressedSize: { parameters: ["buffer", "usize"], result: "usize" },
  ZSTD_decompress: {
    parameters: ["buffer", "usize", "buffer", "usize"],
    result: "usize",
    nonblocking: true,
  },
  ZSTD_createDCtx: { parameters: [], result: "pointer" },
  ZSTD_freeDCtx: { parameters: ["pointer"], result: "usize" },
  ZSTD_DCtx_setParameter: { parameters: ["pointer", "i32", "i32"], result: "usize" },
  ZSTD_decompressDCtx: {
    parameters: ["pointer", "buffer", "usize", "buffer", "usize"],
    result: "usize",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** An error reported by libzstd (the message holds `ZSTD_getErrorName`). */
export class LibZstdError extends Error {
  /** The raw `size_t` error code. */
  readonly code: bigint;
  constructor(what: string, name: string, code: bigint) {
    super(`${what}: ${name}`);
    this.name = "LibZstdError";
    this.code = code;
  }
}

/** A compression context with sticky parameters (one call at a time). */
export interface ZstdCCtx extends Disposable {
  /**
   * Compresses all of `src` into one complete frame written at the start of `dst` (sized at
   * least `compressBound(src.length)` to never fail for lack of room), with the context's
   * parameters (`ZSTD_compress2`, on a native thread). Resolves to the frame's length.
   */
  compress(src: Uint8Array, dst: Uint8Array): Promise<number>;
  /** Frees the context; pending calls must have settled. Idempotent. */
  free(): void;
}

/** A decompression context with sticky parameters (one call at a time). */
export interface ZstdDCtx extends Disposable {
  /**
   * Decompresses `src`, which must hold one or more complete frames and nothing else, into
   * `dst` (`ZSTD_decompressDCtx`, on a native thread). Resolves to the decompressed length;
   * rejects with {@linkcode LibZstdError} on corrupt input or when `dst` is too small.
   */
  decompress(src: Uint8Array, dst: Uint8Array): Promise<number>;
  /** Frees the context; pending calls must have settled. Idempotent. */
  free(): void;
}

/** Bindings to the system libzstd. */
export interface LibZstd {
  /** The file or name the library was opened from. */
  readonly path: string;
  /** `ZSTD_versionString()`, e.g. "1.5.4". */
  readonly version: string;
  /** `ZSTD_compressBound`: the largest frame `n` input bytes can give. */
  compressBound(n: number): number;
  /**
   * `ZSTD_compress` on a native thread: one frame with the level's defaults (content size
   * recorded, no checksum: not the payload's pinned parameters, see {@linkcode createCCtx}).
   * Resolves to the frame's length in `dst`.
   */
  compress(src: Uint8Array, dst: Uint8Array, level: number): Promise<number>;
  /** A compression context with the given `ZSTD_cParameter` values set. */
  createCCtx(params: Record<number, number>): ZstdCCtx;
  /**
   * `ZSTD_getFrameContentSize` of the frame at the start of `src`: the size, or
   * {@linkcode CONTENTSIZE_UNKNOWN} / {@linkcode CONTENTSIZE_ERROR}.
   */
  getFrameContentSize(src: Uint8Array): bigint;
  /**
   * `ZSTD_findFrameCompressedSize`: the length of the complete frame at the start of `src`.
   * @throws {LibZstdError} If `src` does not start with a complete, well-formed frame.
   */
  findFrameCompressedSize(src: Uint8Array): number;
  /**
   * `ZSTD_decompress` on a native thread (default limits: window up to 128 MiB; prefer a
   * {@linkcode createDCtx} context with `windowLogMax` for untrusted input).
   */
  decompress(src: Uint8Array, dst: Uint8Array): Promise<number>;
  /** A decompression context with the given `ZSTD_dParameter` values set. */
  createDCtx(params?: Record<number, number>): ZstdDCtx;
  /** `ZSTD_isError` of a raw `size_t` result. */
  isError(code: number | bigint): boolean;
  /** `ZSTD_getErrorName` of a raw `size_t` result. */
  getErrorName(code: number | bigint): string;
}

const CANDIDATES = ["libzstd.so.1", "libzstd.so", "libzstd.1.dylib"];

function big(v: number | bigint): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

function bind(path: string, dl: Deno.DynamicLibrary<typeof SYMBOLS>): LibZstd {
  const s: Lib = dl.symbols;
  const cstr = (p: Deno.PointerValue): string =>
    p === null ? "" : Deno.UnsafePointerView.getCString(p);
  const isError = (code: number | bigint): boolean => s.ZSTD_isError(big(code)) !== 0;
  const getErrorName = (code: number | bigint): string => cstr(s.ZSTD_getErrorName(big(code)));
  /** The result as a number, or throws the error it encodes. */
  const check = (what: string, r: number | bigint): number => {
    if (isError(r)) throw new LibZstdError(what, getErrorName(r), big(r));
    return Number(r);
  };
  const setParams = (
    what: string,
    ctx: Deno.PointerObject,
    set: (ctx: Deno.PointerObject, k: number, v: number) => number | bigint,
    params: Record<number, number>,
  ): void => {
    for (const [k, v] of Object.entries(params)) check(`${what} ${k}=${v}`, set(ctx, Number(k), v));
  };

  return {
    path,
    version: cstr(s.ZSTD_versionString()),
    compressBound: (n) => check("ZSTD_compressBound", s.ZSTD_compressBound(big(n))),
    compress: async (src, dst, level) =>
      check(
        "ZSTD_compress",
        await s.ZSTD_compress(dst, big(dst.length), src, big(src.length), level),
      ),
    createCCtx(params) {
      const ctx = s.ZSTD_createCCtx();
      if (ctx === null) throw new Error("ZSTD_createCCtx: out of memory");
      let live = true;
      try {
        setParams("ZSTD_CCtx_setParameter", ctx, s.ZSTD_CCtx_setParameter, params);
      } catch (e) {
        s.ZSTD_freeCCtx(ctx);
        throw e;
      }
      const free = () => {
        if (live) s.ZSTD_freeCCtx(ctx);
        live = false;
      };
      return {
        async compress(src, dst) {
          if (!live) throw new Error("ZSTD_compress2: the context was freed");
          return check(
            "ZSTD_compress2",
            await s.ZSTD_compress2(ctx, dst, big(dst.length), src, big(src.length)),
          );
        },
        free,
        [Symbol.dispose]: free,
      };
    },
    getFrameContentSize: (src) => big(s.ZSTD_getFrameContentSize(src, big(src.length))),
    findFrameCompressedSize: (src) =>
      check("ZSTD_findFrameCompressedSize", s.ZSTD_findFrameCompressedSize(src, big(src.length))),
    decompress: async (src, dst) =>
      check(
        "ZSTD_decompress",
        await s.ZSTD_decompress(dst, big(dst.length), src, big(src.length)),
      ),
    createDCtx(params = {}) {
      const ctx = s.ZSTD_createDCtx();
      if (ctx === null) throw new Error("ZSTD_createDCtx: out of memory");
      let live = true;
      try {
        setParams("ZSTD_DCtx_setParameter", ctx, s.ZSTD_DCtx_setParameter, params);
      } catch (e) {
        s.ZSTD_freeDCtx(ctx);
        throw e;
      }
      const free = () => {
        if (live) s.ZSTD_freeDCtx(ctx);
        live = false;
      };
      return {
        async decompress(src, dst) {
          if (!live) throw new Error("ZSTD_decompressDCtx: the context was freed");
          return check(
            "ZSTD_decompressDCtx",
            await s.ZSTD_decompressDCtx(ctx, dst, big(dst.length), src, big(src.length)),
          );
        },
        free,
        [Symbol.dispose]: free,
      };
    },
    isError,
    getErrorName,
  };
}

/** Options of {@linkcode openLibZstd}. */
export interface OpenLibZstdOptions {
  /** Library files or names to try in order. @default {MEMSNAP_LIBZSTD or the usual names} */
  paths?: string[];
}

/**
 * Opens the system libzstd (not cached: each call opens the library again; the handle stays
 * open for the life of the process). Returns `undefined` when FFI is not granted or no library
 * opens. Ignores `MEMSNAP_ZSTD`.
 */
export function openLibZstd(options: OpenLibZstdOptions = {}): LibZstd | undefined {
  if (!ffiGranted()) return undefined;
  const forced = env("MEMSNAP_LIBZSTD");
  // A library without these symbols (too old) does not load; one bind() rejects is closed.
  return dlopenFirst(options.paths ?? (forced ? [forced] : CANDIDATES), SYMBOLS, bind);
}

let cached: { lib: LibZstd | undefined } | undefined;

/**
 * The system libzstd, opened once per process, or `undefined` (use the built-in zstd): no FFI
 * permission, `MEMSNAP_ZSTD=builtin`, or no library found (see the module documentation).
 */
export function libzstd(): LibZstd | undefined {
  if (cached === undefined) {
    cached = { lib: env("MEMSNAP_ZSTD") === "builtin" ? undefined : openLibZstd() };
  }
  return cached.lib;
}
