/**
 * Permission-aware lookups shared by the FFI bindings (`_libzstd.ts`, `_libcrypto.ts`): neither
 * ever prompts for a permission.
 *
 * @module
 */

/** An environment variable, or `undefined` when it is unset or reading it is not granted. */
export function env(name: string): string | undefined {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") {
      return undefined;
    }
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** Whether the FFI permission is granted (without asking for it). */
export function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}
