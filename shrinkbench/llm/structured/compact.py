"""Compaction: the genuinely smaller Hugging Face model a `Plan` describes, and saving it.

`compact(model, plan)` builds a new model with fewer blocks and, per kept block, only the kept
head groups (q, k, v rows and o columns) and MLP channels (gate and up rows, down columns),
copying the kept weights exactly. Its config says the new sizes:

- counts equal in every kept block (depth pruning, uniform width pruning), no compensation
  bias: a plain `LlamaConfig` (`num_hidden_layers`, `num_key_value_heads`,
  `num_attention_heads` = kv x r, `intermediate_size`, `head_dim` stated explicitly) and
  `LlamaForCausalLM`: loads with `AutoModelForCausalLM.from_pretrained(folder)`;
- counts that differ between blocks, or a compensation bias (FLAP): `PrunedLlamaConfig` with per
  block `layer_kv_heads`, `layer_intermediate`, `layer_o_bias`, `layer_down_bias`
  (`hf_pruned_llama.py`, copied into the folder by `save_pretrained`): loads with
  `from_pretrained(folder, trust_remote_code=True)`, still without shrinkbench.

`save(model, folder)` writes `save_pretrained(safe_serialization=True)` into a temporary folder
beside `folder` and renames it into place, so a failure leaves nothing half-written; an
unwritable or non-empty destination is a one-line ConfigError before anything is written.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from shrinkbench.core.errors import ConfigError
from shrinkbench.llm.structured.units import Plan, decoder_blocks, geometry, group_rows


def compact_config(model, plan: Plan):
    """The config of the compacted model (see the module docstring)."""
    from transformers import LlamaConfig

    from shrinkbench.llm.structured.hf_pruned_llama import PrunedLlamaConfig

    geo = geometry(model)
    summary = plan.summary(geo)
    kept = plan.kept_blocks
    data = model.config.to_dict()
    for key in ("architectures", "auto_map", "model_type", "transformers_version", "layer_kv_heads",
                "layer_intermediate", "layer_o_bias", "layer_down_bias", "torch_dtype", "dtype"):
        data.pop(key, None)
    kv, inter = summary["kv_heads"], summary["intermediate"]
    o_bias = [i in plan.attn_bias or decoder_blocks(model)[i].self_attn.o_proj.bias is not None for i in kept]
    down_bias = [i in plan.mlp_bias or decoder_blocks(model)[i].mlp.down_proj.bias is not None for i in kept]
    data.update(num_hidden_layers=len(kept), head_dim=geo.head_dim)
    uniform = len(set(kv)) <= 1 and len(set(inter)) <= 1 and not any(o_bias) and not any(down_bias)
    if uniform and type(model).__name__ == "LlamaForCausalLM":
        data.update(num_key_value_heads=kv[0], num_attention_heads=kv[0] * geo.group_size, intermediate_size=inter[0])
        config = LlamaConfig(**data)
        config.architectures = ["LlamaForCausalLM"]
        return config
    top = max(kv)
    data.update(num_key_value_heads=top, num_attention_heads=top * geo.group_size, intermediate_size=max(inter))
    config = PrunedLlamaConfig(layer_kv_heads=kv, layer_intermediate=inter, layer_o_bias=o_bias,
                               layer_down_bias=down_bias, **data)
    config.architectures = ["PrunedLlamaForCausalLM"]
    return config


@torch.no_grad()
def compact(model, plan: Plan):
    """A new, smaller model with the kept units' weights (see the module docstring)."""
    from transformers import LlamaForCausalLM

    from shrinkbench.llm.structured.hf_pruned_llama import PrunedLlamaForCausalLM

    geo = geometry(model)
    config = compact_config(model, plan)
    config._attn_implementation = model.config._attn_implementation
    cls = LlamaForCausalLM if type(config).__name__ == "LlamaConfig" else PrunedLlamaForCausalLM
    dtype = model.get_input_embeddings().weight.dtype
    small = cls(config).to(dtype)
    old_blocks = decoder_blocks(model)
    state = {}
    for name, tensor in model.state_dict().items():
        if not name.startswith("model.layers."):
            state[name] = tensor
    for new_i, old_i in enumerate(plan.kept_blocks):
        old = old_blocks[old_i]
        groups = plan.kept_groups.get(old_i, torch.arange(geo.kv_heads[old_i]))
        channels = plan.kept_channels.get(old_i, torch.arange(geo.intermediate[old_i]))
        q, kv = group_rows(geo, groups)
        prefix = f"model.layers.{new_i}."
        for name, tensor in old.state_dict().items():
            if name.startswith("self_attn.") and name.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                rows = q if name.split(".")[1] == "q_proj" else kv
                tensor = tensor[rows]
            elif name == "self_attn.o_proj.weight":
                tensor = tensor[:, q]
            elif name.startswith("mlp.") and name.split(".")[1] in ("gate_proj", "up_proj"):
                tensor = tensor[channels]
            elif name == "mlp.down_proj.weight":
                tensor = tensor[:, channels]
            state[prefix + name] = tensor
        if old_i in plan.attn_bias:
            base = state.get(prefix + "self_attn.o_proj.bias")
            state[prefix + "self_attn.o_proj.bias"] = plan.attn_bias[old_i] + (0 if base is None else base)
        if old_i in plan.mlp_bias:
            base = state.get(prefix + "mlp.down_proj.bias")
            state[prefix + "mlp.down_proj.bias"] = plan.mlp_bias[old_i] + (0 if base is None else base)
    missing, unexpected = small.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=False)
    missing = [m for m in missing if m != "lm_head.weight" or not config.tie_word_embeddings]
    if missing or unexpected:
        raise RuntimeError(f"compaction: weights missing {missing[:4]} / unexpected {unexpected[:4]}")
    if config.tie_word_embeddings:
        small.tie_weights()
    small.generation_config = model.generation_config
    return small.eval()


def check_destination(folder: str | Path) -> Path:
    """The destination folder, or a one-line ConfigError: it must not hold files already, and
    its parent must be a writable folder."""
    folder = Path(folder).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(f"cannot save the pruned model into {folder}: it exists and is not an empty folder")
    parent = folder.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot save the pruned model into {folder}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot save the pruned model into {folder}: {parent} is not writable")
    return folder


def save(model, folder: str | Path, tokenizer=None) -> Path:
    """`save_pretrained` as safetensors into `folder`, atomically (see the module docstring)."""
    folder = check_destination(folder)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as exc:
        raise ConfigError(f"cannot save the pruned model into {folder}: {exc.strerror}") from None
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except OSError as exc:
        raise ConfigError(f"cannot save the pruned model into {folder}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
