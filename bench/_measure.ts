/**
 * Helpers shared by the benchmark scripts (private): sizes, shell quoting, and one measured
 * run of a shell script under `/usr/bin/time`.
 *
 * @module
 */
import { join } from "node:path";

/** Parses a size such as `100M`, `1G`, `1.5GiB`. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]?)i?B?$/i.exec(s.trim());
  if (!m) throw new Error(`Cannot parse --size ${s}: use e.g. 100M, 1G`);
  const mult = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase()]!;
  return Math.round(Number(m[1]) * mult);
}

/** A size as `1GiB`, `256MiB`. */
export function sizeLabel(size: number): string {
  return size >= 1024 ** 3
    ? `${+(size / 1024 ** 3).toFixed(2)}GiB`
    : `${+(size / 1024 ** 2).toFixed(0)}MiB`;
}

/** A string quoted for `sh`. */
export const q = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

/** The median of some numbers. */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** One measured run. */
export interface Sample {
  seconds: number;
  rssMiB: number;
  /** User + system CPU seconds of the process tree (robust to other jobs' load). */
  cpu: number;
}

/**
 * Runs `sh -c script` under /usr/bin/time (its report in `tmp`); returns wall time, peak RSS
 * and CPU time. Unless `sync` is false, dirty pages are written out first (`sync`, not timed):
 * a step must not pay for the writeback of the one before it. (Each round's native pipeline
 * truncates and rewrites its output file, and ext4 then writes the 60 MB out as the file
 * closes, during the next step: at 100 MiB the snapshot right after it took 1.66-1.72 s
 * instead of 1.39-1.47.)
 */
export async function measure(
  script: string,
  tmp: string,
  sync = true,
): Promise<Sample & { stdout: string }> {
  const timeFile = join(tmp, "time.txt");
  if (sync) await new Deno.Command("sync").output();
  const t0 = performance.now();
  const out = await new Deno.Command("/usr/bin/time", {
    args: ["-f", "%M %U %S", "-o", timeFile, "sh", "-c", script],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const seconds = (performance.now() - t0) / 1000;
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `Cannot run the benchmark step: \`${script}\` exited ${out.code}: ${
        new TextDecoder().decode(out.stderr).slice(-2000)
      }`,
    );
  }
  const [kib, user, sys] = (await Deno.readTextFile(timeFile)).trim().split("\n").at(-1)!
    .split(" ").map(Number);
  return { seconds, rssMiB: kib! / 1024, cpu: user! + sys!, stdout };
}

/**
 * The CLI as `deno task memsnap` runs it (the same `deno run` flags: permissions, V8 flags),
 * as a shell command prefix: `<deno> run <flags> <repo>/cli.ts`.
 */
export async function memsnapCommand(repo: string): Promise<string> {
  const task = (JSON.parse(await Deno.readTextFile(join(repo, "deno.json"))) as {
    tasks: Record<string, string>;
  }).tasks.memsnap!;
  const runFlags = /^deno run (.*) cli\.ts$/.exec(task)?.[1];
  if (runFlags === undefined) {
    throw new Error(`Cannot read the run flags of the memsnap task: ${task}`);
  }
  return `${q(Deno.execPath())} run ${runFlags} ${q(join(repo, "cli.ts"))}`;
}
