import assert from "node:assert/strict";
import { posix } from "node:path";
import { MemsnapError, NotFoundError, UnsafeBundleError } from "../errors.ts";
import { memdirPlugin } from "./memdir.ts";
import {
  captureInto,
  fakeRedactor,
  recordingProgress,
  restoreInto,
  treeOf,
} from "../tests/capture_helpers.ts";
import { run, tempDir } from "../tests/_tools.ts";
import { createRedactor, secretsPack } from "../redact/mod.ts";
import { noopProgress } from "../progress.ts";

async function makeMemdir(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/notes/deep/er`, { recursive: true });
  await Deno.writeTextFile(`${dir}/notes/a.md`, "# A\nhello\n");
  await Deno.writeFile(`${dir}/empty`, new Uint8Array());
  await Deno.writeFile(`${dir}/blob.bin`, new Uint8Array([0, 1, 2, 255, 0, 10, 13, 0]));
  await Deno.writeTextFile(`${dir}/notes/日本語 ünïcødé 🧠.txt`, "multi\nbyte ✓\n");
  await Deno.writeTextFile(`${dir}/notes/deep/er/${"l".repeat(200)}.md`, "long name\n");
  await Deno.writeTextFile(`${dir}/run.sh`, "#!/bin/sh\necho hi\n");
  await Deno.chmod(`${dir}/run.sh`, 0o755);
  await Deno.symlink("a.md", `${dir}/notes/link-to-a`);
  await Deno.symlink("notes/deep", `${dir}/deep-dir-link`);
  await Deno.symlink("../../etc/passwd", `${dir}/notes/escape`);
  await Deno.symlink("/etc/hostname", `${dir}/abs-link`);
}

Deno.test("memdirPlugin() round-trips empty, binary, unicode, long-named, executable files and inner symlinks", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  await makeMemdir(dir);
  const plugin = memdirPlugin({ dir });
  const captured = await captureInto(tmp.path, [plugin]);
  const paths = captured.manifest.artifacts.map((a) => a.path);
  assert(paths.includes("memdir/empty"));
  assert(paths.includes("memdir/notes/日本語 ünïcødé 🧠.txt"));
  assert.deepEqual(
    captured.manifest.artifacts.find((a) => a.path === "memdir/run.sh")?.mode,
    0o755,
  );
  assert.deepEqual(
    captured.manifest.artifacts.find((a) => a.path === "memdir/notes/link-to-a")?.kind,
    "symlink",
  );
  assert(!paths.includes("memdir/notes/escape"));
  assert(!paths.includes("memdir/abs-link"));
  assert.deepEqual(captured.warnings.length, 2);
  const meta = captured.manifest.captures.memdir as Record<string, unknown>;
  assert.deepEqual(meta.files, 6);
  assert.deepEqual(meta.symlinks, 2);
  assert.deepEqual((meta.skipped_symlinks as unknown[]).length, 2);

  const { staged } = await restoreInto(tmp.path, [plugin], captured);
  const out = staged.get(dir)!;
  const want = await treeOf(dir);
  delete want["notes/escape"];
  delete want["abs-link"];
  assert.deepEqual(await treeOf(out), want);
});

Deno.test("memdirPlugin() skips .git and honours .gitignore for untracked files", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(`${dir}/build`, { recursive: true });
  await run("git", ["init", "-q", dir]);
  await Deno.writeTextFile(`${dir}/.gitignore`, "*.log\nbuild/\n");
  await Deno.writeTextFile(`${dir}/keep.md`, "keep\n");
  await Deno.writeTextFile(`${dir}/tracked.log`, "tracked though ignored\n");
  await Deno.writeTextFile(`${dir}/noise.log`, "noise\n");
  await Deno.writeTextFile(`${dir}/build/out.txt`, "out\n");
  await run("git", ["-C", dir, "add", "-f", "tracked.log", ".gitignore"]);
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })]);
  assert.deepEqual(captured.manifest.artifacts.map((a) => a.path), [
    "memdir/.gitignore",
    "memdir/keep.md",
    "memdir/tracked.log",
  ]);
  await using tmp2 = await tempDir();
  const all = await captureInto(tmp2.path, [memdirPlugin({ dir, includeIgnored: true })]);
  assert.deepEqual(all.manifest.artifacts.length, 5);
  assert(!all.manifest.artifacts.some((a) => a.path.includes(".git/")));
});

Deno.test("memdirPlugin() applies a .gitignore to its own subtree and .git/info/exclude everywhere, as git does", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(`${dir}/sub/deep`, { recursive: true });
  await Deno.mkdir(`${dir}/other`, { recursive: true });
  await run("git", ["init", "-q", dir]);
  await Deno.writeTextFile(`${dir}/.git/info/exclude`, "# comment\n\n*.tmp\n");
  await Deno.writeTextFile(`${dir}/sub/.gitignore`, "*.log\n");
  for (
    const f of [
      "root.log",
      "x.tmp",
      "sub/a.log",
      "sub/keep.md",
      "sub/tracked.log",
      "sub/y.tmp",
      "sub/deep/b.log",
      "sub/deep/c.md",
      "other/c.log",
      "other/z.tmp",
    ]
  ) await Deno.writeTextFile(`${dir}/${f}`, `${f}\n`);
  await run("git", ["-C", dir, "add", "-f", "sub/tracked.log"]);
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })]);
  const paths = captured.manifest.artifacts.map((a) => a.path.slice("memdir/".length));
  assert.deepEqual(paths, [
    "other/c.log",
    "root.log",
    "sub/.gitignore",
    "sub/deep/c.md",
    "sub/keep.md",
    "sub/tracked.log",
  ]);
  // git's own answer: tracked files and untracked ones it does not ignore
  const listed = await new Deno.Command("git", {
    args: [
      "-C",
      dir,
      "-c",
      "core.excludesFile=/dev/null",
      "ls-files",
      "--cached",
      "--others",
      "--exclude-standard",
    ],
  }).output();
  assert.deepEqual(new TextDecoder().decode(listed.stdout).trim().split("\n").sort(), paths);
  assert.deepEqual(
    (captured.manifest.captures.memdir as Record<string, unknown>).ignored_skipped,
    5,
  );
});

Deno.test("memdirPlugin() ignores nothing in a repository whose exclude file holds only comments and no .gitignore", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(`${dir}/notes`, { recursive: true });
  await run("git", ["init", "-q", dir]);
  await Deno.writeTextFile(`${dir}/.git/info/exclude`, "# *.md\n\n   \n#notes/\n");
  await Deno.writeTextFile(`${dir}/notes/a.md`, "a\n");
  await Deno.writeTextFile(`${dir}/b.md`, "b\n");
  await run("git", ["-C", dir, "add", "b.md"]);
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })]);
  assert.deepEqual(captured.manifest.artifacts.map((a) => a.path), [
    "memdir/b.md",
    "memdir/notes/a.md",
  ]);
  assert.deepEqual(
    (captured.manifest.captures.memdir as Record<string, unknown>).ignored_skipped,
    0,
  );
});

Deno.test("memdirPlugin() leaves out excluded globs", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(`${dir}/cache/x`, { recursive: true });
  await Deno.writeTextFile(`${dir}/cache/x/a`, "a");
  await Deno.writeTextFile(`${dir}/a.tmp`, "a");
  await Deno.writeTextFile(`${dir}/sub.md`, "a");
  const captured = await captureInto(tmp.path, [
    memdirPlugin({ dir, exclude: ["cache/", "*.tmp"] }),
  ]);
  assert.deepEqual(captured.manifest.artifacts.map((a) => a.path), ["memdir/sub.md"]);
});

Deno.test("memdirPlugin() redacts text copies and streams binary files as they are", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/secret.md`, "token SECRET123 here\n");
  const bin = new Uint8Array([0, 83, 69, 67, 82, 69, 84, 49, 50, 51]);
  await Deno.writeFile(`${dir}/bin`, bin);
  const redactor = fakeRedactor();
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })], redactor);
  const text = await Deno.readTextFile(`${captured.payloadDir}/memdir/secret.md`);
  assert.deepEqual(text, "token [REDACTED:fake:00000000] here\n");
  assert.deepEqual(await Deno.readFile(`${captured.payloadDir}/memdir/bin`), bin);
  assert.deepEqual(await Deno.readTextFile(`${dir}/secret.md`), "token SECRET123 here\n");
  assert.deepEqual(redactor.report().skipped_binary, ["memdir/bin"]);
});

