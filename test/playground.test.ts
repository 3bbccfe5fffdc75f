/**
 * The playground in a real browser: the built page loads, trains the default 2-D model for 200
 * steps in its worker on wasm and on WebGPU, the loss falls and the heat map changes, the
 * temperature slider redraws the samples, a saved run decodes in Node, and the page makes no
 * request to another origin and logs no error. Screenshots go to build/test-artifacts/.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Page } from "puppeteer-core";
import {
  browserMissing,
  foreign,
  launchChromium,
  recordedPage,
  repoRoot,
  webTools,
} from "./helpers/browser.js";
import { decodeRun, tree } from "../src/index.js";

const missing = browserMissing();
const artifacts = resolve(repoRoot, "build/test-artifacts");

interface PageState {
  device: string | null;
  training: boolean;
  done: null | { steps: number; seconds: number; validNll: number | null };
  losses: { step: number; loss: number }[];
  densityChecksums: number[];
  samplesRedrawn: number;
  saved: null | { config: string; weights: number[] };
  error: string | null;
}

const pageState = (page: Page) =>
  page.evaluate(() => {
    const s = (window as any).playground;
    return {
      ...s,
      saved: s.saved ? { config: s.saved.config, weights: [...s.saved.weights] } : null,
    };
  }) as Promise<PageState>;

async function trainOn(page: Page, engine: "wasm" | "webgpu", steps: number): Promise<PageState> {
  await page.select("#engine", engine);
  await page.$eval(
    "#steps",
    (el, v) => {
      (el as HTMLInputElement).value = String(v);
    },
    steps,
  );
  await page.click("#train");
  await page.waitForFunction(
    () => {
      const s = (window as any).playground;
      return s.done !== null || s.error !== null;
    },
    { timeout: 240_000, polling: 500 },
  );
  const s = await pageState(page);
  assert.equal(s.error, null, `training on ${engine} failed: ${s.error}`);
  return s;
}

test("playground: trains the default 2-D model live on wasm and WebGPU, samples, saves a run", {
  skip: missing ?? false,
  timeout: 600_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "clayflow-playground-"));
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
    await page.setViewport({ width: 1400, height: 800 });
    await page.goto(server.url, { waitUntil: "load" });
    await page.waitForSelector("body[data-ready=true]", { timeout: 30_000 });
    assert.equal(
      await page.$eval("#model", (el) => (el as HTMLSelectElement).value),
      "nsf",
      "the default model",
    );

    const wasm = await trainOn(page, "wasm", 200);
    assert.equal(wasm.device, "wasm");
    assert.equal(wasm.done!.steps, 200);
    const first = wasm.losses[0].loss;
    const last = wasm.losses.at(-1)!.loss;
    assert.ok(
      wasm.losses.length >= 4 && last < first - 0.2,
      `the loss fell: ${wasm.losses.map((l) => l.loss.toFixed(3)).join(" ")}`,
    );
    const sums = wasm.densityChecksums;
    assert.ok(
      sums.length >= 4 && new Set(sums).size >= sums.length - 1,
      "the heat map changed as training went on",
    );
    assert.ok(
      wasm.done!.validNll !== null && Number.isFinite(wasm.done!.validNll),
      "a validation NLL in the data's units",
    );
    await page.screenshot({ path: join(artifacts, "playground-2d-wasm.png") });

    // The temperature slider redraws the samples from the same parameters.
    await page.$eval("#temperature", (el) => {
      (el as HTMLInputElement).value = "0.5";
      el.dispatchEvent(new Event("input"));
    });
    await page.waitForFunction(() => (window as any).playground.samplesRedrawn > 0, {
      timeout: 60_000,
    });

    // A saved run is the CLI's format: it decodes here, in Node.
    await page.click("#save");
    await page.waitForFunction(() => (window as any).playground.saved !== null, {
      timeout: 30_000,
    });
    const saved = (await pageState(page)).saved!;
    const run = decodeRun({ config: saved.config, weights: Uint8Array.from(saved.weights) });
    assert.equal(run.config.model.model, "nsf");
    assert.equal(run.state.step, 200);
    tree.dispose(run.params);
    tree.dispose(run.bestParams);

    const gpu = await trainOn(page, "webgpu", 100);
    assert.equal(gpu.device, "webgpu");
    assert.ok(
      gpu.losses.at(-1)!.loss < gpu.losses[0].loss,
      `the loss fell on WebGPU: ${gpu.losses.map((l) => l.loss.toFixed(3)).join(" ")}`,
    );
    await page.screenshot({ path: join(artifacts, "playground-2d-webgpu.png") });

    assert.deepEqual(
      foreign([...requests], server.url.replace(/\/$/, "")),
      [],
      "requests to other origins",
    );
    assert.deepEqual(errors, [], "console errors");
  } finally {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
