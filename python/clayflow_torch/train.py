"""Maximum-likelihood training as clayflow's `fit` does it (src/train/fit.ts,
src/train/optimizer.ts, src/train/schedules.ts): full batches from a per-epoch shuffle
seeded by (seed, epoch), the mean NLL of the batch (batch norm in training mode), global-norm
clipping, Adam/AdamW with clayflow's update on the flat leaf vector, non-finite steps skipped,
batch-norm running statistics refreshed after each finite step, validation every evalEvery
steps with the best parameters kept.

Data parallel: under torchrun (WORLD_SIZE > 1) each of W processes takes its 1/W of every
global batch and DistributedDataParallel averages the gradients, which is the gradient of the
global batch's mean NLL (the batch size must be a multiple of W). Every rank applies the same
update; rank 0 writes the checkpoints. Batch norm's statistics are per rank (use actnorm).
"""
import math
import time

import torch
import torch.distributed as dist

from .data import epoch_seed, shuffle


def schedule_lr(lr, step):
    """The learning rate of update `step` (0-based): a number or clayflow's schedule JSON."""
    if isinstance(lr, (int, float)):
        return float(lr)
    base = lr["lr"]
    warm = lr.get("warmupSteps", 0) if lr["kind"] != "constant" else 0
    w = min((step + 1) / warm, 1.0) if warm > 0 else 1.0
    if lr["kind"] != "cosine":
        return base * w
    f = lr.get("finalFraction", 0)
    p = min(max((step - warm) / (lr["totalSteps"] - warm), 0.0), 1.0)
    return base * w * (f + (1 - f) * (1 + math.cos(math.pi * p)) / 2)


class Adam:
    """clayflow's Adam/AdamW on one flat vector: m, v, bias corrections, eps outside the sqrt,
    decoupled weight decay scaled by lr, frozen `state` leaves masked."""

    def __init__(self, config, size, dtype, device, trainable):
        self.kind = config.get("kind", "adam")
        self.lr = config.get("lr", 1e-3)
        self.b1 = config.get("b1", 0.9)
        self.b2 = config.get("b2", 0.999)
        self.eps = config.get("eps", 1e-8)
        self.wd = config.get("weightDecay", 1e-4 if self.kind == "adamw" else 0.0)
        self.clip = config.get("clipNorm")
        self.m = torch.zeros(size, dtype=dtype, device=device)
        self.v = torch.zeros(size, dtype=dtype, device=device)
        self.step = 0
        self.mask = trainable

    def update(self, params, grad):
        g = grad * self.mask
        if self.clip is not None:
            norm = torch.sqrt((g * g).sum())
            g = g * (self.clip / torch.maximum(norm, torch.tensor(self.clip, dtype=g.dtype, device=g.device)))
        self.m = self.m * self.b1 + g * (1 - self.b1)
        self.v = self.v * self.b2 + g * g * (1 - self.b2)
        t = self.step + 1
        mhat = self.m / (1 - self.b1 ** t)
        vhat = self.v / (1 - self.b2 ** t)
        direction = mhat / (torch.sqrt(vhat) + self.eps)
        if self.wd > 0:
            direction = direction + params * self.wd
        lr = schedule_lr(self.lr, self.step)
        self.step = t
        return params - direction * self.mask * lr


