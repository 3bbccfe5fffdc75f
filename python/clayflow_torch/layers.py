"""clayflow's vector bijectors and bases as torch modules. Each module's parameter names
are clayflow's leaf names (w, b, loc, logScale, logGamma, beta, state.mean, ...), so a
flow's named_parameters() and named_buffers() are clayflow's leaf paths.

Conventions kept from clayflow: forward maps data to latent and returns (y, log|det J|) per
row; inverse the other way; log-scales are soft-clamped s = B tanh(raw / B) with B = 3;
conditioners' output layers start at zero, so every layer starts as the identity.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .spline import rq_spline

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
SCALE_BOUND = 3.0


def activation_fn(name):
    if name == "relu":
        return F.relu
    if name == "tanh":
        return torch.tanh
    if name == "gelu":
        # jax-js's nn.gelu is the tanh approximation (its default).
        return lambda x: F.gelu(x, approximate="tanh")
    raise ValueError(f"unknown activation {name!r} (use relu, tanh or gelu)")


class Dense(nn.Module):
    """y = x @ w + b with w [in, out] (clayflow's layout, not torch.nn.Linear's [out, in])."""

    def __init__(self, fan_in, fan_out, dtype):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(fan_in, fan_out, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(fan_out, dtype=dtype))


def _init_hidden(layer, weight_init, fan_in, generator):
    """clayflow's hidden-layer init (nn/mlp.ts, nn/made.ts); biases U(+-1/sqrt(fan_in))."""
    with torch.no_grad():
        layer.w.copy_(weight_init(layer.w.shape, generator).to(layer.w.dtype))
        lim = 1 / math.sqrt(fan_in)
        layer.b.copy_((torch.rand(layer.b.shape, generator=generator, dtype=torch.float64) * 2 - 1) * lim)