async function forgedCapture(root: string, dir: string, path: string, kind: string, body: string) {
  const captured = await captureInto(root, [memdirPlugin({ dir })]);
  await Deno.mkdir(posix.dirname(`${captured.payloadDir}/${path}`), { recursive: true });
  await Deno.writeTextFile(`${captured.payloadDir}/${path}`, body);
  captured.manifest.artifacts.push({ path, kind, size: body.length, sha256: "" });
  return captured;
}

Deno.test("memdirPlugin() restore refuses escaping symlinks and writes into .git", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  for (
    const [path, kind, body] of [
      ["memdir/a/link", "symlink", "../../outside"],
      ["memdir/link", "symlink", "/etc/passwd"],
      ["memdir/.git/hooks/post-checkout", "file", "#!/bin/sh\n"],
      ["memdir/a/../../x", "file", "x"],
    ]
  ) {
    await using t = await tempDir();
    const captured = await forgedCapture(t.path, dir, path!, kind!, body!);
    await assert.rejects(
      () => restoreInto(t.path, [memdirPlugin({ dir })], captured),
      UnsafeBundleError,
    );
    assert.deepEqual([...Deno.readDirSync(t.path)].some((e) => e.name === "staged"), false);
  }
});

Deno.test("memdirPlugin() plan() lists added, removed and changed files", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/same`, "same");
  await Deno.writeTextFile(`${dir}/changed`, "v1");
  await Deno.writeTextFile(`${dir}/removed-later`, "x");
  const plugin = memdirPlugin({ dir });
  const captured = await captureInto(tmp.path, [plugin]);
  await Deno.writeTextFile(`${dir}/changed`, "v2");
  await Deno.remove(`${dir}/removed-later`);
  await Deno.writeTextFile(`${dir}/new`, "n");
  const plan = await plugin.plan!({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts,
    signal: new AbortController().signal,
    progress: { progress() {}, warn() {} },
  });
  assert.deepEqual(plan.map((p) => [posix.basename(p.target), p.action]), [
    ["changed", "replace file"],
    ["new", "remove file"],
    ["removed-later", "add file"],
  ]);
});

Deno.test("memdirPlugin() plan() compares sizes, kinds, contents beyond one read buffer, and modes", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  const big = new Uint8Array(2_500_000).map((_, i) => (i * 7) & 255);
  await Deno.writeFile(`${dir}/big-same`, big);
  await Deno.writeFile(`${dir}/big-tail`, big);
  await Deno.writeTextFile(`${dir}/grown`, "v1");
  await Deno.writeTextFile(`${dir}/kind`, "a");
  await Deno.writeTextFile(`${dir}/mode`, "m");
  await Deno.writeTextFile(`${dir}/same`, "same");
  const plugin = memdirPlugin({ dir });
  const captured = await captureInto(tmp.path, [plugin]);
  const tail = big.slice();
  tail[tail.length - 1] = tail[tail.length - 1]! ^ 1; // same size, differs after 2 MiB
  await Deno.writeFile(`${dir}/big-tail`, tail);
  await Deno.writeTextFile(`${dir}/grown`, "v1 and more");
  await Deno.remove(`${dir}/kind`);
  await Deno.symlink("same", `${dir}/kind`);
  await Deno.chmod(`${dir}/mode`, 0o755);
  const plan = await plugin.plan!({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts,
    signal: new AbortController().signal,
    progress: { progress() {}, warn() {} },
  });
  assert.deepEqual(plan.map((p) => [posix.basename(p.target), p.action, p.detail]), [
    ["big-tail", "replace file", undefined],
    ["grown", "replace file", undefined],
    ["kind", "replace file", undefined],
    ["mode", "change mode", "644"],
  ]);
});

Deno.test("memdirPlugin() plan() merges live files and artifacts in order, whatever the names", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  // Names whose UTF-16 order differs from code point order (U+FFFD vs an astral character),
  // nested dirs, names that sort around "/" ("a.md" < "a/x" < "a0").
  const names = ["a.md", "a/x", "a0", "b/c/d", "\uFFFD.md", "\u{1F600}.md", "z"];
  for (const n of names) {
    await Deno.mkdir(posix.dirname(`${dir}/${n}`), { recursive: true });
    await Deno.writeTextFile(`${dir}/${n}`, n);
  }
  const plugin = memdirPlugin({ dir });
  const captured = await captureInto(tmp.path, [plugin]);
  // Every other one removed (to be added back), new ones beside, one changed.
  for (const n of ["a.md", "a0", "\uFFFD.md", "z"]) await Deno.remove(`${dir}/${n}`);
  for (const n of ["a-new", "a/y", "b/c/e", "\u{1F601}.md"]) {
    await Deno.writeTextFile(`${dir}/${n}`, n);
  }
  await Deno.writeTextFile(`${dir}/b/c/d`, "changed");
  const plan = await plugin.plan!({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts,
    signal: new AbortController().signal,
    progress: { progress() {}, warn() {} },
  });
  const rel = (t: string) => t.slice(dir.length + 1);
  const want: [string, string][] = [
    ["a-new", "remove file"],
    ["a.md", "add file"],
    ["a/y", "remove file"],
    ["a0", "add file"],
    ["b/c/d", "replace file"],
    ["b/c/e", "remove file"],
    ["z", "add file"],
    ["\u{1F601}.md", "remove file"],
    ["\uFFFD.md", "add file"],
  ];
  // (sorted by target as UTF-16 strings: the astral names before U+FFFD)
  assert.deepEqual(
    plan.map((p) => [rel(p.target), p.action]),
    want.sort((x, y) => x[0] < y[0] ? -1 : 1),
  );
});

Deno.test("memdirPlugin() names a missing memory dir", async () => {
  await using tmp = await tempDir();
  await assert.rejects(
    () => captureInto(tmp.path, [memdirPlugin({ dir: `${tmp.path}/nope` })]),
    (e: unknown) => e instanceof NotFoundError && e.message.includes(`${tmp.path}/nope`),
  );
});

Deno.test("memdirPlugin() skips a file removed while the capture runs, with a warning", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/a`, "a");
  await Deno.writeTextFile(`${dir}/b`, "b");
  const redactor = fakeRedactor();
  // The agent deletes b while a is redacted (small files go through redactBytes, large ones
  // through redactFile: either way).
  const redactFile = redactor.redactFile;
  redactor.redactFile = async (src, dest, artifact) => {
    if (artifact === "memdir/a") await Deno.remove(`${dir}/b`);
    return await redactFile(src, dest, artifact);
  };
  const redactBytes = redactor.redactBytes;
  redactor.redactBytes = (bytes, artifact) => {
    if (artifact === "memdir/a") Deno.removeSync(`${dir}/b`);
    return redactBytes(bytes, artifact);
  };
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })], redactor);
  assert.deepEqual(captured.manifest.artifacts.map((a) => a.path), ["memdir/a"]);
  assert.equal(captured.warnings.length, 1);
  assert.match(captured.warnings[0]!, /memdir\/b: it was removed/);
  assert.equal((captured.manifest.captures.memdir as { vanished: number }).vanished, 1);
});

