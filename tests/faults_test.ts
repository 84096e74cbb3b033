/**
 * Resource faults through the CLI: a disk that fills up during a snapshot (the store on a
 * small tmpfs), during a restore's staging (the memory on a small tmpfs), and during the
 * pre-restore safety snapshot. Required outcomes: no partial bundle listed or left behind,
 * live memory untouched, one clear error line (no stack) and the right exit code.
 *
 * The small filesystems are tmpfs mounts, which need root (`mount -t tmpfs`). Locally the
 * tests are skipped with the reason when mounting is impossible; in CI
 * (`MEMSNAP_REQUIRE_INTEROP=1`, root) they must run, so a missing capability fails.
 * Faults of the swap itself (a failing rename, a crash mid-swap) are injected through
 * `swapFs` in tests/snapshotter_test.ts and _swap_test.ts.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { assertCleanError, fixture, listTree, memsnap, sourceFlags } from "./_reliability.ts";
import { dream, fingerprint, generateSampleMemory } from "../examples/sample_memory.ts";

function tryMount(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  const dir = Deno.makeTempDirSync({ prefix: "memsnap-mountcheck-" });
  try {
    const r = new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).outputSync();
    if (!r.success) {
      return `cannot mount a tmpfs (${new TextDecoder().decode(r.stderr).trim() || "not root"})`;
    }
    new Deno.Command("umount", { args: [dir] }).outputSync();
    return undefined;
  } catch (e) {
    return `cannot run mount: ${(e as Error).message}`;
  } finally {
    try {
      Deno.removeSync(dir);
    } catch {
      // still mounted or gone
    }
  }
}

const noMount = tryMount();
const required = Deno.env.get("MEMSNAP_REQUIRE_INTEROP") === "1";
if (noMount) {
  console.log(`faults_test: disk-full tests skipped: ${noMount}`);
}

/** Registers a test needing a small filesystem: skipped locally without one, failing in CI. */
function diskTest(name: string, fn: () => Promise<void>): void {
  if (noMount && required) {
    Deno.test(`faults: ${name}`, () => {
      throw new Error(`Cannot run the disk-full test: ${noMount}`);
    });
    return;
  }
  Deno.test({ name: `faults: ${name}`, ignore: noMount !== undefined, fn });
}

