import "./helpers/setup.js";
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { numpy as np } from "@jax-js/jax";
import { odeint, type OdeSolver } from "../src/ode/index.js";
import { values, f64 } from "./helpers/arrays.js";
import { liveBuffers } from "./helpers/live-buffers.js";

/** `body` leaves as many live device buffers as there were before it. */
async function assertNoLeaks(body: () => Promise<void>): Promise<void> {
  const before = liveBuffers();
  await body();
  assert.equal(liveBuffers(), before, "live buffers after the call");
}

const a = -0.7;
const x0 = [1, -2, 0.5];
/** dx/dt = a x from 0 to 1 (or 1 to 0): exact x(t1) = x(t0) exp(a (t1 - t0)). */
async function decayError(solver: OdeSolver, steps: number, t0 = 0, t1 = 1) {
  const r = odeint((_t, [x]) => [x.mul(a)], [np.array(x0, { dtype: f64 })], t0, t1, {
    solver,
    steps,
  });
  const got = await values(r.y[0]);
  const err = Math.max(...got.map((g, i) => Math.abs(g - x0[i] * Math.exp(a * (t1 - t0)))));
  return { err, nfe: r.nfe };
}

describe("odeint", () => {
  const orders: [OdeSolver, number, number][] = [
    ["euler", 1, 1],
    ["midpoint", 2, 2],
    ["rk4", 4, 4],
  ];
  for (const [solver, order, perStep] of orders) {
    it(`${solver} converges at order ${order} on dx/dt = a x and counts ${perStep} evaluations a step`, async () => {
      const e1 = await decayError(solver, 8);
      const e2 = await decayError(solver, 16);
      const e3 = await decayError(solver, 32);
      assert.equal(e1.nfe, 8 * perStep);
      assert.equal(e3.nfe, 32 * perStep);
      for (const [coarse, fine] of [
        [e1.err, e2.err],
        [e2.err, e3.err],
      ]) {
        const observed = Math.log2(coarse / fine);
        assert.ok(
          Math.abs(observed - order) < 0.15,
          `observed order ${observed.toFixed(3)}, expected ${order}`,
        );
      }
    });
  }

  it("integrates backwards in time (t1 < t0) to the exact solution", async () => {
    const { err } = await decayError("rk4", 50, 1, 0);
    assert.ok(err < 1e-8, `error ${err}`);
  });

  for (const tol of [1e-4, 1e-7, 1e-10]) {
    it(`dopri5 meets rtol = atol = ${tol} on a harmonic oscillator (a two-array state)`, async () => {
      // x' = v, v' = -x: x(t) = cos t, v(t) = -sin t from (1, 0); 2 pi is one period.
      const T = 2 * Math.PI;
      const r = odeint(
        (_t, [x, v]) => [v, x.mul(-1)],
        [np.array([1], { dtype: f64 }), np.array([0], { dtype: f64 })],
        0,
        T,
        { solver: "dopri5", rtol: tol, atol: tol },
      );
      const [x, v] = [(await values(r.y[0]))[0], (await values(r.y[1]))[0]];
      const err = Math.max(Math.abs(x - Math.cos(T)), Math.abs(v + Math.sin(T)));
      // The global error of a locally controlled method stays within a small multiple of tol.
      assert.ok(err < 20 * tol, `error ${err} at tolerance ${tol}`);
      assert.ok(r.nfe === 6 * (r.steps + r.rejected) + 2, `nfe ${r.nfe}, steps ${r.steps}`);
      assert.ok(r.steps >= 3);
    });
  }

  it("dopri5 takes more steps for tighter tolerances and matches exp on dx/dt = a x", async () => {
    const run = async (tol: number) => {
      const r = odeint((_t, [x]) => [x.mul(a)], [np.array(x0, { dtype: f64 })], 0, 3, {
        rtol: tol,
        atol: tol,
      });
      const got = await values(r.y[0]);
      return {
        steps: r.steps,
        err: Math.max(...got.map((g, i) => Math.abs(g - x0[i] * Math.exp(3 * a)))),
      };
    };
    const loose = await run(1e-3);
    const tight = await run(1e-9);
    assert.ok(tight.steps > loose.steps, `${tight.steps} vs ${loose.steps} steps`);
    assert.ok(tight.err < 1e-8, `error ${tight.err}`);
  });

  it("dopri5 stops with a clear error at maxSteps, and frees its arrays", async () => {
    await assertNoLeaks(async () => {
      assert.throws(
        () =>
          odeint((_t, [x]) => [x.mul(-50)], [np.array([1], { dtype: f64 })], 0, 10, {
            rtol: 1e-12,
            atol: 1e-12,
            maxSteps: 5,
          }),
        /maxSteps = 5/,
      );
    });
  });

  it("leaks nothing (fixed and adaptive) and rejects bad options", async () => {
    await assertNoLeaks(async () => {
      for (const solver of ["euler", "midpoint", "rk4", "dopri5"] as const) {
        const r = odeint(
          (t, [x]) => [x.mul(Math.cos(t))],
          [np.array([1, 2], { dtype: f64 })],
          0,
          1,
          {
            solver,
            steps: 3,
          },
        );
        r.y.forEach((y) => y.dispose());
      }
    });
    assert.throws(
      () => odeint((_t, y) => y, [np.array([1])], 0, 1, { solver: "heun" as never }),
      /unknown solver/,
    );
    assert.throws(() => odeint((_t, y) => y, [np.array([1])], 0, 1, { steps: 0 }), /steps must be/);
  });
});
