/**
 * Every store command of the CLI against an S3-protocol server (s3rver on loopback), with
 * the usual AWS_* environment.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import { dream, fingerprint, generateSampleMemory } from "../examples/sample_memory.ts";
import { startS3rver } from "./_s3rver.ts";
import { memsnap as runCli } from "./_cli.ts";

Deno.test({
  name:
    "memsnap snapshot/list/inspect/verify/diff/export/import/prune/restore/delete against s3://",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "memsnap-s3cli-" });
    const server = await startS3rver(join(root, "s3"), ["agents"]);
    const env = {
      NO_COLOR: "1",
      AWS_ENDPOINT_URL: server.endpoint,
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      AWS_REGION: "us-east-1",
      XDG_STATE_HOME: join(root, "state"),
    };
    const memsnap = (args: string[]) => runCli(args, env);
    try {
      const mem = await generateSampleMemory(join(root, "agent"), { notes: 6, facts: 20 });
      const store = "s3://agents/memsnap";
      const src = [
        "--memdir",
        mem.memdir,
        "--sqlite",
        `long_term=${mem.sqlite.long_term}`,
        "--state",
        `cursor=${mem.state.extract_cursor}`,
      ];
      const base = ["--store", store, "--agent", "a1"];
      const s1 = await memsnap(["snapshot", ...base, ...src, "--label", "one", "--json"]);
      assertEquals(s1.code, 0, `s1: ${s1.stdout}${s1.stderr}`);
      const id1 = (s1.json as { id: string }).id;
      assert(
        (s1.json as { path: string }).path.startsWith("s3://agents/memsnap/"),
        JSON.stringify(s1.json),
      );
      const before = await fingerprint(mem);
      await dream(mem);
      const s2 = await memsnap(["snapshot", ...base, ...src, "--json"]);
      assertEquals(s2.code, 0, `s2: ${s2.stderr}`);
      const id2 = (s2.json as { id: string }).id;

      const list = await memsnap(["list", "--store", store, "--json"]);
      assertEquals(list.code, 0, `list: ${list.stderr}`);
      assertEquals(
        (list.json as { id: string; parent: string | null }[]).map((r) => [r.id, r.parent]),
        [[id1, null], [id2, id1]],
      );
      const inspect = await memsnap(["inspect", "--store", store, id1, "--json"]);
      assertEquals((inspect.json as { label: string }).label, "one");
      const verify1 = await memsnap(["verify", "--store", store, id1, "--json"]);
      assertEquals(verify1.code, 0, `verify1: ${verify1.stdout}${verify1.stderr}`);
      const verify = await memsnap(["verify", "--store", store, id2, "--json"]);
      assertEquals(verify.code, 0, `verify: ${verify.stdout + verify.stderr}`);
      const diff = await memsnap(["diff", "--store", store, id1, id2, "--json"]);
      assertEquals(diff.code, 0, `diff: ${diff.stderr}`);
      assert((diff.json as { git: { commits: unknown[] } }).git.commits.length === 1, diff.stdout);

      const file = join(root, "one.msnap");
      const exp = await memsnap(["export", "--store", store, id1, "--to", file]);
      assertEquals(exp.code, 0, `exp: ${exp.stderr}`);
      const v = await memsnap(["verify", file]);
      assertEquals(
        v.code,
        0,
        `exported (${(await Deno.stat(file)).size} bytes): ${v.stdout}${v.stderr}`,
      );
      const local = join(root, "local-store");
      const imp = await memsnap(["import", file, "--store", local, "--json"]);
      assertEquals(imp.code, 0, `imp: ${imp.stdout}${imp.stderr}`);
      const back = await memsnap(["import", file, "--store", "s3://agents/other", "--json"]);
      assertEquals(back.code, 0, `back: ${back.stdout}${back.stderr}`);

      const prune = await memsnap([
        "prune",
        "--store",
        store,
        "--keep-last",
        "1",
        "--dry-run",
        "--json",
      ]);
      assertEquals(prune.code, 0, `prune: ${prune.stderr}`);
      assertEquals((prune.json as { remove: { id: string }[] }).remove.map((r) => r.id), [id1]);

      const restore = await memsnap(["restore", id1, ...base, ...src, "--json"]);
      assertEquals(restore.code, 0, `restore: ${restore.stderr}`);
      const after = await fingerprint(mem);
      for (const k of Object.keys(before)) {
        if (
          k.startsWith("memdir/") || k.startsWith("git/") || k.startsWith("sqlite/long_term") ||
          k === "state/extract_cursor"
        ) {
          if (k !== "memdir/notes/scratch.md" && !k.startsWith("sqlite/long_term/facts")) {
            assertEquals(after[k], before[k], k);
          }
        }
      }
      const pre = (restore.json as { pre_snapshot: { id: string } }).pre_snapshot.id;
      const del = await memsnap(["delete", "--store", store, id2]);
      assertEquals(del.code, 0, `del: ${del.stderr}`);
      const list2 = await memsnap(["list", "--store", store, "--agent", "a1", "--json"]);
      assertEquals((list2.json as { id: string }[]).map((r) => r.id), [id1, pre]);
      const log = await memsnap(["log", "--store", store, "--json"]);
      assert((log.json as { action: string }[]).some((r) => r.action === "restore"), log.stdout);
    } finally {
      await server.close();
      await Deno.remove(root, { recursive: true });
    }
  },
});
