"""clayflow run directories (docs/CHECKPOINTS.md): config.json + weights.safetensors.

Read: the model config rebuilds the flow; params/<leaf> (and best/<leaf>) fill it; the
standardisers of the data and the context come from config.json. Written: the same layout
clayflow's saveRun writes (weights first, then config.json with the weights' SHA-256, each
atomically; both checked on read, with every tensor finite), with Adam's
moments as optimizer/m and optimizer/v over the leaf order, so `clayflow sample | score |
eval | doctor` and `clayflow train --resume` read it unchanged.
"""
import hashlib
import json
import math
import os

import torch

from .models import build_flow, resolve_config
from .safetensors import decode_safetensors, write_file_atomic, encode_safetensors

RUN_FORMAT = "clayflow-run"
RUN_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _finite_strings(value):
    """Non-finite numbers as the strings clayflow writes ("Infinity", "-Infinity", "NaN")."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_strings(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_strings(v) for v in value]
    return value


def _from_strings(value):
    if isinstance(value, str) and value in ("Infinity", "-Infinity", "NaN"):
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, dict):
        return {k: _from_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_strings(v) for v in value]
    return value


def dumps(value):
    return json.dumps(_finite_strings(value), separators=(",", ":"), allow_nan=False)


def loads(text):
    return _from_strings(json.loads(text))


class Standardizer:
    """z = (x - mean) / std per column (population std); log p_x = log p_z - sum(log std)."""

    def __init__(self, mean, std, notes=None):
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.notes = list(notes or [])

    @classmethod
    def fit(cls, rows, names=None):
        """Fit on a float64 tensor [n, cols]; constant columns get std 1 and a note."""
        mean = rows.mean(0)
        std = ((rows - mean) ** 2).mean(0).sqrt()
        notes = []
        out = []
        for j, s in enumerate(std.tolist()):
            if s > 0 and math.isfinite(s):
                out.append(s)
            else:
                name = f" ({names[j]})" if names else ""
                notes.append(f"column {j + 1}{name} is constant ({mean[j].item()}) on the fitting rows; its std is set to 1")
                out.append(1.0)
        return cls(mean.tolist(), out, notes)

    @classmethod
    def from_json(cls, obj, width, where):
        if obj is None:
            return None
        if not (isinstance(obj, dict) and obj.get("kind") == "standardizer"):
            raise ValueError(f"{where}: expected a standardizer object")
        s = cls(obj["mean"], obj["std"], obj.get("notes"))
        if len(s.mean) != width or len(s.std) != width or not all(v > 0 for v in s.std):
            raise ValueError(f"{where}: needs {width} means and positive stds")
        return s

    def to_json(self):
        return {"kind": "standardizer", "mean": self.mean, "std": self.std, "notes": self.notes}

    def transform(self, x):
        return (x - torch.tensor(self.mean, dtype=torch.float64)) / torch.tensor(self.std, dtype=torch.float64)

    def log_det(self):
        return -sum(math.log(s) for s in self.std)


class Run:
    """A loaded run: `flow` holds the current parameters; `best` the best validation ones (a
    flat vector in `paths` order) or None; `state` the training_state metadata; `optimizer`
    Adam's moments m, v (flat, in `paths` order) and its step."""

    def __init__(self, config, flow, state, best, optimizer, preprocessing, context_preprocessing):
        self.config = config
        self.flow = flow
        self.state = state
        self.best = best
        self.optimizer = optimizer
        self.preprocessing = preprocessing
        self.context_preprocessing = context_preprocessing

    @property
    def paths(self):
        return self.state["layout"]["paths"]

    def use_best(self):
        """Load the parameters `clayflow score` uses: the best validation ones when kept."""
        if self.best is not None:
            self.flow.load_flat(self.best, self.paths)
        return self.flow


