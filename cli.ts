/**
 * The memsnap command line: `deno task memsnap <command> [flags]`.
 *
 * Thin: parses the command name, lazily imports its module from `cli/`, and has a single catch
 * that maps errors to exit codes (see `errors.ts`).
 *
 * @module
 */
import { main } from "./cli/main.ts";

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
