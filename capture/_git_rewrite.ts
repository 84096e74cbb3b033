/**
 * Git history redaction: rewrites every object reachable from the given tips with a redactor,
 * bottom-up (blobs, then trees, then commits parents-first, then tags), into an in-memory
 * overlay. The live repository is only read, never written.
 *
 * @module
 */
import type { Redactor } from "../redact/types.ts";
import {
  formatTree,
  type GitObject,
  joinHeaders,
  objectId,
  type ObjectSource,
  parseTree,
  splitHeaders,
  type TreeEntry,
} from "./_git_objects.ts";

/** The outcome of {@linkcode rewriteHistory}. */
export interface RewriteResult {
  /** Old object id to new object id, for every object visited (unchanged ones map to themselves). */
  map: Map<string, string>;
  /** The new objects, by new id. */
  objects: Map<string, GitObject>;
  /** How many objects changed. */
  changed: number;
}

/** The artifact name under which history redactions are reported. */
export const BUNDLE_ARTIFACT = "git/memdir.bundle";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Rewrites the history reachable from `tips` with `redactor`: blob contents via `redactBytes`
 * (binary blobs are kept), commit and tag messages and identities via `redactString`. A
 * rewritten commit or tag loses its signature (it no longer holds).
 */
export async function rewriteHistory(
  source: ObjectSource,
  tips: string[],
  redactor: Redactor,
  signal?: AbortSignal,
): Promise<RewriteResult> {
  const map = new Map<string, string>();
  const objects = new Map<string, GitObject>();
  let changed = 0;

  const put = (old: string, type: GitObject["type"], body: Uint8Array): string => {
    const oid = objectId(type, body);
    if (oid !== old) {
      objects.set(oid, { type, body });
      changed++;
    }
    map.set(old, oid);
    return oid;
  };

  const redactText = (bytes: Uint8Array, artifact: string): Uint8Array => {
    const text = decoder.decode(bytes);
    const out = redactor.redactString(text, artifact);
    return out === text ? bytes : encoder.encode(out);
  };

  const redactIdent = (line: string, artifact: string): string => {
    const m = /^(author|committer|tagger) (.*) <(.*)> (\d+ [+-]\d{4})$/.exec(line);
    if (m === null) return line;
    const name = redactor.redactString(m[2]!, artifact);
    const email = redactor.redactString(m[3]!, artifact);
    return `${m[1]} ${name} <${email}> ${m[4]}`;
  };

  const blob = async (oid: string, path: string): Promise<string> => {
    const done = map.get(oid);
    if (done !== undefined) return done;
    const o = await source.read(oid);
    const out = redactor.redactBytes(o.body, `${BUNDLE_ARTIFACT}:${path}`);
    return put(oid, "blob", out ?? o.body);
  };

  const tree = async (oid: string, prefix: string): Promise<string> => {
    const done = map.get(oid);
    if (done !== undefined) return done;
    signal?.throwIfAborted();
    const o = await source.read(oid);
    const entries = parseTree(o.body);
    let dirty = false;
    const next: TreeEntry[] = [];
    for (const e of entries) {
      const path = prefix + decoder.decode(e.name);
      let oid2 = e.oid;
      if (e.mode === "40000") oid2 = await tree(e.oid, `${path}/`);
      else if (e.mode !== "160000") oid2 = await blob(e.oid, path);
      if (oid2 !== e.oid) dirty = true;
      next.push({ ...e, oid: oid2 });
    }
    return put(oid, "tree", dirty ? formatTree(next) : o.body);
  };

  /** Rewrites header lines; drops a signature when anything else changed. */
  const rewriteHeaders = async (
    headers: string[],
    message: Uint8Array,
    artifact: string,
    point: (kind: string, oid: string) => Promise<string>,
  ): Promise<{ body: Uint8Array; original: boolean }> => {
    const out: string[] = [];
    const sigStart: number[] = [];
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      const ref = /^(tree|parent|object) ([0-9a-f]{40})$/.exec(h);
      if (ref) out.push(`${ref[1]} ${await point(ref[1]!, ref[2]!)}`);
      else if (/^(author|committer|tagger) /.test(h)) out.push(redactIdent(h, artifact));
      else {
        if (/^gpgsig(-sha256)? /.test(h)) sigStart.push(out.length);
        out.push(h);
      }
    }
    const msg = redactText(message, artifact);
    const same = out.every((h, i) => h === headers[i]) && msg === message;
    if (same) return { body: joinHeaders(headers, message), original: true };
    // drop signature headers and their continuation lines
    const kept: string[] = [];
    for (let i = 0; i < out.length; i++) {
      if (sigStart.includes(i)) {
        while (i + 1 < out.length && out[i + 1]!.startsWith(" ")) i++;
        continue;
      }
      kept.push(out[i]!);
    }
    return { body: joinHeaders(kept, msg), original: false };
  };

  // Commits, parents first, without recursion (histories can be long).
  const commit = async (tip: string): Promise<string> => {
    const stack: { oid: string; expanded: boolean }[] = [{ oid: tip, expanded: false }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      if (map.has(top.oid)) {
        stack.pop();
        continue;
      }
      signal?.throwIfAborted();
      const o = await source.read(top.oid);
      const { headers, message } = splitHeaders(o.body);
      if (!top.expanded) {
        top.expanded = true;
        for (const h of headers) {
          const m = /^parent ([0-9a-f]{40})$/.exec(h);
          if (m && !map.has(m[1]!)) stack.push({ oid: m[1]!, expanded: false });
        }
        continue;
      }
      stack.pop();
      const { body, original } = await rewriteHeaders(
        headers,
        message,
        `${BUNDLE_ARTIFACT}:commit`,
        (kind, oid) => (kind === "tree" ? tree(oid, "") : Promise.resolve(map.get(oid) ?? oid)),
      );
      put(top.oid, "commit", original ? o.body : body);
    }
    return map.get(tip)!;
  };

  const any = async (oid: string): Promise<string> => {
    const done = map.get(oid);
    if (done !== undefined) return done;
    const o = await source.read(oid);
    switch (o.type) {
      case "commit":
        return await commit(oid);
      case "tree":
        return await tree(oid, "");
      case "blob":
        return await blob(oid, "");
      case "tag": {
        const { headers, message } = splitHeaders(o.body);
        const { body, original } = await rewriteHeaders(
          headers,
          message,
          `${BUNDLE_ARTIFACT}:tag`,
          (_kind, target) => any(target),
        );
        return put(oid, "tag", original ? o.body : body);
      }
    }
  };

  for (const tip of tips) await any(tip);
  return { map, objects, changed };
}
