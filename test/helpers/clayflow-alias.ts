/** `node --import ./build/test/helpers/clayflow-alias.js script.mjs`: "clayflow" resolves to this build. */
import { register } from "node:module";

register("./clayflow-alias-hooks.js", import.meta.url);
