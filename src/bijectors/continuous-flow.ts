/**
 * A continuous normalizing flow (Chen et al., "Neural Ordinary Differential Equations",
 * NeurIPS 2018): the map between data (t = 1) and the base (t = 0) is the flow of the ODE
 * dx/dt = v(x, t | c). By the instantaneous change of variables,
 *   d log p_t(x_t) / dt = -div v(x_t, t),
 * so the log-determinant is the integral of the divergence, integrated jointly with x:
 *   forward (data -> latent, t from 1 to 0): logDet = log|det dz/dx| = -int_0^1 div v dt;
 *   inverse (latent -> data, t from 0 to 1): logDet = log|det dx/dz| = +int_0^1 div v dt.
 * The divergence is, by default, EXACT: the trace of dv/dx from one forward-mode JVP per
 * dimension (dim JVPs per evaluation: meant for small dimensions). For images it is
 * Hutchinson's estimate (Hutchinson 1989; FFJORD, Grathwohl et al. 2019): with K Rademacher
 * probes e_k drawn once per solve from a fixed seed, tr(dv/dx) ~ mean_k e_k^T (dv/dx) e_k,
 * one JVP per probe. Each probe's log-det integral is an unbiased estimate of the exact one;
 * the result is their mean, and `lastStats.probeStdErr` reports the standard error of that
 * mean (from the spread of the K integrals, K >= 2). The estimate is deterministic: the same
 * input gives the same value.
 *
 * The time convention is flow matching's (Lipman et al. 2023): t = 0 noise, t = 1 data.
 * The adaptive dopri5 solver reads step errors back, and the fixed-step solvers would unroll
 * into huge programs, so the bijector is not `jittable` (Flow's chunked evaluators run it
 * eagerly); the inverse of the discretised
 * map is only approximately the forward (to the solver's accuracy), as for every ODE flow.
 *
 * Params are `{ field }`, the vector field's; methods consume their arguments.
 */
import { jit, jvp, numpy as np, random, tree, type Array } from "@jax-js/jax";
import type { Bijector, CallOptions, Params } from "../core/types.js";
import { assertPositiveInt, checkInput } from "../core/checks.js";
import { jsonExcerpt } from "../core/excerpt.js";
import type { VectorField } from "../nn/vector-field.js";
import { odeint, type OdeOptions, type OdeResult } from "../ode/solvers.js";

/** Parameters of `continuousFlow`. */
export type ContinuousFlowParams<P extends Params = Params> = { field: P };

/** The work of the latest forward or inverse call. */
export type OdeStats = Pick<OdeResult, "nfe" | "steps" | "rejected"> & {
  /**
   * Hutchinson divergence with K >= 2 probes: the root mean square over the batch of each
   * row's standard error of its log-det estimate (nats); null for the exact divergence.
   */
  probeStdErr: number | null;
};

/**
 * How the divergence is computed: "exact" (dim JVPs, small dimensions) or "hutchinson"
 * (`probes` Rademacher probes from `seed`, one JVP each; default 1 probe, seed 0).
 */
export type DivergenceOptions =
  | { kind: "exact" }
  | { kind: "hutchinson"; probes?: number; seed?: number };

/** A continuous-flow bijector; `lastStats` reports the solver's work on the latest call. */
export interface ContinuousFlowBijector<P extends Params = Params>
  extends Bijector<ContinuousFlowParams<P>> {
  readonly field: VectorField<P>;
  readonly ode: OdeOptions;
  readonly divergence: DivergenceOptions;
  /** NFE and steps of the latest `forward` / `inverse` (null before the first). */
  lastStats: OdeStats | null;
}

/**
 * v(x, t | cond) and its exact divergence tr(dv/dx): [v (shaped as x), div ([batch])].
 * One JVP over `dim` stacked copies of the batch, copy i with the unit tangent e_i, so the
 * trace costs one pass of the network on dim * batch rows instead of dim passes (the kernel
 * count, not the arithmetic, dominates at these sizes). x: [batch, ...eventShape], t: [batch, 1].
 * Consumes its arguments.
 */
