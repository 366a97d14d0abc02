"""Saving the pruned model beside its record (`--save-pruned`), and loading it back.

`<store>/pruned/<run_id>.pt` holds the deployed model's state dict (the compacted one for
channel runs, the masked one otherwise; read with `torch.load(..., weights_only=True)`) and
`<run_id>.json` what rebuilds its architecture: the zoo model, its exclusions and, for a
channel run, the removed dependency groups. Both are written atomically, the weights first,
so a kill leaves either nothing or a complete pair (a weights file without its description
is ignored and overwritten by the next run).

    model = load_pruned("results", run_id)    # the architecture rebuilt, the weights loaded
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from torch import nn

from shrinkbench.core.errors import CheckpointError
from shrinkbench.core.store import Store, temporary_path, write_json_atomic


def pruned_paths(store: Store, run_id: str) -> tuple[Path, Path]:
    folder = store.root / "pruned"
    return folder / f"{run_id}.pt", folder / f"{run_id}.json"


def save_pruned_model(store: Store, cfg, deployed: nn.Module, masks) -> str:
    """Write the deployed model of run `cfg` (see the module docstring); returns its path."""
    weights, description = pruned_paths(store, cfg.run_id)
    weights.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in deployed.state_dict().items()}, buffer)
    tmp = temporary_path(weights)
    try:
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(weights)
    finally:
        tmp.unlink(missing_ok=True)
    structure = getattr(masks, "structure", None)
    write_json_atomic(description, {
        "run_id": cfg.run_id, "model": cfg.model, "granularity": cfg.granularity,
        "exclude": list(cfg.exclude) if cfg.exclude is not None else None,
        "removed_groups": list(structure[1]) if structure else None,
        "compacted": structure is not None,
    })
    return str(weights)


def load_pruned(store: str | Path, run_id: str) -> nn.Module:
    """The deployed model of a run saved with `--save-pruned`: the architecture rebuilt from
    the zoo (and, for a channel run, compacted by the saved groups), the weights loaded."""
    from shrinkbench.vision.bases import read_state_dict
    from shrinkbench.vision.models import create_model, model_spec

    weights, description = pruned_paths(Store(store), run_id)
    try:
        info = json.loads(description.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"no saved pruned model for run {run_id} in {store} ({exc})") from None
    spec = model_spec(info["model"])
    model = create_model(info["model"])
    if info.get("compacted"):
        from shrinkbench.vision.structured.compact import compact
        from shrinkbench.vision.structured.graph import dependency_groups

        excluded = spec.excluded if info.get("exclude") is None else tuple(info["exclude"])
        groups = dependency_groups(model, spec.input_shape, excluded)
        model = compact(model, groups, info["removed_groups"])
    model.load_state_dict(read_state_dict(weights, model, "saved pruned model"))
    return model
