/**
 * A restore killed while the memory dir is moved aside: the next `snapshot` recovers first
 * instead of refusing the missing `--memdir` that recovery brings back.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { fixture, memsnap, sourceFlags, spawnCli } from "./_reliability.ts";
import { dream, fingerprint } from "../examples/sample_memory.ts";

const exists = (p: string): Promise<boolean> => Deno.lstat(p).then(() => true, () => false);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("recover: snapshot after a restore killed with the memory dir moved aside recovers it first", async () => {
  await using f = await fixture({ notes: 6, facts: 40, prefix: "memsnap-recover-cli-" });
  const flags = [...f.base, ...sourceFlags(f.mem)];
  const snap = async (): Promise<string> => {
    const r = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
    assertEquals(r.code, 0, r.stdout + r.stderr);
    return (r.json as { id: string }).id;
  };
  const idA = await snap();
  const fpA = JSON.stringify(await fingerprint(f.mem));
  await dream(f.mem, 1);
  await snap();
  const fpB = JSON.stringify(await fingerprint(f.mem));

  // Every swap step waits 2 s, so the memory dir stays moved aside long enough to kill there.
  const child = spawnCli(["restore", idA, ...flags, "--no-pre-snapshot", "--json"], {
    MEMSNAP_TEST_SWAP_DELAY_MS: "2000",
  });
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = performance.now() + 60_000;
  while (!exited && performance.now() < deadline && await exists(f.mem.memdir)) await sleep(5);
  assert(!exited, "the restore was still running when the memory dir was moved aside");
  assert(!(await exists(f.mem.memdir)), "the memory dir was moved aside within 60 s");
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
  assert(!(await exists(f.mem.memdir)));

  const r = await memsnap(["snapshot", ...flags, "--no-redact", "--json"]);
  assertEquals(r.code, 0, r.stdout + r.stderr);
  assert(r.stderr.includes("Recovered an interrupted restore"), r.stderr);
  const journal = join(f.store, "default", "a1", ".state", "restore-journal.json");
  assert(!(await exists(journal)), "the journal is gone after recovery");
  const fp = JSON.stringify(await fingerprint(f.mem));
  assert(fp === fpA || fp === fpB, "live memory is entirely the old or the restored state");

  // A --memdir that does not exist, with nothing to recover, is still refused.
  const missing = join(f.root, "nope");
  const bad = await memsnap(["snapshot", ...f.base, "--memdir", missing, "--no-redact"]);
  assertEquals(bad.code, 2, bad.stderr);
  assert(bad.stderr.includes(`Cannot use --memdir ${missing}: it does not exist`), bad.stderr);
});
