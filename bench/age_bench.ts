/**
 * Throughput of the native age implementation against the `age` CLI (the baseline, measured
 * in the same run) and the npm `age-encryption` reference implementation, on 64 MiB.
 *
 * Run: `deno bench -A bench/age_bench.ts`. The baseline runs `age` on a file in the OS cache
 * with output to /dev/null (its best case, including process start-up). The "piped" rows
 * feed `age` through stdin/stdout from Deno, as a pipeline stage would. The native figures
 * stream from memory in 1 MiB pieces into a sink that only counts bytes.
 */
import { join } from "node:path";
import * as npmAge from "age-encryption";
import { ageCipher } from "../bundle/age_cipher.ts";
import { ageDecipher } from "../bundle/age_decipher.ts";
import { generateAgeIdentity } from "../bundle/age_keys.ts";

const SIZE = 64 * 1024 * 1024;
const PIECE = 1024 * 1024;
const hasAge = new Deno.Command("sh", { args: ["-c", "command -v age"], stdout: "null" })
  .outputSync().success;

const plain = new Uint8Array(SIZE);
for (let off = 0; off < SIZE; off += 65536) {
  crypto.getRandomValues(plain.subarray(off, off + 65536));
}
const { identity, recipient } = generateAgeIdentity();
const dir = Deno.makeTempDirSync({ prefix: "memsnap-age-bench-" });
const plainFile = join(dir, "plain");
const ctFile = join(dir, "plain.age");
const idFile = join(dir, "id.txt");
Deno.writeFileSync(plainFile, plain);
Deno.writeTextFileSync(idFile, identity + "\n");

function pieces(data: Uint8Array): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= data.length) return c.close();
      c.enqueue(data.subarray(off, off + PIECE));
      off += PIECE;
    },
  });
}

async function drain(s: ReadableStream<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const chunk of s) n += chunk.length;
  return n;
}

async function collect(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return await new Response(s).bytes();
}

const ciphertext = await collect(pieces(plain).pipeThrough(ageCipher([recipient]).encrypt()));
Deno.writeFileSync(ctFile, ciphertext);
const npmCiphertext = await (() => {
  const e = new npmAge.Encrypter();
  e.addRecipient(recipient);
  return e.encrypt(plain);
})();

/** Runs age as a pipeline stage would: input on stdin, output read from stdout. */
async function cliPiped(args: string[], input: Uint8Array): Promise<void> {
  const child = new Deno.Command("age", { args, stdin: "piped", stdout: "piped", stderr: "null" })
    .spawn();
  const [, n] = await Promise.all([pieces(input).pipeTo(child.stdin), drain(child.stdout)]);
  if (!(await child.status).success || n === 0) throw new Error("age failed");
}

async function cli(args: string[]): Promise<void> {
  const r = await new Deno.Command("age", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
}

const opts = { n: 8, warmup: 1 };

Deno.bench({
  name: "age CLI encrypt 64 MiB",
  group: "encrypt",
  baseline: true,
  ignore: !hasAge,
  ...opts,
  async fn() {
    await cli(["-r", recipient, "-o", "/dev/null", plainFile]);
  },
});
Deno.bench({
  name: "age CLI encrypt 64 MiB, piped",
  group: "encrypt",
  ignore: !hasAge,
  ...opts,
  async fn() {
    await cliPiped(["-r", recipient], plain);
  },
});
Deno.bench({
  name: "native ageCipher 64 MiB",
  group: "encrypt",
  ...opts,
  async fn() {
    await drain(pieces(plain).pipeThrough(ageCipher([recipient]).encrypt()));
  },
});
Deno.bench({
  name: "npm age-encryption encrypt 64 MiB",
  group: "encrypt",
  ...opts,
  async fn() {
    const e = new npmAge.Encrypter();
    e.addRecipient(recipient);
    await e.encrypt(plain);
  },
});

Deno.bench({
  name: "age CLI decrypt 64 MiB",
  group: "decrypt",
  baseline: true,
  ignore: !hasAge,
  ...opts,
  async fn() {
    await cli(["-d", "-i", idFile, "-o", "/dev/null", ctFile]);
  },
});
Deno.bench({
  name: "age CLI decrypt 64 MiB, piped",
  group: "decrypt",
  ignore: !hasAge,
  ...opts,
  async fn() {
    await cliPiped(["-d", "-i", idFile], ciphertext);
  },
});
Deno.bench({
  name: "native ageDecipher 64 MiB",
  group: "decrypt",
  ...opts,
  async fn() {
    await drain(pieces(ciphertext).pipeThrough(ageDecipher([identity]).decrypt()));
  },
});
Deno.bench({
  name: "npm age-encryption decrypt 64 MiB",
  group: "decrypt",
  ...opts,
  async fn() {
    const d = new npmAge.Decrypter();
    d.addIdentity(identity);
    await d.decrypt(npmCiphertext);
  },
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* best effort */ }
});
