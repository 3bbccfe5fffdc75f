/**
 * A module resolve hook: `import ... from "clayflow"` loads this build's sources
 * (build/src/index.js), so the examples run as a user would write them without `npm run build`.
 */
import type { ResolveHook } from "node:module";

const target = new URL("../../src/index.js", import.meta.url).href;

export const resolve: ResolveHook = (specifier, context, next) =>
  specifier === "clayflow" ? { url: target, shortCircuit: true } : next(specifier, context);
