/**
 * `memsnap doctor`: checks config, store reachability, keys, locks and catalog health.
 *
 * @module
 */
import { join } from "node:path";
import type { Command } from "./_spec.ts";
import {
  decipherFrom,
  list,
  READ_KEY_FLAGS,
  READ_KEY_HELP,
  signerFrom,
  STORE_HELP,
  storeFrom,
  str,
  verifierFrom,
} from "./_context.ts";
import { ExitCode, LockedError, MemsnapError } from "../errors.ts";
import { JOURNAL_FILE } from "../_swap.ts";
import { identityToRecipient, parseIdentityFile, parseRecipientsFile } from "../bundle/age_keys.ts";
import type { Manifest } from "../bundle/types.ts";
import { LocalStore } from "../store/local_store.ts";

interface Check {
  check: string;
  status: "ok" | "warn" | "fail";
  detail: string;
}

/** The command. */
export const command: Command = {
  name: "doctor",
  summary: "Check config, store, keys, locks and catalog",
  usage:
    "doctor [--store DIR] [--identity FILE] [--recipient R] [--sign KEY] [--pubkey KEY] [--fix] [--json]",
  description: [
    "Reads the config, opens the store, compares the catalog with the bundles on disk, looks for",
    "held or stale locks and interrupted restores, and checks that the configured keys parse and",
    "belong together (identity ↔ recipients, signing key ↔ public key). Exit 4 if a check fails.",
  ],
  examples: [
    "memsnap doctor",
    "memsnap doctor --store ./snaps --identity ./age.key --pubkey ./memsnap.pub --json",
  ],
  flags: {
    store: { type: "string" },
    ...READ_KEY_FLAGS,
    recipient: { type: "string", multiple: true },
    "recipients-file": { type: "string", multiple: true },
    sign: { type: "string" },
    memdir: { type: "string" },
    sqlite: { type: "string", multiple: true },
    state: { type: "string", multiple: true },
    agent: { type: "string" },
    tenant: { type: "string" },
    fix: { type: "boolean" },
  },
  flagHelp: {
    ...STORE_HELP,
    ...READ_KEY_HELP,
    recipient: "an age recipient to check",
    "recipients-file": "a recipients file to check",
    sign: "a minisign secret key to check",
    memdir: "memory dir to check exists",
    sqlite: "database NAME=PATH to check exists",
    state: "state file NAME=PATH to check exists",
    agent: "agent",
    tenant: "tenant",
    fix: "remove stale partial files and rebuild the catalog when it disagrees with the bundles",
  },
  positionals: [0, 0],
  async run(ctx) {
    const checks: Check[] = [];
    const add = (check: string, status: Check["status"], detail: string): void => {
      checks.push({ check, status, detail });
    };
    const attempt = async (check: string, fn: () => Promise<string | void>): Promise<void> => {
      try {
        const d = await fn();
        add(check, "ok", d ?? "ok");
      } catch (e) {
        add(check, "fail", e instanceof Error ? e.message : String(e));
      }
    };
    add(
      "config",
      "ok",
      ctx.flags.config
        ? `read ${ctx.flags.config}`
        : "flags and ./memsnap.json (if present) parsed",
    );
    for (
      const p of [
        str(ctx.flags, "memdir"),
        ...list(ctx.flags, "sqlite").map((x) => x.split("=").slice(1).join("=")),
        ...list(ctx.flags, "state").map((x) => x.split("=").slice(1).join("=")),
      ]
    ) {
      if (!p) continue;
      await attempt(`source ${p}`, async () => {
        const st = await Deno.stat(p);
        return st.isDirectory ? "directory exists" : `file exists (${st.size} bytes)`;
      });
    }
    if (str(ctx.flags, "store")) {
      let store;
      try {
        store = await storeFrom(ctx.flags, "doctor");
        add("store", "ok", `opened ${store.url}`);
      } catch (e) {
        add("store", "fail", (e as Error).message);
      }
      if (store) {
        try {
          const rows = await store.list();
          add("catalog", "ok", `${rows.length} snapshot(s) listed`);
          if (!store.url.startsWith("s3://")) {
            const onDisk = new Set<string>();
            for await (const t of Deno.readDir(store.url)) {
              if (!t.isDirectory || t.name.startsWith(".")) continue;
              for await (const a of Deno.readDir(join(store.url, t.name))) {
                if (!a.isDirectory) continue;
                for await (const f of Deno.readDir(join(store.url, t.name, a.name))) {
                  if (f.isFile && f.name.endsWith(".msnap")) onDisk.add(f.name.slice(0, -6));
                }
              }
            }
            const listed = new Set(rows.map((r) => r.id));
            const unindexed = [...onDisk].filter((x) => !listed.has(x));
            const missing = [...listed].filter((x) => !onDisk.has(x));
            if ((unindexed.length || missing.length) && ctx.flags.fix === true) {
              const n = await store.reindex();
              add("catalog health", "ok", `catalog rebuilt from ${n} bundle(s) (--fix)`);
            } else if (unindexed.length || missing.length) {
              add(
                "catalog health",
                "warn",
                `${unindexed.length} bundle(s) not in the catalog, ${missing.length} catalog row(s) without a bundle; run "memsnap reindex"`,
              );
            } else {add(
                "catalog health",
                "ok",
                `catalog matches the ${onDisk.size} bundle(s) on disk`,
              );}
          }
          if (store instanceof LocalStore) {
            if (ctx.flags.fix === true) {
              const removed = await store.cleanPartials();
              add("partial files", "ok", `${removed.length} stale partial file(s) removed (--fix)`);
            } else {
              let stale = 0;
              try {
                for await (const f of Deno.readDir(join(store.root, ".tmp"))) {
                  const st = await Deno.stat(join(store.root, ".tmp", f.name)).catch(() =>
                    undefined
                  );
                  if (st?.mtime && Date.now() - st.mtime.getTime() > 3_600_000) stale++;
                }
              } catch {
                // no .tmp dir
              }
              if (stale) {
                add(
                  "partial files",
                  "warn",
                  `${stale} stale partial file(s) from interrupted writes; run "memsnap doctor --fix"`,
                );
              } else add("partial files", "ok", "no stale partial files");
            }
          }
          const agents = new Map<string, { tenant: string; agent: string }>();
          for (const r of rows) {
            agents.set(`${r.tenant}/${r.agent_id}`, { tenant: r.tenant, agent: r.agent_id });
          }
          for (const { tenant, agent } of agents.values()) {
            try {
              const lock = await store.lock(tenant, agent, { timeoutMs: 0 });
              await lock.release();
              add(`lock ${tenant}/${agent}`, "ok", "free");
            } catch (e) {
              if (e instanceof LockedError) add(`lock ${tenant}/${agent}`, "warn", e.message);
              else add(`lock ${tenant}/${agent}`, "fail", (e as Error).message);
            }
            const sd = await store.stateDir(tenant, agent);
            try {
              await Deno.stat(join(sd, JOURNAL_FILE));
              add(
                `restore ${tenant}/${agent}`,
                "fail",
                `an interrupted restore left a journal; run "memsnap recover --store ${store.url} --agent ${agent} --tenant ${tenant}"`,
              );
            } catch {
              // no journal
            }
          }
          const last = rows.at(-1);
          if (last) {
            const m: Manifest = await store.readManifest(last.id);
            add("newest manifest", "ok", `${m.snapshot_id} reads and validates`);
          }
        } catch (e) {
          add("catalog", "fail", (e as Error).message);
        } finally {
          await store.close();
        }
      }
    } else add("store", "warn", 'no --store given (or "store" in memsnap.json)');
    // Keys.
    const recipients = [...list(ctx.flags, "recipient")];
    for (const f of list(ctx.flags, "recipients-file")) {
      await attempt(`recipients ${f}`, async () => {
        const r = parseRecipientsFile(await Deno.readTextFile(f));
        recipients.push(...r);
        return `${r.length} recipient(s)`;
      });
    }
    for (const f of list(ctx.flags, "identity")) {
      await attempt(`identity ${f}`, async () => {
        const st = await Deno.stat(f);
        const ids = parseIdentityFile(await Deno.readTextFile(f));
        const mine = ids.map(identityToRecipient);
        const warnPerm = st.mode !== null && (st.mode & 0o077) !== 0
          ? "; WARNING: readable by others (chmod 600)"
          : "";
        if (recipients.length > 0 && !mine.some((r) => recipients.includes(r))) {
          throw new MemsnapError(
            `none of its ${ids.length} identities matches the configured recipients`,
          );
        }
        return `${ids.length} identity(ies)${
          recipients.length ? ", matches a recipient" : ""
        }${warnPerm}`;
      });
    }
    await attempt(
      "decryption keys",
      async () => (await decipherFrom(ctx.flags)) ? "loaded" : "none configured (write-only host?)",
    );
    const signer = await signerFrom(ctx.flags).catch((e) => {
      add("signing key", "fail", (e as Error).message);
      return undefined;
    });
    const verifier = await verifierFrom(ctx.flags).catch((e) => {
      add("public key", "fail", (e as Error).message);
      return undefined;
    });
    if (signer && verifier) {
      await attempt("signing key ↔ public key", async () => {
        const msg = new TextEncoder().encode("memsnap doctor");
        const fake = {
          snapshot_id: "doctor",
          created_at: new Date().toISOString(),
          payload: { sha256: "0".repeat(64) },
        } as unknown as Manifest;
        await verifier.verify(msg, await signer.sign(msg, fake));
        return "a test signature verifies";
      });
    }
    const failed = checks.filter((c) => c.status === "fail").length;
    const warned = checks.filter((c) => c.status === "warn").length;
    ctx.out.result({ ok: failed === 0, checks }, () => [
      ...checks.map((c) =>
        `${
          c.status === "ok" ? "ok  " : c.status === "warn" ? "warn" : "FAIL"
        }  ${c.check}: ${c.detail}`
      ),
      "",
      failed
        ? `${failed} check(s) failed, ${warned} warning(s)`
        : `All checks passed${warned ? ` (${warned} warning(s))` : ""}`,
    ]);
    return failed ? ExitCode.Refused : ExitCode.Ok;
  },
};
