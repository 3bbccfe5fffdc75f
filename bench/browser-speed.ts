/**
 * Training speed of the playground's default 2-D model (NSF, 6 layers, hidden 64-64, batch 256)
 * in Node and in headless chromium on wasm and on WebGPU (SwiftShader, a CPU adapter), from one
 * run on one machine. Prints a markdown table for docs/BROWSER.md.
 *   npm run bench:browser   (BROWSER_STEPS sets the timed steps; default 300)
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startEngine } from "../src/index.js";
import { browserMissing, launchChromium, repoRoot, webTools } from "../test/helpers/browser.js";
import { trainingSpeed } from "./browser/speed-shared.js";

const STEPS = Number(process.env.BROWSER_STEPS ?? 300);
const missing = browserMissing();
if (missing) throw new Error(missing);

const rows: [string, number][] = [];
for (const threads of [1, cpus().length]) {
  await startEngine({ device: "wasm", threads });
  rows.push([
    `Node ${process.version}, wasm, ${threads} thread${threads === 1 ? "" : "s"}`,
    await trainingSpeed(STEPS),
  ]);
}

const dir = mkdtempSync(join(tmpdir(), "clayflow-browser-speed-"));
const { startStaticServer, bundleWeb } = await webTools();
await bundleWeb({
  outdir: dir,
  minify: true,
  entries: { "speed-worker": resolve(repoRoot, "bench/browser/speed-worker.ts") },
});
writeFileSync(
  join(dir, "index.html"),
  `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>speed</title>`,
);
const server = await startStaticServer({ root: dir });
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(server.url, { waitUntil: "load" });
  const version = await browser.version();
  for (const device of ["wasm", "webgpu"] as const) {
    const r = (await page.evaluate(
      (device, steps) =>
        new Promise((ok) => {
          const w = new Worker("speed-worker.js", { type: "module" });
          w.onmessage = (e) => {
            w.terminate();
            ok(e.data);
          };
          w.postMessage({ device, steps });
        }),
      device,
      STEPS,
    )) as { ok: boolean; device: string; stepsPerSecond: number; error?: string };
    if (!r.ok) throw new Error(`${device} in the browser: ${r.error}`);
    rows.push([
      `${version}, ${device === "wasm" ? "wasm, 1 thread (worker)" : "WebGPU on SwiftShader (worker)"}`,
      r.stepsPerSecond,
    ]);
  }
} finally {
  await browser.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}

const base = rows[0][1];
console.log(`| where | steps/s | vs Node, 1 thread |\n|---|---|---|`);
for (const [where, speed] of rows)
  console.log(`| ${where} | ${speed.toFixed(1)} | ${(speed / base).toFixed(2)}x |`);
console.log(
  `\n${STEPS} timed steps after 20 of warm-up; ${cpus().length} cores (${cpus()[0]?.model ?? "unknown CPU"}); ${new Date().toISOString().slice(0, 10)}.`,
);
