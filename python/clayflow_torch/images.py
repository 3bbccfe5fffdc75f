"""clayflow's image flows (src/models/image.ts): glow and multi-scale realnvp on [H, W, C]
images (NHWC, as clayflow), with class or image conditioning and uniform or variational
dequantisation, as torch modules named by clayflow's leaf paths: forward (data -> latent, the
density) and inverse (sampling) of every layer.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .data import mulberry32
from .layers import ActNorm, StandardNormal

SCALE_BOUND = 3.0


def resolve_image_config(config):
    where = "image flow config"
    model = config.get("model")
    if model not in ("glow", "realnvp"):
        raise ValueError(f'{where}: unknown model "{model}"; expected one of glow, realnvp')
    full = {
        "model": model,
        "shape": config.get("shape"),
        "levels": config.get("levels", 2),
        "steps": config.get("steps", 4),
        "hidden": config.get("hidden", 64),
        "blocks": config.get("blocks", 1),
        "classes": config.get("classes", 0),
        "context": config.get("context") or None,
        "logitAlpha": config.get("logitAlpha", 0.05),
        "seed": config.get("seed", 0),
        "dequantization": config.get("dequantization", "uniform"),
    }
    shape = full["shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
        raise ValueError(f"{where}: shape must be [H, W, C], got {shape!r}")
    squeezes = full["levels"] if model == "glow" else full["levels"] - 1
    if shape[0] % 2 ** squeezes or shape[1] % 2 ** squeezes:
        raise ValueError(f"{where}: {model} with {full['levels']} levels needs H and W divisible by {2 ** squeezes}")
    if full["dequantization"] not in ("uniform", "variational"):
        raise ValueError(f"{where}: dequantization must be uniform or variational")
    if full["context"] is not None and full["classes"] > 0:
        raise ValueError(f"{where}: a flow conditions on classes or on a context image, not both")
    return full


def context_shape(spec, shape):
    H, W, C = shape
    if spec["kind"] == "downsample":
        return [H // spec["factor"], W // spec["factor"], C]
    return [H, W // 2, C]


def context_dim(c):
    if c["context"]:
        return math.prod(context_shape(c["context"], c["shape"]))
    return c["classes"]


def _context_base(spec, shape):
    H, W, C = shape
    return context_shape(spec, shape) if spec["kind"] == "downsample" else [H, W, C + 1]


def _resize(base, h, w):
    hb, wb = base[0], base[1]
    up = h >= hb
    r = h // hb if up else hb // h
    return up, r


def context_channels(spec, shape, h, w):
    base = _context_base(spec, shape)
    up, r = _resize(base, h, w)
    return base[2] if up else base[2] * r * r


def context_image(cond, spec, shape, h, w):
    """cond [B, contextSize] -> [B, h, w, channels] (src/nn/context-image.ts)."""
    H, W, C = shape
    b = cond.shape[0]
    base = _context_base(spec, shape)
    hb, wb, k = base
    up, r = _resize(base, h, w)
    if spec["kind"] == "downsample":
        img = cond.reshape(b, hb, wb, k)
    else:
        left = cond.reshape(b, H, W // 2, C)
        mask = torch.tensor([1.0 if j < W // 2 else 0.0 for j in range(W)], dtype=cond.dtype, device=cond.device).reshape(1, 1, W, 1)
        full = torch.cat([left, torch.flip(left, [2])], 2)
        img = torch.cat([full, mask.expand(b, H, W, 1)], 3)
    if r == 1:
        return img
    if up:
        return img.reshape(b, hb, 1, wb, 1, k).expand(b, hb, r, wb, r, k).reshape(b, h, w, k)
    return img.reshape(b, h, r, w, r, k).permute(0, 1, 3, 5, 2, 4).reshape(b, h, w, k * r * r)


def space_to_depth(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 5, 2, 4).reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(y):
    b, h2, w2, c4 = y.shape
    c = c4 // 4
    return y.reshape(b, h2, w2, c, 2, 2).permute(0, 1, 4, 2, 5, 3).reshape(b, 2 * h2, 2 * w2, c)


class Conv(nn.Module):
    """'same' k x k convolution, NHWC, w [k, k, Cin, Cout] (HWIO) as clayflow stores it."""

    def __init__(self, cin, cout, k, dtype):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(k, k, cin, cout, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(cout, dtype=dtype))

    def forward(self, x):
        k = self.w.shape[0]
        y = F.conv2d(x.permute(0, 3, 1, 2), self.w.permute(3, 2, 0, 1), padding=k // 2)
        return y.permute(0, 2, 3, 1) + self.b


class Block(nn.Module):
    def __init__(self, hidden, dtype):
        super().__init__()
        self.conv1 = Conv(hidden, hidden, 3, dtype)
        self.conv2 = Conv(hidden, hidden, 3, dtype)
        self.scale = nn.Parameter(torch.zeros(hidden, dtype=dtype))


class ResNet(nn.Module):
    """h = conv_in([x, ctx]); h += scale * conv2(relu(conv1(relu(h)))); out = conv_out(relu(h))."""

    def __init__(self, cin, cout, hidden, blocks, context_channels, dtype):
        super().__init__()
        self.input = Conv(cin + context_channels, hidden, 3, dtype)
        self.blocks = nn.ModuleList([Block(hidden, dtype) for _ in range(blocks)])
        self.output = Conv(hidden, cout, 3, dtype)

    def reset(self, generator):
        for conv in [self.input] + [c for b in self.blocks for c in (b.conv1, b.conv2)]:
            k, _, cin, _ = conv.w.shape
            limit = math.sqrt(6 / (k * k * cin))
            conv.w.copy_((torch.rand(conv.w.shape, generator=generator, dtype=torch.float64) * 2 - 1) * limit)

    def forward(self, x, ctx=None):
        h = x if ctx is None else torch.cat([x, ctx.to(x.dtype)], 3)
        h = self.input(h)
        for blk in self.blocks:
            h = h + blk.conv2(F.relu(blk.conv1(F.relu(h)))) * blk.scale
        return self.output(F.relu(h))


class Conditioner(ResNet):
    """A ResNet at one level [h, w]: a one-hot class is broadcast over the pixels, a context
    image resized to the level; either is concatenated to the input channels."""

    def __init__(self, c, hw, cin, cout, dtype):
        spec = c["context"]
        h, w = hw
        ctx = context_channels(spec, c["shape"], h, w) if spec else c["classes"]
        super().__init__(cin, cout, c["hidden"], c["blocks"], ctx, dtype)
        self.spec, self.shape_, self.classes = spec, c["shape"], c["classes"]

    def forward(self, x, cond=None):
        b, h, w, _ = x.shape
        if self.spec:
            return super().forward(x, context_image(cond.to(x.dtype), self.spec, self.shape_, h, w))
        if self.classes:
            return super().forward(x, cond.to(x.dtype).reshape(b, 1, 1, self.classes).expand(b, h, w, self.classes))
        return super().forward(x)


class ImageCoupling(nn.Module):
    """Affine coupling on images, checkerboard or channel mask (src/bijectors/image-coupling.ts)."""

    def __init__(self, c, shape, mask, parity, dtype):
        super().__init__()
        H, W, C = shape
        self.mask, self.parity, self.C = mask, parity, C
        first = math.ceil(C / 2)
        if mask == "checkerboard":
            cin, transformed = C, C
        else:
            cin, transformed = (first, C - first) if parity == 0 else (C - first, first)
        self.transformed = transformed
        self.n_pass = cin
        self.net = Conditioner(c, (H, W), cin, 2 * transformed, dtype)
        board = [[[1.0 if (i + j) % 2 == parity else 0.0] for j in range(W)] for i in range(H)]
        self.register_buffer("board", torch.tensor(board, dtype=dtype), persistent=False)

    def _st(self, inp, cond):
        h = self.net(inp, cond)
        k = self.transformed
        return SCALE_BOUND * torch.tanh(h[..., :k] / SCALE_BOUND), h[..., k : 2 * k]

    def forward(self, x, cond=None, training=False):
        if self.mask == "checkerboard":
            keep = 1 - self.board
            s, t = self._st(x * self.board, cond)
            s, t = s * keep, t * keep
            return x * torch.exp(s) + t, s.flatten(1).sum(1)
        C, n = self.C, self.n_pass
        pa, ob = ((0, n), (n, C)) if self.parity == 0 else ((C - n, C), (0, C - n))
        xa, xb = x[..., pa[0] : pa[1]], x[..., ob[0] : ob[1]]
        s, t = self._st(xa, cond)
        yb = xb * torch.exp(s) + t
        return (torch.cat([xa, yb], 3) if self.parity == 0 else torch.cat([yb, xa], 3)), s.flatten(1).sum(1)

    def inverse(self, y, cond=None):
        if self.mask == "checkerboard":
            keep = 1 - self.board
            s, t = self._st(y * self.board, cond)
            s, t = s * keep, t * keep
            return (y - t) * torch.exp(-s), -s.flatten(1).sum(1)
        C, n = self.C, self.n_pass
        pa, ob = ((0, n), (n, C)) if self.parity == 0 else ((C - n, C), (0, C - n))
        ya, yb = y[..., pa[0] : pa[1]], y[..., ob[0] : ob[1]]
        s, t = self._st(ya, cond)
        xb = (yb - t) * torch.exp(-s)
        return (torch.cat([ya, xb], 3) if self.parity == 0 else torch.cat([xb, ya], 3)), -s.flatten(1).sum(1)


class ImageActNorm(ActNorm):
    """ActNorm per channel of [H, W, C]: log|det| = H W sum(logScale)."""

    def __init__(self, shape, dtype):
        super().__init__(shape[2], dtype)
        self.positions = shape[0] * shape[1]

    def data_init(self, x):
        super().data_init(x.reshape(-1, x.shape[-1]))

    def forward(self, x, cond=None, training=False):
        ld = (self.logScale.sum() * self.positions).expand(x.shape[0])
        return (x - self.loc) * torch.exp(self.logScale), ld

    def inverse(self, y, cond=None):
        ld = -(self.logScale.sum() * self.positions).expand(y.shape[0])
        return y * torch.exp(-self.logScale) + self.loc, ld


def _random_rotation(c, seed):
    rand = mulberry32(seed)

    def normal():
        u = 1 - rand()
        return math.sqrt(-2 * math.log(u)) * math.cos(2 * math.pi * rand())

    cols = []
    for _ in range(c):
        v = [normal() for _ in range(c)]
        for _ in range(2):
            for q in cols:
                d = sum(qi * vi for qi, vi in zip(q, v))
                v = [vi - d * qi for vi, qi in zip(v, q)]
        n = math.hypot(*v)
        cols.append([vi / n for vi in v])
    return [[col[i] for col in cols] for i in range(c)]


def _lu_factor(a):
    c = len(a)
    m = [list(r) for r in a]
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
    return perm, [-1.0 if d < 0 else 1.0 for d in diag], m, diag


class LuLinear(nn.Module):
    """Glow's 1x1 convolution W = P L (U + diag(sign exp(logS))); P and sign from the seed."""

    def __init__(self, shape, seed, dtype):
        super().__init__()
        c = shape[2]
        self.positions = shape[0] * shape[1]
        perm, sign, m, diag = _lu_factor(_random_rotation(c, seed))
        self.perm = perm
        self.register_buffer("sign", torch.tensor(sign, dtype=dtype), persistent=False)
        self.lower = nn.Parameter(torch.tensor([[v if j < i else 0.0 for j, v in enumerate(r)] for i, r in enumerate(m)], dtype=dtype))
        self.upper = nn.Parameter(torch.tensor([[v if j > i else 0.0 for j, v in enumerate(r)] for i, r in enumerate(m)], dtype=dtype))
        self.logS = nn.Parameter(torch.tensor([math.log(abs(d)) for d in diag], dtype=dtype))

    def forward(self, x, cond=None, training=False):
        c = x.shape[-1]
        L = torch.tril(self.lower, -1) + torch.eye(c, dtype=x.dtype, device=x.device)
        U = torch.triu(self.upper, 1) + torch.diag(torch.exp(self.logS) * self.sign)
        z = x.reshape(-1, c) @ U.T @ L.T
        ld = (self.logS.sum() * self.positions).expand(x.shape[0])
        return z[:, self.perm].reshape(x.shape), ld

    def inverse(self, y, cond=None):
        c = y.shape[-1]
        L = torch.tril(self.lower, -1) + torch.eye(c, dtype=y.dtype, device=y.device)
        U = torch.triu(self.upper, 1) + torch.diag(torch.exp(self.logS) * self.sign)
        inv = [0] * c
        for i, p in enumerate(self.perm):
            inv[p] = i
        z = y.reshape(-1, c)[:, inv]  # undo P: z[:, perm[i]] = y[:, i]
        # z = x U^T L^T: two triangular solves, never a general inverse.
        w = torch.linalg.solve_triangular(L, z.T, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(U, w, upper=True).T
        return x.reshape(y.shape), -(self.logS.sum() * self.positions).expand(y.shape[0])


class Squeeze(nn.Module):
    def forward(self, x, cond=None, training=False):
        return space_to_depth(x), torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)

    def inverse(self, y, cond=None):
        return depth_to_space(y), torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)


