import { test } from "node:test";
import assert from "node:assert/strict";
import { excerpt, oneLine } from "../src/core/excerpt.js";

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
