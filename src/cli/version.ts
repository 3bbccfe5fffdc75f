/**
 * The installed clayflow's version, read from its own package.json: the file sits two folders
 * above the compiled CLI in the package (dist/cli/) and three in the test build (build/src/cli/),
 * so the search walks up to the first package.json named "clayflow".
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The version in clayflow's package.json, e.g. "0.1.0". */
export function clayflowVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === "clayflow" && typeof pkg.version === "string") return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("clayflow's package.json was not found above the CLI");
    dir = parent;
  }
}
