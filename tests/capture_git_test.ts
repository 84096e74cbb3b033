import assert from "node:assert/strict";
import { RefusedError, UnsafeBundleError, UsageError } from "../errors.ts";
import { gitPlugin } from "../capture/git.ts";
import { TrackedPaths, trackedPaths } from "../capture/_git_repo.ts";
import { IndexBuilder } from "../capture/_git_objects.ts";
import { createHash } from "node:crypto";
import { memdirPlugin } from "../capture/memdir.ts";
import { captureInto, fakeRedactor, restoreInto } from "./capture_helpers.ts";
import { interopTest, run, tempDir } from "./_tools.ts";

// deno-lint-ignore no-explicit-any
type GitMeta = Record<string, any>;

const ENV = {
  GIT_AUTHOR_NAME: "Agent Smith",
  GIT_AUTHOR_EMAIL: "agent@example.com",
  GIT_COMMITTER_NAME: "Agent Smith",
  GIT_COMMITTER_EMAIL: "agent@example.com",
  GIT_AUTHOR_DATE: "2026-01-01T00:00:00Z",
  GIT_COMMITTER_DATE: "2026-01-01T00:00:00Z",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

/** Runs git in `dir`; throws on failure; returns stdout. */
async function g(dir: string, ...args: string[]): Promise<string> {
  const r = await run("git", ["-C", dir, ...args], { env: ENV });
  if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.text;
}

async function commitFile(dir: string, path: string, text: string | Uint8Array, msg: string) {
  const abs = `${dir}/${path}`;
  await Deno.mkdir(abs.slice(0, abs.lastIndexOf("/")), { recursive: true });
  if (typeof text === "string") await Deno.writeTextFile(abs, text);
  else await Deno.writeFile(abs, text);
  await g(dir, "add", "--", path);
  await g(dir, "commit", "-q", "-m", msg);
}

/** A repo with branches, a merge, tags (annotated and light), binary and executable files. */
async function richRepo(dir: string): Promise<void> {
  await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
  await g(dir, "config", "remote.origin.url", "https://example.com/agent/memory.git");
  await g(dir, "config", "user.name", "Memory Keeper");
  await commitFile(dir, "notes/a.md", "# A\nfirst\n", "first commit");
  await commitFile(dir, "bin.dat", new Uint8Array([0, 1, 2, 0, 255, 254, 10, 0]), "binary");
  await Deno.writeTextFile(`${dir}/run.sh`, "#!/bin/sh\necho hi\n");
  await Deno.chmod(`${dir}/run.sh`, 0o755);
  await g(dir, "add", "run.sh");
  await g(dir, "commit", "-q", "-m", "exec script");
  await g(dir, "tag", "-a", "v1", "-m", "release one\n\nwith a body");
  await g(dir, "checkout", "-q", "-b", "dev");
  await commitFile(dir, "notes/dev.md", "dev work\n", "dev: work");
  await g(dir, "tag", "light");
  await g(dir, "checkout", "-q", "main");
  await commitFile(dir, "notes/a.md", "# A\nsecond\n", "second on main");
  await g(dir, "merge", "-q", "--no-ff", "-m", "merge dev", "dev");
  await g(dir, "branch", "topic", "HEAD~1");
  await Deno.writeTextFile(`${dir}/.gitignore`, "*.log\n");
  await Deno.symlink("notes/a.md", `${dir}/a-link`);
  await Deno.writeTextFile(`${dir}/notes/ünïcødé 🧠.md`, "unicode\n");
  await g(dir, "add", ".gitignore", "a-link", "notes/ünïcødé 🧠.md");
  await g(dir, "commit", "-q", "-m", "ignore logs");
  // working tree state: modified, untracked, deleted, ignored
  await Deno.writeTextFile(`${dir}/notes/a.md`, "# A\nsecond\nlocal edit\n");
  await Deno.writeTextFile(`${dir}/untracked.md`, "new\n");
  await Deno.remove(`${dir}/notes/dev.md`);
  await Deno.writeTextFile(`${dir}/debug.log`, "noise\n");
  await Deno.chmod(`${dir}/bin.dat`, 0o755);
}

async function snapshotOf(dir: string): Promise<Record<string, string>> {
  return {
    log: await g(dir, "log", "--all", "--format=%H %P %an <%ae> %s", "--date-order"),
    refs: await g(dir, "for-each-ref", "--format=%(objectname) %(refname)"),
    head: await g(dir, "rev-parse", "HEAD"),
    symref: (await run("git", ["-C", dir, "symbolic-ref", "-q", "HEAD"], { env: ENV })).text,
    status: await g(dir, "status", "--porcelain=v1", "--untracked-files=all"),
  };
}

interopTest("gitPlugin() bundle is read by git bundle verify and git clone with every ref", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await richRepo(dir);
  const captured = await captureInto(tmp.path, [gitPlugin({ dir, layout: "bundle" })]);
  const paths = captured.manifest.artifacts.map((a) => a.path);
  assert.deepEqual(paths, ["git/config", "git/info/exclude", "git/memdir.bundle"]);
  assert.equal((captured.manifest.captures.git as GitMeta).layout, "bundle");
  const bundle = `${captured.payloadDir}/git/memdir.bundle`;
  const meta = captured.manifest.captures.git as GitMeta;
  assert.equal(meta.head.ref, "refs/heads/main");
  assert.equal(meta.head.oid, (await g(dir, "rev-parse", "HEAD")).trim());
  assert.equal(meta.head.subject, "ignore logs");
  assert.equal(meta.head.author, "Agent Smith <agent@example.com>");
  assert.equal(meta.head.time, "2026-01-01T00:00:00.000Z");

  await run("git", ["init", "-q", `${tmp.path}/verify`], { env: ENV });
  const v = await run("git", ["-C", `${tmp.path}/verify`, "bundle", "verify", bundle], {
    env: ENV,
  });
  assert.equal(v.code, 0, v.stderr);
  const heads = await g(tmp.path, "bundle", "list-heads", bundle);
  const want = await g(dir, "for-each-ref", "--format=%(objectname) %(refname)");
  assert.deepEqual(
    heads.trim().split("\n").filter((l) => !l.endsWith(" HEAD")).sort(),
    want.trim().split("\n").sort(),
  );
  const r = await run("git", ["clone", "-q", bundle, `${tmp.path}/clone`], { env: ENV });
  assert.equal(r.code, 0, r.stderr);
  const clone = `${tmp.path}/clone`;
  const objects = async (d: string) =>
    (await g(d, "rev-list", "--all", "--objects")).trim().split("\n").sort();
  assert.deepEqual(await objects(clone), await objects(dir));
  assert.deepEqual(
    (await g(clone, "branch", "-r", "--format=%(refname:lstrip=3)")).trim().split("\n").sort(),
    ["HEAD", "dev", "main", "topic"].sort(),
  );
  assert.equal(await g(clone, "cat-file", "-t", "v1"), "tag\n");
  assert.equal(await g(clone, "fsck", "--strict", "--no-progress"), "");
});

