"""The monotone rational-quadratic spline of neural spline flows (Durkan et al. 2019), as
clayflow computes it (src/bijectors/rational-quadratic.ts, docs/CHECKPOINTS.md):

raw [..., 3K - 1] per value: K raw widths, K raw heights, K - 1 raw inner derivatives;
w = minW + (1 - K minW) softmax(raw widths), heights likewise, knots their cumulative sums
(first exactly 0, last exactly 1), d = minD + softplus(raw + log(e^(1 - minD) - 1)) inside
and 1 at both ends; the spline covers [-B, B] and is the identity outside.
"""
import math

import torch
import torch.nn.functional as F

MIN_WIDTH = 1e-3
MIN_HEIGHT = 1e-3
MIN_DERIVATIVE = 1e-3


def _knots(sizes):
    """Left and right knots of each bin on [0, 1]: exactly 0 first, exactly 1 last."""
    c = torch.cumsum(sizes, -1)
    zero = torch.zeros_like(c[..., :1])
    one = torch.ones_like(c[..., :1])
    return torch.cat([zero, c[..., :-1]], -1), torch.cat([c[..., :-1], one], -1)


def rq_spline(raw, x, bins, tail_bound, inverse=False):
    """Apply the spline elementwise: raw [..., 3K - 1], x [...] -> (y, log|dy/dx|) shaped like x
    (the inverse map and its log-derivative when `inverse`)."""
    K = bins
    B = tail_bound
    widths = F.softmax(raw[..., :K], -1) * (1 - K * MIN_WIDTH) + MIN_WIDTH
    heights = F.softmax(raw[..., K : 2 * K], -1) * (1 - K * MIN_HEIGHT) + MIN_HEIGHT
    left_x, right_x = _knots(widths)
    left_y, right_y = _knots(heights)
    shift = math.log(math.expm1(1 - MIN_DERIVATIVE))
    inner = F.softplus(raw[..., 2 * K : 3 * K - 1] + shift) + MIN_DERIVATIVE
    one = torch.ones_like(inner[..., :1])
    d_left = torch.cat([one, inner], -1)
    d_right = torch.cat([inner, one], -1)

    u = (x + B) / (2 * B)
    inside = (u >= 0) & (u <= 1)
    uc = u.clamp(0, 1)
    # The bin: how many left knots (the first is 0) lie at or below the value.
    searched = left_y if inverse else left_x
    k = ((uc.unsqueeze(-1) >= searched).sum(-1) - 1).clamp(0, K - 1).unsqueeze(-1)
    pick = lambda a: torch.gather(a, -1, k).squeeze(-1)
    xk, yk = pick(left_x), pick(left_y)
    wk, hk = pick(right_x - left_x), pick(right_y - left_y)
    dk, dk1 = pick(d_left), pick(d_right)
    sk = hk / wk
    curvature = dk1 + dk - 2 * sk
    if inverse:
        dv = uc - yk
        a = hk * (sk - dk) + dv * curvature
        b = hk * dk - dv * curvature
        c = -sk * dv
        disc = (b * b - 4 * a * c).clamp(min=0)
        xi = (-2 * c / (b + torch.sqrt(disc))).clamp(0, 1)
    else:
        xi = ((uc - xk) / wk).clamp(0, 1)
    t = xi * (1 - xi)
    denom = sk + curvature * t
    slope = sk * sk * (dk1 * xi * xi + 2 * sk * t + dk * (1 - xi) ** 2) / (denom * denom)
    log_slope = torch.log(slope)
    if inverse:
        out = xk + xi * wk
        log_slope = -log_slope
    else:
        out = yk + hk * (sk * xi * xi + dk * t) / denom
    y = torch.where(inside, out * (2 * B) - B, x)
    return y, torch.where(inside, log_slope, torch.zeros_like(log_slope))
