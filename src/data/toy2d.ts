/**
 * 2-D toy densities for flow demos and tests, generated in code with the parameters of FFJORD's
 * `lib/toy_data.py` (Grathwohl et al. 2019, "FFJORD: Free-form Continuous Dynamics for Scalable
 * Reversible Generative Models"), which in turn calls scikit-learn's `make_moons`, `make_circles`
 * and `make_swiss_roll` for three of them. Every sampler here is seeded and returns `n` rows
 * exactly (FFJORD's pinwheel rounds `n` down to a multiple of 5; here the classes take turns).
 *
 * Output: Float32Array of shape [n, 2], row-major (x0, y0, x1, y1, ...).
 */
import { makeRng, type Rng } from "../core/prng.js";

/** The names of the 2-D toy densities. */
export const TOY_DATASETS = [
  "moons",
  "8gaussians",
  "checkerboard",
  "rings",
  "pinwheel",
  "2spirals",
  "circles",
  "swissroll",
] as const;

/** One of `TOY_DATASETS`. */
export type ToyDataset = (typeof TOY_DATASETS)[number];

/** `n` samples of the named toy density, as Float32Array [n, 2] row-major. */
export function sampleToy2d(name: ToyDataset, n: number, seed: number): Float32Array {
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`sampleToy2d: n must be a non-negative integer, got ${n}`);
  const gen = GENERATORS[name];
  if (!gen)
    throw new Error(`sampleToy2d: unknown dataset "${name}"; known: ${TOY_DATASETS.join(", ")}`);
  const out = new Float32Array(2 * n);
  gen(makeRng(seed), n, out);
  return out;
}

type Generator = (rng: Rng, n: number, out: Float32Array) => void;

/** 8 isotropic Gaussians (std 0.5) on a circle of radius 4, all divided by 1.414. */
const eightGaussians: Generator = (rng, n, out) => {
  for (let i = 0; i < n; i++) {
    const [cx, cy] = EIGHT_CENTRES[rng.int(8)];
    out[2 * i] = (4 * cx + 0.5 * rng.normal()) / 1.414;
    out[2 * i + 1] = (4 * cy + 0.5 * rng.normal()) / 1.414;
  }
};

/** Unit-circle directions of FFJORD's 8 centres, in its order. */
export const EIGHT_CENTRES: ReadonlyArray<readonly [number, number]> = [
  [1, 0],
  [-1, 0],
  [0, 1],
  [0, -1],
  [Math.SQRT1_2, Math.SQRT1_2],
  [Math.SQRT1_2, -Math.SQRT1_2],
  [-Math.SQRT1_2, Math.SQRT1_2],
  [-Math.SQRT1_2, -Math.SQRT1_2],
];

/**
 * Uniform on the 8 squares of side 2 in [-4, 4]^2 where floor(x/2) + floor(y/2) is even:
 * x1 ~ U[-2, 2), x2 ~ U[0, 1) - 2*Bernoulli(1/2) + (floor(x1) mod 2), then both times 2.
 */
const checkerboard: Generator = (rng, n, out) => {
  for (let i = 0; i < n; i++) {
    const x1 = rng.uniform() * 4 - 2;
    const x2 = rng.uniform() - rng.int(2) * 2 + (((Math.floor(x1) % 2) + 2) % 2);
    out[2 * i] = 2 * x1;
    out[2 * i + 1] = 2 * x2;
  }
};

/** 4 concentric circles of radii 3, 2.25, 1.5, 0.75 (evenly spaced angles), shuffled, + N(0, 0.08^2). */
const rings: Generator = (rng, n, out) => {
  const q = Math.floor(n / 4);
  const counts = [q, q, q, n - 3 * q];
  const radii = [1, 0.75, 0.5, 0.25];
  const pts: number[] = [];
  counts.forEach((m, k) => {
    for (let j = 0; j < m; j++) {
      const a = (2 * Math.PI * j) / m;
      pts.push(3 * radii[k] * Math.cos(a), 3 * radii[k] * Math.sin(a));
    }
  });
  writeShuffled(rng, pts, n, out, 0.08);
};