class MLP(nn.Module):
    """h0 = [x, cond]; h_{k+1} = act(h_k w_k + b_k); out = h_L w_L + b_L (src/nn/mlp.ts)."""

    def __init__(self, in_dim, out_dim, hidden, context_dim, activation, dtype):
        super().__init__()
        widths = [in_dim + context_dim] + list(hidden) + [out_dim]
        self.layers = nn.ModuleList([Dense(widths[i], widths[i + 1], dtype) for i in range(len(widths) - 1)])
        self.context_dim = context_dim
        self.activation = activation
        self.act = activation_fn(activation)

    def reset(self, generator):
        for i, layer in enumerate(self.layers[:-1]):
            fan_in, fan_out = layer.w.shape
            limit = math.sqrt(6 / (fan_in + fan_out)) if self.activation == "tanh" else math.sqrt(6 / fan_in)
            _init_hidden(layer, lambda shape, g: (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * limit, fan_in, generator)

    def forward(self, x, cond=None):
        h = x if self.context_dim == 0 else torch.cat([x, cond.to(x.dtype)], 1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = h @ layer.w + layer.b
            if i < last:
                h = self.act(h)
        return h


def made_order(dim, order):
    natural = list(range(dim))
    return natural if order == "natural" else natural[::-1]


class MADE(nn.Module):
    """Masked dense network (src/nn/made.ts): output i reads only inputs of lower rank in
    `order` (and the context, degree 0). Hidden degrees cycle minDeg..D-1; masks are buffers
    rebuilt from the config, not clayflow leaves (persistent=False keeps them out of state)."""

    def __init__(self, dim, hidden, context_dim, outputs_per_dim, order, activation, dtype):
        super().__init__()
        self.dim, self.per, self.context_dim = dim, outputs_per_dim, context_dim
        self.order = made_order(dim, order)
        degrees = [0] * dim
        for rank, c in enumerate(self.order):
            degrees[c] = rank + 1
        self.degrees = degrees
        min_deg = 1 if context_dim == 0 else 0
        span = max(dim - min_deg, 1)
        hidden_degrees = [[0 if dim - 1 < min_deg else min_deg + (k % span) for k in range(w)] for w in hidden]
        prev = degrees + [0] * context_dim
        masks = []
        for degs in hidden_degrees:
            masks.append([[1.0 if b >= a else 0.0 for b in degs] for a in prev])
            prev = degs
        out_deg = [d for d in degrees for _ in range(outputs_per_dim)]
        masks.append([[1.0 if b > a else 0.0 for b in out_deg] for a in prev])
        self.layers = nn.ModuleList()
        for l, m in enumerate(masks):
            self.layers.append(Dense(len(m), len(m[0]), dtype))
            self.register_buffer(f"mask{l}", torch.tensor(m, dtype=dtype), persistent=False)
        self.act = F.relu if activation == "relu" else torch.tanh

    def reset(self, generator):
        for layer in self.layers[:-1]:
            fan_in = layer.w.shape[0]
            _init_hidden(layer, lambda shape, g: torch.randn(shape, generator=g, dtype=torch.float64) / math.sqrt(fan_in), fan_in, generator)

    def forward(self, x, cond=None):
        h = x if self.context_dim == 0 else torch.cat([x, cond.to(x.dtype)], 1)
        last = len(self.layers) - 1
        for l, layer in enumerate(self.layers):
            h = h @ (layer.w * getattr(self, f"mask{l}")) + layer.b
            if l < last:
                h = self.act(h)
        return h.reshape(x.shape[0], self.dim, self.per)


def half_mask(dim, flip):
    k = math.ceil(dim / 2)
    return [(i < k) != flip for i in range(dim)]


def alternating_mask(dim, parity):
    return [i % 2 == parity for i in range(dim)]


class _Coupling(nn.Module):
    """Shared split / merge of the coupling layers: mask True = passed through."""

    def __init__(self, mask):
        super().__init__()
        self.pass_idx = [i for i, m in enumerate(mask) if m]
        self.trans_idx = [i for i, m in enumerate(mask) if not m]
        position = [0] * len(mask)
        for k, c in enumerate(self.pass_idx + self.trans_idx):
            position[c] = k
        self.position = position

    def split(self, x):
        return x[:, self.pass_idx], x[:, self.trans_idx]

    def merge(self, a, b):
        return torch.cat([a, b], 1)[:, self.position]


class AdditiveCoupling(_Coupling):
    """NICE: y_b = x_b + t(x_a, cond), log|det| = 0."""

    def __init__(self, dim, mask, hidden, context_dim, activation, dtype):
        super().__init__(mask)
        self.net = MLP(len(self.pass_idx), len(self.trans_idx), hidden, context_dim, activation, dtype)

    def _run(self, x, cond, sign):
        xa, xb = self.split(x)
        t = self.net(xa, cond)
        return self.merge(xa, xb + sign * t), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def forward(self, x, cond=None, training=False):
        return self._run(x, cond, 1)

    def inverse(self, y, cond=None):
        return self._run(y, cond, -1)


class AffineCoupling(_Coupling):
    """RealNVP: [raw, t] = NN(x_a, cond), s = 3 tanh(raw / 3), y_b = x_b exp(s) + t."""

    def __init__(self, dim, mask, hidden, context_dim, activation, dtype):
        super().__init__(mask)
        self.nb = len(self.trans_idx)
        self.net = MLP(len(self.pass_idx), 2 * self.nb, hidden, context_dim, activation, dtype)

    def _condition(self, x, cond):
        xa, xb = self.split(x)
        h = self.net(xa, cond)
        s = SCALE_BOUND * torch.tanh(h[:, : self.nb] / SCALE_BOUND)
        return xa, xb, s, h[:, self.nb : 2 * self.nb]

    def forward(self, x, cond=None, training=False):
        xa, xb, s, t = self._condition(x, cond)
        return self.merge(xa, xb * torch.exp(s) + t), s.sum(1)

    def inverse(self, y, cond=None):
        ya, yb, s, t = self._condition(y, cond)
        return self.merge(ya, (yb - t) * torch.exp(-s)), -s.sum(1)


class SplineCoupling(_Coupling):
    """NSF-C: the conditioner gives each transformed coordinate 3K - 1 spline parameters."""

    def __init__(self, dim, mask, hidden, context_dim, activation, dtype, bins, tail_bound):
        super().__init__(mask)
        self.nb = len(self.trans_idx)
        self.bins, self.tail_bound = bins, tail_bound
        self.net = MLP(len(self.pass_idx), self.nb * (3 * bins - 1), hidden, context_dim, activation, dtype)

    def _spline(self, x, cond, inverse):
        xa, xb = self.split(x)
        raw = self.net(xa, cond).reshape(x.shape[0], self.nb, 3 * self.bins - 1)
        yb, log_slope = rq_spline(raw, xb, self.bins, self.tail_bound, inverse)
        return self.merge(xa, yb), log_slope.sum(1)

    def forward(self, x, cond=None, training=False):
        return self._spline(x, cond, False)

    def inverse(self, y, cond=None):
        return self._spline(y, cond, True)


def _sequential(made, y, cond, fix):
    """Invert an autoregressive map: coordinates in rank order, each from a pass of the MADE
    over the coordinates fixed so far (D passes; clayflow's one-sweep form gives the same
    values). fix(c, out [batch, per], y_c) -> (x_c, logdet_c)."""
    batch, dim = y.shape
    cols = [torch.zeros(batch, dtype=y.dtype, device=y.device) for _ in range(dim)]
    logdet = torch.zeros(batch, dtype=y.dtype, device=y.device)
    for c in made.order:
        out = made(torch.stack(cols, 1), cond)[:, c, :]
        cols[c], ld = fix(c, out, y[:, c])
        logdet = logdet + ld
    return torch.stack(cols, 1), logdet


class MaskedAutoregressive(nn.Module):
    """MAF: (mu, raw) = MADE(x_<i), s = 3 tanh(raw / 3), z = (x - mu) exp(-s), log|det| = -sum s.
    The MADE's layers are this layer's own leaves (bijector.<i>.layers.<l>.w)."""

    def __init__(self, dim, hidden, context_dim, order, activation, dtype):
        super().__init__()
        made = MADE(dim, hidden, context_dim, 2, order, activation, dtype)
        # The MADE's layers are registered first, so named_parameters() names them by the
        # clayflow path (layers.<l>.w), not made.layers.<l>.w (it lists a shared module once).
        self.layers = made.layers
        self.made = made

    def forward(self, x, cond=None, training=False):
        out = self.made(x, cond)
        mu, s = out[..., 0], SCALE_BOUND * torch.tanh(out[..., 1] / SCALE_BOUND)
        return (x - mu) * torch.exp(-s), -s.sum(1)

    def inverse(self, z, cond=None):
        def fix(c, out, zc):
            s = SCALE_BOUND * torch.tanh(out[:, 1] / SCALE_BOUND)
            return zc * torch.exp(s) + out[:, 0], s

        return _sequential(self.made, z, cond, fix)


class InverseAutoregressive(MaskedAutoregressive):
    """IAF: a MAF run backwards; its density direction is the MAF's inverse."""

    def forward(self, x, cond=None, training=False):
        return MaskedAutoregressive.inverse(self, x, cond)

    def inverse(self, z, cond=None):
        return MaskedAutoregressive.forward(self, z, cond)


class SplineAutoregressive(nn.Module):
    """NSF-AR: a MADE gives each coordinate the 3K - 1 parameters of its spline."""

    def __init__(self, dim, hidden, context_dim, order, activation, dtype, bins, tail_bound):
        super().__init__()
        self.bins, self.tail_bound = bins, tail_bound
        made = MADE(dim, hidden, context_dim, 3 * bins - 1, order, activation, dtype)
        self.layers = made.layers  # first: the clayflow path, as in MaskedAutoregressive
        self.made = made

    def forward(self, x, cond=None, training=False):
        z, log_slope = rq_spline(self.made(x, cond), x, self.bins, self.tail_bound)
        return z, log_slope.sum(1)

    def inverse(self, z, cond=None):
        fix = lambda c, out, zc: rq_spline(out, zc, self.bins, self.tail_bound, inverse=True)
        return _sequential(self.made, z, cond, fix)


class ActNorm(nn.Module):
    """y = (x - loc) exp(logScale); data-dependent init loc = mean, logScale = -log(std + 1e-6)."""

    def __init__(self, dim, dtype):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim, dtype=dtype))
        self.logScale = nn.Parameter(torch.zeros(dim, dtype=dtype))

    def data_init(self, x):
        with torch.no_grad():
            self.loc.copy_(x.mean(0))
            self.logScale.copy_(-torch.log(x.var(0, unbiased=False).sqrt() + 1e-6))

    def forward(self, x, cond=None, training=False):
        ld = self.logScale.sum().expand(x.shape[0])
        return (x - self.loc) * torch.exp(self.logScale), ld

    def inverse(self, y, cond=None):
        return y * torch.exp(-self.logScale) + self.loc, -self.logScale.sum().expand(y.shape[0])


