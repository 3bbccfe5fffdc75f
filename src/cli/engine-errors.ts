/**
 * The engine's own words for running out of memory, as a sentence a user can act on. All of
 * wasm shares one 4 GiB memory ("Allocation exceeds the 4 GiB memory32 limit" from jax-js's
 * allocator, a failed Memory.grow from the runtime), and what fills it is the rows a step or
 * an evaluation chunk holds at once.
 */
const OUT_OF_MEMORY = /4 GiB memory32 limit|WebAssembly\.Memory\.grow|Out of memory/i;

/** A message that says what to do for an engine out-of-memory error, or null for any other error. */
export function explainEngineError(message: string): string | null {
  if (!OUT_OF_MEMORY.test(message)) return null;
  return (
    "the engine ran out of memory (wasm has one 4 GiB memory for all arrays): " +
    "train with a smaller --batch-size or smaller model (--hidden), or score and sample fewer rows at once " +
    `(engine: ${message.split("\n")[0].slice(0, 80)})`
  );
}
