"""The frozen configuration of one language-model pruning run, and its identity.

An `LLMRunConfig` says everything that decides a language-model run's numbers: the model (a
registered name, a local Hugging Face folder or a hub name) and the sha256 of its weights,
the text and the sha256 of what was read, the tokenizer, the sequence length, how many
calibration sequences the run seed draws and how many held-out windows perplexity is
measured on, the strategy (with its parameters and, for a user's strategy, the sha256 of its
file), its scope, the sparsity and its pattern (unstructured or N:M), the layers pruned and an
optional recovery fine-tune. Where things are (text folder, download switch) is left out of
the identity, as for vision runs (`shrinkbench.core.configs`).

`unit` (default `weight`, then left out of the identity so older run ids stand) switches to
structured pruning (`blocks`, `heads`, `channels`, `width`; `shrinkbench.llm.structured`):
`strategy` is then the criterion, `sparsity` the fraction of the units removed, `scope` the
allocation (`uniform`, `global`), and `save_to` (a location) where the compacted model is saved.

`tasks` (zero-shot tasks through lm-evaluation-harness as `task:metric`, with `tasks_sha256` of
their evaluated examples; `shrinkbench.llm.tasks`) and `dtype` (bfloat16, float16;
`shrinkbench.llm.placement`) are left out of the identity at their defaults (no tasks, float32),
so older run ids stand; `task_root` (a folder of task files) is a location.

Records of both tracks share one store and one analysis. For the analysis an LLM config also
states the derived fields every record has: `compression` = 1 / (1 - sparsity) of the pruned
layers (2 at 50% and at 2:4; the pattern tells those apart as the `granularity` 2:4), `target`
= `sparsity`, and one base model (`base.seed` 0): a pretrained model is ONE set of starting
weights, so verdicts hold for that model only and the run seeds (calibration draws) are the
replicates (`shrinkbench.analysis.units`).
"""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from shrinkbench.core.configs import build, check as _check, digest, jsonable as _jsonable
from shrinkbench.core.errors import ConfigError
from shrinkbench.core.params import Params

TRACK = "llm"
LLM_CONFIG_SCHEMA = 1
DENSE = "none"
LAYER_SETS = ("blocks",)
"""`blocks`: every nn.Linear inside the transformer blocks (attention and MLP projections);
embeddings, the final norm and the LM head are never pruned (the protocol of SparseGPT and
Wanda)."""
DEFAULT_SEQ_LEN = 256
"""Tokens per window where a suite or `prune-llm` does not say (the one default of both)."""
DEFAULT_SPARSITY = 0.5
"""The sparsity of an unstructured run that does not say; an N:M run's is 1 - N/M, a dense run's 0."""
DERIVED = ("track", "compression", "granularity", "target", "base", "finetune")
LOCATION_FIELDS = ("text_root", "download", "save_to", "task_root")
DTYPES = ("float32", "bfloat16", "float16")
"""What the model's weights and computations are held in (`dtype`); float32 is the default."""
WEIGHT = "weight"
"""`unit` of weight pruning (the default); the structured units are `blocks`, `heads`,
`channels` and `width` (`shrinkbench.llm.structured`)."""


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """`unstructured` -> None; `N:M` -> (N, M) with 0 < N < M; anything else a ConfigError."""
    if pattern == "unstructured":
        return None
    found = re.fullmatch(r"(\d+):(\d+)", pattern or "")
    if not found:
        raise ConfigError(f"pattern must be 'unstructured' or N:M such as 2:4 or 4:8, got {pattern!r}")
    n, m = int(found.group(1)), int(found.group(2))
    if not 0 < n < m:
        raise ConfigError(f"pattern {pattern}: N:M needs 0 < N < M (N weights kept of every M), got N={n}, M={m}")
    return n, m


