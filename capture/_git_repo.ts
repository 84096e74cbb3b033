/**
 * Private helpers locating a git repository and reading its working-tree view.
 *
 * @module
 */
import * as fs from "node:fs";
import { posix } from "node:path";
import git from "isomorphic-git";

/** The `fs` client handed to isomorphic-git. */
export const gitFs: typeof fs = fs;

/**
 * Returns the git directory of a working tree, or `undefined` if `dir` is not the top of a
 * repository. Follows a `.git` file (`gitdir: <path>`) as used by worktrees and submodules.
 */
export async function findGitdir(dir: string): Promise<string | undefined> {
  const dotGit = posix.join(dir, ".git");
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dotGit);
  } catch {
    return undefined;
  }
  if (info.isDirectory) return dotGit;
  if (info.isFile) {
    const text = (await Deno.readTextFile(dotGit)).trim();
    const m = /^gitdir:\s*(.+)$/.exec(text);
    if (m) return posix.resolve(dir, m[1]!);
  }
  return undefined;
}

/** Paths recorded in the repository's index (tracked files), or an empty set. */
export async function trackedFiles(dir: string, gitdir: string): Promise<Set<string>> {
  try {
    return new Set(await git.listFiles({ fs, dir, gitdir }));
  } catch {
    return new Set();
  }
}

/** Whether an untracked path is ignored by `.gitignore` files and `.git/info/exclude`. */
export function isIgnored(dir: string, gitdir: string, filepath: string): Promise<boolean> {
  return git.isIgnored({ fs, dir, gitdir, filepath });
}