/** Restores with `payloadMovable` set, as the engine does with its own extraction. */
async function restoreMovable(
  plugin: ReturnType<typeof memdirPlugin>,
  captured: Awaited<ReturnType<typeof captureInto>>,
  staged: string,
): Promise<void> {
  // Extraction gives every file its artifact's mode; captureInto() does not.
  for (const a of captured.manifest.artifacts) {
    await Deno.chmod(`${captured.payloadDir}/${a.path}`, a.mode ?? 0o644);
  }
  await plugin.restore({
    manifest: captured.manifest,
    artifacts: captured.manifest.artifacts.filter((a) => plugin.owns(a.path)),
    payloadDir: captured.payloadDir,
    payloadMovable: true,
    stage: () => Promise.resolve(staged),
    signal: new AbortController().signal,
    progress: recordingProgress(),
  });
}

Deno.test("memdirPlugin() moves a movable payload into staging, keeping what staging already holds", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  await makeMemdir(dir);
  const want = await treeOf(dir);
  delete want["notes/escape"];
  delete want["abs-link"];
  const plugin = memdirPlugin({ dir });

  const captured = await captureInto(`${tmp.path}/a`, [plugin]);
  const staged = `${tmp.path}/staged-a`;
  await Deno.mkdir(staged);
  await restoreMovable(plugin, captured, staged);
  assert.deepEqual(await treeOf(staged), want);
  assert.equal((await Deno.stat(`${staged}/run.sh`)).mode! & 0o777, 0o755);
  assert.deepEqual(await Array.fromAsync(Deno.readDir(`${captured.payloadDir}/memdir`)), []);

  // A top-level entry another plugin already staged is merged into, not replaced.
  const again = await captureInto(`${tmp.path}/b`, [plugin]);
  const staged2 = `${tmp.path}/staged-b`;
  await Deno.mkdir(`${staged2}/notes`, { recursive: true });
  await Deno.writeTextFile(`${staged2}/notes/other.md`, "kept\n");
  await restoreMovable(plugin, again, staged2);
  const got = await treeOf(staged2);
  assert.ok(got["notes/other.md"]);
  delete got["notes/other.md"];
  assert.deepEqual(got, want);
});

