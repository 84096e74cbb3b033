/**
 * Redaction throughput and quality.
 *
 * - `deno run -A bench/redact_bench.ts [MB]` prints a report: MB/s of the default packs
 *   (`secrets,pii`) on a generated corpus of realistic notes with occasional secrets (default
 *   64 MB), against baselines in the same run (one plain regex `replace` pass, and `grep -E` /
 *   `sed -E` over the same file when installed), plus precision and recall on the labelled
 *   corpus `tests/fixtures/redact/corpus.tsv`.
 * - `deno bench -A bench/redact_bench.ts` runs the same comparison on 8 MB through Deno.bench.
 *
 * @module
 */
import process from "node:process";
import { createRedactor, piiPack, secretsPack } from "../redact/mod.ts";

const WORDS = (
  "the agent remembered that user prefers short answers and we deployed version on meeting " +
  "notes about config database migration review pull request commit deploy staging production " +
  "logs error timeout retry cache memory index query token password key secret api auth login " +
  "followed up with the team about latency budget dashboards alerts runbook incident postmortem " +
  "customer asked for export of conversation history summarize tomorrow schedule calendar"
).split(" ");

const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Deterministic generator of a notes corpus of about `bytes` bytes; returns text and count. */
export function generateCorpus(bytes: number, seed = 1): { text: string; secrets: number } {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const rs = (n: number, alpha: string): string => {
    let o = "";
    for (let i = 0; i < n; i++) o += alpha[Math.floor(rnd() * alpha.length)];
    return o;
  };
  const secretLines = [
    () => `aws key AKIA${rs(16, B32)} for backups`,
    () => `export GITHUB_TOKEN=ghp_${rs(36, ALNUM)}`,
    () => `DATABASE_URL=postgres://app:${rs(14, ALNUM)}@db.internal:5432/app`,
    () => `password: ${rs(12, ALNUM)}!`,
    () => `reach me at ${rs(6, "abcdefghij")}.${rs(5, "klmnopqrs")}@acme-mail.com`,
    () => `stripe sk_live_${rs(24, ALNUM)}`,
    () => `call +1 415 555 ${String(1000 + Math.floor(rnd() * 8999))}`,
  ];
  const lines: string[] = [];
  let size = 0;
  let secrets = 0;
  while (size < bytes) {
    let line: string;
    const x = rnd();
    if (x < 0.002) {
      line = pick(secretLines)();
      secrets++;
    } else if (x < 0.05) {
      line = `- ${new Date(1700000000000 + Math.floor(rnd() * 1e10)).toISOString()} commit ${
        rs(40, "0123456789abcdef")
      } v${Math.floor(rnd() * 9)}.${Math.floor(rnd() * 20)}.${Math.floor(rnd() * 9)}`;
    } else {
      const n = 6 + Math.floor(rnd() * 14);
      const w: string[] = [];
      for (let i = 0; i < n; i++) w.push(pick(WORDS));
      line = w.join(" ") + (rnd() < 0.3 ? `: ${pick(WORDS)} ${Math.floor(rnd() * 1000)}` : ".");
    }
    lines.push(line);
    size += line.length + 1;
  }
  return { text: lines.join("\n") + "\n", secrets };
}

const KEY = new Uint8Array(32).fill(9);
const BASELINE = /AKIA[A-Z2-7]{16}/g;

/** Precision and recall of the default packs on the labelled corpus. */
export async function labelledQuality(): Promise<
  { tp: number; fp: number; fn: number; tn: number; precision: number; recall: number }
> {
  const url = new URL("../tests/fixtures/redact/corpus.tsv", import.meta.url);
  const text = await Deno.readTextFile(url);
  const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
  let tp = 0, fp = 0, fn = 0, tn = 0;
  for (const l of text.split("\n")) {
    if (l.length === 0 || l.startsWith("#")) continue;
    const tab = l.indexOf("\t");
    const label = l.slice(0, tab);
    const line = l.slice(tab + 1);
    const hit = r.redactString(line, "corpus") !== line;
    if (label === "secret") hit ? tp++ : fn++;
    else hit ? fp++ : tn++;
  }
  return { tp, fp, fn, tn, precision: tp / (tp + fp), recall: tp / (tp + fn) };
}

/**
 * Seconds of CPU time (user + system) `f` took: steadier than wall time on a shared, loaded
 * machine (the wall time is printed too).
 */
function time(f: () => void): number {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const c = process.cpuUsage(c0);
  wall = (performance.now() - t0) / 1000;
  return (c.user + c.system) / 1e6;
}
let wall = 0;

