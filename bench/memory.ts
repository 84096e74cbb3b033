/**
 * Peak memory against the 256 MiB target "whatever the input size", on a memory of few, large
 * objects (nothing may hold a whole artifact, git object or bundle), or of many small files
 * (`--files`: what memory grows with is their number).
 *
 *     deno task bench:memory             # ~1 GiB fixture of large objects
 *     deno task bench:memory --quick     # ~256 MiB
 *     deno task bench:memory --size 4G [--keep] [--out FILE]
 *     deno task bench:memory --files 200000   # 200,000 small notes
 *
 * The fixture (`generateLargeFixture` in `bench/_fixture.ts`): a git memory dir whose transcript
 * (35% of the bytes) grew over four commits and was packed by `git gc` (the older versions as
 * deltas of the newest while under git's 512 MiB `core.bigFileThreshold`), a packed binary
 * attachment (10%), a few notes; a SQLite database of text (35%) and one of vectors (15%).
 * With `--files N` (`generateManyFilesFixture`): N notes of 200 bytes to 2 KiB in 1,000
 * directories, committed, 5% of them edited in a second commit, and small databases: the
 * unredacted snapshot packs two artifacts per note (the file and its loose git object).
 *
 * Each step is a CLI subprocess (`deno task memsnap`'s flags), under `/usr/bin/time`:
 * a snapshot with the default redaction packs (its git history rewritten: every version of the
 * transcript read, redacted and packed again), a snapshot without redaction (the object store
 * as files), a full verify of each, `diff` of the two, and a restore of each into fresh targets. Prints wall time,
 * CPU time and peak RSS per step, and writes JSON to `bench/results/<date>-memory-<size>.json`.
 * Never used as a test: the machine is shared and noisy.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import os from "node:os";
import { generateLargeFixture, generateManyFilesFixture } from "./_fixture.ts";
import { measure, memsnapCommand, parseSize, q, type Sample, sizeLabel } from "./_measure.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    size: { type: "string" },
    files: { type: "string" },
    keep: { type: "boolean" },
    out: { type: "string" },
  },
});
const files = flags.files === undefined ? undefined : Number(flags.files);
if (files !== undefined && (!Number.isSafeInteger(files) || files < 1)) {
  throw new Error(`--files ${flags.files}: not a positive integer`);
}
const size = flags.size ? parseSize(flags.size) : flags.quick ? 256 * 1024 ** 2 : 1024 ** 3;
const label = files === undefined ? sizeLabel(size) : `${files}-files`;
const TARGET_MIB = 256;
const REPO = new URL("..", import.meta.url).pathname;
const MIB = 1024 ** 2;
const log = (s: string): void => console.error(s);

// The CLI runs as `deno task memsnap` runs it.
const deno = await memsnapCommand(REPO);

const tmp = await Deno.makeTempDir({ prefix: "memsnap-memory-" });
try {
  log(
    `memsnap bench:memory: ${
      files === undefined ? `${label} fixture of large objects` : `${files} small notes`
    }, in ${tmp}`,
  );
  const t0 = performance.now();
  const fx = files === undefined
    ? await generateLargeFixture(join(tmp, "home"), size)
    : await generateManyFilesFixture(join(tmp, "home"), files);
  const pack = await new Deno.Command("git", {
    args: ["-C", fx.memdir, "count-objects", "-v"],
    stdout: "piped",
  }).output();
  const counts = Object.fromEntries(
    new TextDecoder().decode(pack.stdout).trim().split("\n").map((l) => l.split(": ")),
  );
  log(
    `fixture: ${(fx.bytes / MIB).toFixed(1)} MiB live, ${fx.files} files, git: ${
      counts["in-pack"]
    } packed objects ` +
      `(${(Number(counts["size-pack"]) / 1024).toFixed(1)} MiB), ${counts.count} loose, in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
  );
  const sources = [
    `--memdir ${q(fx.memdir)}`,
    ...Object.entries(fx.sqlite).map(([n, p]) => `--sqlite ${q(`${n}=${p}`)}`),
    ...Object.entries(fx.state).map(([n, p]) => `--state ${q(`${n}=${p}`)}`),
  ].join(" ");
  const store = join(tmp, "store");
  const steps: Record<string, Sample> = {};
  const step = async (name: string, script: string): Promise<string> => {
    const s = await measure(script, tmp);
    steps[name] = { seconds: s.seconds, cpu: s.cpu, rssMiB: s.rssMiB };
    log(`  ${name.padEnd(20)} ${s.seconds.toFixed(1).padStart(7)} s  ${s.rssMiB.toFixed(0)} MiB`);
    return s.stdout;
  };
  const idOf = (stdout: string): string => JSON.parse(stdout.trim().split("\n").at(-1)!).id;
  const redacted = idOf(
    await step("snapshot", `${deno} snapshot --store ${q(store)} --agent a ${sources} --json`),
  );
  const plain = idOf(
    await step(
      "snapshot_no_redact",
      `${deno} snapshot --store ${q(store)} --agent a ${sources} --no-redact --json`,
    ),
  );
  await step("verify", `${deno} verify --store ${q(store)} ${redacted} --json`);
  await step("verify_no_redact", `${deno} verify --store ${q(store)} ${plain} --json`);
  // Both artifact lists at once, and every payload part that differs extracted and compared
  // (the two snapshots differ in every git artifact: objects against a bundle).
  await step("diff", `${deno} diff --store ${q(store)} ${redacted} ${plain} --json`);
  for (
    const [name, id] of [["restore", redacted], ["restore_no_redact", plain]] as const
  ) {
    const home = join(tmp, name);
    await Deno.mkdir(join(home, "memory"), { recursive: true });
    await Deno.mkdir(join(home, "state"));
    const targets = [
      `--memdir ${q(join(home, "memory"))}`,
      ...Object.keys(fx.sqlite).map((n) => `--sqlite ${q(`${n}=${join(home, `${n}.sqlite`)}`)}`),
      ...Object.keys(fx.state).map((n) =>
        `--state ${q(`${n}=${join(home, "state", `${n}.json`)}`)}`
      ),
    ].join(" ");
    await step(
      name,
      `${deno} restore ${id} --store ${q(store)} --agent a ${targets} --no-pre-snapshot --json`,
    );
    // The restored history is whole: git checks every object.
    const fsck = await new Deno.Command("git", {
      args: ["-C", join(home, "memory"), "fsck", "--no-progress"],
      stderr: "piped",
    }).output();
    if (!fsck.success) {
      throw new Error(`git fsck failed after ${name}: ${new TextDecoder().decode(fsck.stderr)}`);
    }
  }
  const peak = Math.max(...Object.values(steps).map((s) => s.rssMiB));
  log(
    `peak RSS ${peak.toFixed(0)} MiB: ${
      peak <= TARGET_MIB ? "within" : "OVER"
    } the ${TARGET_MIB} MiB target`,
  );
  const result = {
    date: new Date().toISOString(),
    size: label,
    fixture: { live_bytes: fx.bytes, files: fx.files, git: counts },
    target_mib: TARGET_MIB,
    peak_rss_mib: +peak.toFixed(1),
    within_target: peak <= TARGET_MIB,
    steps: Object.fromEntries(
      Object.entries(steps).map(([k, s]) => [k, {
        seconds: +s.seconds.toFixed(2),
        cpu_seconds: +s.cpu.toFixed(2),
        rss_mib: +s.rssMiB.toFixed(1),
      }]),
    ),
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? "unknown",
      mem_gib: +(os.totalmem() / 1024 ** 3).toFixed(1),
      deno: Deno.version.deno,
      loadavg_end: os.loadavg(),
    },
  };
  const out = flags.out ??
    join(REPO, "bench", "results", `${result.date.slice(0, 10)}-memory-${label}.json`);
  await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + "\n");
  log(`wrote ${out}`);
} finally {
  if (flags.keep) log(`kept ${tmp}`);
  else await Deno.remove(tmp, { recursive: true });
}
