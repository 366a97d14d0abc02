"""Scores of structured units from calibration tokens, and the selection that makes a `Plan`.

All statistics are collected in one pass of the dense model over the calibration windows
(float64 accumulators, every token of every window counted once).

Depth (`DEPTH`), n blocks removed of L:

- `block_influence` (ShortGPT, Men et al. 2024): BI_i = 1 - mean_t cos(x_i,t, x_{i+1},t), x_i the
  block's input hidden state and x_{i+1} its output, over every calibration token; the n blocks
  of lowest BI are removed (ties: the higher index is removed).
- `angular` (Gromov et al. 2024, "The Unreasonable Ineffectiveness of the Deeper Layers"):
  d(l, n) = mean over windows of arccos(cos(x_l,T, x_{l+n},T)) / pi at the window's last token T;
  the contiguous run l..l+n-1 of smallest d is removed (ties: the lowest l).
- `last`: the last n blocks (the naive baseline).

Width, per block i and unit u (a head group G or an MLP channel j, `units.py`); X the input of a
projection over the calibration tokens, W its weight:

- `magnitude`: sum over the unit's weights of |W| (q, k, v rows and o columns; gate and up rows
  and the down column).
- `wanda_sp` (Wanda-sp, An et al. 2024 after Sun et al. 2023): sum over the unit's weights of
  |W_ab| * ||X_b||_2, X_b the b-th input feature of that weight's projection.
- `taylor` (LLM-Pruner's element-wise first order, Ma et al. 2023): sum over the unit's weights of
  |W_ab * dL/dW_ab|, L the mean next-token loss over the calibration windows.
- `flap` (An et al. 2024, "Fluctuation-based Adaptive Structured Pruning"): for each input
  channel b of o_proj / down_proj, S_b = Var_t(X_b) * ||W_:,b||_2^2 (sample variance over tokens),
  summed over a head group's channels. Removed channels are compensated by the bias
  B = W_:,removed @ mean_t(X_removed), added to o_proj / down_proj, so the block's mean output is
  kept. With global allocation FLAP's scores are standardised within each block and unit kind
  ((S - mean) / std), its adaptive structure search.
- `random`: uniform scores from the run seed's generator (the control).

Selection (`select_width`): `uniform` keeps the same count in every block (top-k per block, ties
to the lower index); `global` ranks each unit kind over all blocks at once (one threshold), every
block keeping at least one head group and one channel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.registry import Registry
from shrinkbench.core.selection import top_k_mask
from shrinkbench.llm.structured.units import Geometry, Plan, decoder_blocks, geometry, group_rows

DEPTH: Registry = Registry("depth criterion")
WIDTH: Registry = Registry("width criterion")
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class Moments:
    """Per input feature of one projection: token count, sum, sum of squares (float64)."""

    count: int = 0
    total: torch.Tensor | None = None
    squares: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).double()
        s, q = x.sum(0), (x * x).sum(0)
        self.total = s if self.total is None else self.total + s
        self.squares = q if self.squares is None else self.squares + q
        self.count += x.shape[0]

    @property
    def norm(self) -> torch.Tensor:
        return self.squares.sqrt()

    @property
    def mean(self) -> torch.Tensor:
        return self.total / self.count

    @property
    def variance(self) -> torch.Tensor:
        return (self.squares - self.count * self.mean ** 2).clamp_min(0) / max(self.count - 1, 1)


@dataclass
class Calibration:
    """What one pass over the calibration windows saw."""

    block_cos: list[float] = field(default_factory=list)  # mean over tokens of cos(in, out), per block
    hidden_last: list[torch.Tensor] = field(default_factory=list)  # (L+1) x windows x hidden, last token
    inputs: dict[tuple[int, str], Moments] = field(default_factory=dict)  # (block, projection) -> moments
    grads: dict[tuple[int, str], torch.Tensor] | None = None  # (block, projection) -> dL/dW


def calibrate(model, batches: list[torch.Tensor], gradients: bool = False) -> Calibration:
    """Hidden states around every block and input moments of every projection, from `batches`
    of token ids; with `gradients`, dL/dW of every projection for the mean loss over all windows."""
    blocks = decoder_blocks(model)
    cal = Calibration(inputs={(i, p): Moments() for i in range(len(blocks)) for p in PROJECTIONS})
    cos_sum = [0.0] * len(blocks)
    tokens = 0
    last: list[list[torch.Tensor]] = [[] for _ in range(len(blocks) + 1)]
    hooks = []

    def block_hook(i):
        def hook(module, args, kwargs, out):
            x_in = (args[0] if args else kwargs["hidden_states"]).detach().double()
            x_out = (out[0] if isinstance(out, tuple) else out).detach().double()
            cos_sum[i] += float(torch.nn.functional.cosine_similarity(x_in, x_out, dim=-1).sum())
            if i == 0:
                last[0].append(x_in[:, -1])
            last[i + 1].append(x_out[:, -1])
        return hook

    for i, block in enumerate(blocks):
        hooks.append(block.register_forward_hook(block_hook(i), with_kwargs=True))
        for p in PROJECTIONS:
            module = block.self_attn if p in PROJECTIONS[:4] else block.mlp
            moments = cal.inputs[(i, p)]
            hooks.append(getattr(module, p).register_forward_pre_hook(lambda m, a, mo=moments: mo.add(a[0])))
    params = {(i, p): getattr(block.self_attn if p in PROJECTIONS[:4] else block.mlp, p).weight
              for i, block in enumerate(blocks) for p in PROJECTIONS}
    windows = sum(b.shape[0] for b in batches)
    try:
        if gradients:
            model.zero_grad(set_to_none=True)
        for ids in batches:
            with torch.set_grad_enabled(gradients):
                out = model(input_ids=ids, labels=ids if gradients else None, use_cache=False)
                if gradients:
                    (out.loss * ids.shape[0] / windows).backward()
            tokens += ids.numel()
        if gradients:
            cal.grads = {k: w.grad.detach().double().clone() for k, w in params.items()}
    finally:
        for h in hooks:
            h.remove()
        if gradients:
            model.zero_grad(set_to_none=True)
    cal.block_cos = [c / tokens for c in cos_sum]
    cal.hidden_last = [torch.cat(x) for x in last]
    return cal


# ------------------------------------------------------------------ depth
def check_depth(n: int, blocks: int) -> None:
    if not 1 <= n <= blocks - 1:
        raise ConfigError(f"cannot remove {n} of {blocks} blocks: remove between 1 and {blocks - 1} "
                          f"(the model keeps at least one block)")


@DEPTH.decorator("block_influence")
def block_influence(cal: Calibration, n: int) -> tuple[int, ...]:
    """Removes the n blocks of lowest 1 - mean cos(input, output) (ShortGPT, Men et al. 2024)."""
    bi = torch.tensor([1 - c for c in cal.block_cos], dtype=torch.float64)
    keep = top_k_mask(bi, len(bi) - n)  # ties keep the lower index
    return tuple(int(i) for i in torch.nonzero(~keep).flatten())


def angular_distances(cal: Calibration, n: int) -> torch.Tensor:
    """d(l, n) for l = 0..L-n (see the module docstring)."""
    h = cal.hidden_last
    out = []
    for start in range(len(h) - n):
        cos = torch.nn.functional.cosine_similarity(h[start], h[start + n], dim=-1).clamp(-1, 1)
        out.append(float((torch.arccos(cos) / math.pi).mean()))
    return torch.tensor(out, dtype=torch.float64)


@DEPTH.decorator("angular")
def angular(cal: Calibration, n: int) -> tuple[int, ...]:
    """Removes the n consecutive blocks of smallest angular distance (Gromov et al. 2024)."""
    start = int(torch.argmin(angular_distances(cal, n)))  # the first minimum: ties to the lowest l
    return tuple(range(start, start + n))


@DEPTH.decorator("last")
def last_blocks(cal: Calibration | None, n: int, blocks: int | None = None) -> tuple[int, ...]:
    """Removes the last n blocks (the naive baseline)."""
    total = blocks if blocks is not None else len(cal.block_cos)
    return tuple(range(total - n, total))


# ------------------------------------------------------------------ width
def _weights(block):
    a, m = block.self_attn, block.mlp
    return {p: getattr(a if p in PROJECTIONS[:4] else m, p).weight.detach().double() for p in PROJECTIONS}


def _group_sum(geo: Geometry, per_q: torch.Tensor, per_kv: torch.Tensor, groups: int) -> torch.Tensor:
    """Per head group: the sum of per-row (or per-column) values over its q rows and kv rows."""
    q = per_q.reshape(groups, geo.group_size * geo.head_dim).sum(1)
    kv = per_kv.reshape(groups, geo.head_dim).sum(1) if per_kv is not None else 0
    return q + kv


def _unit_scores(elementwise: dict[str, torch.Tensor], geo: Geometry, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(head group scores, channel scores) from a per-weight score of every projection."""
    e = elementwise
    per_q = e["q_proj"].sum(1) + e["o_proj"].sum(0)
    per_kv = e["k_proj"].sum(1) + e["v_proj"].sum(1)
    channels = e["gate_proj"].sum(1) + e["up_proj"].sum(1) + e["down_proj"].sum(0)
    return _group_sum(geo, per_q, per_kv, groups), channels