class ScaledLogit(nn.Module):
    """y = logit(alpha + (1 - 2 alpha) x), with its log-det (src/data/dequantize.ts)."""

    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, cond=None, training=False):
        a, b = self.alpha, 1 - 2 * self.alpha
        s = x * b + a
        t = (1 - x) * b + a
        d = x[0].numel()
        ld = -(torch.log(s) + torch.log(t)).flatten(1).sum(1) + d * math.log1p(-2 * self.alpha)
        return torch.log(s) - torch.log(t), ld

    def inverse(self, y, cond=None):
        d = y[0].numel()
        ld = -(F.softplus(-y) + F.softplus(y)).flatten(1).sum(1) - d * math.log1p(-2 * self.alpha)
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha), ld


class VariationalDequantization(nn.Module):
    """b -> (pixel + u) / 256, u = sigmoid(exp(s) logit(v) + c), s, c from a ResNet of the pixels."""

    EDGE = 2.0 ** -13

    def __init__(self, shape, hidden, dtype):
        super().__init__()
        self.channels = shape[2]
        self.net = ResNet(shape[2], 2 * shape[2], hidden, 1, 0, dtype)

    def forward(self, b, cond=None, training=False):
        scaled = b * 256
        pixel = torch.floor(scaled)
        v = (scaled - pixel).clamp(self.EDGE, 1 - self.EDGE)
        h = self.net(pixel / 255 - 0.5)
        k = self.channels
        s = SCALE_BOUND * torch.tanh(h[..., :k] / SCALE_BOUND)
        z = torch.exp(s) * (torch.log(v) - torch.log1p(-v)) + h[..., k : 2 * k]
        u = torch.sigmoid(z).clamp(self.EDGE, 1 - self.EDGE)
        ld = (-F.softplus(-z) - F.softplus(z) + s - torch.log(v) - torch.log1p(-v)).flatten(1).sum(1)
        return (pixel + u) / 256, ld

    def inverse(self, y, cond=None):
        scaled = y * 256
        pixel = torch.floor(scaled)
        u = (scaled - pixel).clamp(self.EDGE, 1 - self.EDGE)
        h = self.net(pixel / 255 - 0.5)
        k = self.channels
        s = SCALE_BOUND * torch.tanh(h[..., :k] / SCALE_BOUND)
        z = torch.log(u) - torch.log1p(-u)
        v = torch.sigmoid((z - h[..., k : 2 * k]) * torch.exp(-s)).clamp(self.EDGE, 1 - self.EDGE)
        ld = (-F.softplus(-z) - F.softplus(z) + s - torch.log(v) - torch.log1p(-v)).flatten(1).sum(1)
        return (pixel + v) / 256, -ld


