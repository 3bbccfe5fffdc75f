/**
 * Spherical interpolation between host vectors a and b: points on the arc between them, which
 * keep a latent's norm typical of the base normal where a straight line would shrink it.
 */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  let dot = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb || 1))));
  if (omega < 1e-6) return a.map((v, i) => (1 - t) * v + t * b[i]);
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega);
  const wb = Math.sin(t * omega) / Math.sin(omega);
  return a.map((v, i) => wa * v + wb * b[i]);
}
