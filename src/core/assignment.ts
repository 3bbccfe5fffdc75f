/**
 * The linear assignment problem: the permutation that minimises the total cost of a square
 * cost matrix, solved exactly by the Hungarian method with shortest augmenting paths and
 * potentials (Kuhn 1955; Munkres 1957; the O(n^3) form of Jonker & Volgenant 1987).
 * Flow matching uses it for the minibatch optimal-transport coupling (Tong et al. 2023,
 * Pooladian et al. 2023): the exact OT plan between two equal batches of points with
 * uniform weights is a permutation (Birkhoff), so this is an exact OT solver for them.
 */

/**
 * The assignment of rows to columns of the n x n `cost` (row-major) with the least total cost:
 * `col[i]` is the column of row i. Exact; O(n^3) time, O(n) extra memory.
 */
export function solveAssignment(cost: ArrayLike<number>, n: number): Int32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`solveAssignment: bad size ${n}`);
  if (cost.length !== n * n)
    throw new Error(`solveAssignment: cost has ${cost.length} values, expected ${n} x ${n}`);
  for (let k = 0; k < cost.length; k++)
    if (!Number.isFinite(cost[k]))
      throw new Error(`solveAssignment: cost[${k}] is ${cost[k]}; costs must be finite`);
  // 1-based arrays with a virtual column 0, as in the classic formulation.
  const u = new Float64Array(n + 1); // row potentials
  const v = new Float64Array(n + 1); // column potentials
  const rowOf = new Int32Array(n + 1); // rowOf[j]: the row assigned to column j (0: none)
  const way = new Int32Array(n + 1);
  const minv = new Float64Array(n + 1);
  const used = new Uint8Array(n + 1);
  for (let i = 1; i <= n; i++) {
    rowOf[0] = i;
    let j0 = 0;
    minv.fill(Infinity);
    used.fill(0);
    // Dijkstra on reduced costs from row i until a free column is reached.
    do {
      used[j0] = 1;
      const i0 = rowOf[j0];
      const base = (i0 - 1) * n;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost[base + j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[rowOf[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (rowOf[j0] !== 0);
    // Flip the augmenting path.
    do {
      const j1 = way[j0];
      rowOf[j0] = rowOf[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const col = new Int32Array(n);
  for (let j = 1; j <= n; j++) col[rowOf[j] - 1] = j - 1;
  return col;
}