@dataclass(frozen=True)
class LLMRunConfig:
    """One pruning run of a causal language model (see the module docstring)."""

    model: str = "smollm2-135m"
    model_sha256: str | None = None
    tokenizer: str | None = None
    tokenizer_sha256: str | None = None
    dataset: str = "kjv"
    text_sha256: str | None = None
    strategy: str = "magnitude"
    strategy_params: Params = Params()
    strategy_sha256: str | None = None
    strategy_label: str | None = None
    scope: str | None = None
    sparsity: float | None = None
    pattern: str = "unstructured"
    seed: int = 0
    seq_len: int = DEFAULT_SEQ_LEN
    calib_sequences: int = 16
    calib_batch: int = 4
    eval_windows: int = 16
    layers: str = "blocks"
    exclude: tuple[str, ...] = ()
    finetune_steps: int = 0
    finetune_lr: float = 1e-5
    finetune_batch: int = 2
    throughput_repeats: int = 3
    threads: int | None = None
    """torch's intra-op threads the run computes with on the CPU (part of the identity where
    pinned, as for vision runs: `shrinkbench.core.sweep.pin_threads`); None: not pinned."""
    unit: str = WEIGHT
    tasks: tuple[str, ...] = ()
    """zero-shot tasks through lm-evaluation-harness as `task:metric` (`shrinkbench.llm.tasks`);
    empty (the default, left out of the identity): none."""
    tasks_sha256: str | None = None
    dtype: str = "float32"
    """float32 (default, left out of the identity), bfloat16 or float16: the model is loaded,
    pruned and evaluated in it (calibration statistics are summed in float64 whatever it is)."""
    task_root: str | None = None  # a folder of <task>/<split>.jsonl task files (location, not identity)
    text_root: str | None = None
    download: bool = False
    save_to: str | None = None  # structured units: save the compacted model there (save_pretrained, safetensors)

    def __post_init__(self) -> None:
        nm = parse_pattern(self.pattern)
        if self.strategy == DENSE:
            _check(self.sparsity in (None, 0) and self.pattern == "unstructured",
                   f"the dense run (strategy 'none') prunes nothing: it takes no sparsity (got {self.sparsity}) and "
                   f"no pattern (got {self.pattern!r})")
            _check(self.scope is None and not self.strategy_params and self.strategy_label is None,
                   "the dense run (strategy 'none') takes no scope, strategy parameters or label")
            object.__setattr__(self, "sparsity", 0.0)
            object.__setattr__(self, "strategy_params", Params())
            object.__setattr__(self, "unit", WEIGHT)  # one dense run for weight and structured pruning
        elif nm is not None:
            implied = 1 - nm[0] / nm[1]
            _check(self.sparsity is None or (isinstance(self.sparsity, (int, float)) and
                                             abs(self.sparsity - implied) < 1e-9),
                   f"pattern {self.pattern} sets the sparsity to {implied:g} ({nm[0]} kept of every {nm[1]}); "
                   f"leave sparsity out, got {self.sparsity}")
            object.__setattr__(self, "sparsity", implied)
        else:
            if self.sparsity is None:
                object.__setattr__(self, "sparsity", DEFAULT_SPARSITY)
            _check(isinstance(self.sparsity, (int, float)) and not isinstance(self.sparsity, bool)
                   and 0 < self.sparsity < 1,
                   f"sparsity must lie strictly between 0 and 1 (the fraction of the pruned layers' weights set to "
                   f"zero), got {self.sparsity}")
        for name in ("seq_len", "calib_sequences", "calib_batch", "eval_windows", "finetune_batch",
                     "throughput_repeats"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.seq_len >= 2, f"seq_len must be >= 2 (a window predicts seq_len - 1 tokens), got {self.seq_len}")
        _check(self.finetune_steps >= 0, f"finetune_steps must be >= 0, got {self.finetune_steps}")
        _check(math.isfinite(self.finetune_lr) and self.finetune_lr >= 0,
               f"finetune_lr must be a finite number >= 0, got {self.finetune_lr}")
        _check(self.layers in LAYER_SETS, f"layers must be one of {', '.join(LAYER_SETS)}, got {self.layers!r}")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _check(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
               f"threads must be a whole number >= 1, got {self.threads!r}")
        _check(self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        from shrinkbench.llm.tasks import parse_tasks

        object.__setattr__(self, "tasks", parse_tasks(self.tasks))
        _check(self.task_root is None or bool(self.tasks),
               "task_root (--task-root) holds zero-shot task files; name the tasks too (tasks, --tasks) or leave it out")
        if self.structured:
            from shrinkbench.llm.structured.prune import check_run_settings

            object.__setattr__(self, "scope", check_run_settings(self))
        elif self.save_to is not None:
            raise ConfigError("save_to saves a compacted model: it needs a structured unit (blocks, heads, channels, "
                              "width); a weight-pruned model keeps its shapes")

    # ----------------------------------------------------------------- derived fields
    @property
    def track(self) -> str:
        return TRACK

    @property
    def is_dense(self) -> bool:
        return self.strategy == DENSE

    @property
    def structured(self) -> bool:
        """Structured pruning (`unit` blocks, heads, channels or width): `strategy` is the
        criterion, `sparsity` the fraction of the units removed, `scope` the allocation."""
        return self.unit != WEIGHT and not self.is_dense

    @property
    def nm(self) -> tuple[int, int] | None:
        return parse_pattern(self.pattern)

    @property
    def compression(self) -> float:
        """1 / (1 - sparsity) of the pruned layers (1 for the dense run)."""
        return 1.0 / (1.0 - self.sparsity)

    @property
    def granularity(self) -> str:
        if self.unit != WEIGHT:
            return self.unit
        return "weight" if self.pattern == "unstructured" else self.pattern

    @property
    def target(self) -> str:
        return "sparsity"

    def to_dict(self) -> dict[str, Any]:
        d = _jsonable(dataclasses.asdict(self))
        d.update(track=TRACK, compression=self.compression, granularity=self.granularity, target=self.target,
                 base={"seed": 0}, finetune={"epochs": 0, "steps": self.finetune_steps, "lr": self.finetune_lr})
        return d

    def identity(self) -> dict[str, Any]:
        """What decides the numbers: locations left out, and for the dense run the settings
        of pruning (strategy, scope, calibration)."""
        d = _jsonable(dataclasses.asdict(self))
        for key in LOCATION_FIELDS + ("strategy_label",):
            d.pop(key)
        d.update(schema=LLM_CONFIG_SCHEMA, track=TRACK)
        if self.unit == WEIGHT:
            d.pop("unit")  # run ids of weight pruning stay as they were
        if self.is_dense:
            for key in ("calib_sequences", "calib_batch", "scope", "strategy_sha256"):
                d.pop(key)
        if self.finetune_steps == 0:
            d.pop("finetune_lr")
            d.pop("finetune_batch")
        if not self.tasks:  # no zero-shot tasks: the run ids of records before tasks existed
            d.pop("tasks")
            d.pop("tasks_sha256")
        if self.dtype == "float32":
            d.pop("dtype")
        if self.threads is None:  # unpinned: the run ids of records before threads were pinned
            d.pop("threads")
        return d

    @property
    def run_id(self) -> str:
        return digest(self.identity())

    def base_identity(self) -> dict[str, Any]:
        return {"schema": LLM_CONFIG_SCHEMA, "track": TRACK, "model": self.model, "model_sha256": self.model_sha256}

    @property
    def base_id(self) -> str:
        return digest(self.base_identity())

    @property
    def base(self):  # the analysis and the executors read cfg.base.seed
        return _OneBase()

    def record_names(self) -> dict[str, Any]:
        """What the record says of this run for the analysis: the method's tags and the data
        split compared runs must share (`shrinkbench.analysis.naming`)."""
        from shrinkbench.analysis.naming import text_window_split, one_shot_run_tags

        config = self.to_dict()
        return {"method_tags": one_shot_run_tags(config), "data_split": text_window_split(config)}

    def replace(self, **changes) -> "LLMRunConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> "LLMRunConfig":
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a table of settings, got {data!r}")
        plain = {k: v for k, v in data.items() if k not in DERIVED}
        for key in ("exclude", "tasks"):
            if isinstance(plain.get(key), list):
                plain[key] = tuple(plain[key])
        return build(cls, plain, where)


@dataclass(frozen=True)
class _OneBase:
    seed: int = 0
