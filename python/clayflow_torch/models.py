"""Flows from clayflow's JSON model configs (src/models/vector.ts), as torch modules whose
leaf paths (parameters, and batch-norm running statistics as buffers) are clayflow's."""
import math

import torch
from torch import nn

from . import layers as L

VECTOR_MODELS = ("nice", "realnvp", "maf", "iaf", "nsf", "nsf-ar")
IMAGE_MODELS = ("glow", "realnvp")
_DEFAULTS = {
    "nice": (4, [64, 64], "none"),
    "realnvp": (8, [64, 64], "actnorm"),
    "maf": (5, [64, 64], "none"),
    "iaf": (5, [64, 64], "none"),
    "nsf": (6, [64, 64], "none"),
    "nsf-ar": (5, [64, 64], "none"),
}


def is_image_config(config):
    return isinstance(config, dict) and "shape" in config


def _positive_int(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def resolve_config(config):
    """The config with every default filled in, in clayflow's key order (what a run stores)."""
    where = "flow config"
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected an object")
    if is_image_config(config):
        from .images import resolve_image_config

        return resolve_image_config(config)
    model = config.get("model")
    if model not in VECTOR_MODELS:
        raise ValueError(f'{where}: unknown model "{model}"; expected one of {", ".join(VECTOR_MODELS)}')
    layers, hidden, norm = _DEFAULTS[model]
    full = {
        "model": model,
        "dim": config.get("dim"),
        "layers": config.get("layers", layers),
        "hidden": config.get("hidden", hidden),
        "contextDim": config.get("contextDim", 0),
        "activation": config.get("activation", "relu"),
        "norm": config.get("norm", norm),
        "base": config.get("base", {"kind": "standardNormal"}),
        "seed": config.get("seed", 0),
    }
    spline = model in ("nsf", "nsf-ar")
    if spline:
        full["bins"] = config.get("bins", 8)
        full["tailBound"] = config.get("tailBound", 5)
        if not (isinstance(full["bins"], int) and 2 <= full["bins"] <= 256):
            raise ValueError(f"{where}: bins must be an integer from 2 to 256, got {full['bins']!r}")
        if not (isinstance(full["tailBound"], (int, float)) and full["tailBound"] > 0):
            raise ValueError(f"{where}: tailBound must be a positive finite number, got {full['tailBound']!r}")
    elif "bins" in config or "tailBound" in config:
        raise ValueError(f"{where}: bins and tailBound are options of the spline models (nsf, nsf-ar), not of {model}")
    for key in ("dim", "layers"):
        if not _positive_int(full[key]):
            raise ValueError(f"{where}: {key} must be a positive integer, got {full[key]!r}")
    if not (isinstance(full["hidden"], list) and full["hidden"] and all(_positive_int(h) for h in full["hidden"])):
        raise ValueError(f"{where}: hidden must be a non-empty list of positive widths")
    if not (isinstance(full["contextDim"], int) and full["contextDim"] >= 0):
        raise ValueError(f"{where}: contextDim must be a non-negative integer")
    if full["activation"] not in ("relu", "tanh", "gelu"):
        raise ValueError(f"{where}: unknown activation {full['activation']!r}")
    if full["norm"] not in ("actnorm", "batchnorm", "none"):
        raise ValueError(f"{where}: unknown norm {full['norm']!r}")
    if model in ("nice", "realnvp", "nsf") and full["dim"] < 2:
        raise ValueError(f"{where}: coupling flows need dim >= 2 (got {full['dim']}); use maf or nsf-ar for 1-D data")
    return full


def _segments(path):
    return tuple(int(s) if s.isdigit() else s for s in path.split("."))


def leaf_order(paths):
    """clayflow's leaf order: depth first, list items by index, object keys by code unit."""
    return sorted(paths, key=_segments)


class Flow(nn.Module):
    """log p(x | c) = log p_base(f(x)) + log|det df/dx|, f = the chain of `bijector`."""

    def __init__(self, config, dtype=torch.float32):
        super().__init__()
        c = resolve_config(config)
        self.config = c
        self.dtype_ = dtype
        if is_image_config(c):
            from .images import build_image_parts, context_dim

            self.dim = math.prod(c["shape"])
            self.context_dim = context_dim(c)
            chain, self.base = build_image_parts(c, dtype)
            self.bijector = nn.ModuleList(chain)
            return
        self.dim = c["dim"]
        self.context_dim = c["contextDim"]
        self.dtype_ = dtype
        dim, hidden, ctx, act = c["dim"], c["hidden"], c["contextDim"], c["activation"]
        chain = []
        for i in range(c["layers"]):
            m = c["model"]
            if m in ("nice", "realnvp", "nsf"):
                mask = L.half_mask(dim, i % 2 == 1) if dim == 2 or i % 4 < 2 else L.alternating_mask(dim, i % 2)
                if m == "nsf":
                    chain.append(L.SplineCoupling(dim, mask, hidden, ctx, act, dtype, c["bins"], c["tailBound"]))
                elif m == "nice":
                    chain.append(L.AdditiveCoupling(dim, mask, hidden, ctx, act, dtype))
                else:
                    chain.append(L.AffineCoupling(dim, mask, hidden, ctx, act, dtype))
            else:
                order = "natural" if i % 2 == 0 else "reversed"
                made_act = "relu" if act == "gelu" else act
                if m == "nsf-ar":
                    chain.append(L.SplineAutoregressive(dim, hidden, ctx, order, made_act, dtype, c["bins"], c["tailBound"]))
                elif m == "maf":
                    chain.append(L.MaskedAutoregressive(dim, hidden, ctx, order, made_act, dtype))
                else:
                    chain.append(L.InverseAutoregressive(dim, hidden, ctx, order, made_act, dtype))
            if i < c["layers"] - 1:
                if c["norm"] == "actnorm":
                    chain.append(L.ActNorm(dim, dtype))
                elif c["norm"] == "batchnorm":
                    chain.append(L.BatchNorm(dim, dtype))
        if c["model"] == "nice":
            chain.append(L.Affine(dim, dtype))
        self.bijector = nn.ModuleList(chain)
        base = c["base"]
        kind = base.get("kind") if isinstance(base, dict) else None
        if kind == "standardNormal":
            self.base = L.StandardNormal(dim, dtype)
        elif kind == "diagNormal":
            self.base = L.DiagNormal(dim, dtype)
        elif kind == "mixture":
            self.base = L.GaussianMixture(dim, base["components"], dtype)
        else:
            raise ValueError(f"flow config: unknown base {kind!r}")

    # ---- leaves: clayflow's parameter tree ----
    def leaves(self):
        """path -> tensor for every clayflow leaf: parameters, and `state` buffers (batch norm)."""
        out = dict(self.named_parameters())
        out.update({k: v for k, v in self.named_buffers() if ".state." in k})
        return out

    def leaf_paths(self):
        return leaf_order(self.leaves().keys())

    def flat(self, paths=None, grad=False):
        """The leaves as one vector in leaf order (gradients when `grad`, zeros for buffers)."""
        leaves = self.leaves()
        parts = []
        for p in paths or self.leaf_paths():
            t = leaves[p]
            if grad:
                g = t.grad if isinstance(t, nn.Parameter) else None
                parts.append(torch.zeros_like(t).reshape(-1) if g is None else g.reshape(-1))
            else:
                parts.append(t.detach().reshape(-1))
        return torch.cat(parts) if parts else torch.zeros(0, dtype=self.dtype_)

    @torch.no_grad()
    def load_flat(self, vector, paths=None):
        leaves = self.leaves()
        at = 0
        for p in paths or self.leaf_paths():
            t = leaves[p]
            n = t.numel()
            t.copy_(vector[at : at + n].reshape(t.shape).to(t.dtype))
            at += n

    # ---- initialisation ----
    @torch.no_grad()
    def reset(self, generator):
        """Random init as clayflow's (its distributions, not its random numbers): random hidden
        layers, zero output layers (every layer starts as the identity)."""
        for m in self.modules():
            if hasattr(m, "reset") and m is not self:
                m.reset(generator)

    @torch.no_grad()
    def data_init(self, x, cond=None):
        """ActNorm's data-dependent init: each ActNorm sees its own input for the batch x."""
        for layer in self.bijector:
            if isinstance(layer, L.ActNorm):
                layer.data_init(x)
            elif hasattr(layer, "data_init"):  # an image flow's multi-scale stack, the last layer
                layer.data_init(x, cond)
                return
            x, _ = layer(x, cond, training=True)

    @torch.no_grad()
    def update_state(self, x, cond=None):
        """Batch norm's running statistics from the batch x (each layer from its own input);
        returns False, changing nothing, when any new value is not finite."""
        updates = []
        for layer in self.bijector:
            if isinstance(layer, L.BatchNorm):
                updates.append((layer, *layer.update_state(x)))
            x, _ = layer(x, cond, training=True)
        if not all(torch.isfinite(m).all() and torch.isfinite(v).all() for _, m, v in updates):
            return False
        for layer, m, v in updates:
            layer.state.mean.copy_(m)
            layer.state.var.copy_(v)
        return True

    def base_device(self):
        """The device the flow's tensors are on."""
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def has_state(self):
        return any(isinstance(l, L.BatchNorm) for l in self.bijector)

    # ---- density and sampling ----
    def log_prob(self, x, cond=None, training=False):
        """log p(x | cond) per row; NaN and +-inf become -inf (outside the support)."""
        x = x.to(self.dtype_)
        if cond is not None:
            cond = cond.to(self.dtype_)
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.bijector:
            x, ld = layer(x, cond, training=training)
            logdet = logdet + ld
        lp = self.base.log_prob(x) + logdet
        return torch.where(torch.isfinite(lp.detach()), lp, torch.full_like(lp, -float("inf")))

    def forward(self, x, cond=None, training=True):
        """The training objective's per-row log-density (what DistributedDataParallel wraps)."""
        return self.log_prob(x, cond, training=training)

    @torch.no_grad()
    def sample(self, n, cond=None, generator=None, temperature=1.0):
        """n draws; the temperature scales the base distribution's spread (clayflow's meaning)."""
        device = next(self.parameters()).device
        z = self.base.sample(n, generator, self.dtype_, device, temperature)
        if cond is not None:
            cond = cond.to(device=device, dtype=self.dtype_)
        for layer in reversed(self.bijector):
            z, _ = layer.inverse(z, cond)
        return z


def build_flow(config, dtype=torch.float32):
    return Flow(config, dtype)