interopTest("gitPlugin() and memdirPlugin() restore a repository git sees as identical", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await richRepo(dir);
  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
  const before = await snapshotOf(dir);
  const captured = await captureInto(tmp.path, plugins);
  const { staged } = await restoreInto(tmp.path, plugins, captured);
  const out = staged.get(dir)!;
  assert.deepEqual(await snapshotOf(out), before);
  assert.equal(
    await g(out, "config", "remote.origin.url"),
    "https://example.com/agent/memory.git\n",
  );
  assert.equal(await g(out, "fsck", "--strict", "--no-progress"), "");
  for await (const e of Deno.readDir(`${out}/.git/objects/pack`)) {
    if (e.name.endsWith(".idx")) await g(out, "verify-pack", `.git/objects/pack/${e.name}`);
  }
  assert.equal(await g(out, "diff"), await g(dir, "diff"));
  assert.equal((await Deno.stat(`${out}/run.sh`)).mode! & 0o111, 0o111);
  // restore order does not matter: git first, then memdir
  await using tmp2 = await tempDir();
  const reversed = await restoreInto(tmp2.path, [...plugins].reverse(), captured);
  assert.deepEqual(await snapshotOf(reversed.staged.get(dir)!), before);
});

interopTest("gitPlugin() keeps a detached HEAD", ["git"], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await richRepo(dir);
  await g(dir, "stash", "-q", "-u");
  await g(dir, "checkout", "-q", "--detach", "v1");
  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
  const before = await snapshotOf(dir);
  assert.equal(before.symref, "");
  const captured = await captureInto(tmp.path, plugins);
  const meta = captured.manifest.captures.git as GitMeta;
  assert.equal(meta.head.ref, null);
  const { staged } = await restoreInto(tmp.path, plugins, captured);
  const after = await snapshotOf(staged.get(dir)!);
  // refs/stash is a ref too and survives as such
  assert.deepEqual(after, before);
});

