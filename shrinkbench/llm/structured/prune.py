"""One structured pruning of a language model: a `StructuredSpec` -> a `Plan`.

`StructuredSpec(unit, amount, criterion, allocation)`:

- `unit`: `blocks` (depth), `heads` (attention head groups), `channels` (MLP channels) or `width`
  (head groups and channels, each at `amount`);
- `amount`: the fraction of the units removed, 0 < amount < 1 (whole units: blocks
  round(amount * L), head groups round(amount * groups) per block); or, for `blocks` and
  `heads`, a whole count >= 1: blocks removed, or query heads removed per block, which must be
  a multiple of the GQA group size (query heads per key/value head);
- `criterion`: a depth criterion (`block_influence`, `angular`, `last`) for blocks, a width
  criterion (`magnitude`, `wanda_sp`, `taylor`, `flap`, `random`) otherwise
  (`shrinkbench.llm.structured.scoring`);
- `allocation` (width): `uniform` (the same count in every block) or `global`; `compensate`
  (width): FLAP's bias compensation, on by default for `flap` only.

Bad requests are one-line ConfigErrors that say what is reachable.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from shrinkbench.core.errors import ConfigError
from shrinkbench.llm.structured import scoring
from shrinkbench.llm.structured.units import Plan, geometry

UNITS = ("blocks", "heads", "channels", "width")
ALLOCATIONS = ("uniform", "global")


@dataclass(frozen=True)
class StructuredSpec:
    unit: str
    amount: float
    criterion: str
    allocation: str = "uniform"
    compensate: bool | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"unknown structured unit {self.unit!r}; choose one of {', '.join(UNITS)}")
        registry = scoring.DEPTH if self.unit == "blocks" else scoring.WIDTH
        registry.canonical(self.criterion)  # a one-line error with close names
        if self.allocation not in ALLOCATIONS:
            raise ConfigError(f"unknown allocation {self.allocation!r}; choose one of {', '.join(ALLOCATIONS)}")
        whole = float(self.amount).is_integer() and self.amount >= 1
        if not (0 < self.amount < 1 or (whole and self.unit in ("blocks", "heads"))):
            raise ConfigError(f"amount {self.amount!r}: a fraction of the {self.unit} removed, strictly between 0 "
                              f"and 1" + (", or a whole count >= 1" if self.unit in ("blocks", "heads") else ""))
        if whole and self.unit == "heads" and self.allocation != "uniform":
            raise ConfigError("a count of heads removed per block needs allocation 'uniform'; give a fraction "
                              "for 'global'")
        if self.unit == "blocks" and (self.allocation != "uniform" or self.compensate):
            raise ConfigError("allocation and compensate are width settings; depth pruning removes whole blocks")
        if self.compensate is None:
            object.__setattr__(self, "compensate", self.unit != "blocks" and self.criterion == "flap")

    @property
    def needs_calibration(self) -> bool:
        if self.unit == "blocks":
            return self.criterion != "last"
        return bool(scoring.NEEDS[self.criterion]) or bool(self.compensate)


def blocks_removed(spec: StructuredSpec, blocks: int) -> int:
    n = int(spec.amount) if spec.amount >= 1 else round(spec.amount * blocks)
    scoring.check_depth(n, blocks)
    return n


def head_fraction(spec: StructuredSpec, geo) -> float:
    """The fraction of head groups removed; a count of query heads must fill whole GQA groups."""
    if spec.amount < 1:
        return spec.amount
    heads, r = int(spec.amount), geo.group_size
    per_block = max(geo.heads)
    if heads % r:
        raise ConfigError(f"removing {heads} query heads per block breaks grouped-query attention: "
                          f"{r} query heads share each key/value head, so remove a multiple of {r} "
                          f"(at most {per_block - r} of {per_block})")
    if not 1 <= heads // r <= min(geo.kv_heads) - 1:
        raise ConfigError(f"cannot remove {heads} of {per_block} query heads per block: at most "
                          f"{(min(geo.kv_heads) - 1) * r} (one group of {r} is kept)")
    return (heads // r) / min(geo.kv_heads)


def structured_plan(model, spec: StructuredSpec, batches: list[torch.Tensor] | None, seed: int = 0) -> Plan:
    """The plan `spec` gives for `model` on the calibration `batches` (token id tensors)."""
    from shrinkbench.core.seeds import generator

    geo = geometry(model)
    plan = Plan(geo.blocks)
    if spec.needs_calibration and not batches:
        raise ConfigError(f"criterion {spec.criterion!r} needs calibration windows")
    grads = spec.unit != "blocks" and "gradients" in scoring.NEEDS[spec.criterion]
    cal = scoring.calibrate(model, batches, gradients=grads) if spec.needs_calibration else None
    if spec.unit == "blocks":
        n = blocks_removed(spec, geo.blocks)
        criterion = scoring.DEPTH.get(spec.criterion)
        removed = criterion(cal, n, geo.blocks) if spec.criterion == "last" else criterion(cal, n)
        plan.removed_blocks = tuple(sorted(removed))
        return plan
    heads = head_fraction(spec, geo) if spec.unit in ("heads", "width") else 0.0
    channels = spec.amount if spec.unit in ("channels", "width") else 0.0
    score = scoring.WIDTH.get(spec.criterion)
    gen = generator(seed, "structured")
    scores = [score(model, cal, geo, i, gen) for i in range(geo.blocks)]
    plan.kept_groups, plan.kept_channels = scoring.select_width(
        scores, geo, heads, channels, spec.allocation, standardise=spec.criterion == "flap")
    if spec.compensate:
        scoring.flap_compensation(model, cal, geo, plan)
    return plan


def check_run_settings(cfg) -> str | None:
    """A structured LLM run's settings checked (one-line ConfigErrors); returns its scope (the
    allocation: `uniform` by default for width units, None for blocks)."""
    if cfg.unit not in UNITS:
        raise ConfigError(f"unknown unit {cfg.unit!r}; choose weight or one of {', '.join(UNITS)}")
    if cfg.pattern != "unstructured":
        raise ConfigError(f"pattern {cfg.pattern} is a weight pattern; unit {cfg.unit} removes whole units")
    if cfg.finetune_steps or cfg.exclude or cfg.strategy_params:
        raise ConfigError(f"unit {cfg.unit}: finetune_steps, exclude and strategy_params are weight-pruning "
                          f"settings that structured runs do not offer yet")
    if cfg.unit == "blocks":
        if cfg.scope is not None:
            raise ConfigError(f"unit blocks removes whole blocks: scope {cfg.scope!r} does not apply")
        scope = None
    else:
        scope = cfg.scope or "uniform"
    StructuredSpec(cfg.unit, cfg.sparsity, cfg.strategy, scope or "uniform")
    return scope


def spec_of(cfg) -> StructuredSpec:
    return StructuredSpec(cfg.unit, cfg.sparsity, cfg.strategy, cfg.scope or "uniform")


def check_reachable(cfg, source, model_sha256: str) -> None:
    """Before a run: the model's family is supported and its units can reach `cfg.sparsity`
    (read from its config, without loading the weights); a `save_to` folder can be written."""
    from transformers import AutoConfig

    from shrinkbench.llm.structured.units import SUPPORTED, Geometry

    if cfg.save_to:
        from shrinkbench.llm.structured.compact import check_destination

        check_destination(cfg.save_to)
    if source.kind == "gguf":
        from shrinkbench.llm.models import _dequantized_folder

        where = _dequantized_folder(source, model_sha256)
    else:
        where = source.location
    hf = AutoConfig.from_pretrained(where, local_files_only=True, trust_remote_code=False)
    by_type = {"llama": "LlamaForCausalLM", "pruned_llama": "PrunedLlamaForCausalLM"}  # a config without architectures
    family = (getattr(hf, "architectures", None) or [by_type.get(hf.model_type, type(hf).__name__)])[0]
    if family not in SUPPORTED:
        raise ConfigError(f"structured pruning does not recognise the blocks of {family}; supported: "
                          f"{', '.join(SUPPORTED)} (the LLaMA architecture: SmolLM2, TinyLlama, LLaMA 1-3)")
    layers = hf.num_hidden_layers
    kv = getattr(hf, "layer_kv_heads", None) or [hf.num_key_value_heads] * layers
    inter = getattr(hf, "layer_intermediate", None) or [hf.intermediate_size] * layers
    geo = Geometry(hidden=hf.hidden_size, head_dim=hf.head_dim, group_size=hf.num_attention_heads //
                   hf.num_key_value_heads, kv_heads=tuple(kv), intermediate=tuple(inter), vocab=hf.vocab_size)
    spec = spec_of(cfg)
    if spec.unit == "blocks":
        blocks_removed(spec, layers)
        return
    fraction = head_fraction(spec, geo) if spec.unit in ("heads", "width") else 0.0
    fake = [(torch.zeros(k, dtype=torch.float64), torch.zeros(c, dtype=torch.float64)) for k, c in zip(kv, inter)]
    scoring.select_width(fake, geo, fraction, spec.amount if spec.unit in ("channels", "width") else 0.0,
                         spec.allocation)
