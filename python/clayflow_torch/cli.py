"""python3 -m clayflow_torch train | score | sample (see --help)."""
import argparse
import json
import math
import os
import sys

import torch

from .data import js_number, read_csv, split_rows
from .models import build_flow, is_image_config, resolve_config
from .runs import CONFIG_FILE, Standardizer, load_run, save_run


def _device(name):
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device (torch.cuda.is_available() is False)")
    return name


def _init_distributed(device):
    """torchrun sets WORLD_SIZE / RANK / LOCAL_RANK: join the group (nccl on GPUs, gloo on CPU)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return torch.device("cuda" if device == "cuda" else "cpu"), 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
    return torch.device(f"cuda:{local}" if device == "cuda" else "cpu"), dist.get_rank()


def _columns(table_cols, names):
    return [table_cols.index(n) for n in names]


def cmd_train(a):
    resume = None
    if a.resume:
        if a.config or a.out:
            raise SystemExit("error: --resume RUN continues RUN with its own config and directory: leave out --config and --out")
        resume = load_run(a.resume)
        if is_image_config(resume.config["model"]):
            raise SystemExit("error: --resume continues vector runs; continue an image run with clayflow train --resume")
        if resume.state.get("weightsOnly"):
            raise SystemExit(f"error: {a.resume} holds weights only (written by clayflow export): it has no optimizer state to resume from; resume the run it was exported from")
        stored = resume.config.get("training", {}).get("options", {})
        a.out, a.data = a.resume, a.data or resume.config["data"].get("name")
        a.context_columns = ",".join(resume.config["data"].get("contextColumns") or [])
        for key, attr in (("steps", "steps"), ("batchSize", "batch_size"), ("seed", "seed"), ("evalEvery", "eval_every"), ("checkpointEvery", "checkpoint_every")):
            if getattr(a, attr) is None and key in stored:
                setattr(a, attr, stored[key])
        if a.steps is not None and a.steps <= resume.state["step"]:
            raise SystemExit(f"error: {a.out} already has {resume.state['step']} steps: pass a larger --steps to train further")
        a.dtype = resume.state["layout"]["dtype"]
        config = resume.config["model"]
        a.optimizer = stored.get("optimizer")
    else:
        if not (a.config and a.data and a.out):
            raise SystemExit("error: train needs --config, --data and --out (or --resume RUN)")
        if os.path.exists(os.path.join(a.out, CONFIG_FILE)) and not a.force:
            raise SystemExit(f"error: {a.out} already holds a run: choose another --out (or --force to replace it), or continue it with --resume")
        with open(a.config, encoding="utf-8") as f:
            config = json.load(f)
        if "model" in config and isinstance(config["model"], dict):  # a run's config.json
            config = config["model"]
        a.optimizer = None
    if not a.data:
        raise SystemExit("error: the run does not record its data file: pass --data FILE.csv")
    image_data = a.data in ("fashion-mnist", "mnist")
    # clayflow train's defaults (its image defaults for image data).
    defaults = {"steps": 11000, "batch_size": 32, "lr": 2e-3, "eval_every": 1000} if image_data else {"steps": 10000, "batch_size": 256, "lr": 1e-3, "eval_every": 250}
    for attr, default in {**defaults, "seed": 0, "checkpoint_every": 500}.items():
        if getattr(a, attr) is None:
            setattr(a, attr, default)
    if image_data and config.get("model") not in ("glow", "realnvp"):
        raise SystemExit(f"error: --data {a.data} needs an image model config: glow or realnvp (got {config.get('model')!r})")
    if not image_data and (config.get("model") == "glow" or "shape" in config):
        raise SystemExit(f"error: {config.get('model')} with a shape is an image model: train it on --data fashion-mnist or mnist")
    device, rank = _init_distributed(_device(a.device))
    if image_data:
        return train_images(a, config, device, rank)
    columns, has_header, rows = read_csv(a.data)
    if len(rows) < 10:
        raise SystemExit(f"error: {a.data}: only {len(rows)} data rows; a flow needs at least 10")
    context = [c for c in (a.context_columns or "").split(",") if c]
    missing = [c for c in context if c not in columns]
    if missing:
        raise SystemExit(f"error: {a.data} has no column {', '.join(missing)} (its columns: {', '.join(columns)})")
    cond_idx = _columns(columns, context)
    x_idx = [j for j in range(len(columns)) if j not in cond_idx]
    table = torch.tensor(rows, dtype=torch.float64)
    train_i, valid_i, test_i = split_rows(len(rows), valid=0.1, test=0.1, seed=a.seed)
    names = [columns[j] for j in x_idx]
    cnames = [columns[j] for j in cond_idx]
    pre = Standardizer.fit(table[train_i][:, x_idx], names)
    cpre = Standardizer.fit(table[train_i][:, cond_idx], cnames) if cond_idx else None
    config = dict(config, dim=len(x_idx), **({"contextDim": len(cond_idx)} if cond_idx else {}))
    model = resolve_config(config)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    # clayflow trains on float32 rows (its CSV source rounds them), whatever the run's dtype.
    part = lambda idx, cols, s: s.transform(table[idx][:, cols]).float().to(dtype).to(device)
    train_x, valid_x = part(train_i, x_idx, pre), part(valid_i, x_idx, pre)
    train_c = part(train_i, cond_idx, cpre) if cpre else None
    valid_c = part(valid_i, cond_idx, cpre) if cpre else None
    if resume is not None:
        flow = resume.flow.to(device)
        pre, cpre = resume.preprocessing, resume.context_preprocessing  # the run's own standardisation
        train_x, valid_x = part(train_i, x_idx, pre), part(valid_i, x_idx, pre)
        train_c = part(train_i, cond_idx, cpre) if cpre else None
        valid_c = part(valid_i, cond_idx, cpre) if cpre else None
    else:
        flow = build_flow(model, dtype).to(device)
        g = torch.Generator().manual_seed(a.seed)
        flow.reset(g)
        init = min(train_x.shape[0], 1024)
        flow.data_init(train_x[:init], train_c[:init] if train_c is not None else None)
    lr = a.lr if a.schedule == "constant" else {
        "kind": "cosine", "lr": a.lr, "warmupSteps": min(200, a.steps // 10), "totalSteps": a.steps, "finalFraction": 0.02}
    optimizer = a.optimizer or {"kind": "adam", "lr": lr, **({"clipNorm": a.clip_norm} if a.clip_norm else {})}
    options = {"steps": a.steps, "batchSize": a.batch_size, "optimizer": optimizer, "seed": a.seed,
               "evalEvery": a.eval_every, "checkpointEvery": a.checkpoint_every}
    data = {"name": a.data, "columns": names, "rows": len(train_i), **({"contextColumns": cnames} if cnames else {})}

    def save(state, best, m, v):
        if rank == 0:
            save_run(a.out, flow, state=state, optimizer_m=m, optimizer_v=v, best=best, preprocessing=pre,
                     context_preprocessing=cpre, data=data, training_options=options)

    from .train import fit, nll

    def progress(step, loss):
        if rank == 0 and (step % max(1, a.steps // 20) == 0 or step == a.steps):
            print(f"step {step}/{a.steps} loss {loss:.4f}", file=sys.stderr, flush=True)

    state, best, _, _ = fit(flow, train_x, train_c, steps=a.steps, batch_size=a.batch_size, optimizer=optimizer,
                            seed=a.seed, valid_x=valid_x, valid_cond=valid_c, eval_every=a.eval_every,
                            checkpoint_every=a.checkpoint_every, on_checkpoint=save, on_step=progress, resume=resume)
    if rank == 0:
        if best is not None:
            flow.load_flat(best)
        test_x = part(test_i, x_idx, pre)
        test_c = part(test_i, cond_idx, cpre) if cpre else None
        test = nll(flow, test_x, test_c) - pre.log_det()
        write_loglik_summary(a.out, flow, train_x, train_c, pre.log_det(), state, len(train_i))
        print(f"trained {model['model']} for {state['step']} steps in {state['seconds']:.1f} s"
              f"\ntest NLL {test:.4f} nats on {len(test_i)} rows\nrun saved in {a.out}")
    return 0


def _quantile(sorted_values, h):
    """clayflow's interpolate: linear between order statistics; an infinite end wins."""
    lo = math.floor(h)
    frac = h - lo
    a = sorted_values[lo]
    if frac == 0 or lo + 1 >= len(sorted_values):
        return a
    b = sorted_values[lo + 1]
    if a == b or a == -math.inf:
        return a
    if b == math.inf:
        return b
    return a + frac * (b - a)


