"""The clayflow image Glow (src/models/image.ts, model "glow") in PyTorch, for bench/peer_torch.py.

Same architecture, same initialisation scheme, same numbers where the scheme is deterministic.
Tensors are NCHW here (clayflow is NHWC); channel c of clayflow is channel c here, so every
channel split, squeeze ordering and 1x1 mixing is the same map.

  with dequantization "variational" first (src/bijectors/variational-dequantization.ts):
    b = (pixel + v) / 256  ->  (pixel + u) / 256,  u = sigmoid(exp(s) logit(v) + c), [s_raw, c] = ResNet(pixel / 255
    - 0.5) at half the width (at least 8), s = 3 tanh(s_raw / 3), v and u clamped to [2^-13, 1 - 2^-13]
  x in [0, 1)  --scaledLogit-->  y = logit(a + (1 - 2a) x)                      (src/bijectors/scaled-logit.ts)
  level l (l = 0 .. L-1), input [C, H, W]:
    squeeze: out[4c + 2a + b, i, j] = in[c, 2i + a, 2j + b]                      (squeeze.ts)
    K steps of
      ActNorm: (x - loc) * exp(logScale), log|det| = H W sum(logScale)           (actnorm.ts; data-dependent init:
               loc = mean, logScale = -log(std + 1e-6) per channel over batch and pixels)
      LU 1x1:  y_row = x_row U'^T L^T P, U' = triu(upper, 1) + diag(sign exp(logS)), L = tril(lower, -1) + I,
               P[perm[t], t] = 1; log|det| = H W sum(logS); perm, sign and the initial L, U, logS from the LU
               factorisation (partial pivoting) of a Haar rotation drawn with mulberry32(seed), seed = 1000 s
               + 100 l + k (lu-linear.ts, ported exactly below)
      affine coupling, channel halves, parity k % 2 (image-coupling.ts): parity 0 keeps channels [0, C/2),
               parity 1 keeps [C/2, C); [raw, t] = ResNet(kept); s = 3 tanh(raw / 3); x_b exp(s) + t
    levels but the last: keep channels [0, C/2), factor out [C/2, C) under a learned prior (split.ts):
      [mu, raw] = ResNet(kept), logsig = 3 tanh(raw / 3), e = (z - mu) exp(-logsig), log|det| -= sum(logsig)
  base N(0, I) over the 784 latents.
  ResNet (src/nn/resnet.ts): conv_in 3x3 (He-uniform U(+-sqrt(6 / (9 Cin))), bias 0); per block
    h + scale * conv2(relu(conv1(relu(h)))) with scale = 0 at init; conv_out(relu(h)) 3x3 all ZERO.
Parameters hold the same leaves with the same shapes as clayflow's (full [C, C] lower/upper matrices
of which only the strict triangles are used, conv weights as torch's OIHW of clayflow's HWIO), so the
parameter counts are equal; `load_clayflow` copies clayflow's flat parameter vector in.
"""
import math

import torch
import torch.nn.functional as F

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
EDGE = 2.0 ** -13  # exact in float32, as in clayflow
M32 = 0xFFFFFFFF


# ---- the exact host-side initialisation of src/bijectors/lu-linear.ts ----

def mulberry32(seed):
    """src/core/prng.ts mulberry32, on unsigned 32-bit patterns (JS's int32 ops agree bit for bit)."""
    state = [seed & M32]

    def imul(a, b):
        return (a * b) & M32

    def nxt():
        state[0] = (state[0] + 0x6D2B79F5) & M32
        t = state[0]
        t = imul(t ^ (t >> 15), t | 1)
        t = (t ^ ((t + imul(t ^ (t >> 7), t | 61)) & M32)) & M32
        return ((t ^ (t >> 14)) & M32) / 4294967296

    return nxt


