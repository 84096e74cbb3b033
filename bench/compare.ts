/**
 * memsnap against the native pipeline, side by side in one run.
 *
 *     deno task bench:compare            # ~1 GiB fixture, 3 rounds
 *     deno task bench:compare --quick    # ~100 MiB fixture, 5 rounds
 *     deno task bench:compare --size 512M --rounds 4 [--keep] [--out FILE] [--no-sync]
 *
 * Generates a realistic agent memory (`bench/_fixture.ts`) in a temp dir, then, per round and
 * interleaved so that machine noise hits both sides alike, runs each memsnap operation as a
 * subprocess of the real CLI (`deno run -A cli.ts ...`, start-up included) next to its native
 * baseline, each under `/usr/bin/time` for peak RSS:
 *
 * | memsnap                                   | native baseline                                        |
 * | ----------------------------------------- | ------------------------------------------------------ |
 * | `snapshot --no-redact`                    | `tar --sort=name -cf - HOME \| zstd -3 -T1 \| tee F \| sha256sum` |
 * | `snapshot` (default packs secrets,pii)    | same (reported as MB/s of live bytes)                  |
 * | `snapshot --no-redact --recipient age1…`  | same pipeline with `age -r` before `tee`               |
 * | `verify` (encrypted bundle, no identity)  | `sha256sum BUNDLE`                                     |
 * | `verify` (plaintext bundle, every artifact) | `sha256sum BUNDLE` (the brief's baseline) and `tar -xOf BUNDLE payload.tar.zst \| zstd -d \| sha256sum` |
 * | `restore --no-pre-snapshot`               | `zstd -d -c F \| tar -x -C DIR`                         |
 *
 * With `openssl` on the PATH, two more native pipelines (no target, for reading the ones above)
 * also take the SHA-256 memsnap takes besides the payload's, with the library memsnap hashes
 * with (OpenSSL's libcrypto): `native_checked` hashes the inner tar stream too (what the
 * manifest's artifact hashes cover), `native_restore_checked` hashes the payload file beside
 * the extraction and the inner tar stream as it is extracted (what a restore verifies).
 *
 * In-process: redaction throughput of the default packs on the fixture's text (single core),
 * hook emit overhead against unjs/hookable, and Deno start-up of the CLI (`--help`).
 *
 * Before each measured step, `sync` (not timed) writes out what the step before left dirty
 * (`--no-sync` to skip it). Each memsnap step and its baseline run in alternating order,
 * the baseline first in odd rounds, second in even ones.
 *
 * Prints a table of medians and ratios and writes JSON to `bench/results/<date>-<size>.json`.
 * Never used as a test: the machine is shared and noisy.
 *
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import os from "node:os";
import process from "node:process";
import { createHooks as createHookable } from "hookable";
import { generateFixture } from "./_fixture.ts";
import {
  measure as measureIn,
  median,
  memsnapCommand,
  parseSize,
  q,
  type Sample,
  sizeLabel as label,
} from "./_measure.ts";
import { createHooks } from "../hooks/mod.ts";
import { createRedactor, piiPack, secretsPack } from "../redact/mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean" },
    size: { type: "string" },
    rounds: { type: "string" },
    keep: { type: "boolean" },
    out: { type: "string" },
    "no-sync": { type: "boolean" },
  },
});

const size = flags.size ? parseSize(flags.size) : flags.quick ? 100 * 1024 ** 2 : 1024 ** 3;
const rounds = Number(flags.rounds ?? (flags.quick ? 5 : 3));
const sizeLabel = label(size);
const REPO = new URL("..", import.meta.url).pathname;
const MIB = 1024 ** 2;

const tmp = await Deno.makeTempDir({ prefix: "memsnap-compare-" });
const log = (s: string): void => console.error(s);

/** One measured run, the steps' dirty pages written out first unless `--no-sync`. */
const measure = (script: string) => measureIn(script, tmp, !flags["no-sync"]);

async function tool(cmd: string, args: string[]): Promise<string> {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(o.stdout).trim() || new TextDecoder().decode(o.stderr).trim();
  } catch {
    return "missing";
  }
}

// ---------------------------------------------------------------------------------------------
log(`memsnap bench:compare: ${sizeLabel} fixture, ${rounds} rounds, in ${tmp}`);
const tGen = performance.now();
const fx = await generateFixture(join(tmp, "home"), size);
log(
  `fixture: ${(fx.bytes / MIB).toFixed(1)} MiB live (${fx.files} memory files, ` +
    `${(fx.textBytes / MIB).toFixed(1)} MiB text) in ${
      ((performance.now() - tGen) / 1000).toFixed(1)
    } s`,
);

