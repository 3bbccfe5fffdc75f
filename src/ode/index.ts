/** ODE solvers (fixed-step Euler, midpoint, RK4; adaptive dopri5) over lists of jax-js arrays. */
export { odeint, ODE_SOLVERS } from "./solvers.js";
export type { OdeFunction, OdeOptions, OdeResult, OdeSolver } from "./solvers.js";