interopTest("gitPlugin() captures an empty repository as its HEAD only", ["git"], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await run("git", ["init", "-q", "-b", "trunk", dir], { env: ENV });
  await Deno.writeTextFile(`${dir}/draft.md`, "not committed yet\n");
  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
  const captured = await captureInto(tmp.path, plugins);
  assert(!captured.manifest.artifacts.some((a) => a.path === "git/memdir.bundle"));
  const meta = captured.manifest.captures.git as GitMeta;
  assert.equal(meta.empty, true);
  assert.equal(meta.head.ref, "refs/heads/trunk");
  const { staged } = await restoreInto(tmp.path, plugins, captured);
  const out = staged.get(dir)!;
  assert.equal(await g(out, "symbolic-ref", "HEAD"), "refs/heads/trunk\n");
  assert.equal(await g(out, "status", "--porcelain"), "?? draft.md\n");
});

interopTest("gitPlugin() redacts the whole history without touching the live repository", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
  await commitFile(dir, "keep.md", "nothing to hide\n", "start");
  await commitFile(dir, "creds.txt", "token=SECRET123\n", "add creds SECRET123 by mistake");
  await g(dir, "tag", "-a", "leaky", "-m", "tagged SECRET123");
  await g(dir, "rm", "-q", "creds.txt");
  await g(dir, "commit", "-q", "-m", "remove creds");
  await commitFile(dir, "bin.dat", new Uint8Array([0, 83, 69, 67, 82, 69, 84, 49, 50, 51]), "bin");
  await commitFile(dir, "notes/x.md", "x SECRET123 x\n", "note");
  await g(dir, "checkout", "-q", "-b", "side", "HEAD~2");
  await commitFile(dir, "side.md", "side SECRET123\n", "side");
  await g(dir, "checkout", "-q", "main");
  // packed with deltas, so rewritten objects are bases of reused deltas
  const long = Array.from({ length: 300 }, (_, i) => `memory line ${i}`).join("\n");
  await commitFile(dir, "notes/long.md", `${long}\nSECRET123\n`, "long 1");
  await commitFile(dir, "notes/long.md", `${long}\nSECRET123\nmore\n`, "long 2");
  await commitFile(dir, "notes/long.md", `${long}\nclean now\n`, "long 3");
  await g(dir, "gc", "-q", "--aggressive");
  await Deno.writeTextFile(`${dir}/notes/x.md`, "x SECRET123 x\nedited\n");
  const liveBefore = {
    refs: await g(dir, "for-each-ref", "--format=%(objectname) %(refname)"),
    log: await g(dir, "log", "-p", "--all"),
    objects: await g(dir, "count-objects", "-v"),
  };
  assert(liveBefore.log.includes("SECRET123"));
  const statusBefore = await g(dir, "status", "--porcelain=v1", "--untracked-files=all");

  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
  const captured = await captureInto(tmp.path, plugins, fakeRedactor());
  const meta = captured.manifest.captures.git as GitMeta;
  assert.equal(meta.redacted, true);
  assert.equal(meta.original_head, (await g(dir, "rev-parse", "HEAD")).trim());
  assert.notEqual(meta.head.oid, meta.original_head);
  assert.equal(meta.rewritten_head, meta.head.oid);

  const bundle = `${captured.payloadDir}/git/memdir.bundle`;
  const clone = `${tmp.path}/clone`;
  const r = await run("git", ["clone", "-q", "--mirror", bundle, clone], { env: ENV });
  assert.equal(r.code, 0, r.stderr);
  const log = await g(clone, "log", "-p", "--all", "--format=%H%n%B");
  assert(!log.includes("SECRET123"), log);
  assert(log.includes("token=[REDACTED:fake:00000000]"));
  assert(log.includes("remove creds"));
  const tag = await g(clone, "cat-file", "-p", "leaky");
  assert(tag.includes("tagged [REDACTED:fake:00000000]"));
  assert.equal(
    await g(clone, "cat-file", "blob", "main:bin.dat"),
    await g(dir, "cat-file", "blob", "main:bin.dat"),
  );
  assert.equal(await g(clone, "fsck", "--strict", "--no-progress"), "");
  assert.equal(
    (await g(clone, "rev-list", "--all")).split("\n").length,
    (await g(dir, "rev-list", "--all")).split("\n").length,
  );
  // live repository untouched
  assert.deepEqual({
    refs: await g(dir, "for-each-ref", "--format=%(objectname) %(refname)"),
    log: await g(dir, "log", "-p", "--all"),
    objects: await g(dir, "count-objects", "-v"),
  }, liveBefore);
  // the redacted working tree matches the redacted history
  const { staged } = await restoreInto(tmp.path, plugins, captured);
  const out = staged.get(dir)!;
  assert.equal(await g(out, "status", "--porcelain=v1", "--untracked-files=all"), statusBefore);
  assert(!(await g(out, "log", "-p", "--all")).includes("SECRET123"));
});

