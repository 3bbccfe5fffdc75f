/**
 * The image model factories (Glow, multi-scale RealNVP), unconditional and
 * class-conditional: exact sampling density, exact reconstruction, configs that
 * rebuild the model, and labels that change the density.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np, random, tree, defaultDevice } from "@jax-js/jax";
import { buildFlow } from "../src/models/index.js";
import type { ImageFlowConfig } from "../src/models/image.js";
import { values, assertClose, perturbParams, f64 } from "./helpers/arrays.js";

const CONFIGS: ImageFlowConfig[] = [
  { model: "glow", shape: [4, 4, 1], levels: 2, steps: 2, hidden: 4, blocks: 1 },
  { model: "realnvp", shape: [4, 4, 1], levels: 2, hidden: 4, blocks: 0 },
  { model: "glow", shape: [4, 4, 1], levels: 2, steps: 1, hidden: 4, blocks: 0, classes: 3 },
  {
    model: "glow",
    shape: [4, 4, 1],
    levels: 2,
    steps: 1,
    hidden: 4,
    blocks: 0,
    dequantization: "variational",
  },
];

const oneHot = (labels: number[], k: number) =>
  np.array(
    labels.flatMap((l) => Array.from({ length: k }, (_, j) => (j === l ? 1 : 0))),
    { shape: [labels.length, k] },
  );

for (const config of CONFIGS) {
  describe(`${config.model}${config.classes ? ` conditioned on ${config.classes} classes` : ""}${config.dequantization ? `, ${config.dequantization} dequantisation` : ""}`, () => {
    it("samples with the density logProb gives, and reconstructs exactly (float64)", async () => {
      defaultDevice("cpu");
      try {
        const flow = buildFlow(config);
        const params = perturbParams(
          flow.init(random.key(0), { dtype: f64 }) as any,
          random.key(1),
          0.05,
        ) as any;
        const n = 3;
        const cond = config.classes ? oneHot([0, 1, 2], config.classes).astype(f64) : undefined;
        const [x, lp] = flow.sampleAndLogProb(tree.ref(params), random.key(2), n, {
          cond: cond?.ref,
          temperature: 0.7,
        });
        assert.deepEqual(x.shape, [n, 4, 4, 1]);
        const lp2 = flow.logProb(tree.ref(params), x.ref, cond?.ref);
        assertClose(await values(lp), await values(lp2), 1e-8, 1e-8, "log-density");
        const back = flow.decode(
          tree.ref(params),
          flow.encode(tree.ref(params), x.ref, cond?.ref),
          cond,
        );
        assertClose(await values(back), await values(x), 1e-9, 1e-9, "reconstruction");
        tree.dispose(params);
      } finally {
        defaultDevice("wasm");
      }
    });

    it("its JSON config alone rebuilds the same model", async () => {
      const flow = buildFlow(config);
      const params = perturbParams(flow.init(random.key(3)) as any, random.key(4), 0.05) as any;
      const rebuilt = buildFlow(JSON.parse(JSON.stringify(flow.config)));
      const x = random.uniform(random.key(5), [2, 4, 4, 1]);
      const cond = config.classes ? oneHot([2, 0], config.classes) : undefined;
      const a = await values(flow.logProb(tree.ref(params), x.ref, cond?.ref));
      const b = await values(rebuilt.logProb(tree.ref(params), x, cond));
      assert.deepEqual(a, b);
      tree.dispose(params);
    });

    if (config.classes) {
      it("different labels give different densities", async () => {
        const flow = buildFlow(config);
        const params = perturbParams(flow.init(random.key(6)) as any, random.key(7), 0.1) as any;
        const x = random.uniform(random.key(8), [2, 4, 4, 1]);
        const a = await values(flow.logProb(tree.ref(params), x.ref, oneHot([0, 0], 3)));
        const b = await values(flow.logProb(tree.ref(params), x, oneHot([1, 1], 3)));
        assert.ok(
          a.some((v, i) => Math.abs(v - b[i]) > 1e-4),
          "the label has no effect",
        );
        tree.dispose(params);
      });
    }
  });
}

describe("image configs", () => {
  it("reject shapes the levels cannot squeeze, with the reason", () => {
    assert.throws(
      () => buildFlow({ model: "glow", shape: [6, 6, 1], levels: 2 }),
      /divisible by 4/,
    );
    assert.throws(
      () => buildFlow({ model: "glow", shape: [28, 28], levels: 2 } as never),
      /\[H, W, C\]/,
    );
  });
});

describe("variational dequantisation", () => {
  it("starts as uniform dequantisation: the same log-density as the model without it (float64)", async () => {
    defaultDevice("cpu");
    try {
      const base: ImageFlowConfig = {
        model: "glow",
        shape: [4, 4, 1],
        levels: 2,
        steps: 1,
        hidden: 4,
        blocks: 0,
      };
      const plain = buildFlow(base);
      const vd = buildFlow({ ...base, dequantization: "variational" });
      const p = vd.init(random.key(0), { dtype: f64 }) as any;
      // Inputs inside the cells (the noise is clamped within 2^-13 of a cell's edge).
      const x = random
        .uniform(random.key(3), [5, 4, 4, 1], { minval: 0.01, maxval: 0.99 })
        .astype(f64);
      // The chain's first layer is the noise flow; the rest is the plain model's parameter tree.
      const [noise, ...rest] = p.bijector as unknown[];
      tree.dispose(noise as any);
      const lpPlain = plain.logProb({ bijector: rest, base: p.base } as any, x.ref);
      const lpVd = vd.logProb(vd.init(random.key(0), { dtype: f64 }) as any, x);
      assertClose(await values(lpVd), await values(lpPlain), 1e-9, 1e-9, "log-density at init");
    } finally {
      defaultDevice("wasm");
    }
  });
});
