/**
 * Bad input everywhere a user types, through the CLI (tests/cli_e2e_test.ts covers a few
 * usage errors; these add to them): malformed config files, unknown flags of every command,
 * bad snapshot ids, paths of the wrong kind, wrong or broken key files, a wrong passphrase,
 * another key pair's public key. Each must print one clear `error: Cannot ...` line, exit with
 * the right code and no stack trace; with `--json`, an error object.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./_assert.ts";
import {
  assertCleanError,
  assertJsonError,
  type CliRun,
  type Fixture,
  fixture,
  memsnap,
} from "./_reliability.ts";

const COMMANDS = [
  "snapshot",
  "list",
  "inspect",
  "verify",
  "restore",
  "recover",
  "diff",
  "export",
  "import",
  "delete",
  "pin",
  "unpin",
  "prune",
  "reindex",
  "log",
  "keygen",
  "scan",
  "doctor",
];

interface World {
  f: Fixture;
  /** An encrypted (k1's age.pub) and signed (k1's memsnap.key) snapshot. */
  enc: { id: string; path: string };
  /** A plaintext snapshot. */
  plain: { id: string; path: string };
  k1: string;
  k2: string;
  /** A key pair whose secret key is encrypted with the passphrase "right". */
  kp: string;
  garbage: string;
  dir: string;
  file: string;
}

let world: World | undefined;

/** One memory, two key pairs, a passphrase-protected one, two snapshots; shared by the file. */
async function setup(): Promise<World> {
  if (world) return world;
  const f = await fixture({ prefix: "memsnap-bad-", notes: 3, facts: 5 });
  const k1 = join(f.root, "k1"), k2 = join(f.root, "k2"), kp = join(f.root, "kp");
  const keys = await Promise.all([
    memsnap(["keygen", "--out", k1]),
    memsnap(["keygen", "--out", k2]),
    memsnap(["keygen", "--out", kp], { MEMSNAP_SIGN_PASSPHRASE: "right" }),
  ]);
  for (const k of keys) assertEquals(k.code, 0, k.stderr);
  const src = [...f.base, "--memdir", f.mem.memdir, "--no-redact", "--json"];
  const [e, p] = await Promise.all([
    memsnap([
      "snapshot",
      ...src,
      "--recipients-file",
      join(k1, "age.pub"),
      "--sign",
      join(k1, "memsnap.key"),
    ]),
    memsnap(["snapshot", ...src]),
  ]);
  assertEquals(e.code, 0, e.stdout + e.stderr);
  assertEquals(p.code, 0, p.stdout + p.stderr);
  const garbage = join(f.root, "garbage.txt");
  await Deno.writeTextFile(garbage, "hello world\n");
  const dir = join(f.root, "a-dir");
  await Deno.mkdir(dir);
  const file = join(f.root, "a-file");
  await Deno.writeTextFile(file, "x");
  world = {
    f,
    enc: e.json as { id: string; path: string },
    plain: p.json as { id: string; path: string },
    k1,
    k2,
    kp,
    garbage,
    dir,
    file,
  };
  return world;
}

interface Case {
  what: string;
  args: string[];
  code: number;
  re: RegExp;
  env?: Record<string, string>;
}

/**
 * Runs every case, a few at a time, and checks each; every fourth case runs in JSON mode too
 * (each CLI process costs a Deno start, so not all of them).
 */