const shm = await Deno.stat("/dev/shm").catch(() => undefined);
Deno.test({
  name: "memdirPlugin() copies a movable payload on another filesystem",
  ignore: shm === undefined || !shm.isDirectory || shm.dev === (await Deno.stat(Deno.cwd())).dev,
  fn: async () => {
    await using tmp = await tempDir();
    const far = await Deno.makeTempDir({ dir: "/dev/shm" });
    try {
      const dir = `${tmp.path}/mem`;
      await Deno.mkdir(dir);
      await makeMemdir(dir);
      const want = await treeOf(dir);
      delete want["notes/escape"];
      delete want["abs-link"];
      const plugin = memdirPlugin({ dir });
      const captured = await captureInto(far, [plugin]);
      const staged = `${tmp.path}/staged`;
      await Deno.mkdir(staged);
      await restoreMovable(plugin, captured, staged);
      assert.deepEqual(await treeOf(staged), want);
    } finally {
      await Deno.remove(far, { recursive: true });
    }
  },
});

const AKIA = "AKIAZ7ZQWUXYVDCBA234";

/** Every file under `dir`, relative. */
function filesUnder(dir: string, rel = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(posix.join(dir, rel))) {
    const r = rel === "" ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(dir, r));
    else out.push(r);
  }
  return out.sort();
}

