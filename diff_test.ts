import assert from "node:assert/strict";
import { type DiffSide, diffSnapshots } from "./diff.ts";
import fc from "fast-check";
import { comparePaths } from "./bundle/_paths.ts";
import type { ManifestArtifact } from "./bundle/types.ts";
import { testHeader } from "./tests/bundle_helpers.ts";
import { createSnapshotter } from "./snapshotter.ts";
import { gitPlugin, memdirPlugin } from "./capture/mod.ts";
import { openStore } from "./store/open_store.ts";
import { loadPacks } from "./redact/mod.ts";
import { GIT_TEST_ENV, interopTest, run, tempDir } from "./tests/_tools.ts";

/**
 * git in `dir`, each call a second later than the one before (as committer and author date):
 * git log's order is by committer time. Throws on failure; returns stdout.
 */
function clockedGit(dir: string): (...args: string[]) => Promise<string> {
  let clock = 1_700_000_000;
  return async (...args) => {
    const date = `${clock++} +0000`;
    const env = { ...GIT_TEST_ENV, GIT_COMMITTER_DATE: date, GIT_AUTHOR_DATE: date };
    const r = await run("git", ["-C", dir, ...args], { env });
    if (r.code !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
    return r.text;
  };
}

interopTest(
  "diffSnapshots() lists the commits between two HEADs as git log does, for both layouts and a rewritten history",
  ["git"],
  async () => {
    await using dir = await tempDir();
    const mem = `${dir.path}/mem`;
    const git = clockedGit(mem);
    await Deno.mkdir(mem);
    await git("init", "-q", "-b", "main");
    const commit = async (file: string, text: string, subject: string): Promise<void> => {
      await Deno.writeTextFile(`${mem}/${file}`, text);
      await git("add", "-A");
      await git("commit", "-q", "-m", `${subject}\n\nbody of ${subject}`);
    };
    await commit("a.md", "reach jane.doe@acme.io", "first");
    await commit("b.md", "b", "second ünïcode");
    const store = await openStore(`${dir.path}/store`);
    try {
      const layouts = ["objects", "bundle"] as const;
      const snaps = layouts.map((layout) =>
        createSnapshotter({
          store,
          agent: layout,
          captures: [memdirPlugin({ dir: mem }), gitPlugin({ dir: mem, layout })],
        })
      );
      // And a redacted one: its bundle holds the history rewritten (other commit ids, the same
      // subjects), which the manifest's HEAD names.
      const redacted = createSnapshotter({
        store,
        agent: "redacted",
        captures: [memdirPlugin({ dir: mem }), gitPlugin({ dir: mem })],
        redact: { packs: await loadPacks("secrets,pii"), key: new Uint8Array(32).fill(3) },
      });
      const take = async () => {
        const plain = await Promise.all(snaps.map((s) => s.snapshot({ redact: false })));
        return [...plain, await redacted.snapshot()];
      };
      const head = async () => (await git("rev-parse", "HEAD")).trim();
      const a = await take();
      const headA = await head();
      // A side branch merged back: the walk goes by committer time across both lines.
      await git("checkout", "-q", "-b", "side");
      await commit("s.md", "s", "side work");
      await git("checkout", "-q", "main");
      await commit("c.md", "c", "third");
      await git("merge", "-q", "--no-ff", "-m", "merge side", "side");
      await commit("d.md", "d", "fourth");
      const b = await take();
      const headB = await head();
      // History rewritten: back to the second commit, then a new one.
      await git("reset", "-q", "--hard", "HEAD~3");
      await commit("r.md", "r", "rewritten");
      const c = await take();
      const headC = await head();
      const log = async (range: string) =>
        (await git("log", "--format=%H %s", range)).trim().split("\n").filter(Boolean).map((l) => ({
          oid: l.slice(0, 40),
          subject: l.slice(41),
        }));
      for (const [i, layout] of layouts.entries()) {
        const side = async (id: string): Promise<DiffSide> => ({
          manifest: await store.readManifest(id),
          open: () => store.open(id),
        });
        const ab = await diffSnapshots(await side(a[i]!.info.id), await side(b[i]!.info.id));
        assert.equal(ab.git?.head_a, headA, layout);
        assert.equal(ab.git?.head_b, headB, layout);
        assert.deepEqual(ab.git?.commits, await log(`${headA}..${headB}`), layout);
        assert.equal(ab.git?.commits.length, 4, layout);
        assert.deepEqual(ab.git?.removed_commits, [], layout);
        const bc = await diffSnapshots(await side(b[i]!.info.id), await side(c[i]!.info.id));
        assert.deepEqual(bc.git?.commits, await log(`${headB}..${headC}`), layout);
        assert.deepEqual(bc.git?.removed_commits, await log(`${headC}..${headB}`), layout);
        assert.deepEqual(bc.git?.commits.map((x) => x.subject), ["rewritten"], layout);
        assert.equal(bc.git?.removed_commits.length, 4, layout);
        // The memory dir's files come from the manifests; only what is compared is extracted.
        assert.deepEqual(ab.memdir.added, ["c.md", "d.md", "s.md"], layout);
      }
      const subjects = async (range: string) => (await log(range)).map((x) => x.subject);
      const side = async (id: string): Promise<DiffSide> => ({
        manifest: await store.readManifest(id),
        open: () => store.open(id),
      });
      const ab = await diffSnapshots(await side(a[2]!.info.id), await side(b[2]!.info.id));
      assert.notEqual(ab.git?.head_b, headB, "rewritten");
      assert.deepEqual(ab.git?.commits.map((x) => x.subject), await subjects(`${headA}..${headB}`));
      const bc = await diffSnapshots(await side(b[2]!.info.id), await side(c[2]!.info.id));
      assert.deepEqual(bc.git?.commits.map((x) => x.subject), ["rewritten"]);
      assert.deepEqual(
        bc.git?.removed_commits.map((x) => x.subject),
        await subjects(`${headC}..${headB}`),
      );
    } finally {
      await store.close();
    }
  },
);

interopTest(
  "diffSnapshots() reads the log of a bundle whose pack has deltas (indexed whole) as of one without",
  ["git"],
  async () => {
    await using dir = await tempDir();
    const mem = `${dir.path}/mem`;
    await Deno.mkdir(mem);
    const git = clockedGit(mem);
    await git("init", "-q", "-b", "main");
    const note = "a long line of a note that the next commits change a little\n".repeat(300);
    for (let c = 0; c < 4; c++) {
      await Deno.writeTextFile(`${mem}/n.md`, `${note}edit ${c}\n`);
      await git("add", "-A");
      await git("commit", "-q", "-m", `edit ${c}`);
      if (c === 1) await git("gc", "-q", "--aggressive"); // deltas, reused by the bundle
    }
    const store = await openStore(`${dir.path}/store`);
    try {
      const snap = createSnapshotter({
        store,
        agent: "a",
        captures: [memdirPlugin({ dir: mem }), gitPlugin({ dir: mem, layout: "bundle" })],
      });
      const first = await snap.snapshot({ redact: false });
      await Deno.writeTextFile(`${mem}/m.md`, "more");
      await git("add", "-A");
      await git("commit", "-q", "-m", "more");
      const second = await snap.snapshot({ redact: false });
      // The source's pack holds deltas, which the bundle's pack reuses: its log cannot come
      // from its commits alone (diff indexes that pack whole; seen with a trace).
      const verify = await run("git", [
        "-C",
        mem,
        "verify-pack",
        "-v",
        `${mem}/.git/objects/pack/${
          [...Deno.readDirSync(`${mem}/.git/objects/pack`)].find((e) => e.name.endsWith(".idx"))!
            .name
        }`,
      ], { env: GIT_TEST_ENV });
      assert.match(verify.text, /chain length = 1: /, "the source pack has deltas");
      const side = async (id: string): Promise<DiffSide> => ({
        manifest: await store.readManifest(id),
        open: () => store.open(id),
      });
      const d = await diffSnapshots(await side(first.info.id), await side(second.info.id));
      assert.deepEqual(d.git?.commits.map((c) => c.subject), ["more"]);
      const back = await diffSnapshots(await side(second.info.id), await side(first.info.id));
      assert.deepEqual(back.git?.removed_commits.map((c) => c.subject), ["more"]);
    } finally {
      await store.close();
    }
  },
);

Deno.test("diffSnapshots() finds added, removed and changed artifacts as a map of each side would", async () => {
  const header = (id: string) => ({
    ...testHeader({ snapshot_id: id }),
    format: "memsnap-bundle" as const,
    manifest_version: 1,
    payload: {
      path: "payload.tar.zst",
      size: 0,
      sha256: "0".repeat(64),
      compression: "zstd" as const,
      encryption: null,
    },
  });
  const side = (id: string, artifacts: ManifestArtifact[]): DiffSide => ({
    manifest: { ...header(id), artifacts },
    open: () => Promise.reject(new Error("only manifests are compared here")),
  });
  /** The previous algorithm: a map per side, then sorted(). */
  const reference = (xs: ManifestArtifact[], ys: ManifestArtifact[]) => {
    const ma = new Map(xs.map((a) => [a.path, a])), mb = new Map(ys.map((a) => [a.path, a]));
    return {
      added: [...mb.keys()].filter((p) => !ma.has(p)).sort(),
      removed: [...ma.keys()].filter((p) => !mb.has(p)).sort(),
      changed: [...mb.keys()].filter((p) =>
        ma.has(p) &&
        (ma.get(p)!.sha256 !== mb.get(p)!.sha256 || ma.get(p)!.kind !== mb.get(p)!.kind)
      ).sort(),
    };
  };
  const name = fc.constantFrom("a", "a.md", "a/b", "b", "\uFFFD", "\u{1F600}", "é", "z/y");
  const artifact = fc.record({
    path: fc.array(name, { minLength: 1, maxLength: 3 }).map((p) => `memdir/${p.join("/")}`),
    kind: fc.constantFrom("file", "symlink"),
    size: fc.constant(1),
    sha256: fc.constantFrom("a".repeat(64), "b".repeat(64)),
  });
  const list = fc.uniqueArray(artifact, { selector: (a) => a.path, maxLength: 30 });
  await fc.assert(
    fc.asyncProperty(list, list, fc.boolean(), async (xs, ys, inOrder) => {
      const order = (l: ManifestArtifact[]) =>
        inOrder ? [...l].sort((p, q) => comparePaths(p.path, q.path)) : l;
      const d = await diffSnapshots(side("x", order(xs)), side("y", order(ys)));
      assert.deepEqual(d.artifacts, reference(xs, ys));
    }),
    { numRuns: 500 },
  );
});