/** Mounts a tmpfs of `bytes` on a new dir; returns it and an unmount function. */
async function tmpfs(parent: string, name: string, bytes: number): Promise<string> {
  const dir = join(parent, name);
  await Deno.mkdir(dir);
  const r = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${Math.ceil(bytes / 4096) * 4}k`, "tmpfs", dir],
    stderr: "piped",
  }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  return dir;
}

async function unmount(dir: string): Promise<void> {
  const r = await new Deno.Command("umount", { args: [dir], stderr: "null" }).output();
  if (!r.success) await new Deno.Command("umount", { args: ["-l", dir], stderr: "null" }).output();
}

/** Free bytes on the filesystem of `dir` (`df`). */
async function avail(dir: string): Promise<number> {
  const r = await new Deno.Command("df", { args: ["-B1", "--output=avail", dir], stdout: "piped" })
    .output();
  return Number(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1));
}

/** Fills the filesystem of `dir` with a filler file until `leave` bytes are free. */
async function fill(dir: string, leave: number): Promise<void> {
  const n = (await avail(dir)) - leave;
  assert(n >= 0, `the disk has less than ${leave} bytes free`);
  await Deno.writeFile(join(dir, `filler-${crypto.randomUUID()}`), new Uint8Array(n));
}

/** No `.partial` or payload temp file in the store's `.tmp`. */
async function assertNoLeftovers(store: string): Promise<void> {
  const left = await listTree(join(store, ".tmp")).catch(() => [] as string[]);
  assertEquals(left, [], "a partial bundle or temp payload was left behind");
}

diskTest("a snapshot into a full store fails cleanly and leaves no partial bundle", async () => {
  await using f = await fixture({ prefix: "memsnap-faults-", notes: 20, facts: 1500 });
  const small = await tmpfs(f.root, "small", 4 << 20);
  try {
    const store = join(small, "store");
    const list = () => memsnap(["list", "--store", store, "--json"]);
    assertEquals((await list()).code, 0, "the store (and its catalog) is created");
    await fill(small, 48 * 1024);
    const before = await fingerprint(f.mem);
    const args = [
      "snapshot",
      "--store",
      store,
      "--agent",
      "a1",
      ...sourceFlags(f.mem),
      "--no-redact",
    ];
    const [human, json] = [await memsnap(args), await memsnap([...args, "--json"])];
    assertCleanError(human, 1, /no space left on device/i, "snapshot on a full disk");
    const e = json.json as { code: string; exit_code: number; message: string; stack?: string };
    assertEquals([e.code, e.exit_code, e.stack], ["io_error", 1, undefined]);
    assert(/no space left/i.test(e.message), e.message);
    const l = await list();
    assertEquals(l.code, 0, l.stdout + l.stderr);
    assertEquals(l.json, [], "nothing is listed");
    await assertNoLeftovers(store);
    assertEquals(await fingerprint(f.mem), before, "live memory is untouched");
  } finally {
    await unmount(small);
  }
});

diskTest(
  "a restore whose staging fills the memory's disk rolls back and leaves memory untouched",
  async () => {
    await using f = await fixture({ prefix: "memsnap-faults-", notes: 2, facts: 2 });
    // The memory lives on a disk with no room left for a staged second copy.
    const disk = await tmpfs(f.root, "disk", 8 << 20);
    try {
      const mem = await generateSampleMemory(disk, { notes: 20, facts: 1500 });
      const flags = [...f.base, ...sourceFlags(mem)];
      const a = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
      assertEquals(a.code, 0, a.stdout + a.stderr);
      await dream(mem);
      const dreamed = await fingerprint(mem);
      await fill(disk, 64 * 1024);
      const r = await memsnap(["restore", (a.json as { id: string }).id, ...flags]);
      assertCleanError(r, 1, /no space left on device|disk is full/i, "restore on a full disk");
      assertEquals(await fingerprint(mem), dreamed, "live memory is untouched");
      for (const name of await listTree(disk)) {
        assert(!/\.memsnap-(stage|old|payload)-/.test(name), `staging left behind: ${name}`);
      }
      const journal = join(f.store, "default", "a1", ".state", "restore-journal.json");
      assert(!(await Deno.lstat(journal).then(() => true, () => false)), "no journal left");
      const log = await memsnap(["log", "--store", f.store, "--json"]);
      const records = log.json as { action: string; result: string }[];
      assertEquals(records.filter((x) => x.action === "restore").map((x) => x.result), ["failed"]);
    } finally {
      await unmount(disk);
    }
  },
);

diskTest(
  "a restore whose pre-restore snapshot fills the store is refused before touching memory",
  async () => {
    await using f = await fixture({ prefix: "memsnap-faults-", notes: 20, facts: 1500 });
    const small = await tmpfs(f.root, "small", 4 << 20);
    try {
      const store = join(small, "store");
      const flags = ["--store", store, "--agent", "a1", ...sourceFlags(f.mem)];
      const a = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
      assertEquals(a.code, 0, a.stdout + a.stderr);
      await dream(f.mem);
      const dreamed = await fingerprint(f.mem);
      // Room for the restore's work dir, not for a new bundle. (The store is on another
      // filesystem than the memory: the restore extracts next to the memory, not in the store.)
      await fill(small, 64 * 1024);
      const r = await memsnap(["restore", (a.json as { id: string }).id, ...flags]);
      assertCleanError(r, 4, /pre-restore safety snapshot failed.*no space left/i, "restore");
      assertEquals(await fingerprint(f.mem), dreamed, "live memory is untouched");
      const list = await memsnap(["list", "--store", store, "--json"]);
      assertEquals((list.json as { id: string }[]).map((x) => x.id), [
        (a.json as { id: string }).id,
      ]);
      await assertNoLeftovers(store);
    } finally {
      await unmount(small);
    }
  },
);
