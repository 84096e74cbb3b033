/**
 * libcrypto's EVP message digest functions, as FFI symbols (private): one definition for the
 * modules that call them (`_digest.ts`, and `_worker_digest.ts`, which must not import
 * `node:crypto` and so not `_digest.ts`).
 *
 * @module
 */

/** `EVP_MD_CTX_*`, `EVP_sha256`, `EVP_sha1` and `EVP_Digest{Init_ex,Update,Final_ex}`. */
export const EVP_DIGEST_SYMBOLS = {
  EVP_MD_CTX_new: { parameters: [], result: "pointer" },
  EVP_MD_CTX_free: { parameters: ["pointer"], result: "void" },
  EVP_sha256: { parameters: [], result: "pointer" },
  EVP_sha1: { parameters: [], result: "pointer" },
  EVP_DigestInit_ex: { parameters: ["pointer", "pointer", "pointer"], result: "i32" },
  EVP_DigestUpdate: { parameters: ["pointer", "buffer", "usize"], result: "i32" },
  EVP_DigestFinal_ex: { parameters: ["pointer", "buffer", "pointer"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;
