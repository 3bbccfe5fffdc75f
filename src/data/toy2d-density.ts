/**
 * Exact densities and entropies of the toy datasets where they have a closed form, to check a
 * trained flow's log-likelihood against the best achievable (the data entropy).
 */
import { EIGHT_CENTRES } from "./toy2d.js";

/** Per-coordinate std and centre radius of "8gaussians" after FFJORD's division by 1.414. */
const EG_STD = 0.5 / 1.414;
const EG_RADIUS = 4 / 1.414;

/**
 * Differential entropy of "8gaussians" in nats: 2.83188. Computed by midpoint quadrature of
 * -p log p on [-6, 6]^2 with steps 0.01 and 0.005 (both give 2.8318804, mass 1 - 1e-12).
 * The overlap of neighbours lowers it slightly from ln 8 + ln(2 pi e s^2) = 2.83818.
 * test/toy2d.test.ts checks it by Monte Carlo.
 */
export const ENTROPY_8GAUSSIANS = 2.8318804;

/** Differential entropy of "checkerboard" in nats: uniform on 8 squares of area 4, ln 32. */
export const ENTROPY_CHECKERBOARD = Math.log(32);

/** log p(x, y) of "8gaussians": an equal mixture of 8 isotropic Gaussians, by log-sum-exp. */
export function logDensity8Gaussians(x: number, y: number): number {
  const terms = EIGHT_CENTRES.map(
    ([cx, cy]) => -((x - EG_RADIUS * cx) ** 2 + (y - EG_RADIUS * cy) ** 2) / (2 * EG_STD * EG_STD),
  );
  const m = Math.max(...terms);
  const s = terms.reduce((acc, t) => acc + Math.exp(t - m), 0);
  return m + Math.log(s) - Math.log(8 * 2 * Math.PI * EG_STD * EG_STD);
}

/** log p(x, y) of "checkerboard": -ln 32 on the 8 dark squares, -Infinity elsewhere. */
export function logDensityCheckerboard(x: number, y: number): number {
  return inCheckerboard(x, y) ? -Math.log(32) : -Infinity;
}

/** Whether (x, y) lies in the support: inside [-4, 4)^2 with floor(x/2) + floor(y/2) even. */
export function inCheckerboard(x: number, y: number): boolean {
  if (!(x >= -4 && x < 4 && y >= -4 && y < 4)) return false;
  return (Math.floor(x / 2) + Math.floor(y / 2)) % 2 === 0;
}