Deno.test("memdirPlugin() redacts small files from the bytes it read, staging only large ones", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(`${dir}/sub`, { recursive: true });
  const plain = "no secret here\n".repeat(100);
  await Deno.writeTextFile(`${dir}/plain.md`, plain);
  await Deno.writeTextFile(`${dir}/sub/secret.md`, `key ${AKIA} used\n`);
  const big = "x".repeat(1 << 20) + `\nkey ${AKIA}\n`;
  await Deno.writeTextFile(`${dir}/big.md`, big);
  await Deno.writeFile(`${dir}/bin`, new Uint8Array([0, 1, 2, 3]));
  const key = new Uint8Array(32).fill(7);
  const redactor = createRedactor({ packs: [secretsPack], key });
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })], redactor);
  const payload = `${captured.payloadDir}/memdir`;
  assert.equal(await Deno.readTextFile(`${payload}/plain.md`), plain);
  const secret = await Deno.readTextFile(`${payload}/sub/secret.md`);
  assert.match(secret, /^key \[REDACTED:aws-access-key-id:[0-9a-f]{8}\] used\n$/);
  const bigOut = await Deno.readTextFile(`${payload}/big.md`);
  assert.ok(!bigOut.includes(AKIA) && bigOut.includes("[REDACTED:aws-access-key-id:"));
  assert.deepEqual(await Deno.readFile(`${payload}/bin`), new Uint8Array([0, 1, 2, 3]));
  // Only the large file went through a staged copy.
  assert.deepEqual(filesUnder(`${tmp.path}/staging/memdir`), ["memdir/big.md"]);
  // Same bytes and report as redacting each file through redactFile.
  const ref = createRedactor({ packs: [secretsPack], key });
  for (const rel of ["big.md", "bin", "plain.md", "sub/secret.md"]) {
    const dest = `${tmp.path}/ref.out`;
    const wrote = await ref.redactFile(`${dir}/${rel}`, dest, `memdir/${rel}`);
    const want = wrote ? await Deno.readFile(dest) : await Deno.readFile(`${dir}/${rel}`);
    assert.deepEqual(await Deno.readFile(`${payload}/${rel}`), want, rel);
  }
  assert.deepEqual(redactor.report(), ref.report());
});