export function velocityAndDivergence<P extends Params>(
  field: VectorField<P>,
  params: P,
  x: Array,
  t: Array,
  cond?: Array,
): [Array, Array] {
  const { dim, eventShape } = field;
  const [batch] = x.shape;
  const eye = np.eye(dim, undefined, { dtype: x.dtype });
  const tangent = np
    .broadcastTo(eye.reshape([dim, 1, dim]), [dim, batch, dim])
    .reshape([dim * batch, ...eventShape]);
  const [value, traces] = stackedJvp(field, params, x, t, cond, tangent, dim);
  return [value, traces.sum(0)];
}

/**
 * v(x, t | cond) and Hutchinson's divergence estimates e_k^T (dv/dx) e_k for the probes
 * `probes` ([K, batch, ...eventShape]): [v (shaped as x), estimates ([K, batch])]. Consumes
 * its arguments.
 */
export function velocityAndHutchinson<P extends Params>(
  field: VectorField<P>,
  params: P,
  x: Array,
  t: Array,
  cond: Array | undefined,
  probes: Array,
): [Array, Array] {
  const [k, batch] = probes.shape;
  const tangent = probes.reshape([k * batch, ...field.eventShape]);
  return stackedJvp(field, params, x, t, cond, tangent, k);
}

/**
 * One JVP of v over `copies` stacked copies of the batch with the tangents `tangent`
 * ([copies * batch, ...eventShape]): [v of the first copy, sum over the event of
 * tangent * (dv/dx) tangent, as [copies, batch]]. Consumes its arguments.
 */
function stackedJvp<P extends Params>(
  field: VectorField<P>,
  params: P,
  x: Array,
  t: Array,
  cond: Array | undefined,
  tangent: Array,
  copies: number,
): [Array, Array] {
  const [batch] = x.shape;
  // [batch, ...] -> [copies * batch, ...], copy-major (a broadcast: one copy kernel).
  const stack = (a: Array) =>
    copies === 1
      ? a
      : np
          .broadcastTo(a.reshape([1, ...a.shape]), [copies, ...a.shape])
          .reshape([copies * a.shape[0], ...a.shape.slice(1)]);
  const ts = stack(t);
  const cs = cond ? stack(cond) : undefined;
  const xs = stack(x);
  const v = (xx: Array) => field.apply(params, xx, ts, cs);
  const [out, jv] = jvp(v, [xs], [tangent.ref]);
  const quad = jv.mul(tangent).reshape([copies, batch, field.dim]).sum(2);
  const value = copies === 1 ? out : out.slice([0, batch]);
  return [value, quad];
}

/**
 * A continuous normalizing flow of `field` solved with `ode` (default dopri5, rtol = atol =
 * 1e-5), its divergence exact (default) or Hutchinson's estimate (`divergence`).
 */