class Level(nn.Module):
    def __init__(self, chain, prior):
        super().__init__()
        self.bijector = nn.ModuleList(chain)
        if prior is not None:
            self.prior = prior


class MultiScale(nn.ModuleList):
    """Levels finest first; after each but the last, the second half of the channels is
    factored out, whitened by the learned prior of the kept half (src/bijectors/split.ts)."""

    def forward(self, x, cond=None, training=False):
        batch = x.shape[0]
        logdet = torch.zeros(batch, dtype=x.dtype, device=x.device)
        latents = []
        h = x
        for i, level in enumerate(self):
            for layer in level.bijector:
                h, ld = layer(h, cond, training=training)
                logdet = logdet + ld
            if i == len(self) - 1:
                latents.append(h.reshape(batch, -1))
                break
            k = h.shape[3] // 2
            kept, e = h[..., :k], h[..., k : 2 * k]
            if hasattr(level, "prior"):
                out = level.prior(kept, cond)
                mu, logsig = out[..., :k], SCALE_BOUND * torch.tanh(out[..., k : 2 * k] / SCALE_BOUND)
                e = (e - mu) * torch.exp(-logsig)
                logdet = logdet - logsig.flatten(1).sum(1)
            latents.append(e.reshape(batch, -1))
            h = kept
        return torch.cat(latents, 1), logdet

    def inverse(self, y, cond=None):
        batch = y.shape[0]
        logdet = torch.zeros(batch, dtype=y.dtype, device=y.device)
        # Piece shapes: each level's factored half, then the last level's output.
        shapes, h_shape = [], self.shape_in
        for i, level in enumerate(self):
            out = self._out_shape(i, h_shape)
            if i < len(self) - 1:
                half = [out[0], out[1], out[2] // 2]
                shapes.append(half)
                h_shape = half
            else:
                shapes.append(out)
        pieces, start = [], 0
        for sh in shapes:
            n = math.prod(sh)
            pieces.append(y[:, start : start + n].reshape(batch, *sh))
            start += n
        h = pieces[-1]
        for i in range(len(self) - 1, -1, -1):
            level = self[i]
            if i < len(self) - 1:
                z = pieces[i]
                if hasattr(level, "prior"):
                    k = z.shape[3]
                    out = level.prior(h, cond)
                    mu, logsig = out[..., :k], SCALE_BOUND * torch.tanh(out[..., k : 2 * k] / SCALE_BOUND)
                    z = z * torch.exp(logsig) + mu
                    logdet = logdet + logsig.flatten(1).sum(1)
                h = torch.cat([h, z], 3)
            for layer in reversed(level.bijector):
                h, ld = layer.inverse(h, cond)
                logdet = logdet + ld
        return h, logdet

    def _out_shape(self, i, shape):
        """A level's output shape: squeezed unless it has no squeeze (realnvp's last)."""
        squeezes = sum(isinstance(l, Squeeze) for l in self[i].bijector)
        f = 2 ** squeezes
        return [shape[0] // f, shape[1] // f, shape[2] * f * f]

    @torch.no_grad()
    def data_init(self, x, cond=None):
        h = x
        for i, level in enumerate(self):
            for layer in level.bijector:
                if isinstance(layer, ActNorm):
                    layer.data_init(h)
                h, _ = layer(h, cond, training=True)
            h = h[..., : h.shape[3] // 2]


def build_image_parts(c, dtype):
    """(bijector layers, base) of an image flow, in clayflow's chain order."""
    levels = []
    shape = c["shape"]
    for l in range(c["levels"]):
        last = l == c["levels"] - 1
        chain = []
        if c["model"] == "glow":
            s = [shape[0] // 2, shape[1] // 2, 4 * shape[2]]
            chain.append(Squeeze())
            for k in range(c["steps"]):
                chain += [ImageActNorm(s, dtype), LuLinear(s, c["seed"] * 1000 + l * 100 + k, dtype), ImageCoupling(c, s, "channel", k % 2, dtype)]
        else:
            for k in range(4 if last else 3):
                if k > 0:
                    chain.append(ImageActNorm(shape, dtype))
                chain.append(ImageCoupling(c, shape, "checkerboard", k % 2, dtype))
            if not last:
                s = [shape[0] // 2, shape[1] // 2, 4 * shape[2]]
                chain.append(Squeeze())
                for k in range(3):
                    chain += [ImageActNorm(s, dtype), ImageCoupling(c, s, "channel", k % 2, dtype)]
        h, w, ch = (shape[0] // 2, shape[1] // 2, shape[2] * 4) if c["model"] == "glow" or not last else shape
        prior = None if last else Conditioner(c, (h, w), ch // 2, ch, dtype)
        levels.append(Level(chain, prior))
        shape = [h, w, ch // 2]
    stack = MultiScale(levels)
    stack.shape_in = list(c["shape"])
    body = [ScaledLogit(c["logitAlpha"]), stack]
    if c["dequantization"] == "variational":
        body = [VariationalDequantization(c["shape"], max(8, math.ceil(c["hidden"] / 2)), dtype)] + body
    return body, StandardNormal(math.prod(c["shape"]), dtype)
