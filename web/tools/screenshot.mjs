/**
 * The docs' playground picture: builds the page, trains its default model in headless chromium
 * for the default steps and saves a screenshot.
 *   node web/tools/screenshot.mjs docs/images/playground-2d.png
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { launch } from "puppeteer-core";
import { buildPlayground } from "./build-web.mjs";
import { startStaticServer } from "./static-server.mjs";

const out = resolve(process.argv[2] ?? "playground.png");
const dir = mkdtempSync(join(tmpdir(), "clayflow-shot-"));
await buildPlayground(dir);
const server = await startStaticServer({ root: dir });
const browser = await launch({ executablePath: process.env.CLAYFLOW_CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-background-networking"] });
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1480, height: 780 });
  await page.goto(server.url, { waitUntil: "load" });
  await page.waitForSelector("body[data-ready=true]");
  await page.click("#train");
  await page.waitForFunction(() => window.playground.done !== null || window.playground.error !== null, { timeout: 600_000, polling: 500 });
  const error = await page.evaluate(() => window.playground.error);
  if (error) throw new Error(error);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}