@WIDTH.decorator("magnitude")
def magnitude(model, cal, geo, i, gen):
    """score = sum of |W| over the unit's weights."""
    w = _weights(decoder_blocks(model)[i])
    return _unit_scores({p: v.abs() for p, v in w.items()}, geo, geo.kv_heads[i])


@WIDTH.decorator("wanda_sp")
def wanda_sp(model, cal, geo, i, gen):
    """score = sum of |W_ab| * ||X_b||_2 over the unit's weights (Wanda-sp, An et al. 2024)."""
    w = _weights(decoder_blocks(model)[i])
    return _unit_scores({p: v.abs() * cal.inputs[(i, p)].norm.reshape(1, -1) for p, v in w.items()},
                        geo, geo.kv_heads[i])


@WIDTH.decorator("taylor")
def taylor(model, cal, geo, i, gen):
    """score = sum of |W * dL/dW| over the unit's weights (LLM-Pruner element-wise, Ma et al. 2023)."""
    w = _weights(decoder_blocks(model)[i])
    return _unit_scores({p: (v * cal.grads[(i, p)]).abs() for p, v in w.items()}, geo, geo.kv_heads[i])


@WIDTH.decorator("flap")
def flap(model, cal, geo, i, gen):
    """score = Var(X_b) * ||W_:,b||^2 of o/down inputs, with bias compensation (FLAP, An et al. 2024)."""
    w = _weights(decoder_blocks(model)[i])
    o = cal.inputs[(i, "o_proj")].variance * (w["o_proj"] ** 2).sum(0)
    down = cal.inputs[(i, "down_proj")].variance * (w["down_proj"] ** 2).sum(0)
    return _group_sum(geo, o, None, geo.kv_heads[i]), down


