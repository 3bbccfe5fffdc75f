/**
 * Speed of one jitted forward + backward (gradients w.r.t. input and kernel) of
 * a 3x3 'same' convolution, 64 -> 64 channels on [64, 28, 28, 64] NHWC:
 * clayflow's shifted-matmul convolution (src/nn/conv.ts) against `lax.conv`,
 * plus a variant that shifts the outputs of one wide matmul instead of the
 * inputs. Prints ms per step and GFLOP/s (forward 2 B H W Cin Cout k^2 flops,
 * backward twice that).
 *
 *   npx tsc -p tsconfig.bench.json && CLAYFLOW_THREADS=2 node build/bench/conv-speed.js [reps]
 *
 * Environment: CONV_BENCH_SHAPE=B,H,W,C overrides the problem size.
 */
import { startEngine } from "../src/engine/index.js";
import { grad, jit, lax, numpy as np, random, type Array } from "@jax-js/jax";
import { convSame } from "../src/nn/conv.js";
import { splitKey } from "../src/core/keys.js";

const reps = Number(process.argv[2] ?? 3);
const [B, H, W, C] = (process.env.CONV_BENCH_SHAPE ?? "64,28,28,64").split(",").map(Number);
const K = 3;

/** lax.conv wants NCHW / OIHW. */
const viaLax = (x: Array, w: Array) =>
  lax
    .conv(x.transpose([0, 3, 1, 2]), w.transpose([3, 2, 0, 1]), [1, 1], "SAME")
    .transpose([0, 2, 3, 1]);

/**
 * One [B H W, Cin] @ [Cin, k^2 Cout] matmul, then the k^2 output blocks are
 * shifted (pad + slice) and summed.
 */
const shiftedOutputs = (x: Array, w: Array) => {
  const [b, h, wd, cin] = x.shape;
  const [k, , , cout] = w.shape;
  const p = (k - 1) / 2;
  const wide = w.transpose([2, 0, 1, 3]).reshape([cin, k * k * cout]);
  const y = np.matmul(x.reshape([b * h * wd, cin]), wide).reshape([b, h, wd, k * k, cout]);
  const ypad = np.pad(y, [
    [0, 0],
    [p, p],
    [p, p],
    [0, 0],
    [0, 0],
  ]);
  let out: Array | null = null;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      // out[h, w] += Y_ij[h + i - p, w + j - p], i.e. the window at (i, j) of the padded Y_ij.
      const term = ypad.ref.slice([], [i, i + h], [j, j + wd], i * k + j, []);
      out = out === null ? term : out.add(term);
    }
  }
  ypad.dispose();
  return out!;
};

const info = await startEngine();
const flops = 3 * 2 * B * H * W * C * C * K * K;
console.log(
  `engine: ${info.device}, ${info.threads} thread(s); x [${B}, ${H}, ${W}, ${C}], w [3, 3, ${C}, ${C}]`,
);
console.log(
  `forward + backward = ${(flops / 1e9).toFixed(2)} GFLOP per step; ${reps} timed reps after one warm-up\n`,
);

const [kx, kw, kr] = splitKey(random.key(0), 3);
const x = random.normal(kx, [B, H, W, C]);
const w = random.normal(kw, [K, K, C, C]).mul(0.05);
const r = random.normal(kr, [B, H, W, C]);

const rows: string[] = [];
let reference: Float32Array | null = null;
const variants: [string, (x: Array, w: Array) => Array][] = [
  ["shifted matmuls (conv.ts)", convSame],
  ["shifted outputs, one matmul", shiftedOutputs],
  ["lax.conv", viaLax],
];
for (const [name, conv] of variants) {
  // A random cotangent r: a realistic backward pass (and not the constant-cotangent jit case).
  const step = jit(
    grad((x: Array, w: Array, r: Array) => conv(x, w).mul(r).sum(), { argnums: [0, 1] }),
  );
  const run = async () => {
    const t = performance.now();
    const [gx, gw] = step(x.ref, w.ref, r.ref) as Array[];
    const gwData = (await gw.data()) as Float32Array;
    await gx.data();
    return [performance.now() - t, gwData] as const;
  };
  const [warm, gwData] = await run();
  if (reference === null) reference = gwData;
  const err =
    Math.max(...globalThis.Array.from(gwData, (v, i) => Math.abs(v - reference![i]))) /
    Math.max(...globalThis.Array.from(reference, Math.abs));
  const times: number[] = [];
  for (let i = 0; i < reps; i++) times.push((await run())[0]);
  step.dispose();
  const best = Math.min(...times);
  const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)];
  rows.push(
    `| ${name.padEnd(28)} | ${warm.toFixed(0).padStart(9)} | ${times
      .map((t) => t.toFixed(0))
      .join(", ")
      .padStart(
        22,
      )} | ${median.toFixed(0).padStart(9)} | ${(flops / best / 1e6).toFixed(2).padStart(14)} | ${err.toExponential(1)} |`,
  );
  console.log(rows.at(-1));
}
console.log(
  `\n| ${"variant".padEnd(28)} | warm-up ms | ${"ms per step (reps)".padStart(22)} | median ms | GFLOP/s (best) | rel. err dW |`,
);
console.log(
  `|${"-".repeat(30)}|-----------:|${"-".repeat(24)}:|----------:|---------------:|------------:|`,
);
for (const row of rows) console.log(row);
x.dispose();
w.dispose();
r.dispose();