const keygen = await new Deno.Command("age-keygen", { args: ["-o", join(tmp, "age.key")] })
  .output();
if (!keygen.success) throw new Error("Cannot run age-keygen");
const identityFile = join(tmp, "age.key");
const recipient = /public key: (age1[0-9a-z]+)/.exec(await Deno.readTextFile(identityFile))?.[1] ??
  (await tool("age-keygen", ["-y", identityFile]));

const sources = [
  `--memdir ${q(fx.memdir)}`,
  ...Object.entries(fx.sqlite).map(([n, p]) => `--sqlite ${q(`${n}=${p}`)}`),
  ...Object.entries(fx.state).map(([n, p]) => `--state ${q(`${n}=${p}`)}`),
].join(" ");
// The CLI runs as `deno task memsnap` runs it.
const deno = await memsnapCommand(REPO);
const nativeOut = join(tmp, "native.tar.zst");
const nativeAgeOut = join(tmp, "native.tar.zst.age");
const nativeCheckedOut = join(tmp, "native-checked.tar.zst");
const hasOpenssl = (await tool("openssl", ["version"])) !== "missing";
/**
 * `pipeline`, its `{tee}` replaced by a tee into a fifo that `openssl dgst -sha256` reads, and
 * each of `files` hashed alongside; waits for every hash.
 */
const withHashes = (fifo: string, pipeline: string, files: string[] = []): string =>
  [
    `rm -f ${q(fifo)} && mkfifo ${q(fifo)}`,
    `openssl dgst -sha256 < ${q(fifo)} > /dev/null & H=$!`,
    ...files.map((f) => `openssl dgst -sha256 ${q(f)} > /dev/null & H="$H $!"`),
    `${pipeline.replace("{tee}", `tee ${q(fifo)}`)}; S=$?`,
    `wait $H; rm -f ${q(fifo)}; exit $S`,
  ].join("\n");
// The native pipeline tars the same files memsnap captures (memory dir with .git, databases,
// state), with names sorted, compresses at level 3 on one thread, hashes and writes the result.
const tarCmd = `tar --sort=name -C ${q(tmp)} -cf - home`;

// Warm-up: fill the page cache and Deno's module cache. (Through a pipe: GNU tar writing to
// /dev/null itself skips reading the files.)
await measure(`${tarCmd} | cat > /dev/null`);
await measure(`${deno} --help > /dev/null`);

const samples: Record<string, Sample[]> = {};
const push = (name: string, s: Sample): void => void (samples[name] ??= []).push(s);
let bundlePlain = "";
let bundleAge = "";
let snapId = "";

const snapshotCmd = (store: string, extra: string): string =>
  `${deno} snapshot --store ${q(store)} --agent bench ${sources} ${extra} --json`;