def write_loglik_summary(out, flow, train_x, train_c, shift, state, of_rows, levels=1000, max_rows=20000):
    """train-loglik.json as `clayflow train` writes it (docs/CHECKPOINTS.md): quantiles of the
    training rows' log-likelihood (at most 20,000, evenly spaced), for score --flag-quantile."""
    from .runs import dumps
    from .safetensors import write_file_atomic

    rows = train_x.shape[0]
    idx = torch.tensor([math.floor(i * rows / max_rows) for i in range(max_rows)]) if rows > max_rows else torch.arange(rows)
    with torch.no_grad():
        parts = []
        for i in range(0, len(idx), 4096):
            j = idx[i : i + 4096].to(train_x.device)
            parts.append(flow.log_prob(train_x[j], train_c[j] if train_c is not None else None).double().cpu())
    logp = sorted((torch.cat(parts) + shift).tolist())
    if math.isnan(logp[-1]):
        raise ValueError("a training row's log-likelihood is NaN (the model is broken)")
    n = len(logp)
    finite = [v for v in logp if math.isfinite(v)]
    summary = {
        "format": "clayflow-loglik-quantiles", "version": 1, "units": "nats", "source": "training rows",
        "rows": n, "ofRows": of_rows, "step": state["step"],
        "paramsStep": state["best"]["step"] if state["best"] else state["step"],
        "mean": sum(finite) / len(finite) if len(finite) == n else -math.inf,
        "quantiles": [_quantile(logp, (n - 1) * k / levels) for k in range(levels + 1)],
    }
    write_file_atomic(os.path.join(out, "train-loglik.json"), dumps(summary) + "\n")


