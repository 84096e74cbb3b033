/**
 * Encrypted and signed bundles through the CLI, with the real age and minisign.
 */
import { assert, assertEquals } from "./_assert.ts";
import { memsnap } from "./_cli.ts";
import { join } from "node:path";
import { createHash } from "node:crypto";
import {
  dream,
  fingerprint,
  generateSampleMemory,
  type SampleMemory,
} from "../examples/sample_memory.ts";
import { canonicalJson } from "../bundle/canonical_json.ts";
import { generateSigningKeyPair } from "../bundle/minisign_keys.ts";
import { interopTest, run } from "./_tools.ts";

function src(mem: SampleMemory): string[] {
  return [
    "--memdir",
    mem.memdir,
    "--sqlite",
    `long_term=${mem.sqlite.long_term}`,
    "--state",
    `cursor=${mem.state.extract_cursor}`,
  ];
}

interopTest("encrypted, signed snapshots: verify, write-only hosts, wrong keys, and restore", [
  "age",
  "minisign",
], async () => {
  const root = await Deno.makeTempDir({ prefix: "memsnap-crypto-" });
  try {
    const mem = await generateSampleMemory(join(root, "agent"), { notes: 6, facts: 20 });
    const store = join(root, "store");
    const keys = join(root, "keys"), other = join(root, "other");
    const [k1, k2] = await Promise.all([
      memsnap(["keygen", "--out", keys]),
      memsnap(["keygen", "--out", other]),
    ]);
    assertEquals(k1.code, 0, `k1: ${k1.stderr}`);
    assertEquals(k2.code, 0, `k2: ${k2.stderr}`);
    const again = await memsnap(["keygen", "--out", keys]);
    assertEquals(again.code, 4, `again: ${"keygen never overwrites"}`);
    const base = ["--store", store, "--agent", "a1"];
    const snap = await memsnap([
      "snapshot",
      ...base,
      ...src(mem),
      "--recipients-file",
      join(keys, "age.pub"),
      "--sign",
      join(keys, "memsnap.key"),
      "--json",
    ]);
    assertEquals(snap.code, 0, `snap: ${snap.stderr}`);
    const { id, path } = snap.json as { id: string; path: string };
    const listing = await run("tar", ["-tf", path]);
    assertEquals(listing.text.trim().split("\n"), [
      "manifest.json",
      "payload.tar.zst.age",
      "manifest.json.minisig",
    ]);
    // The real minisign accepts the signature of the manifest.
    const x = join(root, "x");
    await Deno.mkdir(x);
    await run("tar", ["-xf", path, "-C", x]);
    const mv = await run("minisign", [
      "-V",
      "-p",
      join(keys, "memsnap.pub"),
      "-m",
      join(x, "manifest.json"),
    ]);
    assertEquals(mv.code, 0, `mv: ${mv.stderr + mv.text}`);
    assert(mv.text.includes(`snapshot:${id}`), mv.text);
    const manifest = JSON.parse(await Deno.readTextFile(join(x, "manifest.json")));
    assertEquals(manifest.payload.encryption.scheme, "age");
    assert(!JSON.stringify(manifest).includes("AGE-SECRET-KEY"));

    // Without the identity: manifest, payload hash and signature are checked, artifacts are not.
    const v1 = await memsnap([
      "verify",
      "--store",
      store,
      id,
      "--pubkey",
      join(keys, "memsnap.pub"),
      "--json",
    ]);
    assertEquals(v1.code, 0, `v1: ${v1.stdout + v1.stderr}`);
    assertEquals((v1.json as { signature: string; artifacts_checked: boolean }).signature, "valid");
    assertEquals((v1.json as { artifacts_checked: boolean }).artifacts_checked, false);
    const v2 = await memsnap([
      "verify",
      "--store",
      store,
      id,
      "--identity",
      join(keys, "age.key"),
      "--pubkey",
      join(keys, "memsnap.pub"),
      "--json",
    ]);
    assertEquals(v2.code, 0, `v2: ${v2.stdout + v2.stderr}`);
    assertEquals((v2.json as { artifacts_checked: boolean }).artifacts_checked, true);
    // inspect with the keys also checks what they unlock.
    const ins = await memsnap([
      "inspect",
      "--store",
      store,
      id,
      "--identity",
      join(keys, "age.key"),
      "--pubkey",
      join(keys, "memsnap.pub"),
      "--json",
    ]);
    assertEquals(ins.code, 0, ins.stderr);
    const check = ins.json as {
      snapshot_id: string;
      check: { ok: boolean; artifacts_checked: boolean; signature: string };
    };
    assertEquals([
      check.snapshot_id,
      check.check.ok,
      check.check.artifacts_checked,
      check.check.signature,
    ], [id, true, true, "valid"]);
    // Another signer's public key fails (exit 3).
    const v3 = await memsnap([
      "verify",
      "--store",
      store,
      id,
      "--pubkey",
      join(other, "memsnap.pub"),
    ]);
    assertEquals(v3.code, 3, `v3: ${v3.stdout + v3.stderr}`);

    await dream(mem);
    const dreamed = await fingerprint(mem);
    // A write-only host (recipients only) can snapshot but cannot restore: exit 4, untouched.
    const wo = await memsnap(["restore", id, ...base, ...src(mem)]);
    assertEquals(wo.code, 4, `wo: ${wo.stderr}`);
    assert(/identity/i.test(wo.stderr), wo.stderr);
    const wrong = await memsnap([
      "restore",
      id,
      ...base,
      ...src(mem),
      "--identity",
      join(other, "age.key"),
    ]);
    assert(wrong.code === 3 || wrong.code === 4, `${wrong.code} ${wrong.stderr}`);
    assertEquals(await fingerprint(mem), dreamed);
    const ok = await memsnap([
      "restore",
      id,
      ...base,
      ...src(mem),
      "--identity",
      join(keys, "age.key"),
      "--pubkey",
      join(keys, "memsnap.pub"),
      "--require-signature",
    ]);
    assertEquals(ok.code, 0, `ok: ${ok.stderr}`);
    assert(JSON.stringify(await fingerprint(mem)) !== JSON.stringify(dreamed));

    // Unsigned bundles fail --require-signature.
    const plain = await memsnap(["snapshot", ...base, "--memdir", mem.memdir, "--json"]);
    assertEquals(plain.code, 0, `plain: ${plain.stderr}`);
    const plainId = (plain.json as { id: string }).id;
    const unsigned = await memsnap([
      "verify",
      "--store",
      store,
      plainId,
      "--pubkey",
      join(keys, "memsnap.pub"),
      "--require-signature",
    ]);
    assertEquals(unsigned.code, 3, `unsigned: ${unsigned.stdout}`);
    const noKey = await memsnap(["verify", "--store", store, plainId, "--require-signature"]);
    assertEquals(noKey.code, 2, `noKey: ${noKey.stderr}`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

interopTest(
  "a passphrase-protected signing key signs with MEMSNAP_SIGN_PASSPHRASE and refuses a wrong one",
  ["minisign"],
  async () => {
    const root = await Deno.makeTempDir({ prefix: "memsnap-crypto-" });
    try {
      const mem = await generateSampleMemory(join(root, "agent"), { notes: 3, facts: 5 });
      const keys = join(root, "keys");
      await Deno.mkdir(keys);
      const env = { MEMSNAP_SIGN_PASSPHRASE: "correct horse battery staple" };
      // The same format `memsnap keygen` writes with MEMSNAP_SIGN_PASSPHRASE set, at a lower scrypt
      // cost so the test stays fast (the cost is read back from the key file).
      const pair = await generateSigningKeyPair({
        passphrase: env.MEMSNAP_SIGN_PASSPHRASE,
        kdfLimits: { opsLimit: 1 << 16, memLimit: 1 << 24 },
      });
      await Deno.writeTextFile(join(keys, "memsnap.key"), pair.secretKey);
      await Deno.writeTextFile(join(keys, "memsnap.pub"), pair.publicKey);
      assert(pair.secretKey.includes("encrypted"));
      // minisign itself signs with it, reading the passphrase from stdin.
      await Deno.writeTextFile(join(root, "msg"), "hello");
      const ms = await run("minisign", [
        "-S",
        "-s",
        join(keys, "memsnap.key"),
        "-m",
        join(root, "msg"),
      ], {
        stdin: new TextEncoder().encode(env.MEMSNAP_SIGN_PASSPHRASE + "\n"),
      });
      assertEquals(ms.code, 0, ms.stderr);
      const args = [
        "snapshot",
        "--store",
        join(root, "store"),
        "--agent",
        "a1",
        "--memdir",
        mem.memdir,
        "--sign",
        join(keys, "memsnap.key"),
        "--json",
      ];
      const bad = await memsnap(args, { MEMSNAP_SIGN_PASSPHRASE: "wrong" });
      assertEquals(bad.code, 2, `bad: ${bad.stderr}`);
      const err = bad.json as { type: string; message: string; stack?: string };
      assertEquals(err.type, "error");
      assert(/passphrase/i.test(err.message), err.message);
      assertEquals(err.stack, undefined);
      assert(
        !bad.stderr.includes('"phase":"pack"'),
        "the passphrase is checked before any capture",
      );
      const good = await memsnap(args, env);
      assertEquals(good.code, 0, `good: ${good.stderr}`);
      const v = await memsnap([
        "verify",
        (good.json as { path: string }).path,
        "--pubkey",
        join(keys, "memsnap.pub"),
        "--require-signature",
      ]);
      assertEquals(v.code, 0, `v: ${v.stdout + v.stderr}`);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

interopTest(
  "a bundle re-encrypted with the age CLI, re-signed with minisign and re-tarred by GNU tar verifies and restores",
  ["age", "age-keygen", "minisign", "tar"],
  async () => {
    const root = await Deno.makeTempDir({ prefix: "memsnap-crypto-" });
    try {
      const mem = await generateSampleMemory(join(root, "agent"), { notes: 5, facts: 10 });
      const before = await fingerprint(mem);
      const keys = join(root, "keys");
      assertEquals((await memsnap(["keygen", "--out", keys])).code, 0);
      const snap = await memsnap([
        "snapshot",
        "--store",
        join(root, "store"),
        "--agent",
        "a1",
        ...src(mem),
        "--no-redact",
        "--recipients-file",
        join(keys, "age.pub"),
        "--json",
      ]);
      assertEquals(snap.code, 0, `snap: ${snap.stderr}`);
      const { path } = snap.json as { path: string };
      // Open it by hand: decrypt with our identity, re-encrypt to a key made by age-keygen.
      const x = join(root, "x");
      await Deno.mkdir(x);
      assertEquals((await run("tar", ["-xf", path, "-C", x])).code, 0);
      const plain = join(root, "payload.tar.zst");
      const d = await run("age", [
        "-d",
        "-i",
        join(keys, "age.key"),
        "-o",
        plain,
        join(x, "payload.tar.zst.age"),
      ]);
      assertEquals(d.code, 0, `d: ${d.stderr}`);
      const theirs = join(root, "theirs.key");
      assertEquals((await run("age-keygen", ["-o", theirs])).code, 0);
      const recipient = (await run("age-keygen", ["-y", theirs])).text.trim();
      const e = await run("age", ["-r", recipient, "-o", join(x, "payload.tar.zst.age"), plain]);
      assertEquals(e.code, 0, `e: ${e.stderr}`);
      // Update only the payload's size and hash in the manifest, and sign it with minisign's own key.
      const bytes = await Deno.readFile(join(x, "payload.tar.zst.age"));
      const manifest = JSON.parse(await Deno.readTextFile(join(x, "manifest.json")));
      manifest.payload.size = bytes.length;
      manifest.payload.sha256 = createHash("sha256").update(bytes).digest("hex");
      await Deno.writeTextFile(join(x, "manifest.json"), canonicalJson(manifest));
      const mpub = join(root, "m.pub"), msec = join(root, "m.key");
      assertEquals((await run("minisign", ["-G", "-W", "-p", mpub, "-s", msec])).code, 0);
      await Deno.remove(join(x, "manifest.json.minisig")).catch(() => {});
      const s = await run("minisign", [
        "-S",
        "-s",
        msec,
        "-m",
        join(x, "manifest.json"),
        "-t",
        "re-signed by hand",
      ]);
      assertEquals(s.code, 0, `s: ${s.stderr}`);
      const rebuilt = join(root, "rebuilt.msnap");
      const t = await run("tar", [
        "--format=ustar",
        "-cf",
        rebuilt,
        "-C",
        x,
        "manifest.json",
        "payload.tar.zst.age",
        "manifest.json.minisig",
      ]);
      assertEquals(t.code, 0, `t: ${t.stderr}`);
      const v = await memsnap([
        "verify",
        rebuilt,
        "--identity",
        theirs,
        "--pubkey",
        mpub,
        "--require-signature",
        "--json",
      ]);
      assertEquals(v.code, 0, `v: ${v.stdout + v.stderr}`);
      assertEquals(
        (v.json as { artifacts_checked: boolean; signature: string }).artifacts_checked,
        true,
      );
      await dream(mem);
      const r = await memsnap([
        "restore",
        rebuilt,
        "--store",
        join(root, "store"),
        "--agent",
        "a1",
        ...src(mem),
        "--identity",
        theirs,
        "--pubkey",
        mpub,
        "--require-signature",
      ]);
      assertEquals(r.code, 0, `r: ${r.stderr}`);
      const after = await fingerprint(mem);
      for (const k of Object.keys(before)) {
        if (
          k.startsWith("memdir/") || k.startsWith("git/") || k.startsWith("sqlite/long_term") ||
          k === "state/extract_cursor"
        ) {
          assertEquals(after[k], before[k], k);
        }
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);
