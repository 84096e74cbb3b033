/**
 * CLI end to end: snapshot, list, inspect, verify, tamper, restore, and the exit codes.
 */
import { assert, assertEquals } from "./_assert.ts";
import { memsnap } from "./_cli.ts";
import { join } from "node:path";
import {
  dream,
  fingerprint,
  generateSampleMemory,
  type SampleMemory,
} from "../examples/sample_memory.ts";

function sourceFlags(mem: SampleMemory): string[] {
  return [
    "--memdir",
    mem.memdir,
    ...Object.entries(mem.sqlite).flatMap(([k, v]) => ["--sqlite", `${k}=${v}`]),
    ...Object.entries(mem.state).flatMap(([k, v]) => ["--state", `${k}=${v}`]),
  ];
}

async function setup(): Promise<
  { root: string; mem: SampleMemory; store: string; base: string[] }
> {
  const root = await Deno.makeTempDir({ prefix: "memsnap-e2e-" });
  const mem = await generateSampleMemory(join(root, "agent"), { notes: 8, facts: 40 });
  const store = join(root, "store");
  return { root, mem, store, base: ["--store", store, "--agent", "a1"] };
}

Deno.test("memsnap snapshot/list/inspect/verify/restore round trip through the CLI", async () => {
  const { root, mem, store, base } = await setup();
  try {
    const snap = await memsnap([
      "snapshot",
      ...base,
      ...sourceFlags(mem),
      "--label",
      "first",
      "--no-redact",
      "--json",
    ]);
    assertEquals(snap.code, 0, snap.stderr);
    const { id, path } = snap.json as { id: string; path: string };
    assert(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/.test(id), id);
    assert(path.endsWith(`${id}.msnap`));
    const before = await fingerprint(mem);

    const list = await memsnap(["list", "--store", store, "--json"]);
    assertEquals(list.code, 0, list.stderr);
    const rows = list.json as { id: string; label: string; parent: string | null }[];
    assertEquals(rows.map((r) => [r.id, r.label, r.parent]), [[id, "first", null]]);

    const inspect = await memsnap(["inspect", path, "--json"]);
    assertEquals(inspect.code, 0, inspect.stderr);
    const m = inspect.json as { snapshot_id: string; artifacts: { path: string }[] };
    assertEquals(m.snapshot_id, id);
    // unredacted: the git object store as files, and HEAD
    assert(m.artifacts.some((a) => a.path === "git/HEAD"));
    assert(m.artifacts.some((a) => a.path.startsWith("git/objects/")));
    assert(m.artifacts.some((a) => a.path === "sqlite/long_term.sqlite"));
    assert(m.artifacts.some((a) => a.path === "state/extract_cursor.json"));

    const verify = await memsnap(["verify", "--store", store, id, "--json"]);
    assertEquals(verify.code, 0, verify.stdout + verify.stderr);
    assertEquals((verify.json as { ok: boolean }).ok, true);

    await dream(mem);
    const dreamed = await fingerprint(mem);
    const dry = await memsnap(["restore", id, ...base, ...sourceFlags(mem), "--dry-run", "--json"]);
    assertEquals(dry.code, 0, dry.stderr);
    assert((dry.json as { plan: unknown[] }).plan.length > 0);
    assertEquals(await fingerprint(mem), dreamed, "a dry run changes nothing");

    const restore = await memsnap(["restore", id, ...base, ...sourceFlags(mem), "--json"]);
    assertEquals(restore.code, 0, restore.stderr);
    assertEquals(await fingerprint(mem), before);
    const pre = (restore.json as { pre_snapshot: { id: string } }).pre_snapshot.id;

    // The dream's commit shows in the diff; git object files are summed up, not listed.
    const diff = await memsnap(["diff", "--store", store, id, pre]);
    assertEquals(diff.code, 0, diff.stderr);
    assert(/^ {2}\+ \d+ git object files?$/m.test(diff.stdout), diff.stdout);
    assert(!diff.stdout.includes("git/objects/"), diff.stdout);
    assert(/^ {4}\+ [0-9a-f]{12} /m.test(diff.stdout), diff.stdout);

    // Undo through the pre-restore snapshot gives the dreamed state back exactly.
    const undo = await memsnap(["restore", pre, ...base, ...sourceFlags(mem), "--no-pre-snapshot"]);
    assertEquals(undo.code, 0, undo.stderr);
    assertEquals(await fingerprint(mem), dreamed);

    const log = await memsnap(["log", "--store", store, "--json"]);
    const records = log.json as { action: string; result: string }[];
    assertEquals(records.filter((r) => r.action === "restore").map((r) => r.result), ["ok", "ok"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap verify exits 3 on a flipped byte or a truncated bundle, and restore refuses it", async () => {
  const { root, mem, base } = await setup();
  try {
    const snap = await memsnap([
      "snapshot",
      ...base,
      "--memdir",
      mem.memdir,
      "--no-redact",
      "--json",
    ]);
    assertEquals(snap.code, 0, snap.stderr);
    const { path } = snap.json as { path: string };
    const bytes = await Deno.readFile(path);
    const flipped = join(root, "flipped.msnap");
    const copy = bytes.slice();
    copy[Math.floor(copy.length * 0.6)]! ^= 0x40;
    await Deno.writeFile(flipped, copy);
    const truncated = join(root, "truncated.msnap");
    await Deno.writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    for (const bad of [flipped, truncated]) {
      const v = await memsnap(["verify", bad]);
      assertEquals(v.code, 3, `${bad}: ${v.stdout}${v.stderr}`);
      const before = await fingerprint(mem);
      const r = await memsnap(["restore", bad, ...base, "--memdir", mem.memdir]);
      assertEquals(r.code, 3, r.stderr);
      assertEquals(await fingerprint(mem), before);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap reports usage errors with exit 2 and one line, no stack", async () => {
  const { root, mem, store } = await setup();
  try {
    const cases: [string[], RegExp][] = [
      [["frobnicate"], /no such command/],
      [
        ["snapshot", "--store", store, "--agent", "a1", "--memdir", mem.memdir, "--bogus"],
        /unknown flag|bogus/i,
      ],
      [["snapshot", "--agent", "a1", "--memdir", mem.memdir], /--store is required/],
      [
        ["snapshot", "--store", store, "--agent", "a1", "--memdir", join(root, "nope")],
        /does not exist/,
      ],
      [["snapshot", "--store", store, "--agent", "a1", "--sqlite", "nonsense"], /NAME=VALUE/],
      [["snapshot", "--store", store, "--agent", "bad agent!", "--memdir", mem.memdir], /agent/],
      [["verify", "abc"], /--store is required/],
      [["list", "--store", store, "--since", "yesterday-ish"], /--since/],
      [["snapshot", "--config", join(root, "missing.json"), "--agent", "a1"], /config file/],
    ];
    for (const [args, re] of cases) {
      const r = await memsnap(args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert(re.test(r.stderr), `${args.join(" ")}: ${r.stderr}`);
      assert(!/\n\s+at /.test(r.stderr), `stack printed for ${args.join(" ")}: ${r.stderr}`);
    }
    const json = await memsnap(["frobnicate", "--json"]);
    assertEquals(json.code, 2);
    assertEquals((json.json as { code: string; exit_code: number }).exit_code, 2);
    const badConfig = join(root, "bad.json");
    await Deno.writeTextFile(badConfig, '{"store": 42}');
    const c = await memsnap(["list", "--config", badConfig]);
    assertEquals(c.code, 2);
    assert(/"store" must be/.test(c.stderr), c.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap restore refuses another agent's bundle with exit 4 and reads flags from memsnap.json", async () => {
  const { root, mem, store } = await setup();
  try {
    const config = join(root, "memsnap.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        store: "store",
        memdir: "agent/memory",
        sqlite: { long_term: "agent/db/long_term.sqlite" },
        state: { extract_cursor: "agent/state/extract_cursor.json" },
        redact: false,
      }),
    );
    const snap = await memsnap(["snapshot", "--config", config, "--agent", "other", "--json"]);
    assertEquals(snap.code, 0, snap.stderr);
    const { id } = snap.json as { id: string };
    const m = await memsnap(["inspect", "--store", store, id, "--json"]);
    assert(
      (m.json as { artifacts: { path: string }[] }).artifacts.some((a) =>
        a.path === "sqlite/long_term.sqlite"
      ),
    );
    const r = await memsnap(["restore", id, "--config", config, "--agent", "a1"]);
    assertEquals(r.code, 4, r.stderr);
    assert(/belongs to agent "other"/.test(r.stderr), r.stderr);
    const ok = await memsnap([
      "restore",
      id,
      "--config",
      config,
      "--agent",
      "a1",
      "--allow-agent-mismatch",
      "--dry-run",
    ]);
    assertEquals(ok.code, 0, ok.stderr);
    void mem;
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap doctor reports an interrupted restore and mismatched keys with exit 4", async () => {
  const { root, mem, store, base } = await setup();
  try {
    const [k1, k2] = await Promise.all([
      memsnap(["keygen", "--out", join(root, "k1")]),
      memsnap(["keygen", "--out", join(root, "k2")]),
    ]);
    assertEquals(k1.code + k2.code, 0);
    assertEquals(
      (await memsnap(["snapshot", ...base, "--memdir", mem.memdir, "--no-redact"])).code,
      0,
    );
    const healthy = await memsnap([
      "doctor",
      "--store",
      store,
      "--identity",
      join(root, "k1/age.key"),
      "--recipients-file",
      join(root, "k1/age.pub"),
      "--json",
    ]);
    assertEquals(healthy.code, 0, healthy.stdout);
    const mismatched = await memsnap([
      "doctor",
      "--store",
      store,
      "--identity",
      join(root, "k1/age.key"),
      "--recipients-file",
      join(root, "k2/age.pub"),
      "--sign",
      join(root, "k1/memsnap.key"),
      "--pubkey",
      join(root, "k2/memsnap.pub"),
      "--json",
    ]);
    assertEquals(mismatched.code, 4, mismatched.stdout);
    const failed = (mismatched.json as { checks: { check: string; status: string }[] }).checks
      .filter((c) => c.status === "fail").map((c) => c.check);
    assert(
      failed.some((c) => c.startsWith("identity")) && failed.includes("signing key ↔ public key"),
      failed.join(", "),
    );
    // A journal left by an interrupted restore is reported with the command that fixes it.
    const stateDir = join(store, "default", "a1", ".state");
    await Deno.mkdir(stateDir, { recursive: true });
    await Deno.writeTextFile(
      join(stateDir, "restore-journal.json"),
      JSON.stringify({ version: 1, restore_id: "x", phase: "staging", targets: [] }),
    );
    const journal = await memsnap(["doctor", "--store", store]);
    assertEquals(journal.code, 4, journal.stdout);
    assert(journal.stdout.includes("memsnap recover"), journal.stdout);
    assertEquals((await memsnap(["recover", ...base])).code, 0);
    assertEquals((await memsnap(["doctor", "--store", store])).code, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap snapshot with SOURCE_DATE_EPOCH writes byte-identical bundles in any store", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-determinism-" });
  try {
    const mem = await generateSampleMemory(join(root, "agent"), {
      notes: 6,
      facts: 20,
      plantSecrets: false,
    });
    const env = { SOURCE_DATE_EPOCH: "1764000000" };
    for (const redact of [["--no-redact"], []]) {
      const runs = await Promise.all(
        ["s1", "s2"].map((s) =>
          memsnap([
            "snapshot",
            "--store",
            join(root, `${s}${redact.length}`),
            "--agent",
            "a1",
            ...sourceFlags(mem),
            ...redact,
            "--json",
          ], env)
        ),
      );
      for (const r of runs) assertEquals(r.code, 0, r.stderr);
      const [a, b] = runs.map((r) => r.json as { id: string; path: string; created_at: string });
      assertEquals(a!.id, b!.id);
      assertEquals(a!.created_at, "2025-11-24T16:00:00.000Z");
      const [ba, bb] = await Promise.all([Deno.readFile(a!.path), Deno.readFile(b!.path)]);
      assert(
        ba.length === bb.length && ba.every((x, i) => x === bb[i]),
        `bundles differ (${redact.join(" ") || "redacted"})`,
      );
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap scan and snapshot take a gitleaks config beside the built-in packs, warning about what they cannot apply", async () => {
  const { root, mem, base } = await setup();
  try {
    const gitleaks = new URL("./fixtures/redact/gitleaks.toml", import.meta.url).pathname;
    const scan = await memsnap(["scan", ...sourceFlags(mem), "--json"]);
    assertEquals(scan.code, 0, scan.stderr);
    const found =
      (scan.json as { findings: { rule: string; preview: string; path: string }[] }).findings;
    assert(
      found.some((f) => f.rule === "github-token" && f.preview.startsWith("ghp_…")),
      JSON.stringify(found),
    );
    assert(
      found.some((f) => f.rule === "email" && f.path.startsWith("sqlite/long_term")),
      JSON.stringify(found),
    );
    assert(!scan.stdout.includes("R2d2C3p0"), "scan never prints a secret");
    const snap = await memsnap([
      "snapshot",
      ...base,
      ...sourceFlags(mem),
      "--redact",
      `secrets,pii,${gitleaks}`,
      "--json",
    ]);
    assertEquals(snap.code, 0, snap.stderr);
    assert(
      /is not applied/.test(snap.stderr) && /runs as \\?"gitleaks\./.test(snap.stderr),
      snap.stderr,
    );
    assert((snap.json as { redactions: number }).redactions >= 3, snap.stdout);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap list piped into a reader that closes early exits 0 without an error", async () => {
  const { root, mem, store, base } = await setup();
  try {
    for (let i = 0; i < 3; i++) {
      assertEquals(
        (await memsnap(["snapshot", ...base, "--memdir", mem.memdir, "--no-redact"])).code,
        0,
      );
    }
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, "list", "--store", store],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    await child.stdout.cancel(); // like `| head -0`: the reader is gone before the first line
    const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
    assertEquals(status.code, 0, stderr);
    assertEquals(stderr, "");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("memsnap restore sums up a large plan per action; --dry-run lists every change", async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-e2e-" });
  try {
    const mem = join(root, "mem");
    await Deno.mkdir(join(mem, "notes"), { recursive: true });
    for (let i = 0; i < 1100; i++) {
      await Deno.writeTextFile(join(mem, "notes", `n${i}.md`), `note ${i}\n`);
    }
    const base = ["--store", join(root, "store"), "--agent", "a1"];
    const snap = await memsnap(["snapshot", ...base, "--memdir", mem, "--no-redact", "--json"]);
    assertEquals(snap.code, 0, snap.stderr);
    const { id } = snap.json as { id: string };
    const fresh = join(root, "fresh");
    await Deno.mkdir(fresh);
    const flags = [...base, "--memdir", fresh, "--no-pre-snapshot"];
    const dry = await memsnap(["restore", id, ...flags, "--dry-run"]);
    assertEquals(dry.code, 0, dry.stderr);
    assertEquals(dry.stdout.split("\n").filter((l) => l.startsWith("  add file: ")).length, 1100);
    const restore = await memsnap(["restore", id, ...flags]);
    assertEquals(restore.code, 0, restore.stderr);
    const planLines = restore.stdout.split("\n").filter((l) => l.startsWith("  "));
    assertEquals(planLines, [`  add file: 1100 under ${join(fresh, "notes")}`]);
    assertEquals(await Deno.readTextFile(join(fresh, "notes", "n1099.md")), "note 1099\n");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
