/**
 * Builds stores, capture plugins, keys and Snapshotters from CLI flags.
 *
 * What each builds is imported when it is needed (a store, capture plugins, age or minisign
 * keys, redaction packs), so a command pays start-up only for the options it is given.
 *
 * @module
 */
import { resolve } from "node:path";
import { NotFoundError, UsageError } from "../errors.ts";
import type { Store } from "../store/types.ts";
import type { ProgressReporter } from "../progress.ts";
import type { CapturePlugin } from "../capture/types.ts";
import type { RedactSettings, Snapshotter } from "../snapshotter.ts";
import type { RulePack } from "../redact/types.ts";
import type {
  ManifestSigner,
  ManifestVerifier,
  PayloadCipher,
  PayloadDecipher,
} from "../bundle/crypto_types.ts";
import type { Manifest } from "../bundle/types.ts";
import type { CommandContext, Flags, FlagSpec } from "./_spec.ts";
import { lazy } from "./_lazy.ts";
import type * as OpenStoreModule from "../store/open_store.ts";
import type * as CaptureModule from "../capture/mod.ts";
import type * as SnapshotterModule from "../snapshotter.ts";
import type * as LoadPackModule from "../redact/load_pack.ts";
import type * as AgeCipherModule from "../bundle/age_cipher.ts";
import type * as AgeDecipherModule from "../bundle/age_decipher.ts";
import type * as AgeKeysModule from "../bundle/age_keys.ts";
import type * as MinisignSignerModule from "../bundle/minisign_signer.ts";
import type * as MinisignVerifierModule from "../bundle/minisign_verifier.ts";
import type * as RedactionKeyModule from "../redaction_key.ts";
import { parseMapFlag } from "./_config.ts";

/** Flags naming the store and agent. */
export const STORE_FLAGS: FlagSpec = {
  store: { type: "string" },
  agent: { type: "string" },
  tenant: { type: "string" },
};

/** Help for {@linkcode STORE_FLAGS}. */
export const STORE_HELP: Record<string, string> = {
  store: "store: a directory or s3://bucket/prefix",
  agent: "agent id",
  tenant: 'tenant (default "default")',
};

/** Flags of commands that take an `<id|path>`: the store, and agent/tenant to resolve `latest`. */
export const REF_FLAGS: FlagSpec = {
  store: { type: "string" },
  agent: { type: "string" },
  tenant: { type: "string" },
};

/** Help for {@linkcode REF_FLAGS}. */
export const REF_HELP: Record<string, string> = {
  ...STORE_HELP,
  agent: "agent (to resolve latest)",
  tenant: "tenant (to resolve latest)",
};

/** Flags naming what to capture and restore. */
export const SOURCE_FLAGS: FlagSpec = {
  memdir: { type: "string" },
  "include-ignored": { type: "boolean" },
  sqlite: { type: "string", multiple: true },
  state: { type: "string", multiple: true },
  "max-user-version": { type: "string", multiple: true },
};

/** Help for {@linkcode SOURCE_FLAGS}. */
export const SOURCE_HELP: Record<string, string> = {
  memdir: "the agent's memory directory (a git repository or a plain directory)",
  "include-ignored": "also capture files ignored by .gitignore",
  sqlite: "a database as NAME=PATH, e.g. long_term=./long_term.sqlite",
  state: "a JSON state file as NAME=PATH, e.g. extract_cursor=./cursor.json",
  "max-user-version": "newest user_version the runtime supports, NAME=N (restore gate)",
};

/** Flags for lock waiting. */
export const LOCK_FLAGS: FlagSpec = {
  "lock-timeout": { type: "string" },
  "no-wait": { type: "boolean" },
};

/** Help for {@linkcode LOCK_FLAGS}. */
export const LOCK_HELP: Record<string, string> = {
  "lock-timeout": "seconds to wait for the agent's lock (default 60)",
  "no-wait": "fail at once (exit 5) if the agent's lock is held",
};

/** Flags for reading encrypted or signed bundles. */
export const READ_KEY_FLAGS: FlagSpec = {
  identity: { type: "string", multiple: true },
  pubkey: { type: "string" },
  "require-signature": { type: "boolean" },
};