def _check_checksum(config, saved, buf, cpath, wpath):
    """The weights' bytes against config.json's weightsSha256, as clayflow's loadRun checks them:
    a mismatch is an error unless config.json is from an earlier save than the weights (a save
    interrupted between its two renames; the weights carry the later training state)."""
    sha = config.get("weightsSha256")
    if sha is None:
        return  # written before checksums were kept
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"{cpath}: weightsSha256 must be 64 lowercase hex digits (the SHA-256 of {WEIGHTS_FILE}), got {sha!r}")
    actual = hashlib.sha256(buf).hexdigest()
    if actual == sha:
        return
    progress = config.get("training", {}).get("progress", {})
    if saved.get("step", 0) >= progress.get("step", 0) and saved.get("seconds", 0) > progress.get("seconds", 0):
        return
    raise ValueError(
        f"{wpath}: its SHA-256 ({actual[:12]}…) is not the one {cpath} records ({sha[:12]}…): the checkpoint is corrupt "
        "(the file changed after it was saved); restore both files from a copy, e.g. a kept checkpoint in checkpoints/, or retrain")


def _check_finite(wpath, name, t):
    """Training never saves a NaN or an infinity (it skips non-finite steps): one here is damage."""
    if not t.is_floating_point():
        return
    bad = ~torch.isfinite(t.reshape(-1))
    n = int(bad.sum())
    if n:
        first = int(bad.nonzero()[0])
        raise ValueError(
            f"{wpath}: tensor {name} holds {n} non-finite value{'s' if n > 1 else ''} ({float(t.reshape(-1)[first])} at index {first}): "
            "the checkpoint is corrupt (training never saves NaN or infinite weights); restore it from a copy, e.g. a kept checkpoint in checkpoints/, or retrain")


def load_run(run_dir):
    cpath = os.path.join(run_dir, CONFIG_FILE)
    wpath = os.path.join(run_dir, WEIGHTS_FILE)
    for p in (cpath, wpath):
        if not os.path.exists(p):
            raise FileNotFoundError(f"{run_dir} has no {os.path.basename(p)} (not a clayflow run directory?)")
    with open(cpath, encoding="utf-8") as f:
        config = loads(f.read())
    if config.get("format") != RUN_FORMAT:
        raise ValueError(f"{cpath}: format is {config.get('format')!r}, expected {RUN_FORMAT!r}")
    if not isinstance(config.get("version"), int) or config["version"] > RUN_VERSION:
        raise ValueError(f"{cpath}: version {config.get('version')!r} is newer than clayflow-torch reads (up to {RUN_VERSION})")
    model = resolve_config(config["model"])
    with open(wpath, "rb") as f:
        buf = f.read()
    tensors, meta = decode_safetensors(buf, wpath)
    if meta.get("format") != RUN_FORMAT:
        raise ValueError(f"{wpath}: __metadata__.format is {meta.get('format')!r}, expected {RUN_FORMAT!r}")
    if resolve_config(json.loads(meta.get("model", "null"))) != model:
        raise ValueError(f"{wpath}: its model differs from {cpath}'s (the files do not belong together)")
    state = loads(meta["training_state"])
    _check_checksum(config, state, buf, cpath, wpath)
    for name, t in tensors.items():
        _check_finite(wpath, name, t)
    dtype = _DTYPES[state["layout"]["dtype"]]
    flow = build_flow(model, dtype)
    paths = state["layout"]["paths"]
    leaves = flow.leaves()
    if sorted(paths) != sorted(leaves) or paths != flow.leaf_paths():
        raise ValueError(f"{wpath}: its leaves differ from those of the model (expected {flow.leaf_paths()[:4]}..., got {paths[:4]}...)")
    with torch.no_grad():
        for p in paths:
            t = tensors.get(f"params/{p}")
            if t is None or tuple(t.shape) != tuple(leaves[p].shape):
                raise ValueError(f"{wpath}: params/{p} is missing or has shape {None if t is None else list(t.shape)}, the model needs {list(leaves[p].shape)}")
            leaves[p].copy_(t.to(dtype))
    best = None
    if paths and f"best/{paths[0]}" in tensors:
        best = torch.cat([tensors[f"best/{p}"].reshape(-1).to(dtype) for p in paths])
    # A weights-only run (clayflow export) has no optimizer tensors; any other run must have both.
    if not state.get("weightsOnly") and ("optimizer/m" not in tensors or "optimizer/v" not in tensors):
        raise ValueError(f"{wpath}: optimizer/m or optimizer/v is missing (and the run is not weights-only)")
    optimizer = {"m": tensors.get("optimizer/m"), "v": tensors.get("optimizer/v"), "step": state.get("optimizerStep", 0)}
    pre = Standardizer.from_json(config.get("preprocessing"), flow.dim, f"{cpath}: preprocessing")
    cpre = Standardizer.from_json(config.get("contextPreprocessing"), flow.context_dim, f"{cpath}: contextPreprocessing")
    config["model"] = model
    return Run(config, flow, state, best, optimizer, pre, cpre)


