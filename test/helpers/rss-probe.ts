/**
 * Loaded with `node --import` into a child `clayflow` by the fuzz suite: at exit, writes the
 * process's peak resident memory (kB) to the file named by CLAYFLOW_RSS_FILE, so a test can
 * bound memory without a shell wrapper. Nothing is written to stdout or stderr.
 */
import { writeFileSync } from "node:fs";

const file = process.env.CLAYFLOW_RSS_FILE;
if (file) process.on("exit", () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
