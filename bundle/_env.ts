/**
 * Permission-aware lookups (private) for the FFI bindings (`_libzstd.ts`, `_libcrypto.ts`) and
 * the environment switches of `bundle/`: none ever prompts for a permission.
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

/**
 * Opens the first of `paths` that loads with `symbols` and that `use` accepts (returns a value
 * for); a library `use` rejects (returns `undefined` or throws) is closed. `undefined` when none.
 */
export function dlopenFirst<S extends Deno.ForeignLibraryInterface, T>(
  paths: string[],
  symbols: S,
  use: (path: string, dl: Deno.DynamicLibrary<S>) => T | undefined,
): T | undefined {
  for (const path of paths) {
    let dl: Deno.DynamicLibrary<S>;
    try {
      dl = Deno.dlopen(path, symbols);
    } catch {
      continue; // not found, or a library without these symbols
    }
    try {
      const v = use(path, dl);
      if (v !== undefined) return v;
    } catch {
      // rejected below
    }
    dl.close();
  }
  return undefined;
}