Deno.test("gitPlugin() captures nothing outside a repository", async () => {
  await using tmp = await tempDir();
  const captured = await captureInto(tmp.path, [gitPlugin({ dir: tmp.path })]);
  assert.deepEqual(captured.manifest.artifacts, []);
  assert.deepEqual(captured.manifest.captures.git, { repository: false });
});

interopTest("gitPlugin() restore refuses unsafe ref names and prerequisites", ["git"], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
  await commitFile(dir, "a.md", "a\n", "a");
  const plugin = gitPlugin({ dir, layout: "bundle" });
  const captured = await captureInto(tmp.path, [plugin]);
  const path = `${captured.payloadDir}/git/memdir.bundle`;
  const original = await Deno.readFile(path);
  const text = new TextDecoder("latin1").decode(original);
  const oid = (await g(dir, "rev-parse", "HEAD")).trim();
  for (
    const forged of [
      text.replace("refs/heads/main", "refs/../../../evil"),
      text.replace("refs/heads/main", "refs/heads/.hidden/x"),
      text.replace("# v2 git bundle\n", `# v2 git bundle\n-${oid} missing\n`),
      text.replace("# v2 git bundle", "# v3 git bundle"),
      text.slice(0, -30) + "x" + text.slice(-29), // pack checksum no longer matches
      text.slice(0, -21), // truncated pack
    ]
  ) {
    await Deno.writeFile(path, Uint8Array.from(forged, (c) => c.charCodeAt(0)));
    await using t = await tempDir();
    await assert.rejects(() => restoreInto(t.path, [plugin], captured), UnsafeBundleError);
    assert.equal((await Array.fromAsync(Deno.readDir(t.path))).length, 0);
  }
});

interopTest("gitPlugin() plan() shows HEAD from and to", ["git"], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
  await commitFile(dir, "a.md", "a\n", "a");
  const plugin = gitPlugin({ dir });
  const captured = await captureInto(tmp.path, [plugin]);
  const from = (await g(dir, "rev-parse", "HEAD")).trim();
  await commitFile(dir, "b.md", "b\n", "b");
  const to = (await g(dir, "rev-parse", "HEAD")).trim();
  const plan = await plugin.plan!({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts,
    signal: new AbortController().signal,
    progress: { progress() {}, warn() {} },
  });
  assert.deepEqual(plan, [{
    target: `${dir}/.git`,
    action: "replace git repository",
    detail: `HEAD refs/heads/main ${to.slice(0, 12)} → refs/heads/main ${from.slice(0, 12)}`,
  }]);
});

