/**
 * Real-browser test plumbing: Debian's chromium driven by puppeteer-core (an explicit
 * executable, never a downloaded browser), a static server on 127.0.0.1, and a record of
 * every request and console error of the page.
 *
 * WebGPU runs on the CPU through SwiftShader. Networking beyond the loopback is cut three ways:
 * a dead proxy for every non-loopback host, a host resolver that resolves nothing but
 * 127.0.0.1, and Chromium's background services (updates, sync, metrics) switched off.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Browser, Page } from "puppeteer-core";

export const CHROMIUM = process.env.CLAYFLOW_CHROMIUM ?? "/usr/bin/chromium";
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** Why the browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  return existsSync(CHROMIUM)
    ? null
    : `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run the browser tests`;
}

export const CHROMIUM_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--ignore-gpu-blocklist",
  "--disable-gpu-watchdog",
  // No network but the loopback.
  "--proxy-server=http://127.0.0.1:9",
  "--proxy-bypass-list=127.0.0.1",
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-domain-reliability",
  "--disable-sync",
  "--disable-default-apps",
  "--disable-extensions",
  "--no-first-run",
  "--no-pings",
  "--disable-features=MediaRouter,OptimizationHints,Translate",
];

interface StaticServer {
  url: string;
  requests: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}
type ToolModules = {
  startStaticServer(o: { root: string }): Promise<StaticServer>;
  bundleWeb(o: {
    entries: Record<string, string>;
    outdir: string;
    minify?: boolean;
  }): Promise<void>;
};

/** The web tools (plain ES modules under web/tools, shared with `npm run playground`). */
export async function webTools(): Promise<ToolModules> {
  const server = await import(pathToFileURL(resolve(repoRoot, "web/tools/static-server.mjs")).href);
  const bundle = await import(pathToFileURL(resolve(repoRoot, "web/tools/bundle.mjs")).href);
  return { startStaticServer: server.startStaticServer, bundleWeb: bundle.bundleWeb };
}

export async function launchChromium(): Promise<Browser> {
  const { launch } = await import("puppeteer-core");
  return launch({
    executablePath: CHROMIUM,
    headless: false,
    args: CHROMIUM_FLAGS,
    protocolTimeout: 300_000,
  });
}

/** A page that records every request it (and its workers, where CDP reports them) makes, and its console errors. */
export async function recordedPage(
  browser: Browser,
): Promise<{ page: Page; requests: string[]; errors: string[] }> {
  const page = await browser.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on("request", (r) => {
    requests.push(r.url());
  });
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => {
    errors.push(String(e));
  });
  return { page, requests, errors };
}

/** URLs outside `origin` (data: and blob: URLs are the page's own memory). */
export function foreign(urls: string[], origin: string): string[] {
  return urls.filter(
    (u) => !u.startsWith(origin) && !u.startsWith("data:") && !u.startsWith("blob:"),
  );
}