Deno.test("memdirPlugin() refuses to pack an old file that changed after redaction found nothing in it, keeps a recent one as checked", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  await Deno.writeTextFile(`${dir}/a.md`, "nothing to hide\n");
  await Deno.writeTextFile(`${dir}/b.md`, "nothing here either\n");
  await Deno.writeTextFile(`${dir}/c.md`, "written a moment ago\n");
  // a.md and b.md were last written an hour ago; c.md just now.
  const hourAgo = new Date(Date.now() - 3600_000);
  await Deno.utime(`${dir}/a.md`, hourAgo, hourAgo);
  await Deno.utime(`${dir}/b.md`, hourAgo, hourAgo);
  const staging = `${tmp.path}/staging`;
  await Deno.mkdir(staging);
  const redactor = createRedactor({ packs: [secretsPack], key: new Uint8Array(32).fill(7) });
  const result = await memdirPlugin({ dir }).capture({
    staging,
    redactor,
    signal: new AbortController().signal,
    progress: noopProgress,
  });
  // The agent writes a secret of the same length into a.md after it was checked.
  const a = "nothing to hide\n";
  await Deno.writeTextFile(`${dir}/a.md`, `${AKIA}`.padEnd(a.length - 1, " ") + "\n");
  const [first, second, third] = result.artifacts;
  assert.equal(first!.path, "memdir/a.md");
  assert.equal(first!.size, a.length);
  await assert.rejects(
    () => first!.open(),
    (e: unknown) =>
      e instanceof MemsnapError && /memdir\/a\.md.*changed after it was redacted/.test(e.message),
  );
  // An unchanged one packs its exact bytes.
  let text = "";
  for await (const c of await second!.open()) text += new TextDecoder().decode(c);
  assert.equal(text, "nothing here either\n");
  // One written lately is kept as checked: the agent writing to it again changes nothing.
  await Deno.writeTextFile(`${dir}/c.md`, `${AKIA} appended\n`, { append: true });
  text = "";
  for await (const c of await third!.open()) text += new TextDecoder().decode(c);
  assert.equal(text, "written a moment ago\n");
  assert.equal(third!.size, text.length);
});

Deno.test("memdirPlugin() appends redacted files to one spill file once the bytes it holds reach 8 MiB", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/mem`;
  await Deno.mkdir(dir);
  // 20 redacted files of ~1 MiB: the first 8 MiB are held, the rest spilled.
  const body = (i: number) =>
    `${String(i).padStart(2, "0")} SECRET123\n` + "y".repeat((1 << 20) - 64) + "\n";
  for (let i = 0; i < 20; i++) {
    await Deno.writeTextFile(`${dir}/f${String(i).padStart(2, "0")}.md`, body(i));
  }
  const captured = await captureInto(tmp.path, [memdirPlugin({ dir })], fakeRedactor());
  // No staged file per note: the spilled ones are back to back in one file.
  assert.deepEqual(filesUnder(`${tmp.path}/staging/memdir`), ["memdir.spill"]);
  const out = body(0).replace("SECRET123", "[REDACTED:fake:00000000]").length;
  const spilled = Deno.statSync(`${tmp.path}/staging/memdir/memdir.spill`).size / out;
  assert.ok(Number.isInteger(spilled) && spilled >= 4 && spilled < 20, `${spilled} spilled`);
  for (let i = 0; i < 20; i++) {
    const name = `f${String(i).padStart(2, "0")}.md`;
    assert.equal(
      await Deno.readTextFile(`${captured.payloadDir}/memdir/${name}`),
      body(i).replace("SECRET123", "[REDACTED:fake:00000000]"),
    );
  }
});
