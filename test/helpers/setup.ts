/** Common set-up for test files: the engine on one thread, buffer counting on. */
import { startEngine } from "../../src/engine/index.js";
import { installBufferCounter } from "./live-buffers.js";

await startEngine({ threads: 1 });
await installBufferCounter();
