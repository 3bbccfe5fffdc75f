/**
 * The registry suite: every bijector in test/registry is proven invertible,
 * with a log-determinant equal to that of its exact Jacobian, the same under
 * jit, finite at extreme inputs, and free of leaked buffers.
 */
import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  numpy as np,
  random,
  tree,
  jit,
  jacfwd,
  valueAndGrad,
  defaultDevice,
  type Array,
  type DType,
} from "@jax-js/jax";
import { registry, type RegistryEntry } from "./registry/index.js";
import type { Bijector, Params } from "../src/core/types.js";
import { splitKey } from "../src/core/keys.js";
import { assertSteadyBuffers } from "./helpers/live-buffers.js";
import { values, assertClose, sampleInputs, perturbParams, f32, f64 } from "./helpers/arrays.js";

const BATCH = 5;
const CONTEXT_SEED = 99;

interface Setup {
  bijector: Bijector<any>;
  params: Params;
  x: Array;
  cond?: Array;
}

/**
 * float64 checks run on the "cpu" device: the wasm kernels evaluate exp, log
 * and tanh to float32 accuracy even on float64 arrays.
 */
function prepare(entry: RegistryEntry, dtype: DType, seed = 0, batch = BATCH): Setup {
  defaultDevice(dtype === f64 ? "cpu" : "wasm");
  const bijector = entry.make();
  const [kInit, kPerturb, kX, kC] = splitKey(random.key(seed), 4);
  const shape = [batch, ...bijector.eventShape];
  const x = sampleInputs(kX, shape, dtype, entry.domain);
  const cond =
    bijector.contextDim > 0
      ? random.normal(kC, [batch, bijector.contextDim]).astype(dtype)
      : (kC.dispose(), undefined);
  let params: Params = bijector.init(kInit, {
    dtype,
    x: entry.dataInit ? x.ref : undefined,
    cond: entry.dataInit ? cond?.ref : undefined,
  });
  params = entry.perturb ? entry.perturb(params, kPerturb) : perturbParams(params, kPerturb);
  return { bijector, params, x, cond };
}

function dispose(s: Setup): void {
  tree.dispose(s.params);
  s.x.dispose();
  s.cond?.dispose();
}

const eventSize = (b: Bijector<any>) => b.eventShape.reduce((a, d) => a * d, 1);

/** Call `f(params, x, cond)`, leaving out `cond` when there is none (transforms reject undefined). */
function withCond<T>(f: (...args: any[]) => T, p: Params, x: Array, cond?: Array): T {
  return cond === undefined ? f(p, x) : f(p, x, cond);
}

function rowOf(x: Array, i: number): Array {
  return x.slice([i, i + 1]);
}

