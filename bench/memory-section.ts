/** Markers of the memory-flatness section in docs/BENCHMARKS.md (written by bench/memory.ts, kept by bench/run.ts). */
export const MEMORY_START = "<!-- memory:start -->";
export const MEMORY_END = "<!-- memory:end -->";