def save_run(run_dir, flow, *, state, optimizer_m, optimizer_v, best=None, preprocessing=None,
             context_preprocessing=None, data=None, training_options=None):
    """Write a run as clayflow's saveRun does. `state`: step, optimizerStep, best ({step,
    validLoss} or None), history, skipped, badStreak, evalsSinceBest, lossSum, lossCount,
    seconds. Vectors are flat in leaf order; `best` the best parameters' vector or None."""
    os.makedirs(run_dir, exist_ok=True)
    model = flow.config
    paths = flow.leaf_paths()
    leaves = flow.leaves()
    dtype_name = "float64" if flow.dtype_ == torch.float64 else "float32"
    tensors = {f"params/{p}": leaves[p].detach().to(flow.dtype_) for p in paths}
    if best is not None:
        at = 0
        for p in paths:
            n = leaves[p].numel()
            tensors[f"best/{p}"] = best[at : at + n].reshape(leaves[p].shape).to(flow.dtype_)
            at += n
    tensors["optimizer/m"] = optimizer_m.detach().to(flow.dtype_)
    tensors["optimizer/v"] = optimizer_v.detach().to(flow.dtype_)
    training_state = {
        "step": state["step"],
        "layout": {"paths": paths, "shapes": [list(leaves[p].shape) for p in paths], "dtype": dtype_name},
        "optimizerStep": state["optimizerStep"],
        "best": state.get("best"),
        "history": state.get("history", []),
        "skipped": state.get("skipped", 0),
        "badStreak": state.get("badStreak", 0),
        "evalsSinceBest": state.get("evalsSinceBest", 0),
        "lossSum": state.get("lossSum", 0),
        "lossCount": state.get("lossCount", 0),
        "seconds": state.get("seconds", 0),
    }
    metadata = {"format": RUN_FORMAT, "version": str(RUN_VERSION), "model": dumps(model), "training_state": dumps(training_state)}
    weights = encode_safetensors(tensors, metadata)
    data = data or {}
    history = training_state["history"]
    last = history[-1] if history else {}
    best_info = training_state["best"]
    config = {
        "format": RUN_FORMAT,
        "version": RUN_VERSION,
        "weightsSha256": hashlib.sha256(weights).hexdigest(),  # verified on load (docs/CHECKPOINTS.md)
        "model": model,
        "preprocessing": preprocessing.to_json() if preprocessing else None,
        "contextPreprocessing": context_preprocessing.to_json() if context_preprocessing else None,
        "data": {
            "name": data.get("name"),
            "columns": data.get("columns"),
            "dim": flow.dim,
            "rows": data.get("rows"),
            "contextDim": flow.context_dim,
            "contextColumns": data.get("contextColumns"),
        },
        "training": {
            "options": training_options or {},
            "progress": {
                "step": training_state["step"],
                "skipped": training_state["skipped"],
                "bestStep": best_info["step"] if best_info else None,
                "bestValidLoss": best_info["validLoss"] if best_info else None,
                "lastTrainLoss": last.get("trainLoss"),
                "lastValidLoss": last.get("validLoss"),
                "seconds": training_state["seconds"],
            },
        },
    }
    write_file_atomic(os.path.join(run_dir, WEIGHTS_FILE), weights)
    write_file_atomic(os.path.join(run_dir, CONFIG_FILE), dumps(config) + "\n")
