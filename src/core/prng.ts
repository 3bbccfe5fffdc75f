/**
 * A small seeded pseudo-random generator for data generation and splits (no engine, no keys).
 *
 * Uniforms come from mulberry32 (Tommy Ettinger's 32-bit generator: period 2^32, passes
 * gjrand/PractRand at the sizes toy data needs); normals from the Box-Muller transform
 * (Box & Muller 1958), using both outputs of each pair. Not for cryptography.
 */
export interface Rng {
  /** Uniform on [0, 1) with 32 bits of resolution. */
  uniform(): number;
  /** Standard normal N(0, 1). */
  normal(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Shuffles `a` in place (Fisher-Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: any }>(a: T): T;
}

/**
 * mulberry32: uniforms on [0, 1) from a 32-bit seed. Used wherever randomness
 * must be reproducible from a JSON seed and known on the host (orders,
 * permutations, initial rotations, data generation).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator seeded by any finite number (its integer part modulo 2^32 is used). */
export function makeRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new Error(`makeRng: seed must be a finite number, got ${seed}`);
  let spare: number | null = null;
  const uniform = mulberry32(Math.trunc(seed));
  const normal = (): number => {
    if (spare !== null) {
      const z = spare;
      spare = null;
      return z;
    }
    // 1 - u is in (0, 1], so the log is finite.
    const r = Math.sqrt(-2 * Math.log(1 - uniform()));
    const theta = 2 * Math.PI * uniform();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
  const int = (n: number): number => Math.floor(uniform() * n);
  const shuffle = <T extends { length: number; [i: number]: any }>(a: T): T => {
    for (let i = a.length - 1; i > 0; i--) {
      const j = int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  };
  return { uniform, normal, int, shuffle };
}