/** CPU seconds of a child process (from `/usr/bin/time`-like accounting via `sh -c times`). */
async function tool(cmd: string, args: string[]): Promise<number | undefined> {
  try {
    const quoted = [cmd, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    const out = await new Deno.Command("sh", {
      args: ["-c", `${quoted} >/dev/null 2>&1; times`],
      stdout: "piped",
      stderr: "null",
    }).output();
    // `times` prints the shell's, then its children's, user and system times: "0m1.234s 0m0.1s".
    const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
    const child = lines[lines.length - 1]!.match(/(\d+)m([\d.]+)s/g) ?? [];
    let sec = 0;
    for (const t of child) {
      const m = /(\d+)m([\d.]+)s/.exec(t)!;
      sec += Number(m[1]) * 60 + Number(m[2]);
    }
    return sec > 0 ? sec : undefined;
  } catch {
    return undefined;
  }
}

async function report(mb: number): Promise<void> {
  const { text, secrets } = generateCorpus(mb * 1e6);
  const bytes = new TextEncoder().encode(text).length;
  const MB = bytes / 1e6;
  const rate = (sec: number): string => `${(MB / sec).toFixed(0)} MB/s`;
  console.log(`corpus: ${MB.toFixed(1)} MB, ${secrets} planted secrets`);
  // Warm up the regex engines on a slice.
  createRedactor({ packs: [secretsPack, piiPack], key: KEY }).redactString(
    text.slice(0, 1 << 20),
    "w",
  );
  const base = Math.min(...[0, 1, 2].map(() => time(() => text.replace(BASELINE, "[X]"))));
  const baseWall = wall;
  // Best of 3 (each with a fresh redactor, as a snapshot would have), like the baseline.
  let r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
  let out = "";
  let ours = Infinity;
  let oursWall = Infinity;
  for (let i = 0; i < 3; i++) {
    r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
    ours = Math.min(ours, time(() => out = r.redactString(text, "corpus")));
    oursWall = Math.min(oursWall, wall);
  }
  const replaced = r.replacements;
  console.log(`CPU-time rates (wall-clock in parentheses):`);
  console.log(`baseline single-regex replace:   ${rate(base)} (${rate(baseWall)})`);
  console.log(
    `redactString (secrets,pii):      ${rate(ours)} (${rate(oursWall)})  ${replaced} replacements`,
  );
  let so = Infinity;
  for (let i = 0; i < 3; i++) {
    const secretsOnly = createRedactor({ packs: [secretsPack], key: KEY });
    so = Math.min(so, time(() => secretsOnly.redactString(text, "corpus")));
  }
  console.log(`redactString (secrets only):     ${rate(so)} (${rate(wall)})`);
  const dir = await Deno.makeTempDir();
  try {
    const src = `${dir}/in.txt`;
    await Deno.writeTextFile(src, text);
    const fr = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fr.redactFile(src, `${dir}/out.txt`, "corpus");
    const fc = process.cpuUsage(c0);
    const fileSec = (fc.user + fc.system) / 1e6;
    console.log(
      `redactFile (secrets,pii, 1 MiB): ${rate(fileSec)} (${
        rate((performance.now() - t0) / 1000)
      })`,
    );
    const grep = await tool("grep", ["-cE", "AKIA[A-Z2-7]{16}", src]);
    if (grep !== undefined) console.log(`baseline grep -E (1 regex):      ${rate(grep)} (CPU)`);
    const sed = await tool("sed", ["-E", "s/AKIA[A-Z2-7]{16}/[X]/g", src]);
    if (sed !== undefined) console.log(`baseline sed -E (1 regex):       ${rate(sed)} (CPU)`);
    console.log(
      `ratio redactString / single-regex replace: ${(base / ours).toFixed(3)}` +
        (sed !== undefined ? `; / sed: ${(sed / ours).toFixed(2)}` : "") +
        (grep !== undefined ? `; / grep: ${(grep / ours).toFixed(2)}` : ""),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  if (replaced < secrets) console.log(`WARNING: ${secrets - replaced} planted secrets missed`);
  const q = await labelledQuality();
  console.log(
    `labelled corpus: precision ${q.precision.toFixed(3)}, recall ${q.recall.toFixed(3)} ` +
      `(tp ${q.tp}, fp ${q.fp}, fn ${q.fn}, tn ${q.tn})`,
  );
  void out;
}

if (import.meta.main) {
  await report(Number(Deno.args[0] ?? 64));
} else {
  const { text } = generateCorpus(8e6);
  const r = createRedactor({ packs: [secretsPack, piiPack], key: KEY });
  Deno.bench({
    name: "single-regex replace (8 MB)",
    group: "redact",
    baseline: true,
    fn: () => void text.replace(BASELINE, "[X]"),
  });
  Deno.bench({
    name: "redactString secrets,pii (8 MB)",
    group: "redact",
    fn: () => void r.redactString(text, "bench"),
  });
}
