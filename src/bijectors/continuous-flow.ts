/**
 * A continuous normalizing flow (Chen et al., "Neural Ordinary Differential Equations",
 * NeurIPS 2018): the map between data (t = 1) and the base (t = 0) is the flow of the ODE
 * dx/dt = v(x, t | c). By the instantaneous change of variables,
 *   d log p_t(x_t) / dt = -div v(x_t, t),
 * so the log-determinant is the integral of the divergence, integrated jointly with x:
 *   forward (data -> latent, t from 1 to 0): logDet = log|det dz/dx| = -int_0^1 div v dt;
 *   inverse (latent -> data, t from 0 to 1): logDet = log|det dx/dz| = +int_0^1 div v dt.
 * The divergence is EXACT: the trace of dv/dx from one forward-mode JVP per dimension
 * (dim JVPs per evaluation: meant for small dimensions), not a stochastic estimate.
 *
 * The time convention is flow matching's (Lipman et al. 2023): t = 0 noise, t = 1 data.
 * The adaptive dopri5 solver reads step errors back, and the fixed-step solvers would unroll
 * into huge programs, so the bijector is not `jittable` (Flow's chunked evaluators run it
 * eagerly); the inverse of the discretised
 * map is only approximately the forward (to the solver's accuracy), as for every ODE flow.
 *
 * Params are `{ field }`, the vector field's; methods consume their arguments.
 */
import { jit, jvp, numpy as np, tree, type Array } from "@jax-js/jax";
import type { Bijector, Params } from "../core/types.js";
import { checkInput } from "../core/checks.js";
import type { VectorField } from "../nn/vector-field.js";
import { odeint, type OdeOptions, type OdeResult } from "../ode/solvers.js";

/** Parameters of `continuousFlow`. */
export type ContinuousFlowParams<P extends Params = Params> = { field: P };

/** The work of the latest forward or inverse call. */
export type OdeStats = Pick<OdeResult, "nfe" | "steps" | "rejected">;

/** A continuous-flow bijector; `lastStats` reports the solver's work on the latest call. */
export interface ContinuousFlowBijector<P extends Params = Params>
  extends Bijector<ContinuousFlowParams<P>> {
  readonly field: VectorField<P>;
  readonly ode: OdeOptions;
  /** NFE and steps of the latest `forward` / `inverse` (null before the first). */
  lastStats: OdeStats | null;
}

/**
 * v(x, t | cond) and its exact divergence tr(dv/dx): [v ([batch, dim]), div ([batch])].
 * One JVP over `dim` stacked copies of the batch, copy i with the unit tangent e_i, so the
 * trace costs one pass of the network on dim * batch rows instead of dim passes (the kernel
 * count, not the arithmetic, dominates at these sizes). x: [batch, dim], t: [batch, 1].
 * Consumes its arguments.
 */
export function velocityAndDivergence<P extends Params>(
  field: VectorField<P>,
  params: P,
  x: Array,
  t: Array,
  cond?: Array,
): [Array, Array] {
  const dim = field.dim;
  const [batch] = x.shape;
  const stack = (a: Array) =>
    np.concatenate(
      globalThis.Array.from({ length: dim }, () => a.ref),
      0,
    );
  const ts = stack(t);
  const cs = cond ? stack(cond) : undefined;
  const xs = stack(x);
  t.dispose();
  cond?.dispose();
  x.dispose();
  // Row block i carries e_i: tangents [dim * batch, dim], and the mask that picks (dv/dx)_ii.
  const eye = np.eye(dim, undefined, { dtype: xs.dtype });
  const tangent = np
    .broadcastTo(eye.reshape([dim, 1, dim]), [dim, batch, dim])
    .reshape([dim * batch, dim]);
  const v = (xx: Array) => field.apply(params, xx, ts, cs);
  const [out, jv] = jvp(v, [xs], [tangent.ref]);
  const div = jv.mul(tangent).sum(1).reshape([dim, batch]).sum(0);
  const value = out.slice([0, batch]);
  return [value, div];
}

/** A continuous normalizing flow of `field` solved with `ode` (default dopri5, rtol = atol = 1e-5). */
export function continuousFlow<P extends Params>(
  field: VectorField<P>,
  ode: OdeOptions = {},
): ContinuousFlowBijector<P> {
  const { dim, contextDim } = field;
  // One evaluation of the augmented dynamics, compiled once per batch shape: the solver calls
  // it NFE times, and eagerly each call would dispatch every kernel of dim JVPs one by one.
  const dynamics = jit((p: any, x: Array, t: Array, ...c: Array[]) =>
    velocityAndDivergence(field, p, x, t, c[0]),
  );
  const run = (
    where: string,
    params: ContinuousFlowParams<P>,
    x: Array,
    cond: Array | undefined,
    t0: number,
    t1: number,
  ): [Array, Array] => {
    checkInput(where, [dim], contextDim, x, cond);
    const [batch] = x.shape;
    // The time derivative of [x, l]: [v, div v], one compiled evaluation (t is an argument).
    const f = (t: number, [xt, l]: Array[]): Array[] => {
      l.dispose();
      const tArr = np.full([batch, 1], t, { dtype: xt.dtype });
      const c = cond ? [cond.ref] : [];
      return dynamics(tree.ref(params.field), xt, tArr, ...c);
    };
    try {
      const r = odeint(f, [x, np.zeros([batch], { dtype: x.dtype })], t0, t1, ode);
      self.lastStats = { nfe: r.nfe, steps: r.steps, rejected: r.rejected };
      return [r.y[0], r.y[1]];
    } finally {
      tree.dispose(params);
      cond?.dispose();
    }
  };
  const self: ContinuousFlowBijector<P> = {
    kind: "continuousFlow",
    eventShape: [dim],
    contextDim,
    // Not even for the fixed-step solvers: unrolled under jit, steps x dim JVPs of the network
    // make a program that takes far longer to compile than to run (each evaluation is compiled).
    jittable: false,
    field,
    ode: { ...ode },
    lastStats: null,
    init(key, options = {}) {
      options.x?.dispose();
      options.cond?.dispose();
      return { field: field.init(key, options.dtype) };
    },
    forward: (params, x, cond) => run("continuousFlow.forward", params, x, cond, 1, 0),
    inverse: (params, z, cond) => run("continuousFlow.inverse", params, z, cond, 0, 1),
  };
  return self;
}