/** Help for {@linkcode READ_KEY_FLAGS}. */
export const READ_KEY_HELP: Record<string, string> = {
  identity: "age identity file to decrypt the payload",
  pubkey: "minisign public key (file or key string) to check the signature",
  "require-signature": "fail if the bundle is not signed",
};

/** A string flag's value. */
export function str(flags: Flags, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined || v === false) return undefined;
  if (Array.isArray(v)) return v.at(-1);
  if (v === true) return undefined;
  return v;
}

/** A list flag's values. */
export function list(flags: Flags, name: string): string[] {
  const v = flags[name];
  if (v === undefined || typeof v === "boolean") return [];
  return Array.isArray(v) ? v : [v];
}

/** A required string flag. */
export function required(flags: Flags, name: string, command: string): string {
  const v = str(flags, name);
  if (v === undefined || v === "") {
    throw new UsageError(`Cannot run "${command}": --${name} is required`, {
      hint: `pass --${name} or set "${name.replaceAll("-", "_")}" in memsnap.json`,
    });
  }
  return v;
}

/** Opens the store named by `--store`. */
export async function storeFrom(
  flags: Flags,
  command: string,
  progress?: ProgressReporter,
): Promise<Store> {
  const url = required(flags, "store", command);
  const { openStore } = await lazy<typeof OpenStoreModule>("store/open_store.ts");
  return await openStore(
    url.startsWith("s3://") ? url : resolve(url),
    progress ? { progress } : {},
  );
}

/** Parses `--lock-timeout` / `--no-wait` into milliseconds. */
export function lockTimeoutMs(flags: Flags): number {
  if (flags["no-wait"]) return 0;
  const v = str(flags, "lock-timeout");
  if (v === undefined) return 60_000;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new UsageError(`Cannot use --lock-timeout "${v}": expected a number of seconds`);
  }
  return Math.round(n * 1000);
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new NotFoundError(`Cannot read the ${what} ${path}: it does not exist`);
    }
    if (e instanceof Deno.errors.PermissionDenied) {
      throw new UsageError(`Cannot read the ${what} ${path}: permission denied`);
    }
    throw new UsageError(`Cannot read the ${what} ${path}: ${(e as Error).message}`);
  }
}

/** The payload cipher from `--recipient`/`--recipients-file`, if any. */
export async function cipherFrom(flags: Flags): Promise<PayloadCipher | undefined> {
  const recipients = [...list(flags, "recipient"), ...list(flags, "recipients")];
  const files = list(flags, "recipients-file");
  if (recipients.length === 0 && files.length === 0) return undefined;
  const { parseRecipientsFile } = await lazy<typeof AgeKeysModule>("bundle/age_keys.ts");
  for (const f of files) {
    recipients.push(...parseRecipientsFile(await readKeyFile(f, "recipients file")));
  }
  if (recipients.length === 0) return undefined;
  const { ageCipher } = await lazy<typeof AgeCipherModule>("bundle/age_cipher.ts");
  return ageCipher(recipients);
}

/** The payload decipher from `--identity`, if any. */
export async function decipherFrom(flags: Flags): Promise<PayloadDecipher | undefined> {
  const files = list(flags, "identity");
  if (files.length === 0) return undefined;
  const { parseIdentityFile } = await lazy<typeof AgeKeysModule>("bundle/age_keys.ts");
  const ids: string[] = [];
  for (const f of files) {
    ids.push(...parseIdentityFile(await readKeyFile(f, "identity file")));
  }
  if (ids.length === 0) return undefined;
  const { ageDecipher } = await lazy<typeof AgeDecipherModule>("bundle/age_decipher.ts");
  return ageDecipher(ids);
}

