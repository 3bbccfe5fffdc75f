/**
 * Node built-ins loaded synchronously and only in Node (process.getBuiltinModule,
 * Node >= 20.16), so that the engine modules also load in browsers.
 */
export const isNode = typeof process !== "undefined" && !!process.versions?.node;

export function nodeModule<T>(name: string): T {
  const get = (process as unknown as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (!isNode || typeof get !== "function") throw new Error(`${name} needs Node >= 20.16`);
  return get(name) as T;
}
