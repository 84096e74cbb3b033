/**
 * memsnap: atomic, verifiable snapshots of AI agent memory, and exact restores.
 *
 * The root module holds the {@linkcode createSnapshotter} that wires capture plugins
 * (`@memsnap/core/capture`), redaction (`@memsnap/core/redact`), the bundle format
 * (`@memsnap/core/bundle`) and a store (`@memsnap/core/store`) for one agent, and attaches to
 * a runtime's hooks (`@memsnap/core/hooks`).
 *
 * @example Snapshot and restore a memory directory
 * ```ts
 * import { createSnapshotter } from "@memsnap/core";
 * import { memdirPlugin } from "@memsnap/core/capture";
 * import { openStore } from "@memsnap/core/store";
 *
 * const root = await Deno.makeTempDir();
 * await Deno.mkdir(`${root}/memory`);
 * await Deno.writeTextFile(`${root}/memory/note.md`, "remember this");
 * const store = await openStore(`${root}/store`);
 * const snap = createSnapshotter({ store, agent: "a1", captures: [memdirPlugin({ dir: `${root}/memory` })] });
 * const { info } = await snap.snapshot();
 * await Deno.writeTextFile(`${root}/memory/note.md`, "changed");
 * await snap.restore(info.id);
 * console.log(await Deno.readTextFile(`${root}/memory/note.md`)); // "remember this"
 * await store.close();
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./progress.ts";
export * from "./version.ts";
export * from "./snapshotter.ts";
export * from "./diff.ts";
export * from "./redaction_key.ts";
