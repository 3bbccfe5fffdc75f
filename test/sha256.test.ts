/** SHA-256: the standard's test vectors, and the portable code (browsers) against node:crypto at every padding case. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex, sha256HexPortable } from "../src/core/sha256.js";
import { makeRng } from "../src/core/prng.js";

const text = (s: string) => new TextEncoder().encode(s);

test("sha256: FIPS 180-4 / NIST example vectors, both implementations", () => {
  const vectors: [Uint8Array, string][] = [
    [text(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"],
    [text("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"],
    [
      text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ],
    [
      new Uint8Array(1_000_000).fill(0x61),
      "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    ], // a million "a"
  ];
  for (const [bytes, want] of vectors) {
    assert.equal(sha256HexPortable(bytes), want, `portable, ${bytes.length} bytes`);
    assert.equal(sha256Hex(bytes), want, `sha256Hex, ${bytes.length} bytes`);
  }
});

test("sha256: the portable code agrees with node:crypto on every length across the padding boundaries", () => {
  const rng = makeRng(3);
  const lengths = [...Array.from({ length: 200 }, (_, i) => i), 1000, 4095, 4096, 65_537];
  for (const n of lengths) {
    const bytes = Uint8Array.from({ length: n }, () => Math.floor(rng.uniform() * 256));
    // A view into a larger buffer, as a decoded file's bytes often are.
    const view = new Uint8Array(n + 7);
    view.set(bytes, 3);
    assert.equal(
      sha256HexPortable(view.subarray(3, 3 + n)),
      createHash("sha256").update(bytes).digest("hex"),
      `${n} bytes`,
    );
  }
});
