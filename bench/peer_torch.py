"""PyTorch peer of the clayflow benchmark: one workload of bench/workloads.json in this process.

    python3 bench/peer_torch.py --workload w1 --data DIR --out result.json

Mirrors clayflow exactly (src/models/vector.ts, src/bijectors/affine-coupling.ts,
src/bijectors/masks.ts, src/nn/mlp.ts, src/nn/made.ts, src/bijectors/masked-autoregressive.ts):
  RealNVP: layer i passes coordinate(s) halfMask(dim, flip = i odd) through; conditioner MLP
    [pass] -> hidden (relu) -> 2 * n_transformed = [raw, t]; s = B tanh(raw / B);
    y_b = x_b exp(s) + t, log|det| = sum s. He-uniform hidden weights U(+-sqrt(6 / fan_in)),
    hidden biases U(+-1 / sqrt(fan_in)), zero output layer.
  MAF: MADE with input degrees from the order (natural for even layers, reversed for odd),
    hidden degrees 1 + (k mod (D - 1)), masks m_out >= m_in (hidden), r(i) > m (output);
    outputs [batch, D, 2] = (mu, raw); s = B tanh(raw / B); z = (x - mu) exp(-s), log|det| = -sum s.
    Hidden weights N(0, 1) / sqrt(fan_in), biases U(+-1 / sqrt(fan_in)), zero output layer; the mask multiplies
    the weight in every forward pass. Sampling: D sequential passes per layer, layers reversed.
  Base N(0, I). Loss = mean NLL. Adam with the spec's lr, betas, eps.
  Glow (image workloads): bench/torch_glow.py, a line-by-line mirror of clayflow's image Glow; its
    ActNorm layers are initialised from the first `initRows` rows, the lr warm-up and clipping of the
    spec's optimizer are LambdaLR and clip_grad_norm_. When clayflow has written its initial weights
    next to the data (<id>-clayflow-init.f32/.json), a second model loads them and its log-density
    of the same rows is compared with clayflow's (result "check").
Runs on 2 threads (torch.set_num_threads(2)); peak memory from getrusage.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import numpy as np
import torch

torch.set_num_threads(2)
torch.manual_seed(0)

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def half_mask(dim, flip):
    k = math.ceil(dim / 2)
    return [(i < k) != flip for i in range(dim)]


def alternating_mask(dim, parity):
    return [i % 2 == parity for i in range(dim)]


class MLP(torch.nn.Module):
    def __init__(self, widths):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for i in range(len(widths) - 1):
            lin = torch.nn.Linear(widths[i], widths[i + 1])
            with torch.no_grad():
                if i == len(widths) - 2:
                    lin.weight.zero_()
                    lin.bias.zero_()
                else:
                    lim = math.sqrt(6 / widths[i])  # He-uniform (relu)
                    lin.weight.uniform_(-lim, lim)
                    lin.bias.uniform_(-1 / math.sqrt(widths[i]), 1 / math.sqrt(widths[i]))
            self.layers.append(lin)

    def forward(self, h):
        n = len(self.layers)
        for i, lin in enumerate(self.layers):
            h = lin(h)
            if i < n - 1:
                h = torch.relu(h)
        return h


class AffineCoupling(torch.nn.Module):
    def __init__(self, dim, mask, hidden, bound):
        super().__init__()
        self.pass_idx = [i for i, m in enumerate(mask) if m]
        self.tr_idx = [i for i, m in enumerate(mask) if not m]
        self.nb = len(self.tr_idx)
        self.bound = bound
        self.net = MLP([len(self.pass_idx), *hidden, 2 * self.nb])
        order = self.pass_idx + self.tr_idx
        self.position = [order.index(c) for c in range(dim)]

    # Contiguous parts use slices and a plain concatenation, gathers otherwise (as masks.ts).
    def _pick(self, x, idx):
        if idx == list(range(idx[0], idx[0] + len(idx))):
            return x[:, idx[0]: idx[0] + len(idx)]
        return x[:, idx]

    def _split(self, x):
        return self._pick(x, self.pass_idx), self._pick(x, self.tr_idx)

    def _merge(self, a, b):
        if self.position == list(range(len(self.position))):
            return torch.cat([a, b], 1)
        if self.tr_idx + self.pass_idx == list(range(len(self.position))):
            return torch.cat([b, a], 1)
        return torch.cat([a, b], 1)[:, self.position]

    def _cond(self, xa):
        h = self.net(xa)
        raw, t = h[:, : self.nb], h[:, self.nb:]
        return self.bound * torch.tanh(raw / self.bound), t

    def forward(self, x):
        xa, xb = self._split(x)
        s, t = self._cond(xa)
        return self._merge(xa, xb * torch.exp(s) + t), s.sum(1)

    def inverse(self, y):
        ya, yb = self._split(y)
        s, t = self._cond(ya)
        return self._merge(ya, (yb - t) * torch.exp(-s)), -s.sum(1)


class MADE(torch.nn.Module):
    def __init__(self, dim, hidden, order):
        super().__init__()
        degrees = [0] * dim
        for rank, c in enumerate(order):
            degrees[c] = rank + 1
        span = max(dim - 1, 1)
        hidden_deg = [[0 if dim - 1 < 1 else 1 + (k % span) for k in range(w)] for w in hidden]
        out_deg = [d for d in degrees for _ in range(2)]
        masks, prev = [], degrees
        for degs in hidden_deg:
            masks.append([[1.0 if b >= a else 0.0 for b in degs] for a in prev])
            prev = degs
        masks.append([[1.0 if b > a else 0.0 for b in out_deg] for a in prev])
        self.dim = dim
        self.ws = torch.nn.ParameterList()
        self.bs = torch.nn.ParameterList()
        self.masks = [torch.tensor(mk, dtype=torch.float32) for mk in masks]
        for l, mk in enumerate(self.masks):
            fan_in, fan_out = mk.shape
            if l == len(self.masks) - 1:
                w, b = torch.zeros(fan_in, fan_out), torch.zeros(fan_out)
            else:
                w = torch.randn(fan_in, fan_out) / math.sqrt(fan_in)
                b = (torch.rand(fan_out) * 2 - 1) / math.sqrt(fan_in)
            self.ws.append(torch.nn.Parameter(w))
            self.bs.append(torch.nn.Parameter(b))

    def forward(self, x):
        h = x
        n = len(self.masks)
        for l in range(n):
            h = h @ (self.ws[l] * self.masks[l]) + self.bs[l]
            if l < n - 1:
                h = torch.relu(h)
        return h.reshape(x.shape[0], self.dim, 2)


class MaskedAutoregressive(torch.nn.Module):
    def __init__(self, dim, hidden, order, bound):
        super().__init__()
        self.made = MADE(dim, hidden, order)
        self.bound = bound
        self.dim = dim

    def _mu_s(self, x):
        out = self.made(x)
        mu, raw = out[:, :, 0], out[:, :, 1]
        return mu, self.bound * torch.tanh(raw / self.bound)

    def forward(self, x):
        mu, s = self._mu_s(x)
        return (x - mu) * torch.exp(-s), -s.sum(1)

    def inverse(self, z):
        x = torch.zeros_like(z)
        log_det = None
        for k in range(self.dim):
            mu, s = self._mu_s(x)
            if k == self.dim - 1:
                log_det = s.sum(1)
            x = z * torch.exp(s) + mu
        return x, log_det


class Flow(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        dim = m["dim"]
        self.dim = dim
        layers = []
        for i in range(m["layers"]):
            if m["model"] == "realnvp":
                mask = half_mask(dim, i % 2 == 1) if dim == 2 or i % 4 < 2 else alternating_mask(dim, i % 2)
                layers.append(AffineCoupling(dim, mask, m["hidden"], m["scaleBound"]))
            else:
                order = list(range(dim)) if i % 2 == 0 else list(range(dim))[::-1]
                layers.append(MaskedAutoregressive(dim, m["hidden"], order, m["scaleBound"]))
        self.layers = torch.nn.ModuleList(layers)

    def log_prob(self, x):
        total = torch.zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            total = total + ld
        lp = -0.5 * (x * x).sum(1) - self.dim * HALF_LOG_2PI + total
        return torch.where(torch.isfinite(lp), lp, torch.full_like(lp, -math.inf))

    def sample(self, n, gen):
        x = torch.randn(n, self.dim, generator=gen)
        for layer in reversed(self.layers):
            x, _ = layer.inverse(x)
        return x


def timed(n, fn):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def time_reps(reps, iters, seconds_per_rep, fn):
    """Mean seconds per call of each repetition; a repetition stops after seconds_per_rep (>= 1 call)."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        n = 0
        while n < iters:
            fn()
            n += 1
            if time.perf_counter() - t0 >= seconds_per_rep:
                break
        out.append((time.perf_counter() - t0) / n)
    return out