/** The manifest signer from `--sign`, if any. */
export async function signerFrom(flags: Flags): Promise<ManifestSigner | undefined> {
  const path = str(flags, "sign");
  if (!path) return undefined;
  const text = await readKeyFile(path, "signing key");
  const passphrase = Deno.env.get("MEMSNAP_SIGN_PASSPHRASE");
  const { minisignSigner } = await lazy<typeof MinisignSignerModule>("bundle/minisign_signer.ts");
  const signer = minisignSigner(text, passphrase === undefined ? {} : { passphrase });
  // Unlock the key now (the signer keeps it), so a wrong passphrase fails before any capture.
  const probe = {
    snapshot_id: "probe",
    created_at: new Date(0).toISOString(),
    payload: { sha256: "" },
  };
  await signer.sign(new Uint8Array(), probe as unknown as Manifest);
  return signer;
}

/** The manifest verifier from `--pubkey`, if any. */
export async function verifierFrom(flags: Flags): Promise<ManifestVerifier | undefined> {
  const v = str(flags, "pubkey");
  if (!v) {
    if (flags["require-signature"] === true) {
      throw new UsageError(
        "Cannot require a signature without a key to check it: --require-signature needs --pubkey",
        {
          hint: "pass --pubkey FILE (a minisign public key file or key string)",
        },
      );
    }
    return undefined;
  }
  // A key file if one exists at that path; else the value itself must be a key ("RW...").
  let text = v;
  const isFile = await Deno.stat(v).then((st) => st.isFile, () => false);
  if (isFile) text = await readKeyFile(v, "public key");
  else if (!v.trim().startsWith("RW")) {
    throw new NotFoundError(
      `Cannot read the public key ${v}: it does not exist, and it is not a minisign key string (RW...)`,
    );
  }
  const { minisignVerifier } = await lazy<typeof MinisignVerifierModule>(
    "bundle/minisign_verifier.ts",
  );
  return minisignVerifier(text);
}

/** `--memdir` names a directory that does not exist. */
class MissingMemdirError extends NotFoundError {}

/** Capture plugins from `--memdir`, `--sqlite`, `--state`. */
export async function capturesFrom(flags: Flags, command: string): Promise<CapturePlugin[]> {
  const plugins: CapturePlugin[] = [];
  const memdir = str(flags, "memdir");
  if (memdir) {
    const dir = resolve(memdir);
    let st: Deno.FileInfo;
    try {
      st = await Deno.stat(dir);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new MissingMemdirError(`Cannot use --memdir ${dir}: it does not exist`);
      }
      throw new UsageError(`Cannot use --memdir ${dir}: ${(e as Error).message}`);
    }
    if (!st.isDirectory) throw new UsageError(`Cannot use --memdir ${dir}: it is not a directory`);
    const includeIgnored = flags["include-ignored"] === true;
    const { gitPlugin, memdirPlugin } = await lazy<typeof CaptureModule>("capture/mod.ts");
    plugins.push(memdirPlugin({ dir, includeIgnored }));
    plugins.push(gitPlugin({ dir, includeIgnored }));
  }
  const dbs = parseMapFlag("sqlite", list(flags, "sqlite"));
  const maxUv: Record<string, number> = {};
  for (
    const [k, v] of Object.entries(
      parseMapFlag("max-user-version", list(flags, "max-user-version")),
    )
  ) {
    if (!/^\d+$/.test(v)) {
      throw new UsageError(`Cannot use --max-user-version ${k}=${v}: expected a whole number`);
    }
    maxUv[k] = Number(v);
  }
  if (Object.keys(dbs).length > 0) {
    const databases: Record<string, string> = {};
    for (const [k, v] of Object.entries(dbs)) databases[k] = resolve(v);
    const { sqlitePlugin } = await lazy<typeof CaptureModule>("capture/mod.ts");
    plugins.push(sqlitePlugin({ databases, maxUserVersion: maxUv }));
  }
  const states = parseMapFlag("state", list(flags, "state"));
  if (Object.keys(states).length > 0) {
    const files: Record<string, string> = {};
    for (const [k, v] of Object.entries(states)) files[k] = resolve(v);
    const { statePlugin } = await lazy<typeof CaptureModule>("capture/mod.ts");
    plugins.push(statePlugin({ files }));
  }
  if (plugins.length === 0) {
    throw new UsageError(`Cannot run "${command}": nothing to capture`, {
      hint:
        "pass --memdir DIR, --sqlite NAME=PATH or --state NAME=FILE (or set them in memsnap.json)",
    });
  }
  return plugins;
}

