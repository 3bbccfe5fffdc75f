/**
 * Node built-ins, loaded on first use and only in Node (process.getBuiltinModule,
 * Node >= 20.16). No module of the package root imports a `node:` module statically,
 * so the library loads in browsers and bundles for them; only the functions that
 * touch files, threads or zlib need Node, and they say so when called elsewhere.
 */
export const isNode = typeof process !== "undefined" && !!process.versions?.node;

/** The built-in module `name`; `user` names the caller in the error thrown outside Node. */
export function nodeModule<T>(name: string, user = name): T {
  const get = isNode
    ? (process as unknown as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule
    : undefined;
  if (typeof get !== "function") {
    throw new Error(
      `${user} needs Node >= 20.16 (it uses ${name}); in a browser, work on bytes and strings in memory instead`,
    );
  }
  return get(name) as T;
}

/** Typed accessors, one per built-in the library uses. */
export const node = {
  fs: (user?: string) => nodeModule<typeof import("node:fs")>("node:fs", user),
  fsp: (user?: string) => nodeModule<typeof import("node:fs/promises")>("node:fs/promises", user),
  path: (user?: string) => nodeModule<typeof import("node:path")>("node:path", user),
  zlib: (user?: string) => nodeModule<typeof import("node:zlib")>("node:zlib", user),
  crypto: (user?: string) => nodeModule<typeof import("node:crypto")>("node:crypto", user),
  os: (user?: string) => nodeModule<typeof import("node:os")>("node:os", user),
  url: (user?: string) => nodeModule<typeof import("node:url")>("node:url", user),
  module: (user?: string) => nodeModule<typeof import("node:module")>("node:module", user),
};