async function runCases(cases: Case[]): Promise<void> {
  const results: [Case, CliRun, CliRun | undefined][] = [];
  const runOne = async (c: Case, i: number): Promise<[Case, CliRun, CliRun | undefined]> => {
    const [human, json] = await Promise.all([
      memsnap(c.args, c.env),
      i % 4 === 0 ? memsnap([...c.args, "--json"], c.env) : undefined,
    ]);
    return [c, human, json];
  };
  for (let i = 0; i < cases.length; i += 4) {
    results.push(...await Promise.all(cases.slice(i, i + 4).map((c, k) => runOne(c, i + k))));
  }
  const problems: string[] = [];
  for (const [c, human, json] of results) {
    try {
      assertCleanError(human, c.code, c.re, c.what);
      if (json) {
        assertJsonError(json, c.code, `${c.what} --json`);
        assert(c.re.test((json.json as { message: string }).message), `${c.what} --json message`);
        assert(!/\n\s+at /.test(json.stderr), `${c.what} --json: stack on stderr`);
      }
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  assertEquals(problems, [], `${problems.length} of ${cases.length} case(s) failed`);
}

Deno.test("bad input: malformed config files exit 2 with one line naming the problem", async () => {
  const w = await setup();
  const configs: [string, string, RegExp][] = [
    ["truncated.json", '{"store": "s",', /Cannot parse the config file/],
    ["array.json", "[1, 2]", /must hold a JSON object/],
    ["unknown.json", '{"stor": "s"}', /unknown key "stor"/],
    ["camel.json", '{"lockTimeout": 5}', /unknown key "lockTimeout"/],
    ["sqlite-string.json", '{"sqlite": "db.sqlite"}', /"sqlite" must be/],
    ["lock-negative.json", '{"lock_timeout": -1}', /"lock_timeout" must be/],
    ["bool.json", '{"include_ignored": "yes"}', /"include_ignored" must be/],
    ["redact.json", '{"redact": 5}', /"redact" must be/],
    ["identity.json", '{"identity": [1]}', /"identity" must be/],
    ["retention.json", '{"retention": [1]}', /"retention" must be/],
    ["muv.json", '{"max_user_version": {"a": "3"}}', /"max_user_version" must be/],
  ];
  const cases: Case[] = [];
  for (const [name, text, re] of configs) {
    const path = join(w.f.root, name);
    await Deno.writeTextFile(path, text);
    cases.push({
      what: `config ${name}`,
      args: ["snapshot", "--agent", "a1", "--config", path],
      code: 2,
      re,
    });
  }
  cases.push({
    what: "config is a directory",
    args: ["list", "--config", w.dir],
    code: 2,
    re: /Cannot read the config file/,
  });
  await runCases(cases);
  // The implicit ./memsnap.json is read from the working directory.
  const cwd = join(w.f.root, "cwd");
  await Deno.mkdir(cwd, { recursive: true });
  await Deno.writeTextFile(join(cwd, "memsnap.json"), "{oops");
  const r = await memsnap(["list"], {}, cwd);
  assertCleanError(r, 2, /Cannot parse the config file .*memsnap\.json/, "implicit memsnap.json");
});

Deno.test("bad input: an unknown flag exits 2 for every command", async () => {
  await runCases(COMMANDS.map((c) => ({
    what: `${c} --no-such-flag`,
    args: [c, "--no-such-flag"],
    code: 2,
    re: new RegExp(`Cannot parse the flags of "${c}": unknown flag '--no-such-flag'`),
  })));
});

Deno.test("bad input: nonexistent and ambiguous snapshot ids, missing and wrong-kind paths", async () => {
  const w = await setup();
  const { f } = w;
  const none = "20991231T000000000Z-deadbeef";
  await runCases([
    {
      what: "verify a nonexistent id",
      args: ["verify", "--store", f.store, none],
      code: 2,
      re: /Cannot find snapshot/,
    },
    {
      what: "restore a nonexistent id",
      args: ["restore", none, ...f.base, "--memdir", f.mem.memdir],
      code: 2,
      re: /Cannot find snapshot/,
    },
    {
      what: "inspect an ambiguous prefix",
      args: ["inspect", "--store", f.store, "2"],
      code: 2,
      re: /matches 2 snapshots/,
    },
    {
      what: "delete an ambiguous prefix",
      args: ["delete", "--store", f.store, "2"],
      code: 2,
      re: /matches 2 snapshots/,
    },
    {
      what: "diff against a missing id",
      args: ["diff", "--store", f.store, w.plain.id, "nope"],
      code: 2,
      re: /Cannot find snapshot nope/,
    },
    {
      what: "pin a missing id",
      args: ["pin", "--store", f.store, "nope"],
      code: 2,
      re: /Cannot find snapshot nope/,
    },
    {
      what: "inspect a missing file",
      args: ["inspect", join(f.root, "none.msnap")],
      code: 2,
      re: /does not exist/,
    },
    {
      what: "verify a directory as a bundle",
      args: ["verify", w.dir + "/"],
      code: 2,
      re: /directory/i,
    },
    {
      what: "import a directory",
      args: ["import", "--store", f.store, w.dir + "/"],
      code: 2,
      re: /directory/i,
    },
    {
      what: "inspect a text file as a bundle",
      args: ["inspect", w.garbage],
      code: 3,
      re: /Cannot read the bundle/,
    },
    {
      what: "--memdir is a file",
      args: ["snapshot", ...f.base, "--memdir", w.file],
      code: 2,
      re: /is not a directory/,
    },
    {
      what: "--store is a file",
      args: ["snapshot", "--store", w.file, "--agent", "a1", "--memdir", f.mem.memdir],
      code: 2,
      re: /not a directory/i,
    },
    {
      what: "--sqlite names a missing file",
      args: ["snapshot", ...f.base, "--sqlite", `x=${join(f.root, "no.sqlite")}`],
      code: 2,
      re: /does not exist/,
    },
    {
      what: "--sqlite names a directory",
      args: ["snapshot", ...f.base, "--sqlite", `x=${w.dir}`],
      code: 2,
      re: /Cannot capture database x/,
    },
    {
      what: "--state names a directory",
      args: ["snapshot", ...f.base, "--state", `x=${w.dir}`],
      code: 2,
      re: /directory/i,
    },
    {
      what: "--state is not JSON",
      args: ["snapshot", ...f.base, "--state", `x=${w.file}`],
      code: 2,
      re: /Cannot parse state file/,
    },
    {
      what: "--identity is a directory",
      args: ["verify", "--store", f.store, w.enc.id, "--identity", w.dir],
      code: 2,
      re: /Cannot read the identity file/,
    },
    {
      what: "keygen --out is a file",
      args: ["keygen", "--out", w.file],
      code: 2,
      re: /not a directory/i,
    },
    {
      what: "--lock-timeout is not a number",
      args: ["snapshot", ...f.base, "--memdir", f.mem.memdir, "--lock-timeout", "soon"],
      code: 2,
      re: /--lock-timeout "soon"/,
    },
    {
      what: "bad agent name on restore",
      args: [
        "restore",
        w.plain.id,
        "--store",
        f.store,
        "--agent",
        "../x",
        "--memdir",
        f.mem.memdir,
      ],
      code: 2,
      re: /Cannot use agent/,
    },
  ]);
});

Deno.test("bad input: wrong, broken and mismatched key files", async () => {
  const w = await setup();
  const { f } = w;
  const badRecipients = join(f.root, "recipients.txt");
  await Deno.writeTextFile(badRecipients, "# team\nage1notarecipient\n");
  const snap = ["snapshot", ...f.base, "--memdir", f.mem.memdir, "--no-redact"];
  await runCases([
    {
      what: "garbage identity file",
      args: ["verify", "--store", f.store, w.enc.id, "--identity", w.garbage],
      code: 2,
      re: /Cannot read the age identity file/,
    },
    {
      what: "the public key given as the identity",
      args: ["verify", "--store", f.store, w.enc.id, "--identity", join(w.k1, "age.pub")],
      code: 2,
      re: /Cannot read the age identity file/,
    },
    {
      what: "another key pair's identity",
      args: ["verify", "--store", f.store, w.enc.id, "--identity", join(w.k2, "age.key")],
      code: 4,
      re: /no identity matches/,
    },
    {
      what: "restore an encrypted bundle without an identity",
      args: ["restore", w.enc.id, ...f.base, "--memdir", f.mem.memdir, "--dry-run"],
      code: 4,
      re: /encrypted and no identity was given/,
    },
    {
      what: "recipients file with a bad recipient",
      args: [...snap, "--recipients-file", badRecipients],
      code: 2,
      re: /Cannot read the age recipients file: line 2/,
    },
    {
      what: "a bad --recipient",
      args: [...snap, "--recipient", "age1xyz"],
      code: 2,
      re: /is not an age X25519 recipient/,
    },
    {
      what: "--sign with a file that is not a key",
      args: [...snap, "--sign", w.garbage],
      code: 2,
      re: /Cannot read the minisign secret key/,
    },
    {
      what: "--sign with the public key",
      args: [...snap, "--sign", join(w.k1, "memsnap.pub")],
      code: 2,
      re: /Cannot read the minisign secret key/,
    },
    {
      what: "--sign with a wrong passphrase",
      args: [...snap, "--sign", join(w.kp, "memsnap.key")],
      env: { MEMSNAP_SIGN_PASSPHRASE: "wrong" },
      code: 2,
      re: /wrong passphrase/,
    },
    {
      what: "--sign with an encrypted key and no passphrase",
      args: [...snap, "--sign", join(w.kp, "memsnap.key")],
      code: 2,
      re: /no passphrase was given/,
    },
    {
      what: "--pubkey that is not a key",
      args: ["verify", "--store", f.store, w.enc.id, "--pubkey", w.garbage],
      code: 2,
      re: /Cannot read the minisign public key/,
    },
    {
      what: "--pubkey that does not exist",
      args: ["verify", "--store", f.store, w.enc.id, "--pubkey", join(f.root, "none.pub")],
      code: 2,
      re: /does not exist/,
    },
  ]);
  // Another key pair's public key: the signature does not verify (exit 3), on verify and
  // restore; verify prints its FAILED report, restore one error line.
  const other = join(w.k2, "memsnap.pub");
  const id = ["--identity", join(w.k1, "age.key")];
  const [v, vj, r] = await Promise.all([
    memsnap(["verify", "--store", f.store, w.enc.id, ...id, "--pubkey", other]),
    memsnap(["verify", "--store", f.store, w.enc.id, ...id, "--pubkey", other, "--json"]),
    memsnap(["restore", w.enc.id, ...f.base, "--memdir", f.mem.memdir, ...id, "--pubkey", other]),
  ]);
  assertEquals(v.code, 3, v.stdout + v.stderr);
  assert(/FAILED .*signature/s.test(v.stdout), v.stdout);
  assert(!/\n\s+at /.test(v.stdout + v.stderr), "no stack");
  assertEquals(vj.code, 3);
  const report = vj.json as { ok: boolean; signature: string; failures: { check: string }[] };
  assertEquals([report.ok, report.signature], [false, "invalid"]);
  assertEquals(report.failures.map((x) => x.check), ["signature"]);
  assertCleanError(r, 3, /signature/, "restore with another key pair's public key");
  // The right key verifies.
  const ok = await memsnap([
    "verify",
    "--store",
    f.store,
    w.enc.id,
    ...id,
    "--pubkey",
    join(w.k1, "memsnap.pub"),
    "--require-signature",
  ]);
  assertEquals(ok.code, 0, ok.stdout + ok.stderr);
});

Deno.test("bad input: cleanup", async () => {
  await world?.f[Symbol.asyncDispose]();
});

Deno.test({
  name: "bad input: unreadable (chmod 000) config, key and bundle files exit 2 (not as root)",
  // root reads anything; the wrong-kind path cases above cover root.
  ignore: Deno.build.os === "windows" || Deno.uid() === 0,
  async fn() {
    const w = await setup();
    const locked = async (name: string, text: string): Promise<string> => {
      const p = join(w.f.root, name);
      await Deno.writeTextFile(p, text);
      await Deno.chmod(p, 0o000);
      return p;
    };
    const config = await locked("locked.json", "{}");
    const identity = await locked("locked.key", "AGE-SECRET-KEY-1");
    const bundle = join(w.f.root, "locked.msnap");
    await Deno.copyFile(w.plain.path, bundle);
    await Deno.chmod(bundle, 0o000);
    await runCases([
      { what: "unreadable config", args: ["list", "--config", config], code: 2, re: /denied/ },
      {
        what: "unreadable identity",
        args: ["verify", "--store", w.f.store, w.enc.id, "--identity", identity],
        code: 2,
        re: /permission denied/,
      },
      { what: "unreadable bundle", args: ["inspect", bundle], code: 2, re: /denied/i },
    ]);
  },
});
