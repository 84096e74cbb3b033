import assert from "node:assert/strict";
import { UsageError } from "../errors.ts";
import { checkArtifactPaths } from "./check_artifact_paths.ts";

const owns = (prefix: string) => (p: string) => p.startsWith(prefix);

Deno.test("checkArtifactPaths() accepts distinct owned paths", () => {
  checkArtifactPaths([
    { plugin: { name: "memdir", owns: owns("memdir/") }, artifacts: [{ path: "memdir/a" }] },
    { plugin: { name: "git", owns: owns("git/") }, artifacts: [{ path: "git/memdir.bundle" }] },
  ]);
});

Deno.test("checkArtifactPaths() rejects duplicates, foreign and unsafe paths, bad names", () => {
  const cases: [string, Parameters<typeof checkArtifactPaths>[0]][] = [
    ["both produce", [
      { plugin: { name: "a", owns: () => true }, artifacts: [{ path: "x/1" }] },
      { plugin: { name: "b", owns: () => true }, artifacts: [{ path: "x/1" }] },
    ]],
    ["twice", [{
      plugin: { name: "a", owns: () => true },
      artifacts: [{ path: "x/1" }, { path: "x/1" }],
    }]],
    ["does not own", [{ plugin: { name: "a", owns: owns("a/") }, artifacts: [{ path: "b/1" }] }]],
    ["invalid artifact path", [{
      plugin: { name: "a", owns: () => true },
      artifacts: [{ path: "a/../x" }],
    }]],
    ["invalid artifact path", [{
      plugin: { name: "a", owns: () => true },
      artifacts: [{ path: "/a/x" }],
    }]],
    ["invalid artifact path", [{
      plugin: { name: "a", owns: () => true },
      artifacts: [{ path: "top" }],
    }]],
    ["plugin name", [{ plugin: { name: "Bad Name", owns: () => true }, artifacts: [] }]],
    ["two plugins are named", [
      { plugin: { name: "a", owns: () => true }, artifacts: [] },
      { plugin: { name: "a", owns: () => true }, artifacts: [] },
    ]],
  ];
  for (const [needle, input] of cases) {
    assert.throws(() => checkArtifactPaths(input), (e: unknown) => {
      assert(e instanceof UsageError);
      assert(e.message.includes(needle), e.message);
      return true;
    });
  }
});
