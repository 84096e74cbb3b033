/**
 * On-demand imports for the CLI.
 *
 * A literal `import("../x.ts")` is statically analyzable, and Deno then loads and parses the
 * whole module graph under `x.ts` when the importing module loads, even if the import never
 * runs (~10 ms for the capture plugins alone, ~20 ms for all commands). The CLI imports each
 * command, store kind, key format and redaction pack only when it is used, so it names them by
 * a computed URL instead, typed by an `import type` of the same path (type-only imports are not
 * loaded at run time). `cli/_lazy_test.ts` checks every call's path against its type import.
 * A standalone binary (`deno compile cli.ts`) needs `--include` for the modules named this way.
 *
 * @module
 */

/**
 * Imports a module of this package, by its path from the package root (e.g.
 * `"store/open_store.ts"`), when called. Pair it with `import type * as X from "../<path>"` and
 * call it as `lazy<typeof X>("<path>")`.
 */
export function lazy<T>(path: string): Promise<T> {
  return import(new URL(`../${path}`, import.meta.url).href);
}