export function continuousFlow<P extends Params>(
  field: VectorField<P>,
  ode: OdeOptions = {},
  divergence: DivergenceOptions = { kind: "exact" },
): ContinuousFlowBijector<P> {
  const { eventShape, contextDim } = field;
  const hutchinson = divergence.kind === "hutchinson";
  const probes = hutchinson ? (divergence.probes ?? 1) : 0;
  const probeSeed = hutchinson ? (divergence.seed ?? 0) : 0;
  if (hutchinson) {
    assertPositiveInt("continuousFlow", "probes", probes);
    if (!Number.isInteger(probeSeed))
      throw new Error(`continuousFlow: the probe seed must be an integer, got ${probeSeed}`);
  } else if (divergence.kind !== "exact") {
    throw new Error(
      `continuousFlow: divergence must be exact or hutchinson, got ${jsonExcerpt((divergence as { kind: unknown }).kind)}`,
    );
  }
  // One evaluation of the augmented dynamics, compiled once per batch shape: the solver calls
  // it NFE times, and eagerly each call would dispatch every kernel of the JVP one by one.
  const exactDynamics = jit((p: any, x: Array, t: Array, ...c: Array[]) =>
    velocityAndDivergence(field, p, x, t, c[0]),
  );
  const probeDynamics = jit((p: any, x: Array, t: Array, e: Array, ...c: Array[]) =>
    velocityAndHutchinson(field, p, x, t, c[0], e),
  );
  // Without the log-det (sampling, encoding): the velocity alone, no JVP.
  const velocity = jit((p: any, x: Array, t: Array, ...c: Array[]) => field.apply(p, x, t, c[0]));
  const run = (
    where: string,
    params: ContinuousFlowParams<P>,
    x: Array,
    cond: Array | undefined,
    t0: number,
    t1: number,
    options?: CallOptions,
  ): [Array, Array] => {
    let e: Array | undefined;
    try {
      try {
        checkInput(where, eventShape, contextDim, x, cond);
      } catch (err) {
        x.dispose(); // the ownership rule holds on errors too
        throw err;
      }
      const [batch] = x.shape;
      if (options?.logDet === false) {
        const g = (t: number, [xt]: Array[]): Array[] => {
          const tArr = np.full([batch, 1], t, { dtype: xt.dtype });
          return [velocity(tree.ref(params.field), xt, tArr, ...(cond ? [cond.ref] : []))];
        };
        const r = odeint(g, [x], t0, t1, ode);
        self.lastStats = { nfe: r.nfe, steps: r.steps, rejected: r.rejected, probeStdErr: null };
        return [r.y[0], np.zeros([batch], { dtype: r.y[0].dtype })];
      }
      // Rademacher probes, fixed for the whole solve (the integral of one probe's estimates is
      // then an unbiased estimate of the log-det) and by the seed (the same input, the same value).
      if (hutchinson) {
        const u = random.uniform(random.key(probeSeed), [probes, batch, ...eventShape]);
        e = np.where(np.less(u, 0.5), -1, 1).astype(x.dtype);
      }
      // The time derivative of [x, l]: [v, div v] (l: [batch], or [probes, batch]).
      const f = (t: number, [xt, l]: Array[]): Array[] => {
        l.dispose();
        const tArr = np.full([batch, 1], t, { dtype: xt.dtype });
        const c = cond ? [cond.ref] : [];
        return e
          ? probeDynamics(tree.ref(params.field), xt, tArr, e.ref, ...c)
          : exactDynamics(tree.ref(params.field), xt, tArr, ...c);
      };
      const l0 = np.zeros(e ? [probes, batch] : [batch], { dtype: x.dtype });
      const r = odeint(f, [x, l0], t0, t1, ode);
      const stats: OdeStats = {
        nfe: r.nfe,
        steps: r.steps,
        rejected: r.rejected,
        probeStdErr: null,
      };
      let logDet = r.y[1];
      if (e) {
        if (probes > 1) {
          // Per row: the variance of the probes' integrals / K is the squared error of their mean.
          const mean = logDet.ref.mean(0);
          const dev = logDet.ref.sub(mean.reshape([1, batch]));
          const meanSqErr = dev.ref
            .mul(dev)
            .sum(0)
            .div(probes * (probes - 1))
            .mean();
          stats.probeStdErr = Math.sqrt(meanSqErr.item() as number);
        }
        logDet = logDet.mean(0);
      }
      self.lastStats = stats;
      return [r.y[0], logDet];
    } finally {
      e?.dispose();
      tree.dispose(params);
      cond?.dispose();
    }
  };
  const self: ContinuousFlowBijector<P> = {
    kind: "continuousFlow",
    eventShape: [...eventShape],
    contextDim,
    // Not even for the fixed-step solvers: unrolled under jit, steps x dim JVPs of the network
    // make a program that takes far longer to compile than to run (each evaluation is compiled).
    jittable: false,
    field,
    ode: { ...ode },
    divergence: hutchinson ? { kind: "hutchinson", probes, seed: probeSeed } : { kind: "exact" },
    lastStats: null,
    init(key, options = {}) {
      options.x?.dispose();
      options.cond?.dispose();
      return { field: field.init(key, options.dtype) };
    },
    forward: (params, x, cond, options) =>
      run("continuousFlow.forward", params, x, cond, 1, 0, options),
    inverse: (params, z, cond, options) =>
      run("continuousFlow.inverse", params, z, cond, 0, 1, options),
  };
  return self;
}