for (let r = 0; r < rounds; r++) {
  log(`round ${r + 1}/${rounds}`);
  /**
   * Runs a native step and its memsnap counterpart, the native one first in odd rounds and
   * second in even ones: whichever runs second finds the filesystem as the first left it
   * (dirty pages are synced, but ext4 also skips recently freed inodes when it creates
   * files), so neither side always gets the same position.
   */
  const pair = async (native: () => Promise<void>, ours: () => Promise<void>): Promise<void> => {
    if (r % 2 === 0) {
      await native();
      await ours();
    } else {
      await ours();
      await native();
    }
  };
  // Snapshots into fresh stores (old bundles are removed so disk use stays bounded).
  const plainStore = join(tmp, `store-plain-${r}`);
  await pair(
    async () => {
      push("native", await measure(`${tarCmd} | zstd -q -3 -T1 | tee ${q(nativeOut)} | sha256sum`));
      if (!hasOpenssl) return;
      push(
        "native_checked",
        await measure(withHashes(
          join(tmp, "tar.fifo"),
          `${tarCmd} | {tee} | zstd -q -3 -T1 | tee ${q(nativeCheckedOut)} | sha256sum`,
        )),
      );
    },
    async () => {
      const s1 = await measure(snapshotCmd(plainStore, "--no-redact"));
      push("snapshot", s1);
      const res = JSON.parse(s1.stdout.trim().split("\n").at(-1)!);
      bundlePlain = res.path ?? res.result?.path;
      snapId = res.id ?? res.result?.id;
    },
  );
  if (r > 0) await Deno.remove(join(tmp, `store-plain-${r - 1}`), { recursive: true });

  const redStore = join(tmp, `store-redact-${r}`);
  push("snapshot_redact", await measure(snapshotCmd(redStore, "")));
  await Deno.remove(redStore, { recursive: true });

  const ageStore = join(tmp, `store-age-${r}`);
  await pair(
    async () =>
      push(
        "native_age",
        await measure(
          `${tarCmd} | zstd -q -3 -T1 | age -r ${recipient} | tee ${q(nativeAgeOut)} | sha256sum`,
        ),
      ),
    async () => {
      const s3 = await measure(snapshotCmd(ageStore, `--no-redact --recipient ${recipient}`));
      push("snapshot_age", s3);
      const res3 = JSON.parse(s3.stdout.trim().split("\n").at(-1)!);
      bundleAge = res3.path ?? res3.result?.path;
    },
  );
  if (r > 0) await Deno.remove(join(tmp, `store-age-${r - 1}`), { recursive: true });

  // Verify.
  await pair(
    async () => push("sha256sum", await measure(`sha256sum ${q(bundlePlain)}`)),
    async () => push("verify_hash", await measure(`${deno} verify ${q(bundleAge)} --json`)),
  );
  await pair(
    async () =>
      push(
        "native_verify_full",
        await measure(`tar -xOf ${q(bundlePlain)} payload.tar.zst | zstd -q -d | sha256sum`),
      ),
    async () => push("verify_full", await measure(`${deno} verify ${q(bundlePlain)} --json`)),
  );

  // Restore into fresh targets (not the live fixture), one pair per round, all removed at the
  // end: on this project's VMs (ext4 without a journal) creating files right after removing
  // thousands of them is several times slower (the allocator skips recently deleted inodes:
  // tar -x 0.6 s of system time on a quiet filesystem, 4.2 s right after an rm -rf).
  const nativeRestore = join(tmp, `native-restore-${r}`);
  const nativeChecked = join(tmp, `native-restore-checked-${r}`);
  const restoreHome = join(tmp, `restore-${r}`);
  await Deno.mkdir(nativeRestore);
  await Deno.mkdir(nativeChecked);
  await Deno.mkdir(join(restoreHome, "state"), { recursive: true });
  await Deno.mkdir(join(restoreHome, "memory"));
  const targets = [
    `--memdir ${q(join(restoreHome, "memory"))}`,
    ...Object.keys(fx.sqlite).map((n) =>
      `--sqlite ${q(`${n}=${join(restoreHome, `${n}.sqlite`)}`)}`
    ),
    ...Object.keys(fx.state).map((n) =>
      `--state ${q(`${n}=${join(restoreHome, "state", `${n}.json`)}`)}`
    ),
  ].join(" ");
  await pair(
    async () => {
      push(
        "native_restore",
        await measure(`zstd -q -d -c ${q(nativeOut)} | tar -x -C ${q(nativeRestore)}`),
      );
      if (!hasOpenssl) return;
      push(
        "native_restore_checked",
        await measure(withHashes(
          join(tmp, "tar.fifo"),
          `zstd -q -d -c ${q(nativeOut)} | {tee} | tar -x -C ${q(nativeChecked)}`,
          [nativeOut],
        )),
      );
    },
    async () =>
      push(
        "restore",
        await measure(
          `${deno} restore ${q(snapId)} --store ${
            q(join(tmp, `store-plain-${r}`))
          } --agent bench ${targets} --no-pre-snapshot --json`,
        ),
      ),
  );
  push("deno_startup", await measure(`${deno} --help > /dev/null`));
}

// In-process figures.
const key = new Uint8Array(32).fill(9);
const text = fx.sample;
const textMB = new TextEncoder().encode(text).length / 1e6;
// Steady state, as a large memory's text sees it: V8 tiers the engine's code up over the first
// tens of MB (runs right after a 1 MiB warm-up measured 74-180 MB per CPU-second, after ~50 MB
// 210-250), so the whole sample is redacted a few times before the measured runs.
const WARM_PASSES = Math.max(3, Math.ceil(48 / textMB));
for (let i = 0; i < WARM_PASSES; i++) {
  createRedactor({ packs: [secretsPack, piiPack], key }).redactString(text, "warm-up");
}
const redactRates: number[] = [];
// MB per CPU-second of this process: what one core does, however loaded the machine is (wall
// MB/s on a shared 2-core machine measures the other jobs as much as the engine).
const redactCpuRates: number[] = [];
const cpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
for (let i = 0; i < 7; i++) {
  const red = createRedactor({ packs: [secretsPack, piiPack], key });
  const t0 = performance.now();
  const c0 = cpuSeconds();
  red.redactString(text, "sample");
  redactCpuRates.push(textMB / (cpuSeconds() - c0));
  redactRates.push(textMB / ((performance.now() - t0) / 1000));
}