def _distributed():
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def fit(flow, train_x, train_cond=None, *, steps=1000, batch_size=256, optimizer=None, seed=0,
        valid_x=None, valid_cond=None, eval_every=None, patience=None, checkpoint_every=0,
        on_checkpoint=None, on_step=None, augment=None, eval_chunk=1024, resume=None):
    """Train `flow` in place; returns the state dict save_run takes (plus best, m, v).
    train_x [rows, ...event] on the flow's device and dtype; `augment(x, step)` changes each
    batch before the step (the dequantisation noise of image training)."""
    optimizer = optimizer or {"kind": "adam", "lr": 1e-3}
    world = dist.get_world_size() if _distributed() else 1
    rank = dist.get_rank() if _distributed() else 0
    n = train_x.shape[0]
    batch_size = min(batch_size, n)
    if batch_size % world:
        raise ValueError(f"the batch size {batch_size} must be a multiple of the {world} processes")
    local = batch_size // world
    steps_per_epoch = n // batch_size
    eval_every = eval_every or min(steps_per_epoch, steps)
    paths = flow.leaf_paths()
    leaves = flow.leaves()
    device = train_x.device
    trainable = torch.cat([torch.full((leaves[p].numel(),), 0.0 if ".state." in p else 1.0, dtype=flow.dtype_, device=device) for p in paths])
    opt = Adam(optimizer, trainable.numel(), flow.dtype_, device, trainable)
    model = flow
    if _distributed():
        model = torch.nn.parallel.DistributedDataParallel(flow, device_ids=[device.index] if device.type == "cuda" else None)

    state = {"step": 0, "optimizerStep": 0, "best": None, "history": [], "skipped": 0, "badStreak": 0,
             "evalsSinceBest": 0, "lossSum": 0.0, "lossCount": 0, "seconds": 0.0}
    best_vec = None
    seconds_before = 0.0
    if resume is not None:
        saved = resume.state
        if saved["layout"]["paths"] != paths:
            raise ValueError("the run to resume has other parameters than this flow (a different model?)")
        for key in state:
            if key in saved:
                state[key] = saved[key]
        state["history"] = [dict(h) for h in saved["history"]]
        seconds_before = saved.get("seconds", 0.0)
        opt.m = resume.optimizer["m"].to(device=device, dtype=flow.dtype_).clone()
        opt.v = resume.optimizer["v"].to(device=device, dtype=flow.dtype_).clone()
        opt.step = saved["optimizerStep"]
        if resume.best is not None:
            best_vec = resume.best.to(device=device, dtype=flow.dtype_).clone()
    t0 = time.perf_counter() - seconds_before
    epoch, order = -1, None
    last_checkpoint = -1

    def snapshot():
        state["optimizerStep"] = opt.step
        state["seconds"] = time.perf_counter() - t0
        return dict(state), best_vec, opt.m, opt.v

    stop = False
    while state["step"] < steps and not stop:
        step = state["step"]
        e = step // steps_per_epoch
        if e != epoch:
            epoch = e
            order = torch.tensor(shuffle(range(n), epoch_seed(seed, epoch)), device=device)
        at = (step % steps_per_epoch) * batch_size + rank * local
        idx = order[at : at + local]
        x = train_x[idx]
        if augment is not None:
            x = augment(x, step)
        cond = train_cond[idx] if train_cond is not None else None
        for p in flow.parameters():
            p.grad = None
        loss = -model(x, cond).mean()
        loss.backward()  # DDP averages the gradients over the ranks here
        with torch.no_grad():
            if _distributed():
                loss_all = loss.detach().clone()
                dist.all_reduce(loss_all)
                loss_value = loss_all.item() / world
            else:
                loss_value = loss.item()
            grad = flow.flat(paths, grad=True)
            finite = math.isfinite(loss_value) and bool(torch.isfinite(grad).all())
            if finite:
                flow.load_flat(opt.update(flow.flat(paths), grad), paths)
                if flow.has_state():
                    flow.update_state(x, cond)
        state["step"] = step = step + 1
        if finite:
            state["badStreak"] = 0
            state["lossSum"] += loss_value
            state["lossCount"] += 1
        else:
            state["skipped"] += 1
            state["badStreak"] += 1
            if state["badStreak"] >= 20:
                raise RuntimeError(f"{state['badStreak']} non-finite training steps in a row (up to step {step}): try a lower learning rate or clipping")
        if on_step:
            on_step(step, loss_value)
        if step % eval_every == 0 or step == steps:
            valid_loss = None
            if valid_x is not None and valid_x.shape[0] > 0:
                valid_loss = nll(flow, valid_x, valid_cond, eval_chunk)
                if state["best"] is None or valid_loss < state["best"]["validLoss"]:
                    state["best"] = {"step": step, "validLoss": valid_loss}
                    best_vec = flow.flat(paths).clone()
                    state["evalsSinceBest"] = 0
                else:
                    state["evalsSinceBest"] += 1
            state["history"].append({
                "step": step,
                "trainLoss": state["lossSum"] / state["lossCount"] if state["lossCount"] else None,
                "validLoss": valid_loss,
                "seconds": time.perf_counter() - t0,
            })
            state["lossSum"], state["lossCount"] = 0.0, 0
            if patience and state["evalsSinceBest"] >= patience:
                stop = True
        if on_checkpoint and checkpoint_every and step % checkpoint_every == 0:
            on_checkpoint(*snapshot())
            last_checkpoint = step
    result = snapshot()
    if on_checkpoint and last_checkpoint != state["step"]:
        on_checkpoint(*result)
    return result


@torch.no_grad()
def nll(flow, x, cond=None, chunk=1024):
    """Mean NLL (nats per row) of rows x, in chunks, with the running statistics."""
    total = 0.0
    for i in range(0, x.shape[0], chunk):
        c = cond[i : i + chunk] if cond is not None else None
        total += flow.log_prob(x[i : i + chunk], c).double().sum().item()
    return -total / x.shape[0]
