import { test } from "node:test";
import assert from "node:assert/strict";
import { excerpt, jsonExcerpt, nameExcerpt, oneLine } from "../src/core/excerpt.js";

test("excerpt: short text is quoted whole; long text is cut and its length given", () => {
  assert.equal(excerpt("abc"), '"abc"');
  assert.equal(excerpt("a".repeat(50), 10), '"aaaaaaaaaa..." (50 characters)');
  assert.equal(excerpt('say "hi"'), '"say \\"hi\\""');
});

test("excerpt: control characters, bytes that were not UTF-8 and lone surrogates are escaped", () => {
  assert.equal(excerpt("a\nb\r\tc\u0000\u007f\ufffd"), '"a\\nb\\r\\tc\\u0000\\u007f\\ufffd"');
  assert.equal(excerpt("x\ud800y"), '"x\\ud800y"');
  assert.equal(excerpt("é😀"), '"é😀"', "printable text, surrogate pairs included, is kept");
});

test("oneLine: one line of at most max characters", () => {
  const m = oneLine("first\nsecond " + "z".repeat(1000), 100);
  assert.equal(m.length, 100);
  assert.ok(m.startsWith("first\\nsecond z"));
  assert.ok(m.endsWith("..."));
  assert.equal(oneLine("short"), "short");
});

test("jsonExcerpt: a value from a file as short escaped JSON, with its full length when cut", () => {
  assert.equal(jsonExcerpt([1, "a", null]), '[1,"a",null]');
  assert.equal(jsonExcerpt(undefined), "undefined");
  assert.equal(jsonExcerpt(10n), "10", "BigInt, which JSON cannot write");
  const nested = JSON.parse("[".repeat(1000) + "]".repeat(1000));
  assert.equal(jsonExcerpt(nested, 10), "[[[[[[[[[[... (2000 characters)");
  assert.equal(jsonExcerpt({ deep: "x".repeat(5000) }).length < 70, true);
  assert.equal(
    jsonExcerpt("\u2028\ufffd"),
    '"\\u2028\\ufffd"',
    "JSON leaves these raw; they are escaped",
  );
  // JSON writes each U+0001 as the 6 characters \u0001: 182 in all; the cut falls inside the second.
  assert.equal(
    jsonExcerpt("\u0001".repeat(30), 12),
    '"\\u0001... (182 characters)',
    "never cut inside an escape",
  );
});

test("nameExcerpt: a short printable name as it is, anything else as an excerpt", () => {
  assert.equal(nameExcerpt("x"), "x");
  assert.equal(nameExcerpt("\ufffd\u0000x"), '"\\ufffd\\u0000x"');
  assert.equal(nameExcerpt("n".repeat(100), 5), '"nnnnn..." (100 characters)');
});
