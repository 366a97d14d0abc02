"""Frozen, validated run configurations; a run's identity is the hash of its canonical form.

A `RunConfig` says everything that determines a run's numbers: model, dataset, strategy
(with its parameters and, for a user's strategy, the sha256 of its source file), target
compression, run seed, the base model (its own training config and seed, or a
checkpoint by content hash), fine-tuning budget, optimizer and schedule, the pruning
schedule, the data split and the measurement settings. Where the files live (data root,
checkpoint path) and which device runs it are not part of the identity; they are recorded
as provenance.

`RunConfig.run_id` = the first 20 hex digits of sha256 over the canonical JSON (sorted
keys, CONFIG_SCHEMA included) of `identity()`. Re-running the same config finds its record.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

from shrinkbench.core.configs import check as _check, build, digest, jsonable as _jsonable
from shrinkbench.core.params import Params

CONFIG_SCHEMA = 1
DENSE = "none"
TARGETS = ("compression", "speedup", "sparsity")
OPTIMIZERS = ("sgd", "adam", "adamw")
LR_SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained (base training) or fine-tuned (after pruning).

    lr_schedule: `constant`; `cosine` (per step, from lr to 0 over the whole budget);
    `step` (x0.1 at 50% and 75% of the budget).
    """

    epochs: int = 1
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 128
    lr_schedule: str = "cosine"
    augment: bool = True

    def __post_init__(self) -> None:
        _check(self.epochs >= 0, f"epochs must be >= 0, got {self.epochs}")
        _check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        _check(math.isfinite(self.lr) and self.lr >= 0, f"lr must be a finite number >= 0, got {self.lr}")
        _check(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr_schedule in LR_SCHEDULES,
               f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")


@dataclass(frozen=True)
class BaseConfig:
    """The starting model: trained by the toolkit from `train` and `seed`, or loaded from
    `checkpoint` (a state-dict file; its sha256 becomes part of the identity)."""

    seed: int = 0
    train: TrainConfig = TrainConfig(epochs=10, lr=0.1)
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None


@dataclass(frozen=True)
class DataConfig:
    """Which split protocol: `val_size` examples held out of the official training split
    with `split_seed` (None = the dataset's default size). `train_size` (None = all) keeps
    only that many training examples, chosen by `split_seed`, to scale an experiment down;
    validation and test stay whole. `root` and `download` only say where to find the files."""

    val_size: int | None = None
    split_seed: int = 0
    train_size: int | None = None
    root: str | None = None
    download: bool = False

    def __post_init__(self) -> None:
        _check(self.val_size is None or self.val_size >= 0, f"val_size must be >= 0, got {self.val_size}")
        _check(self.train_size is None or self.train_size >= 1, f"train_size must be >= 1, got {self.train_size}")


@dataclass(frozen=True)
class MeasureConfig:
    """Evaluation batch size and latency settings (latency only at stage `post`)."""

    eval_batch_size: int = 1000
    latency: bool = True
    latency_batch_sizes: tuple[int, ...] = (1, 64)
    latency_warmup: int = 5
    latency_repeats: int = 30

    def __post_init__(self) -> None:
        _check(self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        _check(all(b >= 1 for b in self.latency_batch_sizes) and len(self.latency_batch_sizes) > 0,
               f"latency_batch_sizes must be positive integers, got {self.latency_batch_sizes}")
        _check(self.latency_repeats >= 3, f"latency_repeats must be >= 3, got {self.latency_repeats}")
        _check(self.latency_warmup >= 0, f"latency_warmup must be >= 0, got {self.latency_warmup}")


SCHEDULES = ("one_shot", "gradual", "weight_rewinding", "lr_rewinding")
WHENS = ("after_training", "at_init")
CONTROLS = ("layerwise_shuffle", "reinit", "invert", "from_scratch")


@dataclass(frozen=True)
class ScheduleConfig:
    """When pruning happens during training, and what training follows (`shrinkbench.vision.plans`).

    - `one_shot`: prune in `RunConfig.prune_steps` steps (1 = one-shot), fine-tuning after
      each: `finetune.epochs` per step, or, with `split_budget`, the fine-tuning budget split
      over the steps (a fixed total, the budget of one-shot pruning).
    - `gradual` (Zhu & Gupta 2017): prune during fine-tuning, every `every` optimizer steps
      from `start` to `end` (fractions of the fine-tuning budget), to the cubic sparsity
      s_t = s_f (1 - (1 - (t - t0) / (t1 - t0))^3).
    - `weight_rewinding` (Frankle et al. 2020): iterative magnitude pruning in `prune_steps`
      steps; after each, the weights left are rewound to their values at epoch
      `rewind_epoch` of base training and retrained with the base recipe from that epoch on.
    - `lr_rewinding` (Renda et al. 2020): the same, but the weights are kept and only the
      learning-rate schedule is rewound to epoch `rewind_epoch` of base training.
    """

    kind: str = "one_shot"
    split_budget: bool = False
    start: float = 0.0
    end: float = 0.75
    every: int = 10
    rewind_epoch: int | None = None

    def __post_init__(self) -> None:
        _check(self.kind in SCHEDULES, f"schedule.kind must be one of {', '.join(SCHEDULES)}, got {self.kind!r}")
        _check(0.0 <= self.start < self.end <= 1.0,
               f"schedule.start and schedule.end are fractions of the fine-tuning budget with 0 <= start < end <= 1, "
               f"got {self.start} and {self.end}")
        _check(self.every >= 1, f"schedule.every must be >= 1 optimizer steps, got {self.every}")
        rewinds = self.kind in ("weight_rewinding", "lr_rewinding")
        _check(not rewinds or (self.rewind_epoch is not None and self.rewind_epoch >= 0),
               f"schedule {self.kind} needs schedule.rewind_epoch (an epoch of base training, >= 0)")
        _check(rewinds or self.rewind_epoch is None,
               f"schedule.rewind_epoch belongs to weight_rewinding or lr_rewinding, not {self.kind}")


@dataclass(frozen=True)
class RunConfig:
    """One run: base model -> prune (in `prune_steps` steps) -> fine-tune -> evaluate.

    `granularity` is what one unit of selection is (`weight`, `channel` or `N:M`, see
    `shrinkbench.vision.pruning.granularity`); `target` says what `compression` is the value of:
    `compression` (params / nonzero params, >= 1), `speedup` (dense MACs / nonzero MACs,
    >= 1) or `sparsity` (the fraction of prunable weights removed, in [0, 1)).
    With `prune_steps` = k > 1 the run prunes to value**(j/k) at step j = 1..k (sparsity:
    1 - (1 - value)**(j/k)) and fine-tunes `finetune.epochs` epochs after every step
    (total budget k x epochs).
    A target of nothing (compression 1, speedup 1, sparsity 0) is the dense model: its
    strategy is always `none`, and it is one run whatever granularity or target named it.
    `amp` (float16 mixed precision on CUDA) and `deterministic` (deterministic kernels,
    no cuDNN benchmarking) change a GPU run's numbers, so both are part of the identity
    and of the base model's; see `shrinkbench.core.device`.
    Names are checked and canonicalised by `shrinkbench.vision.validate.validate_config`.
    """

    model: str
    dataset: str
    strategy: str
    compression: float
    seed: int = 0
    base: BaseConfig = BaseConfig()
    finetune: TrainConfig = TrainConfig()
    prune_steps: int = 1
    score_batches: int = 1
    score_batch_size: int = 128
    exclude: tuple[str, ...] | None = None
    data: DataConfig = DataConfig()
    measure: MeasureConfig = MeasureConfig()
    amp: bool = False
    deterministic: bool = True
    threads: int | None = None
    """torch's intra-op threads the run computes with on the CPU: part of the identity, because
    the thread count changes how matrix kernels split their sums and so the numbers in the last
    bits. The sweep pins it to the count each run will use (`shrinkbench.core.sweep.pin_threads`);
    None: not pinned (records written before it was), the run uses the process's count."""
    strategy_params: Params = Params()
    strategy_sha256: str | None = None
    strategy_label: str | None = None
    granularity: str = "weight"
    round_to: int = 1
    """Channel granularity only: every pruned layer keeps a multiple of this many channels
    (Torch-Pruning's `round_to`; `shrinkbench.vision.structured.select`). 1: counts as the
    exact-target selection gives them; left out of the identity at 1."""
    target: str = "compression"
    when: str = "after_training"
    control: str | None = None
    schedule: ScheduleConfig = ScheduleConfig()

    def __post_init__(self) -> None:
        _check(isinstance(self.compression, (int, float)) and math.isfinite(self.compression),
               f"compression must be a number, got {self.compression!r}")
        _check(self.target in TARGETS, f"target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.target == "sparsity":
            _check(0 <= self.compression < 1, f"a sparsity target must be in [0, 1) (the fraction of prunable "
                                              f"weights removed), got {self.compression}")
        else:
            what = "params / nonzero params" if self.target == "compression" else "dense MACs / nonzero MACs"
            _check(self.compression >= 1, f"{self.target} must be >= 1 ({what}), got {self.compression}")
        if self.compression == (0.0 if self.target == "sparsity" else 1.0):  # nothing pruned: the dense run
            object.__setattr__(self, "compression", 1.0)
            object.__setattr__(self, "target", "compression")
            object.__setattr__(self, "granularity", "weight")
            object.__setattr__(self, "round_to", 1)
        _check(isinstance(self.round_to, int) and not isinstance(self.round_to, bool) and self.round_to >= 1,
               f"round_to must be a whole number >= 1 (channels), got {self.round_to!r}")
        _check(self.round_to == 1 or self.granularity == "channel",
               f"round_to {self.round_to} rounds the kept channels of each layer; it needs granularity channel, "
               f"not {self.granularity!r}")
        _check(self.prune_steps >= 1, f"prune_steps must be >= 1, got {self.prune_steps}")
        _check(self.when in WHENS, f"when must be one of {', '.join(WHENS)}, got {self.when!r}")
        _check(self.control is None or self.control in CONTROLS,
               f"control must be one of {', '.join(CONTROLS)} (or none), got {self.control!r}")
        if self.when == "at_init":
            _check(self.schedule.kind == "one_shot", f"pruning at initialisation trains once, from the pruned "
                                                     f"initial weights; schedule {self.schedule.kind!r} does not apply")
        _check(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
               f"threads must be a whole number >= 1, got {self.threads!r}")
        _check(self.score_batches >= 1 and self.score_batch_size >= 1,
               "score_batches and score_batch_size must be >= 1")
        object.__setattr__(self, "compression", float(self.compression))
        _check(isinstance(self.strategy_params, Params),
               f"strategy_params must be a table of name = value, got {self.strategy_params!r}")
        _check(self.strategy_label is None or (isinstance(self.strategy_label, str) and self.strategy_label.strip()
                                               and ":" not in self.strategy_label),
               f"strategy label must be a non-empty name without ':', got {self.strategy_label!r}")
        if self.compression == 1.0:  # the dense model: one run, whatever strategy was asked for
            object.__setattr__(self, "strategy", DENSE)
            object.__setattr__(self, "prune_steps", 1)
            object.__setattr__(self, "strategy_params", Params())
            object.__setattr__(self, "strategy_sha256", None)
            object.__setattr__(self, "strategy_label", None)
            object.__setattr__(self, "when", "after_training")
            object.__setattr__(self, "control", None)
            object.__setattr__(self, "schedule", ScheduleConfig())

    @property
    def is_dense(self) -> bool:
        return self.strategy == DENSE

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))

    def identity(self) -> dict[str, Any]:
        """The fields that determine the numbers (paths and download switches left out)."""
        d = self.to_dict()
        d["schema"] = CONFIG_SCHEMA
        d["base"].pop("checkpoint")
        d["data"].pop("root")
        d["data"].pop("download")
        if d["data"]["train_size"] is None:  # keeps run ids of full-data runs as they were
            d["data"].pop("train_size")
        if self.is_dense:  # scoring settings play no part in a dense run
            d.pop("score_batches")
            d.pop("score_batch_size")
        d.pop("strategy_label")  # a name to show; the numbers do not depend on it
        for key, default in IDENTITY_DEFAULTS.items():  # fields added later keep old run ids
            if d.get(key) == default:
                d.pop(key)
        return d

    @property
    def run_id(self) -> str:
        return digest(self.identity())

    def base_identity(self) -> dict[str, Any]:
        """What determines the starting weights."""
        ident = self.identity()
        ident = {"schema": CONFIG_SCHEMA, "model": self.model, "dataset": self.dataset,
                 "base": ident["base"], "data": ident["data"], "amp": self.amp,
                 "deterministic": self.deterministic}
        if self.threads is not None:  # base training's numbers depend on it too; unpinned ids stay
            ident["threads"] = self.threads
        return ident

    @property
    def base_id(self) -> str:
        return digest(self.base_identity())

    def record_names(self) -> dict[str, Any]:
        """What the record says of this run for the analysis: the method's tags and the data
        split compared runs must share (`shrinkbench.analysis.naming`)."""
        from shrinkbench.analysis.naming import training_data_split, training_run_tags

        config = self.to_dict()
        return {"method_tags": training_run_tags(config), "data_split": training_data_split(config)}

    def replace(self, **changes) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> "RunConfig":
        return build(cls, data, where)


IDENTITY_DEFAULTS: dict[str, Any] = {"strategy_params": {}, "strategy_sha256": None, "granularity": "weight",
                                     "target": "compression", "when": "after_training", "control": None,
                                     "schedule": dataclasses.asdict(ScheduleConfig()), "threads": None,
                                     "round_to": 1}
"""Fields added after the first release, left out of the identity at their defaults so the
run ids of earlier runs stay what they were."""