for (const entry of registry) {
  describe(entry.name, () => {
    for (const [dtype, atol] of [
      [f32, 2e-4],
      [f64, 1e-9],
    ] as const) {
      it(`inverse(forward(x)) = x in ${dtype}`, async () => {
        const s = prepare(entry, dtype);
        const [y, ldF] = s.bijector.forward(tree.ref(s.params), s.x.ref, s.cond?.ref);
        const [x2, ldI] = s.bijector.inverse(tree.ref(s.params), y, s.cond?.ref);
        assertClose(await values(x2), await values(s.x.ref), atol, atol, "round trip");
        assertClose(
          await values(ldI),
          (await values(ldF)).map((v) => -v),
          atol * 10,
          atol,
          "inverse log-det",
        );
        dispose(s);
      });
    }

    it("forward log-det equals log|det| of the exact Jacobian (float64)", async () => {
      const s = prepare(entry, f64, 1);
      const D = eventSize(s.bijector);
      const [, logDet] = s.bijector.forward(tree.ref(s.params), s.x.ref, s.cond?.ref);
      const want = await values(logDet);
      for (let i = 0; i < BATCH; i++) {
        const ci = s.cond ? rowOf(s.cond.ref, i) : undefined;
        const f = (v: Array) => {
          const [y, ld] = s.bijector.forward(
            tree.ref(s.params),
            v.reshape([1, ...s.bijector.eventShape]),
            ci?.ref,
          );
          ld.dispose();
          return y.reshape([D]);
        };
        const J = jacfwd(f)(rowOf(s.x.ref, i).reshape([D]));
        const [, logAbsDet] = np.linalg.slogdet(J);
        ci?.dispose();
        assertClose(await values(logAbsDet), [want[i]], 1e-8, 1e-8, `sample ${i}`);
      }
      dispose(s);
    });

    it("jit gives the same result as eager", async () => {
      const s = prepare(entry, f64, 2);
      const fwd = jit((p: Params, x: Array, c?: Array) => s.bijector.forward(p, x, c));
      const inv = jit((p: Params, y: Array, c?: Array) => s.bijector.inverse(p, y, c));
      const [yE, ldE] = s.bijector.forward(tree.ref(s.params), s.x.ref, s.cond?.ref);
      const [yJ, ldJ] = withCond(fwd, tree.ref(s.params), s.x.ref, s.cond?.ref);
      const [xJ, ldIJ] = withCond(inv, tree.ref(s.params), yJ.ref, s.cond?.ref);
      const [xE, ldIE] = s.bijector.inverse(tree.ref(s.params), yE.ref, s.cond?.ref);
      assertClose(await values(yJ), await values(yE), 1e-10, 1e-10, "forward output");
      assertClose(await values(ldJ), await values(ldE), 1e-10, 1e-10, "forward log-det");
      assertClose(await values(xJ), await values(xE), 1e-10, 1e-10, "inverse output");
      assertClose(await values(ldIJ), await values(ldIE), 1e-10, 1e-10, "inverse log-det");
      fwd.dispose();
      inv.dispose();
      dispose(s);
    });

    it("outputs are finite at extreme inputs", async () => {
      const s = prepare(entry, f32, 3);
      const extremes = entry.extremes ?? (entry.domain ? [] : [-1e3, 1e3]);
      const shape = [BATCH, ...s.bijector.eventShape];
      const checks: [string, number[], "forward" | "inverse"][] = [
        ...extremes.map(
          (v) => [`forward at ${v}`, [v], "forward"] as [string, number[], "forward"],
        ),
        ...(entry.inverseExtremes ?? []).map(
          (v) => [`inverse at ${v}`, [v], "inverse"] as [string, number[], "inverse"],
        ),
      ];
      for (const [what, [v], direction] of checks) {
        const input = np.full(shape, v, { dtype: f32 });
        const [out, ld] = s.bijector[direction](tree.ref(s.params), input, s.cond?.ref);
        const outs = [...(await values(out)), ...(await values(ld))];
        assert.ok(outs.every(Number.isFinite), `${what}: non-finite output`);
      }
      dispose(s);
    });

    it("leaks no buffers in forward, inverse and a gradient step", async () => {
      const s = prepare(entry, f32, 4);
      const loss = (p: Params, x: Array, c?: Array) => {
        const [y, ld] = s.bijector.forward(p, x, c);
        return y.mul(y.ref).sum().mul(0.5).sub(ld.sum());
      };
      const step = async () => {
        const [y, ld] = s.bijector.forward(tree.ref(s.params), s.x.ref, s.cond?.ref);
        const [x2, ld2] = s.bijector.inverse(tree.ref(s.params), y, s.cond?.ref);
        const [value, grads] = withCond(
          valueAndGrad(loss),
          tree.ref(s.params),
          s.x.ref,
          s.cond?.ref,
        );
        await values(ld);
        await values(x2);
        await values(ld2);
        await values(value);
        tree.dispose(grads);
      };
      await assertSteadyBuffers(step, "forward/inverse/grad");
      dispose(s);
    });

    it("rejects inputs of the wrong shape with a message naming the expected shape", () => {
      const s = prepare(entry, f32, 5);
      const bad = np.zeros([BATCH, ...s.bijector.eventShape.map((d) => d + 1)]);
      assert.throws(
        () => s.bijector.forward(tree.ref(s.params), bad, s.cond?.ref),
        (e: Error) =>
          /expected/.test(e.message) && e.message.includes(s.bijector.eventShape.join(", ")),
      );
      dispose(s);
    });

    if (entry.make().contextDim > 0) {
      it("the context changes the output", async () => {
        const s = prepare(entry, f64, 6);
        const other = random.normal(random.key(CONTEXT_SEED), s.cond!.shape).astype(f64);
        const [y1, ld1] = s.bijector.forward(tree.ref(s.params), s.x.ref, s.cond!.ref);
        const [y2, ld2] = s.bijector.forward(tree.ref(s.params), s.x.ref, other);
        const a = [...(await values(y1)), ...(await values(ld1))];
        const b = [...(await values(y2)), ...(await values(ld2))];
        assert.ok(
          a.some((v, i) => Math.abs(v - b[i]) > 1e-6),
          "output does not depend on the context",
        );
        dispose(s);
      });
    }
  });
}