def train_images(a, config, device, rank):
    """Image training as `clayflow train --data fashion-mnist`: pixels / 256 with fresh uniform
    noise per batch, the last 2,000 training images for validation (fixed noise), Adam with
    warm-up and cosine decay and clipping at 50; test bits/dim at the end."""
    from .imagedata import image_context, load_images, one_hot
    from .train import fit, nll

    images, labels = load_images(a.data, "train", a.data_dir)
    test_images, test_labels = load_images(a.data, "test", a.data_dir)
    n, H, W, C = images.shape
    # clayflow train's image defaults where the config leaves them out.
    config = {"hidden": 32, "dequantization": "variational", **config, "shape": [H, W, C]}
    model = resolve_config(config)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    flow = build_flow(model, dtype).to(device)
    valid_n = min(2000, n - 1)
    train_n = n - valid_n
    g = torch.Generator().manual_seed(a.seed)

    def rows(pix, lab, noise_seed=None):
        x = pix.double() / 256
        if noise_seed is not None:
            x = x + torch.rand(x.shape, generator=torch.Generator().manual_seed(noise_seed), dtype=torch.float64) / 256
        if model["context"]:
            cond = image_context(pix, model["context"])
        elif model["classes"]:
            cond = one_hot(lab, model["classes"])
        else:
            cond = None
        return x.to(device=device, dtype=dtype), None if cond is None else cond.float().to(device=device, dtype=dtype)

    train_x, train_c = rows(images[:train_n], labels[:train_n])
    valid_x, valid_c = rows(images[train_n:], labels[train_n:], a.seed + 1)
    flow.reset(g)
    init_x = train_x[:16] + torch.rand(train_x[:16].shape, generator=g, dtype=torch.float64).to(device=device, dtype=dtype) / 256
    flow.data_init(init_x, train_c[:16] if train_c is not None else None)
    noise = torch.Generator(device=device)

    def dequantize(x, step):
        # Fresh noise per step (and per process under torchrun), a function of the seed and step.
        rank_ = int(os.environ.get("RANK", "0"))
        noise.manual_seed((a.seed + 1) * 1_000_003 + step * 1009 + rank_)
        return x + torch.rand(x.shape, generator=noise, device=device, dtype=dtype) / 256

    warm = min(500, math.ceil(a.steps / 10))
    lr = {"kind": "cosine", "lr": a.lr, "warmupSteps": warm, "totalSteps": a.steps, "finalFraction": 0.02} if a.schedule == "cosine" else {"kind": "warmup", "lr": a.lr, "warmupSteps": warm}
    optimizer = {"kind": "adam", "lr": lr, "clipNorm": a.clip_norm or 50}
    options = {"steps": a.steps, "batchSize": a.batch_size, "optimizer": optimizer, "seed": a.seed,
               "evalEvery": a.eval_every, "evalBatchSize": 16, "checkpointEvery": a.checkpoint_every}
    data = {"name": a.data, "rows": train_n}

    def save(state, best, m, v):
        if rank == 0:
            save_run(a.out, flow, state=state, optimizer_m=m, optimizer_v=v, best=best, data=data, training_options=options)

    D = H * W * C
    bits = lambda nats: nats / (D * math.log(2)) + 8

    def progress(step, loss):
        if rank == 0 and (step % max(1, a.steps // 20) == 0 or step == a.steps):
            print(f"step {step}/{a.steps} {bits(loss):.4f} bits/dim", file=sys.stderr, flush=True)

    state, best, _, _ = fit(flow, train_x, train_c, steps=a.steps, batch_size=a.batch_size, optimizer=optimizer, seed=a.seed,
                            valid_x=valid_x, valid_cond=valid_c, eval_every=a.eval_every, checkpoint_every=a.checkpoint_every,
                            on_checkpoint=save, on_step=progress, augment=dequantize, eval_chunk=256)
    if rank == 0:
        if best is not None:
            flow.load_flat(best)
        count = min(a.test_images, test_images.shape[0])
        tx, tc = rows(test_images[:count], test_labels[:count], a.seed + 3)
        print(f"trained {model['model']} for {state['step']} steps in {state['seconds']:.1f} s"
              f"\ntest {bits(nll(flow, tx, tc, 256)):.4f} bits/dim on {count} images\nrun saved in {a.out}")
    return 0


def _training_quantile(run_dir, q):
    """The Q-quantile of the run's training log-likelihood, from train-loglik.json, as clayflow
    score --flag-quantile reads it: linear interpolation on its grid of 1001 quantiles."""
    if not 0 < q < 1:
        raise SystemExit(f"error: --flag-quantile must be a fraction in (0, 1), e.g. 0.01; got {q}")
    path = os.path.join(run_dir, "train-loglik.json")
    if not os.path.exists(path):
        raise SystemExit(f"error: {run_dir} has no train-loglik.json (written by clayflow train and the twin's train): give --threshold NATS instead")
    with open(path, encoding="utf-8") as f:
        summary = json.loads(f.read(), parse_constant=float)
    values = [float(v) for v in summary.get("quantiles", [])]
    if summary.get("format") != "clayflow-loglik-quantiles" or len(values) < 2:
        raise SystemExit(f"error: {path} is not a clayflow log-likelihood summary")
    h = q * (len(values) - 1)
    lo = math.floor(h)
    frac = h - lo
    a, b = values[lo], values[min(lo + 1, len(values) - 1)]
    if frac == 0 or a == -math.inf or b == math.inf:
        return a if frac == 0 or a == -math.inf else b
    return a + frac * (b - a)


def cmd_sample(a):
    run = load_run(a.run)
    model = run.config["model"]
    if is_image_config(model):
        raise SystemExit(f"error: {a.run} is an image run; sample draws CSV rows of vector runs (image grids: clayflow sample --out grid.png)")
    if a.n < 1:
        raise SystemExit(f"error: -n must be at least 1, got {a.n}")
    if not (math.isfinite(a.temperature) and a.temperature >= 0):
        raise SystemExit(f"error: --temperature must be a finite number >= 0, got {a.temperature}")
    flow = run.use_best().to(_device(a.device))
    # clayflow sample's columns: a conditional run's context first (each row its context), then the sample.
    names = run.config["data"].get("columns") or [f"x{i}" for i in range(model["dim"])]
    context_names = run.config["data"].get("contextColumns") or [f"c{j + 1}" for j in range(model["contextDim"])]
    cond = None
    raw_context = []
    if model["contextDim"] > 0:
        if a.context is None:
            raise SystemExit(f"error: {a.run} is conditional: give --context with {model['contextDim']} values ({', '.join(run.config['data'].get('contextColumns') or [])})")
        try:
            values = [float(v) for v in a.context.split(",")]
        except ValueError:
            raise SystemExit(f"error: --context must be {model['contextDim']} numbers separated by commas, got {a.context!r}")
        if len(values) != model["contextDim"]:
            raise SystemExit(f"error: --context has {len(values)} values, the model takes {model['contextDim']}")
        raw_context = values
        c = torch.tensor([values], dtype=torch.float64)
        c = run.context_preprocessing.transform(c) if run.context_preprocessing else c
        cond = c.repeat(a.n, 1).to(flow.dtype_)
    elif a.context is not None:
        raise SystemExit(f"error: --context is for runs trained with --context-columns; {a.run} is not one")
    generator = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        z = flow.sample(a.n, cond.to(flow.base_device()) if cond is not None else None, generator, a.temperature).double().cpu()
    x = z * torch.tensor(run.preprocessing.std, dtype=torch.float64) + torch.tensor(run.preprocessing.mean, dtype=torch.float64) if run.preprocessing else z
    from .safetensors import write_file_atomic

    header = (context_names if raw_context else []) + names
    lines = [",".join(header)] + [",".join(js_number(v) for v in raw_context + row) for row in x.tolist()]
    write_file_atomic(a.out, "\n".join(lines) + "\n")
    print(f"wrote {a.n} samples of {a.run} to {a.out}")
    return 0


def cmd_score(a):
    if a.out == a.data:
        raise SystemExit("error: --out must differ from --data (the input would be overwritten)")
    run = load_run(a.run)
    flow = run.use_best().to(_device(a.device))
    model = run.config["model"]
    if is_image_config(model):
        raise SystemExit(f"error: {a.run} is an image run; score scores CSV rows of vector runs (image runs: clayflow eval, or load_run(...).flow.log_prob in Python)")
    columns, has_header, rows = read_csv(a.data)
    names = run.config["data"].get("columns")
    cnames = run.config["data"].get("contextColumns")
    ncols = len(columns)
    if model["contextDim"] > 0:
        if not names or not cnames:
            raise SystemExit(f"error: {a.run} does not record its column names, so the rows of {a.data} cannot be matched to the model and its context")
        missing = [n for n in names + cnames if not has_header or n not in columns]
        if missing:
            raise SystemExit(f"error: {a.data} lacks the columns {', '.join(missing)}: the model in {a.run} scores {', '.join(names)} given {', '.join(cnames)}")
        x_idx, c_idx = _columns(columns, names), _columns(columns, cnames)
    elif has_header and names and all(n in columns for n in names):
        x_idx, c_idx = _columns(columns, names), []
    elif ncols == model["dim"]:
        x_idx, c_idx = list(range(ncols)), []
    else:
        raise SystemExit(f"error: {a.data} has {ncols} columns, the model in {a.run} was trained on {model['dim']}")
    table = torch.tensor(rows, dtype=torch.float64)
    x = table[:, x_idx]
    if run.preprocessing:
        x = run.preprocessing.transform(x)
    # clayflow scores float32 rows (Float32Array), whatever the run's dtype: do the same.
    x = x.float().to(flow.dtype_)
    cond = None
    if c_idx:
        c = table[:, c_idx]
        cond = (run.context_preprocessing.transform(c) if run.context_preprocessing else c).float().to(flow.dtype_)
    with torch.no_grad():
        out = []
        for i in range(0, x.shape[0], 4096):
            cc = cond[i : i + 4096].to(flow.base_device()) if cond is not None else None
            out.append(flow.log_prob(x[i : i + 4096].to(flow.base_device()), cc).double().cpu())
        logp = torch.cat(out)
    shift = run.preprocessing.log_det() if run.preprocessing else 0.0
    logp = [v + shift for v in logp.tolist()]
    header = columns if has_header else (names or columns)
    if "log_likelihood" in header:
        raise SystemExit(f"error: {a.data} already has a log_likelihood column (a scored file?): score the original rows")
    extra = ["log_likelihood"]
    flags = None
    threshold = a.threshold
    if a.flag_quantile is not None and a.threshold is not None:
        raise SystemExit("error: give either --flag-quantile or --threshold, not both")
    if a.flag_quantile is not None:
        threshold = _training_quantile(a.run, a.flag_quantile)
    if threshold is not None:
        flags = [0 if v >= threshold else 1 for v in logp]
        extra.append("anomaly_flag" if "anomaly" in header else "anomaly")
    quote = lambda s: '"' + s.replace('"', '""') + '"' if any(ch in s for ch in '",\n') else s
    lines = [",".join(quote(h) for h in header + extra)]
    for r, row in enumerate(rows):
        cells = [js_number(v) for v in row] + [js_number(logp[r])]
        if flags is not None:
            cells.append(str(flags[r]))
        lines.append(",".join(cells))
    from .safetensors import write_file_atomic

    write_file_atomic(a.out, "\n".join(lines) + "\n")
    finite = [v for v in logp if math.isfinite(v)]
    mean = sum(finite) / max(1, len(finite))
    print(f"scored {len(rows)} rows: mean log-likelihood {mean:.4f} nats; wrote {a.out}")
    return 0


def parser():
    p = argparse.ArgumentParser(prog="python3 -m clayflow_torch", description="clayflow's vector flows in PyTorch, on clayflow run directories")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="fit a flow to a CSV file by maximum likelihood; writes a clayflow run directory")
    t.add_argument("--resume", metavar="RUN", help="continue RUN (written by clayflow or the twin, a vector run on a CSV file) from its checkpoint, e.g. on a GPU")
    t.add_argument("--config", help="a model config JSON (e.g. {\"model\": \"maf\", \"layers\": 5}; dim comes from the data), or a run's config.json")
    t.add_argument("--data", help="a CSV file of numeric columns (split 80/10/10 and standardised as clayflow train does), or fashion-mnist / mnist (image models)")
    t.add_argument("--data-dir", help="folder holding the image datasets (else CLAYFLOW_DATA_DIR, ~/.cache/clayflow, /usr/share/datasets)")
    t.add_argument("--test-images", type=int, default=10000, help="image models: test images for the final bits/dim")
    t.add_argument("--out", help="run directory to write")
    t.add_argument("--context-columns", help="condition on these columns, e.g. age,income")
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    t.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int, help="rows per step over all processes (a multiple of torchrun's --nproc_per_node)")
    t.add_argument("--lr", type=float, help="peak learning rate (default 1e-3; images 2e-3)")
    t.add_argument("--schedule", default="cosine", choices=["constant", "cosine"])
    t.add_argument("--clip-norm", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--eval-every", type=int)
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--force", action="store_true", help="replace a run already in --out")
    t.set_defaults(func=cmd_train)
    s = sub.add_parser("score", help="log-likelihood (nats) of every row of a CSV file, with the columns of `clayflow score`")
    s.add_argument("--run", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--threshold", type=float, help="flag rows whose log-likelihood is below this many nats")
    s.add_argument("--flag-quantile", type=float, metavar="Q", help="flag rows less likely than the Q-quantile of the training rows (the run's train-loglik.json), e.g. 0.01")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    s.set_defaults(func=cmd_score)
    m = sub.add_parser("sample", help="draw rows from a vector run into a CSV file (its columns, in the data's units)")
    m.add_argument("--run", required=True)
    m.add_argument("-n", type=int, default=1000, help="rows to draw (default 1000)")
    m.add_argument("--out", required=True)
    m.add_argument("--context", help="a conditional run's context values, comma-separated, in the data's units")
    m.add_argument("--temperature", type=float, default=1.0, help="scale the base distribution's spread (below 1: fewer outlying samples), as clayflow sample --temperature")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    m.set_defaults(func=cmd_sample)
    return p


def main(argv=None):
    a = parser().parse_args(argv)
    try:
        return a.func(a)
    except (ValueError, FileNotFoundError, NotImplementedError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