/** sklearn make_moons(noise=0.1), then x*2 + (-1, -0.2). */
const moons: Generator = (rng, n, out) => {
  const nOut = Math.floor(n / 2);
  const nIn = n - nOut;
  const pts: number[] = [];
  for (let j = 0; j < nOut; j++) {
    const a = nOut > 1 ? (Math.PI * j) / (nOut - 1) : 0;
    pts.push(Math.cos(a), Math.sin(a));
  }
  for (let j = 0; j < nIn; j++) {
    const a = nIn > 1 ? (Math.PI * j) / (nIn - 1) : 0;
    pts.push(1 - Math.cos(a), 1 - Math.sin(a) - 0.5);
  }
  writeShuffled(rng, pts, n, out, 0.1);
  for (let i = 0; i < n; i++) {
    out[2 * i] = out[2 * i] * 2 - 1;
    out[2 * i + 1] = out[2 * i + 1] * 2 - 0.2;
  }
};

/** sklearn make_circles(factor=0.5, noise=0.08), then times 3. */
const circles: Generator = (rng, n, out) => {
  const nOut = Math.floor(n / 2);
  const nIn = n - nOut;
  const pts: number[] = [];
  for (let j = 0; j < nOut; j++) {
    const a = (2 * Math.PI * j) / nOut;
    pts.push(Math.cos(a), Math.sin(a));
  }
  for (let j = 0; j < nIn; j++) {
    const a = (2 * Math.PI * j) / nIn;
    pts.push(0.5 * Math.cos(a), 0.5 * Math.sin(a));
  }
  writeShuffled(rng, pts, n, out, 0.08);
  for (let i = 0; i < 2 * n; i++) out[i] *= 3;
};

/**
 * 5 arms: radial r ~ 1 + N(0, 0.3^2), tangential t ~ N(0, 0.1^2), rotated by
 * 2*pi*k/5 + 0.25*exp(r), then times 2 (Johnson et al. 2016's pinwheel, as in FFJORD).
 */
const pinwheel: Generator = (rng, n, out) => {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  for (let i = 0; i < n; i++) {
    const r = 1 + 0.3 * rng.normal();
    const t = 0.1 * rng.normal();
    const angle = (2 * Math.PI * (i % 5)) / 5 + 0.25 * Math.exp(r);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    // Row vector (r, t) times [[c, -s], [s, c]], as FFJORD's einsum("ti,tij->tj").
    out[2 * order[i]] = 2 * (r * c + t * s);
    out[2 * order[i] + 1] = 2 * (-r * s + t * c);
  }
};

/**
 * Two interleaved spirals: s = sqrt(U) * 3*pi, arm (-cos(s)*s + U/2, sin(s)*s + U/2) and its
 * negation, divided by 3, plus N(0, 0.1^2).
 */
const twoSpirals: Generator = (rng, n, out) => {
  const half = Math.ceil(n / 2);
  for (let i = 0; i < n; i++) {
    const s = Math.sqrt(rng.uniform()) * 3 * Math.PI;
    const sign = i < half ? 1 : -1;
    const x = -Math.cos(s) * s + rng.uniform() * 0.5;
    const y = Math.sin(s) * s + rng.uniform() * 0.5;
    out[2 * i] = (sign * x) / 3 + 0.1 * rng.normal();
    out[2 * i + 1] = (sign * y) / 3 + 0.1 * rng.normal();
  }
};

/**
 * sklearn make_swiss_roll(noise=1.0), columns (x, z), divided by 5:
 * t = 1.5*pi*(1 + 2U), point (t cos t, t sin t) + N(0, I).
 */
const swissroll: Generator = (rng, n, out) => {
  for (let i = 0; i < n; i++) {
    const t = 1.5 * Math.PI * (1 + 2 * rng.uniform());
    out[2 * i] = (t * Math.cos(t) + rng.normal()) / 5;
    out[2 * i + 1] = (t * Math.sin(t) + rng.normal()) / 5;
  }
};

/** Writes the points of `pts` (flat x, y) in a random row order, each coordinate plus N(0, noise^2). */
function writeShuffled(rng: Rng, pts: number[], n: number, out: Float32Array, noise: number): void {
  const order = rng.shuffle(Array.from({ length: n }, (_, i) => i));
  for (let i = 0; i < n; i++) {
    const j = order[i];
    out[2 * i] = pts[2 * j] + noise * rng.normal();
    out[2 * i + 1] = pts[2 * j + 1] + noise * rng.normal();
  }
}

const GENERATORS: Record<ToyDataset, Generator> = {
  moons,
  "8gaussians": eightGaussians,
  checkerboard,
  rings,
  pinwheel,
  "2spirals": twoSpirals,
  circles,
  swissroll,
};