@WIDTH.decorator("random")
def random_scores(model, cal, geo, i, gen):
    """score = uniform random from the run seed (the control)."""
    return (torch.rand(geo.kv_heads[i], generator=gen, dtype=torch.float64),
            torch.rand(geo.intermediate[i], generator=gen, dtype=torch.float64))


NEEDS = {"magnitude": (), "random": (), "wanda_sp": ("inputs",), "flap": ("inputs",), "taylor": ("gradients",)}
"""What each width criterion needs from the calibration pass (the rest need none)."""


def _counts(total: int, fraction: float, what: str, minimum: int = 1) -> int:
    keep = total - round(fraction * total)
    if keep < minimum or keep >= total:
        most = (total - minimum) / total
        raise ConfigError(f"removing {fraction:g} of {total} {what} is unreachable: it would remove "
                          f"{total - keep} (whole units only); reachable fractions lie between {0.5 / total:.4g} "
                          f"and {most:.4g} (at most {total - minimum} removed)")
    return keep


def select_width(scores: list[tuple[torch.Tensor, torch.Tensor]], geo: Geometry, heads: float, channels: float,
                 allocation: str, standardise: bool = False) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """(kept groups, kept channels) per block at the given removed fractions (0: none removed)."""
    kept: list[dict[int, torch.Tensor]] = [{}, {}]
    for kind, (fraction, sizes, what) in enumerate(((heads, geo.kv_heads, "attention head groups"),
                                                   (channels, geo.intermediate, "MLP channels"))):
        if fraction == 0:
            continue
        per_block = [s[kind] for s in scores]
        if allocation == "uniform":
            for i, s in enumerate(per_block):
                k = _counts(sizes[i], fraction, f"{what} of block {i}")
                kept[kind][i] = torch.nonzero(top_k_mask(s, k)).flatten()
            continue
        if standardise:
            per_block = [(s - s.mean()) / s.std().clamp_min(1e-30) if s.numel() > 1 else s * 0 for s in per_block]
        total = sum(sizes)
        k = _counts(total, fraction, what, minimum=len(sizes))
        # every block keeps its best unit; the rest of the budget goes by one global ranking
        best = [int(torch.argmax(s)) for s in per_block]
        flat = torch.cat([s.clone() for s in per_block])
        offsets = [0]
        for n in sizes:
            offsets.append(offsets[-1] + n)
        forced = torch.zeros(total, dtype=torch.bool)
        for i, b in enumerate(best):
            forced[offsets[i] + b] = True
        flat[forced] = float("inf")
        keep = top_k_mask(flat, k)
        for i in range(len(sizes)):
            kept[kind][i] = torch.nonzero(keep[offsets[i]: offsets[i + 1]]).flatten()
    return kept[0], kept[1]


def flap_compensation(model, cal: Calibration, geo: Geometry, plan: Plan) -> None:
    """B = W_:,removed @ mean_t(X_removed) for o_proj and down_proj of every pruned block."""
    for i, block in enumerate(decoder_blocks(model)):
        w = _weights(block)
        if i in plan.kept_groups:
            removed = torch.ones(geo.kv_heads[i], dtype=torch.bool)
            removed[plan.kept_groups[i]] = False
            q, _ = group_rows(geo, torch.nonzero(removed).flatten())
            plan.attn_bias[i] = (w["o_proj"][:, q] @ cal.inputs[(i, "o_proj")].mean[q]).float()
        if i in plan.kept_channels:
            removed = torch.ones(geo.intermediate[i], dtype=torch.bool)
            removed[plan.kept_channels[i]] = False
            plan.mlp_bias[i] = (w["down_proj"][:, removed] @ cal.inputs[(i, "down_proj")].mean[removed]).float()