def blas_libraries():
    with open("/proc/self/maps") as f:
        libs = {line.split()[-1] for line in f if "blas" in line.lower()}
    return ", ".join(sorted(os.path.basename(l) for l in libs)) or "none found"


def load_clayflow_init(data_dir, wid):
    base = os.path.join(data_dir, wid + "-clayflow-init")
    if not (os.path.exists(base + ".f32") and os.path.exists(base + ".json")):
        return None, None
    return np.fromfile(base + ".f32", dtype=np.float32), json.load(open(base + ".json"))


def image_check(m, data, init_rows, data_dir, wid, own):
    """Parameter counts, the initial loss of our own init, and clayflow's weights loaded here."""
    from torch_glow import Glow

    check = {"pytorch parameters": sum(p.numel() for p in own.parameters())}
    x = torch.from_numpy(data[:init_rows].copy()).reshape(init_rows, *image_shape(m))
    with torch.no_grad():
        check["pytorch initial loss (first batch)"] = -own.log_prob(x).mean().item()
    vector, layout = load_clayflow_init(data_dir, wid)
    if vector is None:
        check["clayflow weights"] = "not found (run the clayflow engine first)"
        return check
    twin = Glow(m)
    twin.load_clayflow(vector, layout)
    with torch.no_grad():
        lp = twin.log_prob(x).numpy().astype(np.float64)
    ref = np.array(layout["logProb"], dtype=np.float64)
    check["pytorch loss with clayflow's initial weights"] = float(-lp.mean())
    check["clayflow's own loss of those weights"] = float(-ref.mean())
    check["max |log p difference| per image (nats)"] = float(np.abs(lp - ref).max())
    check["max relative difference"] = float((np.abs(lp - ref) / np.abs(ref)).max())
    return check


