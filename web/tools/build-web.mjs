/**
 * Builds the playground into static files any static host can serve:
 *   node web/tools/build-web.mjs [OUTDIR]     (default web/dist; `npm run build:web`)
 */
import { copyFileSync, cpSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundleWeb } from "./bundle.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Bundle the page and its workers (minified) and copy index.html and the bundled models into `outdir`. */
export async function buildPlayground(outdir = join(root, "web/dist")) {
  mkdirSync(outdir, { recursive: true });
  await bundleWeb({
    outdir,
    minify: true,
    entries: {
      playground: join(root, "web/playground/main.ts"),
      "trainer-worker": join(root, "web/playground/trainer-worker.ts"),
      "images-worker": join(root, "web/playground/images-worker.ts"),
    },
  });
  copyFileSync(join(root, "web/playground/index.html"), join(outdir, "index.html"));
  // The Images tab's pretrained model (scripts/pack-playground-model.ts), served from the page's origin.
  cpSync(join(root, "web/playground/models"), join(outdir, "models"), { recursive: true });
  return outdir;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const out = await buildPlayground(process.argv[2] ? resolve(process.argv[2]) : undefined);
  console.log(`playground built in ${out} (serve the folder with any static server)`);
}
