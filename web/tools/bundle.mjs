/**
 * Bundles browser entry points (TypeScript, importing the library's sources) with esbuild into
 * one folder of static files: ES modules for the browser, no Node built-ins, source maps.
 */
import { build } from "esbuild";

/**
 * @param {{ entries: Record<string, string>, outdir: string, minify?: boolean }} options
 *   entries: output name (without .js) -> source file.
 */
export async function bundleWeb({ entries, outdir, minify = false }) {
  await build({
    entryPoints: entries,
    outdir,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    minify,
    // platform "browser": a static node: import anywhere in the graph fails the build (the
    // library reaches Node only through process.getBuiltinModule, at run time).
    logLevel: "warning",
  });
}