def random_rotation(c, seed):
    rand = mulberry32(seed)

    def normal():
        u = 1 - rand()
        return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * rand())

    cols = []
    for _ in range(c):
        v = [normal() for _ in range(c)]
        for _ in range(2):
            for q in cols:
                d = 0.0
                for qi, vi in zip(q, v):
                    d += qi * vi
                v = [vi - d * qi for vi, qi in zip(v, q)]
        n = math.hypot(*v)
        cols.append([vi / n for vi in v])
    return [[col[i] for col in cols] for i in range(c)]


def lu_factor(a):
    c = len(a)
    m = [list(row) for row in a]
    order = list(range(c))
    for k in range(c):
        p = k
        for i in range(k + 1, c):
            if abs(m[i][k]) > abs(m[p][k]):
                p = i
        m[k], m[p] = m[p], m[k]
        order[k], order[p] = order[p], order[k]
        for i in range(k + 1, c):
            m[i][k] /= m[k][k]
            for j in range(k + 1, c):
                m[i][j] -= m[i][k] * m[k][j]
    perm = [0] * c
    for i, r in enumerate(order):
        perm[r] = i
    diag = [m[i][i] for i in range(c)]
    return {
        "perm": perm,
        "sign": [-1.0 if d < 0 else 1.0 for d in diag],
        "lower": [[v if j < i else 0.0 for j, v in enumerate(row)] for i, row in enumerate(m)],
        "upper": [[v if j > i else 0.0 for j, v in enumerate(row)] for i, row in enumerate(m)],
        "logS": [math.log(abs(d)) for d in diag],
    }


# ---- layers ----

def squeeze(x):
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(y):
    b, c4, h, w = y.shape
    c = c4 // 4
    return y.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


class Conv(torch.nn.Module):
    """3x3 'same' convolution; weight OIHW (clayflow keeps HWIO: the same numbers transposed)."""

    def __init__(self, cin, cout, zero=False):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(cout, cin, 3, 3))
        self.b = torch.nn.Parameter(torch.zeros(cout))
        if not zero:
            lim = math.sqrt(6 / (9 * cin))  # He-uniform, fan-in = k^2 Cin (src/nn/conv.ts)
            with torch.no_grad():
                self.w.uniform_(-lim, lim)

    def forward(self, x):
        return F.conv2d(x, self.w, self.b, padding=1)


class ResNet(torch.nn.Module):
    def __init__(self, cin, cout, hidden, blocks):
        super().__init__()
        self.input = Conv(cin, hidden)
        self.blocks = torch.nn.ModuleList()
        for _ in range(blocks):
            blk = torch.nn.Module()
            blk.conv1 = Conv(hidden, hidden)
            blk.conv2 = Conv(hidden, hidden)
            blk.scale = torch.nn.Parameter(torch.zeros(hidden))
            self.blocks.append(blk)
        self.output = Conv(hidden, cout, zero=True)

    def forward(self, x):
        h = self.input(x)
        for blk in self.blocks:
            branch = blk.conv2(torch.relu(blk.conv1(torch.relu(h))))
            h = h + branch * blk.scale.view(1, -1, 1, 1)
        return self.output(torch.relu(h))


