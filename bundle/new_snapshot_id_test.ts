import assert from "node:assert/strict";
import fc from "fast-check";
import { newSnapshotId } from "./new_snapshot_id.ts";
import { parseSnapshotId } from "./parse_snapshot_id.ts";

Deno.test("newSnapshotId() formats UTC time to the millisecond and a hex suffix", () => {
  assert.equal(
    newSnapshotId(new Date("2026-11-25T19:52:22.123Z"), "1a2b3c4d"),
    "20261125T195222123Z-1a2b3c4d",
  );
  assert.match(newSnapshotId(new Date()), /^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
  assert.throws(() => newSnapshotId(new Date(NaN)), RangeError);
  assert.throws(() => newSnapshotId(new Date(), "XYZ"), RangeError);
});

Deno.test("newSnapshotId() ids sort by creation time and parse back (property)", () => {
  const date = fc.date({
    min: new Date("1970-01-01T00:00:00Z"),
    max: new Date("9999-12-31T23:59:59.999Z"),
    noInvalidDate: true,
  });
  fc.assert(
    fc.property(date, date, (a, b) => {
      const ia = newSnapshotId(a);
      const ib = newSnapshotId(b);
      if (a.getTime() < b.getTime()) assert.ok(ia < ib);
      const p = parseSnapshotId(ia);
      assert.equal(p?.date.getTime(), a.getTime());
      assert.equal(p?.suffix, ia.slice(-8));
    }),
  );
});

Deno.test("parseSnapshotId() rejects malformed ids", () => {
  for (
    const id of [
      "",
      "20261125T195222123Z",
      "20261125T195222123Z-1A2B3C4D",
      "20261345T195222123Z-1a2b3c4d",
      "20260230T000000000Z-1a2b3c4d",
    ]
  ) {
    assert.equal(parseSnapshotId(id), undefined, id);
  }
});