/** Redaction settings from `--redact`/`--no-redact` (on by default with the built-in packs). */
export async function redactFrom(
  flags: Flags,
  store: Store,
  warn: (message: string) => void,
): Promise<RedactSettings | undefined> {
  if (flags["no-redact"] === true) return undefined;
  const spec = str(flags, "redact") ?? "default";
  const packs = await packsFrom(spec, warn);
  const { redactionKey } = await lazy<typeof RedactionKeyModule>("redaction_key.ts");
  return { packs, key: await redactionKey(store) };
}

/** A Snapshotter for the agent named by the flags. */
export async function snapshotterFrom(
  ctx: CommandContext,
  command: string,
  options: { needCaptures: boolean; store?: Store },
): Promise<Snapshotter> {
  const flags = ctx.flags;
  const agent = required(flags, "agent", command);
  const store = options.store ?? await storeFrom(flags, command, ctx.out.reporter());
  const tenant = str(flags, "tenant");
  const { createSnapshotter } = await lazy<typeof SnapshotterModule>("snapshotter.ts");
  let captures: CapturePlugin[] = [];
  if (options.needCaptures) {
    try {
      captures = await capturesFrom(flags, command);
    } catch (e) {
      // A restore killed between moving the memory dir aside and moving the restored one in
      // leaves no memory dir until recovery runs. Every command recovers first, so recover
      // now and look again, instead of refusing a directory recovery would bring back.
      if (!(e instanceof MissingMemdirError)) throw e;
      const recovered = await createSnapshotter({
        store,
        agent,
        ...(tenant ? { tenant } : {}),
        captures: [],
        lockTimeoutMs: lockTimeoutMs(flags),
        progress: ctx.out.reporter(),
      }).recover();
      if (recovered.outcome === "none") throw e;
      captures = await capturesFrom(flags, command);
    }
  }
  const cipher = await cipherFrom(flags);
  const decipher = await decipherFrom(flags);
  const signer = await signerFrom(flags);
  const verifier = await verifierFrom(flags);
  const redact = "redact" in flags || "no-redact" in flags || command === "snapshot"
    ? await redactFrom(flags, store, (m) => ctx.out.warn(m))
    : undefined;
  return createSnapshotter({
    store,
    agent,
    ...(tenant ? { tenant } : {}),
    captures,
    ...(redact ? { redact } : {}),
    ...(cipher ? { cipher } : {}),
    ...(decipher ? { decipher } : {}),
    ...(signer ? { signer } : {}),
    ...(verifier ? { verifier } : {}),
    requireSignature: flags["require-signature"] === true,
    skipUnchanged: flags["skip-unchanged"] === true,
    lockTimeoutMs: lockTimeoutMs(flags),
    progress: ctx.out.reporter(),
  });
}

/**
 * Loads rule packs from a `--redact` spec (`default` = `secrets,pii`). Rules of a gitleaks
 * config that cannot be translated are reported by id as warnings, never dropped silently.
 */
export async function packsFrom(
  spec: string | undefined,
  warn: (message: string) => void,
): Promise<RulePack[]> {
  const { loadPacks } = await lazy<typeof LoadPackModule>("redact/load_pack.ts");
  const packs = await loadPacks(!spec || spec === "default" ? "secrets,pii" : spec, {
    onUntranslated: (pack, rules) => {
      for (const r of rules) {
        warn(`redaction pack ${pack}: rule "${r.id}" is not applied: ${r.reason}`);
      }
    },
  });
  // Overlapping rule ids across packs all run; the engine gives a later duplicate its pack's
  // prefix. Say so, since the id shows in replacement tokens and reports.
  const owner = new Map<string, string>();
  for (const pack of packs) {
    for (const rule of pack.rules) {
      const first = owner.get(rule.id);
      if (first === undefined) owner.set(rule.id, pack.id);
      else if (first !== pack.id) {
        warn(
          `redaction pack ${pack.id}: rule "${rule.id}" is also in pack ${first}; it runs as "${pack.id}.${rule.id}"`,
        );
      }
    }
  }
  return packs;
}
