/**
 * The docs' playground pictures: builds the page and, in headless chromium, either trains the
 * 2-D tab's default model for the default steps, or opens the Images tab and scores a garment
 * (a test image of the bundled model, 4x larger), then saves a screenshot.
 *   node web/tools/screenshot.mjs docs/images/playground-2d.png
 *   node web/tools/screenshot.mjs docs/images/playground-images.png images   (after npm run build:test)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { launch } from "puppeteer-core";
import { buildPlayground } from "./build-web.mjs";
import { startStaticServer } from "./static-server.mjs";
import { encodePng } from "../../build/src/io/png.js";

const out = resolve(process.argv[2] ?? "playground.png");
const tab = process.argv[3] ?? "2d";
const dir = mkdtempSync(join(tmpdir(), "clayflow-shot-"));
await buildPlayground(dir);
const server = await startStaticServer({ root: dir });
const browser = await launch({
  executablePath: process.env.CLAYFLOW_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1480, height: 780 });
  await page.goto(server.url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]");
  if (tab === "images") await showImagesTab(page);
  else {
    await page.click("#train");
    await page.waitForFunction(
      () => window.playground.done !== null || window.playground.error !== null,
      { timeout: 600_000, polling: 500 },
    );
    const error = await page.evaluate(() => window.playground.error);
    if (error) throw new Error(error);
  }
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}

/** The Images tab drawn, with a pullover (the first of the shipped garments of class 2) scored. */
async function showImagesTab(page) {
  await page.click("#tab-images-button");
  const ready = () =>
    page.waitForFunction(
      () => {
        const s = window.playgroundImages;
        return s.error !== null || (s.grids > 0 && s.interpolations > 0 && s.restyles > 0);
      },
      { timeout: 300_000, polling: 500 },
    );
  await ready();
  const model = resolve("web/playground/models/fashion-class");
  const manifest = JSON.parse(readFileSync(join(model, "model.json"), "utf8"));
  const k = manifest.garments.labels.indexOf(2);
  const garment = readFileSync(join(model, manifest.garments.file)).subarray(
    k * 784,
    (k + 1) * 784,
  );
  const side = 112;
  const data = Uint8Array.from(
    { length: side * side },
    (_, i) => garment[Math.floor(Math.floor(i / side) / 4) * 28 + Math.floor((i % side) / 4)],
  );
  const file = join(dir, "pullover.png");
  writeFileSync(file, encodePng({ width: side, height: side, channels: 1, data }));
  await (await page.$("#images-file")).uploadFile(file);
  await page.waitForFunction(
    () => window.playgroundImages.scored > 0 || window.playgroundImages.error !== null,
    { timeout: 120_000 },
  );
  const error = await page.evaluate(() => window.playgroundImages.error);
  if (error) throw new Error(error);
}
