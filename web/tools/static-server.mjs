/**
 * A static file server for the playground and the browser tests: 127.0.0.1 only, an ephemeral
 * port by default, GET/HEAD only, no path outside `root`. Every request is recorded so a test
 * can check what the page fetched.
 */
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".csv": "text/csv; charset=utf-8",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".safetensors": "application/octet-stream",
};

/**
 * Serve `root` on `host:port`. Resolves to { url, requests, close() } once listening.
 * @param {{ root: string, host?: string, port?: number }} options
 */
export async function startStaticServer({ root, host = "127.0.0.1", port = 0 }) {
  const base = resolve(root);
  /** @type {{ method: string, path: string, status: number }[]} */
  const requests = [];
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const send = (status, body, type = "text/plain; charset=utf-8") => {
      requests.push({ method: req.method ?? "", path, status });
      res.writeHead(status, {
        "content-type": type,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n");
    const file = normalize(join(base, path.endsWith("/") ? path + "index.html" : path));
    if (file !== base && !file.startsWith(base + sep)) return send(403, "forbidden\n");
    try {
      if (!(await stat(file)).isFile()) return send(404, "not found\n");
      send(200, await readFile(file), TYPES[extname(file)] ?? "application/octet-stream");
    } catch {
      send(404, "not found\n");
    }
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => ok(undefined));
  });
  const address = server.address();
  if (address === null || typeof address === "string")
    throw new Error("the static server has no TCP address");
  return {
    url: `http://${host}:${address.port}/`,
    requests,
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections();
        server.close(() => ok(undefined));
      }),
  };
}