def image_shape(m):
    h, w, c = m["shape"]
    return (c, h, w)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--show-config", action="store_true")
    a = ap.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    spec = json.load(open(os.environ.get("CLAYFLOW_BENCH_SPEC") or os.path.join(root, "bench", "workloads.json")))
    w = next(x for x in spec["workloads"] if x["id"] == a.workload)
    reps = w.get("repetitions", spec["repetitions"])
    cap = w.get("secondsPerRep", spec["secondsPerRep"])
    config = torch.__config__.show()
    if a.show_config:
        print(config, file=sys.stderr)
    m = w["model"]
    image = "shape" in m
    dim = math.prod(m["shape"]) if image else m["dim"]
    if image:
        from torch_glow import Glow

        flow = Glow(m)
    else:
        flow = Flow(m)
    figures = [{} for _ in range(reps)]
    result = {
        "engine": "pytorch",
        "workload": w["id"],
        "status": "ok",
        "reps": figures,
        "info": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
            "threads": torch.get_num_threads(),
            "BLAS loaded": blas_libraries(),
            "config mentions OpenBLAS": "yes" if "openblas" in config.lower() else "no",
            "config BLAS_INFO": next((p.split("=")[1] for p in config.replace(",", " ").split() if p.startswith("BLAS_INFO=")), "?"),
        },
    }
    data = None
    if "data" in w:
        data = np.fromfile(os.path.join(a.data, w["id"] + ".f32"), dtype=np.float32).reshape(-1, dim)
    # Rows [n, dim] as the model's input ([n, C, H, W] for images: C = 1, so row-major HWC = CHW).
    as_input = (lambda t: t.reshape(t.shape[0], *image_shape(m))) if image else (lambda t: t)
    if image:
        init_rows = w.get("initRows", w["train"]["batch"])
        flow.data_init(as_input(torch.from_numpy(data[:init_rows].copy())))
        result["check"] = image_check(m, data, init_rows, a.data, w["id"], flow)
        result["info"]["model"] = "bench/torch_glow.py"

    if "train" in w:
        tr, o = w["train"], w["optimizer"]
        b = tr["batch"]
        rows = w["data"]["rows"]
        per_epoch = rows // b
        opt = torch.optim.Adam(flow.parameters(), lr=o["lr"], betas=(o["b1"], o["b2"]), eps=o["eps"])
        warm = o.get("warmupSteps", 0)
        # clayflow's warm-up: lr * (s + 1) / W for update s < W (src/train/schedules.ts).
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm)) if warm else None
        clip = o.get("clipNorm")
        params = list(flow.parameters())
        state = {"i": 0, "loss": 0.0, "first": None}

        def step():
            start = (state["i"] % per_epoch) * b
            state["i"] += 1
            x = as_input(torch.from_numpy(data[start:start + b]))
            loss = -flow.log_prob(x).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            if sched:
                sched.step()
            value = loss.item()  # read back the loss each step, as clayflow does
            state["loss"] += value
            if state["first"] is None:
                state["first"] = value

        t0 = time.perf_counter()
        timed(tr["warmup"], step)
        result["warmupLoss"] = state["loss"] / tr["warmup"]
        if image:
            result["check"]["pytorch loss of training step 1"] = state["first"]
            result["profile"] = {"train warm-up s": time.perf_counter() - t0}
        for r, sec in enumerate(time_reps(reps, tr["steps"], cap, step)):
            figures[r]["train"] = b / sec

    with torch.no_grad():
        if "logProb" in w:
            lp = w["logProb"]
            x = as_input(torch.from_numpy(data[: lp["batch"]].copy()))
            fn = lambda: flow.log_prob(x).numpy()
            timed(lp["warmup"], fn)
            for r, sec in enumerate(time_reps(reps, lp["iters"], cap, fn)):
                figures[r]["logProb"] = lp["batch"] / sec
        if "sample" in w:
            sp = w["sample"]
            gen = torch.Generator().manual_seed(1)
            # Eager: nothing is compiled, so a smaller warm-up exercises the same kernels.
            n, small = sp["n"], sp.get("warmupN", sp["n"])
            timed(sp["warmup"], lambda: flow.sample(small, gen).numpy())
            projected = timed(1, lambda: flow.sample(small, gen).numpy()) * n / small if small < n else 0
            if projected > spec["secondsPerCallCap"]:
                figures[0]["sample"] = n / projected
                result["notes"] = {"sample": f"estimated from one call of {small} samples: one call of {n} would take about {projected:.0f} s (cap {spec['secondsPerCallCap']} s)"}
            else:
                fn = lambda: flow.sample(n, gen).numpy()
                for r, sec in enumerate(time_reps(reps, sp["iters"], cap, fn)):
                    figures[r]["sample"] = n / sec

    result["peakRssMiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