class ActNorm(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.loc = torch.nn.Parameter(torch.zeros(c))
        self.logScale = torch.nn.Parameter(torch.zeros(c))
        self.pending_init = False

    def forward(self, x):
        if self.pending_init:  # data-dependent init from this batch (actnorm.ts, eps 1e-6, biased std)
            with torch.no_grad():
                flat = x.transpose(0, 1).reshape(x.shape[1], -1)
                mean = flat.mean(1)
                var = ((flat - mean[:, None]) ** 2).mean(1)
                self.loc.copy_(mean)
                self.logScale.copy_(-torch.log(torch.sqrt(var) + 1e-6))
            self.pending_init = False
        hw = x.shape[2] * x.shape[3]
        y = (x - self.loc.view(1, -1, 1, 1)) * torch.exp(self.logScale).view(1, -1, 1, 1)
        return y, (hw * self.logScale.sum()).expand(x.shape[0])

    def inverse(self, y):
        return y * torch.exp(-self.logScale).view(1, -1, 1, 1) + self.loc.view(1, -1, 1, 1)


class LULinear(torch.nn.Module):
    def __init__(self, c, seed):
        super().__init__()
        f = lu_factor(random_rotation(c, seed))
        self.c = c
        self.lower = torch.nn.Parameter(torch.tensor(f["lower"], dtype=torch.float32))
        self.upper = torch.nn.Parameter(torch.tensor(f["upper"], dtype=torch.float32))
        self.logS = torch.nn.Parameter(torch.tensor(f["logS"], dtype=torch.float32))
        self.register_buffer("sign", torch.tensor(f["sign"], dtype=torch.float32))
        pmat = torch.zeros(c, c)
        for to, frm in enumerate(f["perm"]):
            pmat[frm, to] = 1.0
        self.register_buffer("pmat", pmat)
        self.register_buffer("eye", torch.eye(c))

    def _factors(self):
        lo = torch.tril(self.lower, -1) + self.eye
        up = torch.triu(self.upper, 1) + torch.diag(self.sign * torch.exp(self.logS))
        return lo, up

    def forward(self, x):
        lo, up = self._factors()
        m = up.t() @ lo.t() @ self.pmat  # y_row = x_row M
        hw = x.shape[2] * x.shape[3]
        return F.conv2d(x, m.t().reshape(self.c, self.c, 1, 1)), (hw * self.logS.sum()).expand(x.shape[0])

    def inverse(self, y):
        lo, up = self._factors()
        # x_row = y_row P^T L^-T U^-T, from two triangular solves on the identity.
        lo_inv = torch.linalg.solve_triangular(lo, self.eye, upper=False, unitriangular=True)
        up_inv = torch.linalg.solve_triangular(up, self.eye, upper=True)
        minv = self.pmat.t() @ lo_inv.t() @ up_inv.t()
        return F.conv2d(y, minv.t().reshape(self.c, self.c, 1, 1))


class Coupling(torch.nn.Module):
    def __init__(self, c, parity, hidden, blocks, bound=3.0):
        super().__init__()
        self.h = c // 2
        self.parity = parity
        self.bound = bound
        self.net = ResNet(c - self.h, 2 * self.h, hidden, blocks)

    def _st(self, xa):
        out = self.net(xa)
        raw, t = out[:, : self.h], out[:, self.h:]
        return self.bound * torch.tanh(raw / self.bound), t

    def forward(self, x):
        xa, xb = (x[:, : self.h], x[:, self.h:]) if self.parity == 0 else (x[:, self.h:], x[:, : self.h])
        s, t = self._st(xa)
        yb = xb * torch.exp(s) + t
        y = torch.cat([xa, yb], 1) if self.parity == 0 else torch.cat([yb, xa], 1)
        return y, s.sum((1, 2, 3))

    def inverse(self, y):
        ya, yb = (y[:, : self.h], y[:, self.h:]) if self.parity == 0 else (y[:, self.h:], y[:, : self.h])
        s, t = self._st(ya)
        xb = (yb - t) * torch.exp(-s)
        return torch.cat([ya, xb], 1) if self.parity == 0 else torch.cat([xb, ya], 1)


class VariationalDequantization(torch.nn.Module):
    """b = (pixel + v) / 256 -> (pixel + u) / 256 with a pixel-conditioned logistic map of v; log-det = -log q(u | pixel)."""

    def __init__(self, c, hidden, bound=3.0):
        super().__init__()
        self.c = c
        self.bound = bound
        self.net = ResNet(c, 2 * c, hidden, 1)

    @staticmethod
    def _cell(b):
        scaled = b * 256
        pixel = torch.floor(scaled)
        return pixel, torch.clamp(scaled - pixel, EDGE, 1 - EDGE)

    def _transform(self, pixel):
        h = self.net(pixel / 255 - 0.5)
        return self.bound * torch.tanh(h[:, : self.c] / self.bound), h[:, self.c:]

    @staticmethod
    def _log_derivative(z, s, v):
        return (-F.softplus(-z) - F.softplus(z) + s - torch.log(v) - torch.log1p(-v)).sum((1, 2, 3))

    def forward(self, b):
        pixel, v = self._cell(b)
        s, c = self._transform(pixel)
        z = torch.exp(s) * (torch.log(v) - torch.log1p(-v)) + c
        u = torch.clamp(torch.sigmoid(z), EDGE, 1 - EDGE)
        return (pixel + u) / 256, self._log_derivative(z, s, v)

    def inverse(self, y):
        pixel, u = self._cell(y)
        s, c = self._transform(pixel)
        z = torch.log(u) - torch.log1p(-u)
        v = torch.clamp(torch.sigmoid((z - c) * torch.exp(-s)), EDGE, 1 - EDGE)
        return (pixel + v) / 256


class Level(torch.nn.Module):
    def __init__(self, c, level, cfg):
        super().__init__()
        self.steps = torch.nn.ModuleList()
        for k in range(cfg["steps"]):
            step = torch.nn.Module()
            step.actnorm = ActNorm(c)
            step.lu = LULinear(c, cfg["seed"] * 1000 + level * 100 + k)
            step.coupling = Coupling(c, k % 2, cfg["hidden"], cfg["blocks"])
            self.steps.append(step)

    def forward(self, x):
        x = squeeze(x)
        ld = torch.zeros(x.shape[0])
        for st in self.steps:
            for layer in (st.actnorm, st.lu, st.coupling):
                x, d = layer(x)
                ld = ld + d
        return x, ld

    def inverse(self, y):
        for st in reversed(self.steps):
            y = st.actnorm.inverse(st.lu.inverse(st.coupling.inverse(y)))
        return unsqueeze(y)


class Glow(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, w, c = cfg["shape"]
        self.shape = (c, h, w)
        self.alpha = cfg.get("logitAlpha", 0.05)
        self.bound = 3.0
        variational = cfg.get("dequantization", "uniform") == "variational"
        # The noise flow is half the model's width, at least 8 (src/models/image.ts).
        self.deq = VariationalDequantization(c, max(8, math.ceil(cfg["hidden"] / 2))) if variational else None
        self.levels = torch.nn.ModuleList()
        self.priors = torch.nn.ModuleList()
        ch = c
        for lvl in range(cfg["levels"]):
            ch *= 4
            self.levels.append(Level(ch, lvl, cfg))
            if lvl < cfg["levels"] - 1:
                self.priors.append(ResNet(ch // 2, ch, cfg["hidden"], cfg["blocks"]))
                ch //= 2
        self.dims = c * h * w

    def _prior(self, i, kept):
        out = self.priors[i](kept)
        k = kept.shape[1]
        return out[:, :k], self.bound * torch.tanh(out[:, k:] / self.bound)

    def log_prob(self, x):
        """x: [B, C, H, W] in [0, 1)."""
        deq = torch.zeros(x.shape[0])
        if self.deq is not None:
            x, deq = self.deq(x)
        a = self.alpha
        s = x * (1 - 2 * a) + a
        t = (1 - x) * (1 - 2 * a) + a
        ls, lt = torch.log(s), torch.log(t)
        h = ls - lt
        total = deq - (ls + lt).sum((1, 2, 3)) + self.dims * math.log1p(-2 * a)
        sq = torch.zeros(x.shape[0])
        for i, level in enumerate(self.levels):
            y, ld = level(h)
            total = total + ld
            if i == len(self.levels) - 1:
                sq = sq + (y * y).sum((1, 2, 3))
                break
            k = y.shape[1] // 2
            kept, z = y[:, :k], y[:, k:]
            mu, logsig = self._prior(i, kept)
            e = (z - mu) * torch.exp(-logsig)
            total = total - logsig.sum((1, 2, 3))
            sq = sq + (e * e).sum((1, 2, 3))
            h = kept
        lp = -0.5 * sq - self.dims * HALF_LOG_2PI + total
        return torch.where(torch.isfinite(lp), lp, torch.full_like(lp, -math.inf))

    def data_init(self, x):
        """ActNorm's data-dependent initialisation from the batch x (as flow.init(key, { x }))."""
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.pending_init = True
        with torch.no_grad():
            self.log_prob(x)

    def sample(self, n, gen):
        c, hh, ww = self.shape
        shapes = []  # latent shapes, finest first
        ch, h, w = c, hh, ww
        for i in range(len(self.levels)):
            ch, h, w = ch * 4, h // 2, w // 2
            if i < len(self.levels) - 1:
                shapes.append((ch // 2, h, w))
                ch //= 2
            else:
                shapes.append((ch, h, w))
        eps = [torch.randn(n, *s, generator=gen) for s in shapes]
        h = self.levels[-1].inverse(eps[-1])
        for i in range(len(self.levels) - 2, -1, -1):
            mu, logsig = self._prior(i, h)
            z = eps[i] * torch.exp(logsig) + mu
            h = self.levels[i].inverse(torch.cat([h, z], 1))
        a = self.alpha
        x = (torch.sigmoid(h) - a) / (1 - 2 * a)
        return x if self.deq is None else self.deq.inverse(x)

    # ---- clayflow's parameter names ----

    def clayflow_leaves(self):
        """(clayflow path, torch parameter, HWIO conv weight?) for every parameter."""
        out = []

        def resnet(prefix, net):
            for name, conv in (("input", net.input), ("output", net.output)):
                out.append((f"{prefix}.{name}.w", conv.w, True))
                out.append((f"{prefix}.{name}.b", conv.b, False))
            for j, blk in enumerate(net.blocks):
                for name in ("conv1", "conv2"):
                    conv = getattr(blk, name)
                    out.append((f"{prefix}.blocks.{j}.{name}.w", conv.w, True))
                    out.append((f"{prefix}.blocks.{j}.{name}.b", conv.b, False))
                out.append((f"{prefix}.blocks.{j}.scale", blk.scale, False))

        # The top chain: [variationalDequantization?, scaledLogit, multiScale].
        first = 0
        if self.deq is not None:
            resnet("bijector.0.net", self.deq.net)
            first = 1
        for lvl, level in enumerate(self.levels):
            base = f"bijector.{first + 1}.{lvl}"
            for k, st in enumerate(level.steps):
                # Level chain: [squeeze, (actNorm, luLinear, coupling) x K].
                a, l, c = 1 + 3 * k, 2 + 3 * k, 3 + 3 * k
                out.append((f"{base}.bijector.{a}.loc", st.actnorm.loc, False))
                out.append((f"{base}.bijector.{a}.logScale", st.actnorm.logScale, False))
                for name in ("lower", "upper", "logS"):
                    out.append((f"{base}.bijector.{l}.{name}", getattr(st.lu, name), False))
                resnet(f"{base}.bijector.{c}.net", st.coupling.net)
            if lvl < len(self.priors):
                resnet(f"{base}.prior", self.priors[lvl])
        return out

    def load_clayflow(self, vector, layout):
        """Copy clayflow's flat parameter vector in; layout = its FlatSpec (paths, shapes, offsets)."""
        where = {p: (o, s) for p, o, s in zip(layout["paths"], layout["offsets"], layout["shapes"])}
        leaves = self.clayflow_leaves()
        missing = sorted(set(where) ^ {p for p, _, _ in leaves})
        if missing:
            raise ValueError(f"parameter names differ between clayflow and the torch Glow: {missing[:6]}")
        with torch.no_grad():
            for path, param, hwio in leaves:
                off, shape = where[path]
                n = math.prod(shape)
                t = torch.from_numpy(vector[off: off + n].copy()).reshape(shape)
                param.copy_(t.permute(3, 2, 0, 1) if hwio else t)
