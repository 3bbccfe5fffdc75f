"""clayflow-torch: clayflow's flows as torch.nn.Modules, on clayflow's run directories.

    from clayflow_torch import load_run, build_flow
    run = load_run("runs/table")              # config.json + weights.safetensors
    logp = run.flow.log_prob(x)               # x standardised as run.preprocessing says

Every parameter (and batch-norm running statistic, a buffer) is named by its clayflow leaf
path (`bijector.0.net.layers.0.w`), so a state dict maps one to one onto the safetensors
tensors `params/<leaf path>` (docs/CHECKPOINTS.md in the clayflow repository).
"""
from .models import build_flow, resolve_config, Flow
from .runs import load_run, save_run, Run
from .safetensors import read_safetensors, write_safetensors

__all__ = ["build_flow", "resolve_config", "Flow", "load_run", "save_run", "Run", "read_safetensors", "write_safetensors"]
