"""The units of structured pruning of a decoder-only language model, and a plan of what to keep.

Depth: a **block** is one decoder layer (attention and MLP with their norms and residuals).
Removing it makes the block the identity: the residual stream passes on unchanged.

Width, per block:

- an **attention head group** under grouped-query attention (GQA, Ainslie et al. 2023) is one
  key/value head g with the r = heads / kv_heads query heads that read it: rows
  [g*r*d, (g+1)*r*d) of q_proj, rows [g*d, (g+1)*d) of k_proj and v_proj, and the same query
  columns of o_proj (d = head_dim). Removing a query head alone would leave the ratio r uneven
  across key/value heads, which the model's config cannot say, so the group is the unit; with
  plain multi-head attention (r = 1) a group is one head.
- an **MLP channel** j is row j of gate_proj and up_proj with column j of down_proj
  (SwiGLU: down(silu(gate x) * up x)).

A `Plan` says which blocks are removed and, per block, which groups and channels are kept, and
optionally the bias that compensates the removed units (FLAP, An et al. 2024). `apply_mask`
turns a plan into the **masked model**: the same shapes, the removed units' weights zero (a
removed block's o_proj and down_proj zero, which makes it the identity), the compensation as
the bias of o_proj / down_proj. `shrinkbench.llm.structured.compact` builds the genuinely
smaller model; the tests check that both give the same logits.

Supported: the LLaMA architecture (`LlamaForCausalLM`, e.g. SmolLM2, TinyLlama, LLaMA 1-3,
with or without GQA) and the per-layer variant this package writes (`PrunedLlamaForCausalLM`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from shrinkbench.core.errors import ConfigError

SUPPORTED = ("LlamaForCausalLM", "PrunedLlamaForCausalLM")


@dataclass(frozen=True)
class Geometry:
    """The sizes of a model's units, read from its modules (so a compacted model reads true)."""

    hidden: int
    head_dim: int
    group_size: int  # query heads per key/value head (r)
    kv_heads: tuple[int, ...]  # per block
    intermediate: tuple[int, ...]  # per block
    vocab: int

    @property
    def blocks(self) -> int:
        return len(self.kv_heads)

    @property
    def heads(self) -> tuple[int, ...]:
        return tuple(g * self.group_size for g in self.kv_heads)


def check_supported(model) -> None:
    """A one-line ConfigError unless `model` is of an architecture whose blocks are known."""
    name = type(model).__name__
    if name not in SUPPORTED:
        raise ConfigError(f"structured pruning does not recognise the blocks of {name}; supported: "
                          f"{', '.join(SUPPORTED)} (the LLaMA architecture: SmolLM2, TinyLlama, LLaMA 1-3)")


def decoder_blocks(model) -> nn.ModuleList:
    check_supported(model)
    return model.model.layers


def geometry(model) -> Geometry:
    blocks = decoder_blocks(model)
    attn = blocks[0].self_attn
    d = attn.head_dim
    r = attn.num_key_value_groups
    kv = tuple(b.self_attn.k_proj.weight.shape[0] // d for b in blocks)
    inter = tuple(b.mlp.gate_proj.weight.shape[0] for b in blocks)
    return Geometry(hidden=model.config.hidden_size, head_dim=d, group_size=r, kv_heads=kv, intermediate=inter,
                    vocab=model.get_output_embeddings().weight.shape[0])


def group_rows(geo: Geometry, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(query rows, key/value rows) of the given head groups: q rows of heads g*r..g*r+r-1."""
    d, r = geo.head_dim, geo.group_size
    groups = groups.reshape(-1, 1)
    kv = (groups * d + torch.arange(d)).reshape(-1)
    q = (groups * r * d + torch.arange(r * d)).reshape(-1)
    return q, kv


@dataclass
class Plan:
    """What a structured pruning keeps; indices refer to the original model's blocks and units.

    `kept_groups[i]` / `kept_channels[i]`: sorted kept head groups / MLP channels of block i
    (None: all). `attn_bias[i]` / `mlp_bias[i]`: a bias for o_proj / down_proj of block i that
    compensates what was removed (FLAP), or absent."""

    blocks: int
    removed_blocks: tuple[int, ...] = ()
    kept_groups: dict[int, torch.Tensor] = field(default_factory=dict)
    kept_channels: dict[int, torch.Tensor] = field(default_factory=dict)
    attn_bias: dict[int, torch.Tensor] = field(default_factory=dict)
    mlp_bias: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def kept_blocks(self) -> list[int]:
        return [i for i in range(self.blocks) if i not in set(self.removed_blocks)]

    def summary(self, geo: Geometry) -> dict:
        """Per kept block: kept key/value heads and MLP channels (what the compact config says)."""
        kept = self.kept_blocks
        return {"blocks": len(kept), "removed_blocks": list(self.removed_blocks),
                "kv_heads": [len(self.kept_groups[i]) if i in self.kept_groups else geo.kv_heads[i] for i in kept],
                "intermediate": [len(self.kept_channels[i]) if i in self.kept_channels else geo.intermediate[i]
                                 for i in kept]}


def _set_bias(linear: nn.Linear, bias: torch.Tensor) -> None:
    bias = bias.to(linear.weight.dtype)
    if linear.bias is None:
        linear.bias = nn.Parameter(bias.clone())
    else:
        linear.bias.data.add_(bias)


@torch.no_grad()
def apply_mask(model, plan: Plan) -> None:
    """The masked model, in place (see the module docstring)."""
    blocks = decoder_blocks(model)
    geo = geometry(model)
    for i in plan.removed_blocks:
        for linear in (blocks[i].self_attn.o_proj, blocks[i].mlp.down_proj):
            linear.weight.zero_()
            if linear.bias is not None:
                linear.bias.zero_()
    for i, kept in plan.kept_groups.items():
        attn = blocks[i].self_attn
        removed = torch.ones(geo.kv_heads[i], dtype=torch.bool)
        removed[kept] = False
        q, kv = group_rows(geo, torch.nonzero(removed).flatten())
        for linear, rows in ((attn.q_proj, q), (attn.k_proj, kv), (attn.v_proj, kv)):
            linear.weight[rows] = 0
            if linear.bias is not None:
                linear.bias[rows] = 0
        attn.o_proj.weight[:, q] = 0
    for i, kept in plan.kept_channels.items():
        mlp = blocks[i].mlp
        removed = torch.ones(geo.intermediate[i], dtype=torch.bool)
        removed[kept] = False
        for linear in (mlp.gate_proj, mlp.up_proj):
            linear.weight[removed] = 0
            if linear.bias is not None:
                linear.bias[removed] = 0
        mlp.down_proj.weight[:, removed] = 0
    for i, b in plan.attn_bias.items():
        _set_bias(blocks[i].self_attn.o_proj, b)
    for i, b in plan.mlp_bias.items():
        _set_bias(blocks[i].mlp.down_proj, b)