async function emitNs(kind: "memsnap" | "hookable"): Promise<number> {
  const N = 100_000;
  let calls = 0;
  // deno-lint-ignore require-await
  const h = async (): Promise<void> => void calls++;
  const run = kind === "memsnap"
    ? (() => {
      const hooks = createHooks();
      hooks.on("pre-dream", h, { plugin: "p" });
      return () => hooks.emit("pre-dream", { agentId: "a" });
    })()
    : (() => {
      const hooks = createHookable<{ "pre-dream": (c: { agentId: string }) => Promise<void> }>();
      hooks.hook("pre-dream", h);
      return () => hooks.callHook("pre-dream", { agentId: "a" });
    })();
  for (let i = 0; i < 10_000; i++) await run();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await run();
  return ((performance.now() - t0) * 1e6) / N;
}
const hookSamples = { memsnap: [] as number[], hookable: [] as number[] };
for (let i = 0; i < 3; i++) {
  hookSamples.hookable.push(await emitNs("hookable"));
  hookSamples.memsnap.push(await emitNs("memsnap"));
}

// ---------------------------------------------------------------------------------------------
const med = (
  name: string,
): { seconds: number; cpu: number; rssMiB: number; maxRssMiB: number } => {
  const s = samples[name] ?? [];
  return {
    seconds: median(s.map((x) => x.seconds)),
    cpu: median(s.map((x) => x.cpu)),
    rssMiB: median(s.map((x) => x.rssMiB)),
    maxRssMiB: Math.max(...s.map((x) => x.rssMiB)),
  };
};
const liveMB = fx.bytes / 1e6;
const ratio = (a: string, b: string): number => med(a).seconds / med(b).seconds;
const cpuRatio = (a: string, b: string): number => med(a).cpu / med(b).cpu;
const rows: [string, string, string, number, number | null][] = [
  ["snapshot", "native", "≤ 1.25", ratio("snapshot", "native"), 1.25],
  ["snapshot_age", "native_age", "≤ 1.5", ratio("snapshot_age", "native_age"), 1.5],
  ["verify_hash", "sha256sum", "≤ 1.1", ratio("verify_hash", "sha256sum"), 1.1],
  ["verify_full", "sha256sum", "(≤ 1.1)", ratio("verify_full", "sha256sum"), null],
  ["verify_full", "native_verify_full", "", ratio("verify_full", "native_verify_full"), null],
  ["restore", "native_restore", "≤ 1.25", ratio("restore", "native_restore"), 1.25],
  ["snapshot_redact", "native", "", ratio("snapshot_redact", "native"), null],
  ...(hasOpenssl
    ? [
      ["snapshot", "native_checked", "", ratio("snapshot", "native_checked"), null],
      ["restore", "native_restore_checked", "", ratio("restore", "native_restore_checked"), null],
    ] as [string, string, string, number, number | null][]
    : []),
];
const bundleSize = (await Deno.stat(bundlePlain)).size;
const nativeSize = (await Deno.stat(nativeOut)).size;
const result = {
  date: new Date().toISOString(),
  machine: {
    cpus: navigator.hardwareConcurrency,
    cpu_model: os.cpus()[0]?.model ?? "unknown",
    mem_gib: +(os.totalmem() / 1024 ** 3).toFixed(1),
    load_avg_at_end: os.loadavg().map((x) => +x.toFixed(2)),
    deno: Deno.version.deno,
    zstd: await tool("zstd", ["--version"]),
    tar: (await tool("tar", ["--version"])).split("\n")[0],
    age: await tool("age", ["--version"]),
    openssl: await tool("openssl", ["version"]),
    git_rev: await tool("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]),
  },
  fixture: {
    size_target: size,
    live_bytes: fx.bytes,
    text_bytes: fx.textBytes,
    memory_files: fx.files,
    bundle_bytes: bundleSize,
    native_tar_zst_bytes: nativeSize,
  },
  rounds,
  sync_before_steps: !flags["no-sync"],
  /** Each pair ran baseline first in odd rounds, memsnap first in even ones. */
  order_alternates: true,
  steps: Object.fromEntries(
    Object.keys(samples).map((k) => [k, {
      median_s: +med(k).seconds.toFixed(3),
      median_cpu_s: +med(k).cpu.toFixed(3),
      median_rss_mib: +med(k).rssMiB.toFixed(1),
      max_rss_mib: +med(k).maxRssMiB.toFixed(1),
      mb_per_s_live: +(liveMB / med(k).seconds).toFixed(1),
      samples_s: samples[k]!.map((x) => +x.seconds.toFixed(3)),
    }]),
  ),
  ratios: rows.map(([a, b, target, r, limit]) => ({
    memsnap: a,
    baseline: b,
    ratio: +r.toFixed(3),
    cpu_ratio: +cpuRatio(a, b).toFixed(3),
    target,
    met: limit === null ? null : r <= limit,
  })),
  peak_rss_mib: Math.max(
    ...["snapshot", "snapshot_redact", "snapshot_age", "verify_hash", "verify_full", "restore"]
      .map((k) => med(k).maxRssMiB),
  ),
  redaction: {
    in_process_mb_per_s_single_core: +median(redactRates).toFixed(1),
    in_process_mb_per_cpu_s: +median(redactCpuRates).toFixed(1),
    in_process_mb_per_cpu_s_samples: redactCpuRates.map((x) => +x.toFixed(1)),
    warm_up_passes: WARM_PASSES,
    text_mb: +textMB.toFixed(1),
    snapshot_redact_mb_per_s_live: +(liveMB / med("snapshot_redact").seconds).toFixed(1),
    redaction_cost_s: +(med("snapshot_redact").seconds - med("snapshot").seconds).toFixed(3),
    text_mb_per_s_marginal: +(
      (fx.textBytes / 1e6) / (med("snapshot_redact").seconds - med("snapshot").seconds)
    ).toFixed(1),
  },
  hooks: {
    emit_1_async_handler_ns: {
      memsnap: +median(hookSamples.memsnap).toFixed(0),
      hookable: +median(hookSamples.hookable).toFixed(0),
      ratio: +(median(hookSamples.memsnap) / median(hookSamples.hookable)).toFixed(2),
    },
  },
};

const pad = (s: string, n: number): string => s.padEnd(n);
const lines = [
  "",
  `memsnap vs native, ${sizeLabel} target (${
    (fx.bytes / MIB).toFixed(1)
  } MiB live, ${fx.files} memory files), ${rounds} rounds, medians`,
  "",
  `${pad("step", 24)} ${pad("median s", 9)} ${pad("CPU s", 8)} ${pad("MB/s", 8)} ${
    pad("peak RSS MiB", 13)
  }`,
  ...Object.entries(result.steps).map(([k, v]) =>
    `${pad(k, 24)} ${pad(v.median_s.toFixed(2), 9)} ${pad(v.median_cpu_s.toFixed(2), 8)} ${
      pad(v.mb_per_s_live.toFixed(0), 8)
    } ${pad(v.max_rss_mib.toFixed(0), 13)}`
  ),
  "",
  `${pad("memsnap", 16)} ${pad("vs", 24)} ${pad("ratio", 7)} ${pad("CPU ratio", 10)} target`,
  ...result.ratios.map((x) =>
    `${pad(x.memsnap, 16)} ${pad(x.baseline, 24)} ${pad(x.ratio.toFixed(2), 7)} ${
      pad(x.cpu_ratio.toFixed(2), 10)
    } ${x.target} ${x.met === null ? "" : x.met ? "met" : "NOT met"}`
  ),
  "",
  `peak RSS of memsnap processes: ${result.peak_rss_mib.toFixed(0)} MiB (target ≤ 256)`,
  `redaction, in-process single core, secrets+pii: ${result.redaction.in_process_mb_per_cpu_s} MB per CPU-second (target ≥ 150), ${result.redaction.in_process_mb_per_s_single_core} MB/s of wall time`,
  `snapshot with redaction: ${result.redaction.snapshot_redact_mb_per_s_live} MB/s of live bytes; marginal cost ${result.redaction.redaction_cost_s} s = ${result.redaction.text_mb_per_s_marginal} MB/s of text`,
  `hook emit, 1 async handler: memsnap ${result.hooks.emit_1_async_handler_ns.memsnap} ns, hookable ${result.hooks.emit_1_async_handler_ns.hookable} ns (${result.hooks.emit_1_async_handler_ns.ratio}x)`,
  `bundle ${(bundleSize / MIB).toFixed(1)} MiB, native tar.zst ${
    (nativeSize / MIB).toFixed(1)
  } MiB`,
];
console.log(lines.join("\n"));

const outFile = flags.out ??
  join(REPO, "bench", "results", `${result.date.slice(0, 10)}-${sizeLabel}.json`);
await Deno.mkdir(join(REPO, "bench", "results"), { recursive: true });
await Deno.writeTextFile(outFile, JSON.stringify(result, null, 2) + "\n");
log(`wrote ${outFile}`);
if (!flags.keep) await Deno.remove(tmp, { recursive: true });
else log(`kept ${tmp}`);