interopTest("gitPlugin() reads packed, deltified history after git gc", ["git"], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await richRepo(dir);
  // many small edits of one big file make deltas (ofs and chains)
  const big = Array.from({ length: 400 }, (_, i) => `line ${i} of a long memory file`);
  for (let i = 0; i < 12; i++) {
    big[i * 7] = `edited in round ${i}`;
    await commitFile(dir, "notes/big.md", big.join("\n") + "\n", `round ${i}`);
  }
  await g(dir, "gc", "-q", "--aggressive");
  await commitFile(dir, "notes/loose.md", "a loose object after gc\n", "loose");
  const verify = await g(
    dir,
    "verify-pack",
    "-v",
    ...(await Array.fromAsync(
      Deno.readDir(`${dir}/.git/objects/pack`),
    )).filter((e) => e.name.endsWith(".idx")).map((e) => `${dir}/.git/objects/pack/${e.name}`),
  );
  assert.match(verify, /chain length = [1-9]/);
  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir, layout: "bundle" })];
  const before = await snapshotOf(dir);
  const captured = await captureInto(tmp.path, plugins);
  const clone = `${tmp.path}/clone`;
  const r = await run("git", [
    "clone",
    "-q",
    "--mirror",
    `${captured.payloadDir}/git/memdir.bundle`,
    clone,
  ], {
    env: ENV,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await g(clone, "fsck", "--strict", "--no-progress"), "");
  const objects = async (d: string) =>
    (await g(d, "rev-list", "--all", "--objects")).trim().split("\n").sort();
  assert.deepEqual(await objects(clone), await objects(dir));
  const { staged } = await restoreInto(tmp.path, plugins, captured);
  const out = staged.get(dir)!;
  assert.deepEqual(await snapshotOf(out), before);
  // the repository's deltas were reused in the bundle, and the restored index resolves them
  const packs = (await Array.fromAsync(Deno.readDir(`${out}/.git/objects/pack`)))
    .filter((e) => e.name.endsWith(".idx")).map((e) => `.git/objects/pack/${e.name}`);
  assert.match(await g(out, "verify-pack", "-v", ...packs), /chain length = [1-9]/);
  assert.equal(await g(out, "fsck", "--strict", "--no-progress"), "");
});

interopTest("gitPlugin() restore gives stat data only to working files that match HEAD", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
  const big = new Uint8Array(3 << 19).map((_, i) => (i * 2654435761) >>> 24);
  await Deno.writeFile(`${dir}/big.bin`, big);
  await Deno.writeTextFile(`${dir}/same.md`, "same\n");
  await Deno.writeTextFile(`${dir}/edited.md`, "before\n");
  await Deno.symlink("same.md", `${dir}/link`);
  await g(dir, "add", ".");
  await g(dir, "commit", "-q", "-m", "files");
  await Deno.writeTextFile(`${dir}/edited.md`, "after!\n"); // same size, new content
  // (a bundle restore rebuilds the index from HEAD's tree)
  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir, layout: "bundle" })];
  const captured = await captureInto(tmp.path, plugins);
  const { staged } = await restoreInto(tmp.path, plugins, captured);
  const out = staged.get(dir)!;
  const debug = await g(out, "ls-files", "--debug");
  const mtimes = Object.fromEntries(
    [...debug.matchAll(/^(\S+)\n\s+ctime: \S+\n\s+mtime: (\S+)/gm)].map((m) => [m[1], m[2]]),
  );
  assert.notEqual(mtimes["big.bin"], "0:0");
  assert.notEqual(mtimes["same.md"], "0:0");
  assert.notEqual(mtimes["link"], "0:0");
  assert.equal(mtimes["edited.md"], "0:0");
  assert.equal(await g(out, "status", "--porcelain"), " M edited.md\n");
  assert.equal(await g(out, "fsck", "--strict", "--no-progress"), "");
});

interopTest("trackedFiles() reads index versions 2, 3 and 4 as git ls-files does", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await richRepo(dir);
  const long = `deep/${Array.from({ length: 5 }, (_, i) => `${i}`.padEnd(200, "x")).join("/")}.md`;
  await Deno.mkdir(`${dir}/${long.slice(0, long.lastIndexOf("/"))}`, { recursive: true });
  await Deno.writeTextFile(`${dir}/${long}`, "long path\n");
  await g(dir, "add", "--", long);
  await Deno.writeTextFile(`${dir}/intent.md`, "later\n");
  await g(dir, "add", "-N", "intent.md"); // intent-to-add: an extended flag (version 3)
  const want = new Set((await g(dir, "ls-files", "-z")).split("\0").filter((p) => p !== ""));
  assert(want.has("notes/ünïcødé 🧠.md") && want.has(long) && want.has("intent.md"));
  for (const version of ["3", "4", "2"]) {
    if (version === "2") await g(dir, "rm", "-q", "--cached", "intent.md");
    await g(dir, "update-index", "--index-version", version);
    const got = trackedPaths(`${dir}/.git`);
    if (version === "2") want.delete("intent.md");
    assert.deepEqual([...got].sort(), [...want].sort(), `version ${version}`);
    for (const p of want) assert(got.has(p), p);
    for (const p of ["notes", "deep", long.slice(0, long.lastIndexOf("/"))]) {
      assert(got.hasDir(p), p);
    }
    for (const p of ["note", "notes/", "deep/0", `${long}x`, "nope.md"]) {
      assert(!got.has(p), p);
    }
    assert(!got.hasDir("note") && !got.hasDir("deep/0") && !got.hasDir(long), version);
  }
  // a corrupt index reads as no index
  const index = await Deno.readFile(`${dir}/.git/index`);
  index[40]! ^= 1;
  await Deno.writeFile(`${dir}/.git/index`, index);
  assert.equal(TrackedPaths.fromIndexFile(`${dir}/.git/index`), undefined);
  assert.equal(trackedPaths(`${dir}/.git`).size, 0);
  assert.equal(trackedPaths(`${tmp.path}/none`).size, 0);
});