class _State(nn.Module):
    """Batch norm's running statistics: buffers at the clayflow path <layer>.state.mean / .var."""

    def __init__(self, dim, dtype):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=dtype))
        self.register_buffer("var", torch.ones(dim, dtype=dtype))


class BatchNorm(nn.Module):
    """y = exp(logGamma) (x - mu) / sqrt(var + 1e-5) + beta; batch statistics (biased variance)
    when training, the running ones otherwise; running <- 0.9 running + 0.1 batch."""

    MOMENTUM = 0.1
    EPS = 1e-5

    def __init__(self, dim, dtype):
        super().__init__()
        self.logGamma = nn.Parameter(torch.zeros(dim, dtype=dtype))
        self.beta = nn.Parameter(torch.zeros(dim, dtype=dtype))
        self.state = _State(dim, dtype)

    def _stats(self, x, training):
        if training:
            mean = x.mean(0)
            return mean, torch.log(((x - mean) ** 2).mean(0) + self.EPS)
        return self.state.mean, torch.log(self.state.var + self.EPS)

    def forward(self, x, cond=None, training=False):
        mean, log_var = self._stats(x, training)
        ld = (self.logGamma - 0.5 * log_var).sum().expand(x.shape[0])
        return (x - mean) * torch.exp(self.logGamma - 0.5 * log_var) + self.beta, ld

    def inverse(self, y, cond=None):
        mean, log_var = self._stats(y, False)
        ld = -(self.logGamma - 0.5 * log_var).sum().expand(y.shape[0])
        return (y - self.beta) * torch.exp(0.5 * log_var - self.logGamma) + mean, ld

    @torch.no_grad()
    def update_state(self, x):
        mean = x.mean(0)
        var = ((x - mean) ** 2).mean(0)
        m = self.MOMENTUM
        new_mean = self.state.mean * (1 - m) + mean * m
        new_var = self.state.var * (1 - m) + var * m
        return new_mean, new_var


