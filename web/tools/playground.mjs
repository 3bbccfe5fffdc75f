/**
 * `npm run playground`: builds the playground and serves it on 127.0.0.1 until Ctrl-C.
 * PORT sets the port (default 5173; 0 picks a free one).
 */
import { buildPlayground } from "./build-web.mjs";
import { startStaticServer } from "./static-server.mjs";

const dir = await buildPlayground();
const server = await startStaticServer({ root: dir, port: Number(process.env.PORT ?? 5173) });
console.log(`clayflow playground: ${server.url}  (Ctrl-C to stop)`);
process.on("SIGINT", async () => {
  await server.close();
  process.exit(130);
});