interopTest(
  "gitPlugin() objects layout: the payload's git/ is a git directory, restored as it was",
  [
    "git",
  ],
  async () => {
    await using tmp = await tempDir();
    const dir = `${tmp.path}/mem`;
    await richRepo(dir);
    // a staged change: its blob is a loose object no ref reaches
    await Deno.writeTextFile(`${dir}/notes/staged.md`, "staged, not committed\n");
    await g(dir, "add", "notes/staged.md");
    const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
    const before = await snapshotOf(dir);
    const captured = await captureInto(tmp.path, plugins);
    const meta = captured.manifest.captures.git as GitMeta;
    assert.equal(meta.layout, "objects");
    assert.equal(meta.head.ref, "refs/heads/main");
    assert.equal(meta.head.subject, "ignore logs");
    const paths = captured.manifest.artifacts.map((a) => a.path).filter((p) =>
      p.startsWith("git/")
    );
    assert(!paths.includes("git/memdir.bundle"));
    for (const p of ["git/HEAD", "git/refs/heads/main", "git/refs/heads/dev", "git/refs/tags/v1"]) {
      assert(paths.includes(p), p);
    }
    const loose = paths.filter((p) => /^git\/objects\/[0-9a-f]{2}\/[0-9a-f]{38}$/.test(p));
    assert.equal(loose.length, meta.objects);
    // Standard tools open the captured layer as it is.
    const gd = `${captured.payloadDir}/git`;
    const r = await run("git", ["--git-dir", gd, "fsck", "--strict", "--no-progress"], {
      env: ENV,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      (await run("git", ["--git-dir", gd, "for-each-ref"], { env: ENV })).text,
      await g(dir, "for-each-ref"),
    );
    const objects = async (d: string) =>
      (await g(d, "rev-list", "--all", "--objects")).trim().split("\n").sort();
    for (const payloadMovable of [false, true]) {
      await using t = await tempDir();
      // (a movable restore moves the object store out of the payload: restore from a copy)
      const copy = `${t.path}/payload`;
      await run("cp", ["-a", captured.payloadDir, copy]);
      const { staged } = await restoreInto(t.path, plugins, { ...captured, payloadDir: copy }, {
        payloadMovable,
      });
      const out = staged.get(dir)!;
      // The captured index comes back: the staged change is still staged.
      assert.deepEqual(await snapshotOf(out), before);
      assert.match(before.status!, /^A {2}notes\/staged\.md$/m);
      assert.equal(await g(out, "fsck", "--strict", "--no-progress"), "");
      assert.deepEqual(await objects(out), await objects(dir));
      // the staged blob came along with the store
      const blob = (await g(dir, "rev-parse", ":notes/staged.md")).trim();
      assert.equal(await g(out, "cat-file", "-p", blob), "staged, not committed\n");
      assert.equal(
        (await Array.fromAsync(Deno.readDir(`${copy}/git`))).some((e) => e.name === "objects"),
        !payloadMovable,
      );
    }
  },
);

interopTest("gitPlugin() objects layout captures packs after git gc, and loose objects after", [
  "git",
], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await richRepo(dir);
  await g(dir, "gc", "-q");
  await commitFile(dir, "notes/loose.md", "a loose object after gc\n", "loose");
  const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
  const before = await snapshotOf(dir);
  const captured = await captureInto(tmp.path, plugins);
  const paths = captured.manifest.artifacts.map((a) => a.path);
  const packs = paths.filter((p) => /^git\/objects\/pack\/pack-[0-9a-f]{40}\.(pack|idx)$/.test(p));
  assert.equal(packs.length, 2);
  assert(paths.some((p) => /^git\/objects\/[0-9a-f]{2}\//.test(p)));
  const packed = Number(/in-pack: (\d+)/.exec(await g(dir, "count-objects", "-v"))![1]);
  const loose = Number(/^count: (\d+)/m.exec(await g(dir, "count-objects", "-v"))![1]);
  assert.equal((captured.manifest.captures.git as GitMeta).objects, packed + loose);
  // The git plugin restores from its artifacts' paths alone (the engine makes entries only
  // when read: 211,000 of them for a 200,000-note history).
  const { staged } = await restoreInto(tmp.path, plugins, captured, {
    pathsOnly: (p) => p.name === "git",
  });
  const out = staged.get(dir)!;
  assert.deepEqual(await snapshotOf(out), before);
  assert.equal(await g(out, "fsck", "--strict", "--no-progress"), "");
});

/** A payload file with one byte flipped. */
function corrupt(captured: { payloadDir: string }, path: string): Uint8Array {
  const bytes = Deno.readFileSync(`${captured.payloadDir}/${path}`);
  bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
  return bytes;
}

/** A valid index (checksum and all) of one entry, optionally with an extension. */
function indexWith(path: string, oid: string, extension?: string): Uint8Array {
  const b = new IndexBuilder();
  b.add(new TextEncoder().encode(path), 0o100644, oid);
  const built = b.build();
  if (extension === undefined) return built;
  const body = built.subarray(0, built.length - 20);
  const ext = new Uint8Array(8 + 4);
  ext.set(new TextEncoder().encode(extension));
  new DataView(ext.buffer).setUint32(4, 4);
  const out = new Uint8Array(body.length + ext.length + 20);
  out.set(body);
  out.set(ext, body.length);
  out.set(createHash("sha1").update(out.subarray(0, out.length - 20)).digest(), out.length - 20);
  return out;
}

interopTest(
  "gitPlugin() objects layout restore refuses a forged object store",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = `${tmp.path}/mem`;
    await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
    await commitFile(dir, "a.md", "a\n", "a");
    await commitFile(dir, "b.md", "b\n", "b");
    const plugin = gitPlugin({ dir });
    const captured = await captureInto(tmp.path, [plugin]);
    const head = (await g(dir, "rev-parse", "HEAD")).trim();
    const parent = (await g(dir, "rev-parse", "HEAD~1")).trim();
    const meta = captured.manifest.captures.git as GitMeta;
    const enc = new TextEncoder();
    const artifact = (path: string, bytes: string | Uint8Array) => {
      const b = typeof bytes === "string" ? enc.encode(bytes) : bytes;
      return { path, kind: "git-file", size: b.length, sha256: "0".repeat(64), bytes: b };
    };
    const headObject = `git/objects/${head.slice(0, 2)}/${head.slice(2)}`;
    const forgeries: [string, {
      add?: ReturnType<typeof artifact>[];
      drop?: string;
      meta?: GitMeta;
    }][] = [
      ["git_ref", { add: [artifact("git/refs/heads/main", `${parent}\n`)] }],
      ["git_ref", { drop: "git/refs/heads/main" }],
      ["git_ref", { add: [artifact("git/HEAD", "ref: refs/heads/other\n")] }],
      ["git_path", { add: [artifact("git/hooks/post-checkout", "#!/bin/sh\nevil\n")] }],
      ["git_path", { add: [artifact("git/objects/info/alternates", "/etc\n")] }],
      ["git_pack", { add: [artifact(`git/objects/pack/pack-${"a".repeat(40)}.pack`, "PACK")] }],
      ["git_ref", { meta: { ...meta, refs: { "refs/../../evil": head } } }],
      ["git_ref", { meta: { ...meta, refs: { "refs/heads/main": "not an oid" } } }],
      ["git_objects", { drop: headObject }],
      ["git_index", { add: [artifact("git/index", corrupt(captured, "git/index"))] }],
      ["git_index", { add: [artifact("git/index", indexWith("../evil", head))] }],
      ["git_index", { add: [artifact("git/index", indexWith(".git/hooks/x", head))] }],
      ["git_index", { add: [artifact("git/index", indexWith("ok.md", head, "link"))] }],
    ];
    for (const [rule, f] of forgeries) {
      await using t = await tempDir();
      const payloadDir = `${t.path}/payload`;
      await run("cp", ["-a", captured.payloadDir, payloadDir]);
      let artifacts = captured.manifest.artifacts.filter((a) => a.path !== f.drop);
      if (f.drop) await Deno.remove(`${payloadDir}/${f.drop}`);
      for (const a of f.add ?? []) {
        await Deno.mkdir(`${payloadDir}/${a.path.slice(0, a.path.lastIndexOf("/"))}`, {
          recursive: true,
        });
        await Deno.writeFile(`${payloadDir}/${a.path}`, a.bytes);
        artifacts = [...artifacts.filter((x) => x.path !== a.path), a];
      }
      const manifest = {
        ...captured.manifest,
        artifacts,
        captures: { ...captured.manifest.captures, git: f.meta ?? meta },
      };
      await assert.rejects(
        () => restoreInto(`${t.path}/r`, [plugin], { ...captured, manifest, payloadDir }),
        (e) => {
          assert(e instanceof UnsafeBundleError, String(e));
          assert.equal(e.rule, rule, `${rule}: ${e.message}`);
          return true;
        },
      );
      if (rule !== "git_objects") {
        // refused before anything was staged
        assert.equal(await Deno.stat(`${t.path}/r`).then(() => true, () => false), false);
      }
    }
  },
);

interopTest("gitPlugin() refuses a repository with alternates", ["git"], async () => {
  await using tmp = await tempDir();
  const src = `${tmp.path}/src`;
  await run("git", ["init", "-q", "-b", "main", src], { env: ENV });
  await commitFile(src, "a.md", "a\n", "a");
  const dir = `${tmp.path}/mem`;
  const c = await run("git", ["clone", "-q", "--shared", src, dir], { env: ENV });
  assert.equal(c.code, 0, c.stderr);
  for (const layout of ["objects", "bundle"] as const) {
    await assert.rejects(
      () => captureInto(`${tmp.path}/${layout}`, [gitPlugin({ dir, layout })]),
      (e) => e instanceof UsageError && /alternates/.test(e.message),
    );
  }
});

interopTest(
  "gitPlugin() leaves out a split index and rebuilds one from HEAD",
  ["git"],
  async () => {
    await using tmp = await tempDir();
    const dir = `${tmp.path}/mem`;
    await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
    await commitFile(dir, "a.md", "a\n", "a");
    await g(dir, "update-index", "--split-index");
    await commitFile(dir, "b.md", "b\n", "b");
    assert(
      (await Array.fromAsync(Deno.readDir(`${dir}/.git`))).some((e) =>
        e.name.startsWith("sharedindex.")
      ),
    );
    const plugins = [memdirPlugin({ dir }), gitPlugin({ dir })];
    const before = await snapshotOf(dir);
    const captured = await captureInto(tmp.path, plugins);
    assert(!captured.manifest.artifacts.some((a) => a.path === "git/index"));
    const { staged } = await restoreInto(tmp.path, plugins, captured);
    const out = staged.get(dir)!;
    assert.deepEqual(await snapshotOf(out), before);
  },
);

interopTest("gitPlugin() restore refuses a history layout it does not know", ["git"], async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await run("git", ["init", "-q", "-b", "main", dir], { env: ENV });
  await commitFile(dir, "a.md", "a\n", "a");
  const plugin = gitPlugin({ dir });
  const captured = await captureInto(tmp.path, [plugin]);
  const git = captured.manifest.captures.git as GitMeta;
  const manifest = {
    ...captured.manifest,
    captures: { ...captured.manifest.captures, git: { ...git, layout: "packfiles-v9" } },
  };
  await assert.rejects(
    () => restoreInto(`${tmp.path}/r`, [plugin], { ...captured, manifest }),
    (e) => e instanceof RefusedError && /layout "packfiles-v9"/.test(e.message),
  );
  assert.equal(await Deno.stat(`${tmp.path}/r`).then(() => true, () => false), false);
});