class Affine(nn.Module):
    """NICE's final scaling: y = loc + exp(logScale) x."""

    def __init__(self, dim, dtype):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim, dtype=dtype))
        self.logScale = nn.Parameter(torch.zeros(dim, dtype=dtype))

    def forward(self, x, cond=None, training=False):
        return x * torch.exp(self.logScale) + self.loc, self.logScale.sum().expand(x.shape[0])

    def inverse(self, y, cond=None):
        return (y - self.loc) * torch.exp(-self.logScale), -self.logScale.sum().expand(y.shape[0])


class StandardNormal(nn.Module):
    def __init__(self, dim, dtype):
        super().__init__()
        self.dim = dim

    def log_prob(self, z):
        return -0.5 * (z * z).sum(1) - self.dim * HALF_LOG_2PI

    def sample(self, n, generator, dtype, device, temperature=1.0):
        return torch.randn(n, self.dim, generator=generator, dtype=dtype).to(device) * temperature


class DiagNormal(nn.Module):
    def __init__(self, dim, dtype):
        super().__init__()
        self.dim = dim
        self.loc = nn.Parameter(torch.zeros(dim, dtype=dtype))
        self.logScale = nn.Parameter(torch.zeros(dim, dtype=dtype))

    def log_prob(self, z):
        u = (z - self.loc) * torch.exp(-self.logScale)
        return -0.5 * (u * u).sum(1) - self.logScale.sum() - self.dim * HALF_LOG_2PI

    def sample(self, n, generator, dtype, device, temperature=1.0):
        eps = torch.randn(n, self.dim, generator=generator, dtype=dtype).to(device) * temperature
        return eps * torch.exp(self.logScale) + self.loc


class GaussianMixture(nn.Module):
    """log p(z) = logsumexp_k(log softmax(logits)_k + log N(z; means_k, exp(logScales_k)^2))."""

    def __init__(self, dim, components, dtype):
        super().__init__()
        self.dim = dim
        self.logits = nn.Parameter(torch.zeros(components, dtype=dtype))
        self.means = nn.Parameter(torch.zeros(components, dim, dtype=dtype))
        self.logScales = nn.Parameter(torch.zeros(components, dim, dtype=dtype))

    def reset(self, generator):
        with torch.no_grad():
            self.means.copy_(torch.randn(self.means.shape, generator=generator, dtype=torch.float64))

    def log_prob(self, z):
        u = (z.unsqueeze(1) - self.means) * torch.exp(-self.logScales)
        per = -0.5 * (u * u).sum(2) - self.logScales.sum(1) - self.dim * HALF_LOG_2PI + F.log_softmax(self.logits, 0)
        return torch.logsumexp(per, 1)

    def sample(self, n, generator, dtype, device, temperature=1.0):
        # As clayflow: the temperature scales each component's spread, not the weights.
        k = torch.multinomial(F.softmax(self.logits.detach().cpu().double(), 0), n, replacement=True, generator=generator).to(device)
        eps = torch.randn(n, self.dim, generator=generator, dtype=dtype).to(device) * temperature
        return eps * torch.exp(self.logScales[k]) + self.means[k]
