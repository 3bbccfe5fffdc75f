/**
 * Inverse autoregressive flow layer (IAF; Kingma, Salimans, Jozefowicz, Chen,
 * Sutskever, Welling 2016, "Improved Variational Inference with Inverse
 * Autoregressive Flow", https://arxiv.org/abs/1606.04934): a masked
 * autoregressive layer run backwards. Its inverse (latent -> data, sampling)
 * is one pass of the MADE network:
 *   x_i = z_i * exp(s_i(z_<i)) + mu_i(z_<i),
 * while its forward (density) direction fixes the D coordinates one after another
 * (one sweep, `Made.sweep`: about one pass of arithmetic, but D small steps). Use it
 * when sampling speed matters more than density evaluation on new data.
 */
import type { Bijector } from "../core/types.js";
import { invert } from "./invert.js";
import {
  maskedAutoregressive,
  type MaskedAutoregressiveOptions,
  type MaskedAutoregressiveParams,
} from "./masked-autoregressive.js";

/** Options of `inverseAutoregressive`: those of `maskedAutoregressive`. */
export type InverseAutoregressiveOptions = MaskedAutoregressiveOptions;

/** Inverse autoregressive layer (IAF): a MAF layer run backwards, so sampling is one MADE pass. */
export function inverseAutoregressive(
  options: InverseAutoregressiveOptions,
): Bijector<MaskedAutoregressiveParams> {
  return { ...invert(maskedAutoregressive(options)), kind: "inverseAutoregressive" };
}
