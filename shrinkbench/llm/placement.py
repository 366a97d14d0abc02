"""Where a language model's weights live and in what number format: dtype and device placement.

- **dtype** (`LLMRunConfig.dtype`): float32 (default), bfloat16 or float16. The model is loaded,
  pruned and evaluated in it; calibration statistics (‖X_j‖², XᵀX) are summed in float64 and
  SparseGPT's Hessian factorised in float64 whatever the dtype, the weights written back in it.
  A dtype is part of the run's identity (except float32) and a confounder for the analysis: a
  float16 and a float32 result are not the same measurement. `check_dtype` runs a small matrix
  product, softmax and RMS norm in that dtype on the device before any run: a device that cannot
  (float16 matrix products on some CPUs) is refused in one line.
- **Placement on a GPU** (`evaluation_placement`): the model is loaded on the CPU; a calibrated
  method prunes it with one block at a time on the GPU (`shrinkbench.llm.engine`, step 4);
  then `accelerate` places it for evaluation with a `device_map` from `infer_auto_device_map`:
  on the GPU as far as it fits (90% of its free memory), the rest on the CPU. On the CPU the
  model simply stays there.
"""
from __future__ import annotations

import torch

from shrinkbench.core.errors import ConfigError


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def check_dtype(name: str, device: torch.device, preset: str | None = None) -> None:
    """A one-line ConfigError if `device` cannot compute a LLaMA block's operations in `name`,
    naming the way out (`--dtype float32`; a suite's `dtype = "float32"` in [run]) and, where the
    dtype is the protocol preset `preset`'s, that choosing another is a recorded change of it."""
    if name == "float32":
        return
    dtype = torch_dtype(name)
    try:
        x = torch.linspace(-1, 1, 64, device=device).reshape(8, 8).to(dtype)
        y = torch.nn.functional.softmax(x @ x.T, dim=-1)
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + 1e-6)
        torch.nn.functional.silu(torch.nn.functional.linear(y, x))
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        whose = f" (the {preset} preset's)" if preset else ""
        change = f"; the record then says {preset} modified: dtype=float32" if preset else ""
        raise ConfigError(f"dtype {name}{whose}: this {device.type} cannot compute in it "
                          f"({' '.join(str(exc).split())[:120]}); use --dtype float32"
                          + (" or bfloat16" if name == "float16" else "")
                          + f' (a suite: dtype = "float32" in [run]){change}') from None


def check_run_dtype(cfg, device: torch.device) -> None:
    """`check_dtype` of an LLM run config's dtype, saying when it is its preset's."""
    preset = cfg.preset
    check_dtype(cfg.dtype, device, preset.name if cfg.dtype == preset.dtype and cfg.dtype != "float32" else None)


def offloads(device: torch.device) -> bool:
    """Whether the model stays on the CPU with one block at a time on `device` while it is
    calibrated (a GPU), instead of moving to it whole."""
    return device.type == "cuda"


def device_map_for(model, gpu: int, gpu_bytes: int) -> dict:
    """accelerate's device map of `model` with `gpu_bytes` on GPU `gpu` and the rest on the CPU,
    a transformer block never split (the model's `_no_split_modules`)."""
    from accelerate import infer_auto_device_map

    return infer_auto_device_map(model, max_memory={gpu: gpu_bytes, "cpu": 1 << 40},
                                 no_split_module_classes=list(getattr(model, "_no_split_modules", None) or []),
                                 dtype=next(model.parameters()).dtype)


def evaluation_placement(model, device: torch.device):
    """The model placed for evaluation: on a GPU through accelerate's device_map (as much as fits
    on it, the rest on the CPU); the device map as {module: device} or None where it was moved whole."""
    if not offloads(device):
        model.to(device)
        return None
    from accelerate import dispatch_model

    index = device.index if device.index is not None else torch.cuda.current_device()
    free, _ = torch.cuda.mem_get_info(index)
    device_map = device_map_for(model, index, int(free * 0.9))
    if set(device_map.values()) == {index}:
        model.to(device)  # it fits: one device, no hooks
    else:
        dispatch_model(model, device_map=device_map)
    return {k: str(v) for k, v in device_map.items()}
