/** Run by test/engine.test.ts in a child process with CLAYFLOW_THREADS set. */
import { startEngine } from "../../src/engine/index.js";
import { numpy as np, random, jit } from "@jax-js/jax";
import { buildFlow } from "../../src/models/index.js";
import { fit } from "../../src/train/fit.js";
import { sampleToy2d } from "../../src/data/toy2d.js";

const info = await startEngine();
// Small kernels (a 2-D flow) run on the main thread, big ones on workers.
const flow = buildFlow({ model: "realnvp", dim: 2, layers: 2, hidden: [32] });
const losses: number[] = [];
await fit(
  flow,
  flow.init(random.key(0)),
  { x: sampleToy2d("moons", 2048, 0), rows: 2048 },
  {
    steps: 5,
    batchSize: 256,
    onProgress: (p) => losses.push(p.loss),
  },
);
const big = jit((a: np.Array) => np.tanh(np.matmul(a.ref, a)).sum(0));
const m = random.normal(random.key(1), [384, 384]);
const out = Array.from((await big(m).data()) as Float32Array).slice(0, 8);
process.stdout.write(JSON.stringify({ threads: info.threads, losses, big: out }));
