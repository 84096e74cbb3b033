import { parseDuration } from "./parse_duration.ts";
import { UsageError } from "../errors.ts";
import { assertEquals } from "../tests/store_assert.ts";
import nodeAssert from "node:assert/strict";

Deno.test("parseDuration() reads restic durations", () => {
  assertEquals(parseDuration("2d3h"), { years: 0, months: 0, days: 2, hours: 3 });
  assertEquals(parseDuration("1y2m"), { years: 1, months: 2, days: 0, hours: 0 });
  assertEquals(parseDuration("36h"), { years: 0, months: 0, days: 0, hours: 36 });
  assertEquals(parseDuration("1y2m3d4h"), { years: 1, months: 2, days: 3, hours: 4 });
});

Deno.test("parseDuration() rejects bad input with clear messages", () => {
  const cases: [string, string][] = [
    ["", "it is empty"],
    ["2x", 'unknown unit "x"'],
    ["12", "the number 12 has no unit"],
    ["d", 'the unit "d" has no number'],
    ["1d2d", 'the unit "d" is given twice'],
    ["1w", 'unknown unit "w"'],
  ];
  for (const [text, why] of cases) {
    nodeAssert.throws(() => parseDuration(text), (e: unknown) => {
      nodeAssert.ok(e instanceof UsageError);
      nodeAssert.ok(e.message.startsWith(`Cannot parse duration ${JSON.stringify(text)}: `));
      nodeAssert.ok(e.message.includes(why), e.message);
      return true;
    });
  }
});
