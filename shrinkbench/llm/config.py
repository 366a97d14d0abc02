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

`allocation` (default `uniform`) names the layer allocation (`shrinkbench.llm.allocation`: how
much each layer keeps, e.g. `owl`), with `allocation_params` and, for a user's allocation, the
sha256 of its file; `ties` (default `low_index`) says how selections break ties: `low_index`
keeps the lower index, `seeded` a random order drawn from the run seed (purpose `ties`), which
makes even a data-free method's runs depend on their seed. `refine` (default None) names a mask
refinement run on every layer's mask right after the strategy's (`dsnot`, or a user's `file.py:Class`
whose file's sha256 is `refine_sha256`; `shrinkbench.llm.refine`), with `refine_params`. `finetune_method` (default `full`: AdamW on every weight) `lora` makes the
recovery fine-tune train LoRA adapters (`lora_rank`, `lora_alpha`, `lora_dropout`, `lora_targets`;
`shrinkbench.llm.lora`), merged into the weights with the masks. `tasks` (zero-shot tasks through
lm-evaluation-harness as `task:metric`, with `tasks_sha256` of their evaluated examples;
`shrinkbench.llm.tasks`) and `dtype` (bfloat16, float16; `shrinkbench.llm.placement`) default to
the protocol preset's (None resolves to them: `offline` none and float32, the published presets
their papers' tasks and float16); a run that sets others is a recorded change of its preset
(`protocol_deviations`). No tasks and float32 are left out of the identity, so older run ids stand; `task_root` (a folder
of task files) is a location.

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
from shrinkbench.llm.protocols import DEFAULT_PROTOCOL, get_protocol

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
TIE_RULES = ("low_index", "seeded")
"""How selections break ties: keep the lower index (the default), or a random order drawn from the run seed."""
FINETUNE_METHODS = ("full", "lora")
DTYPES = ("float32", "bfloat16", "float16")
"""What the model's weights and computations are held in (`dtype`); float32 is the default."""
WEIGHT = "weight"
"""`unit` of weight pruning (the default); the structured units are `blocks`, `heads`,
`channels` and `width` (`shrinkbench.llm.structured`)."""


def preset_task_entries(preset) -> tuple[str, ...]:
    """A preset's zero-shot tasks as `task:metric` entries (the metric its mean takes per task)."""
    return tuple(f"{t}:{preset.task_metrics.get(t, 'acc')}" for t in preset.tasks)


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
    dataset: str | None = None
    text_sha256: str | None = None
    strategy: str = "magnitude"
    strategy_params: Params = Params()
    strategy_sha256: str | None = None
    strategy_label: str | None = None
    scope: str | None = None
    sparsity: float | None = None
    pattern: str = "unstructured"
    seed: int = 0
    seq_len: int | None = None
    calib_sequences: int | None = None
    calib_batch: int = 4
    eval_windows: int | None = None
    protocol: str = DEFAULT_PROTOCOL
    """The protocol preset (`shrinkbench.llm.protocols`): it fills `dataset`, `seq_len`,
    `eval_windows` (0 = every whole window of the split), `calib_text` and `calib_sequences`
    where the run leaves them out; part of the identity except at `offline` (older ids stand)."""
    calib_text: str | None = None
    """The calibration source (kjv, wikitext2, c4, file:PATH); None: the preset's. Left out of
    the identity where it is the evaluation text of the offline protocol (older ids stand)."""
    calib_sha256: str | None = None
    layers: str = "blocks"
    exclude: tuple[str, ...] = ()
    finetune_steps: int = 0
    finetune_lr: float = 1e-5
    finetune_batch: int = 2
    finetune_method: str = "full"
    """`full` (AdamW on every weight) or `lora` (adapters through peft, merged with the masks)."""
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    """LoRA's defaults are those of Wanda's `lora_ft/finetune_lm.py` (r 8, alpha 16, dropout 0.05, q and v)."""
    refine: str | None = None
    refine_params: Params = Params()
    refine_sha256: str | None = None
    """The sha256 of a user's refinement file (`file.py:Class`); None for a registered one (left out
    of the identity then, so older run ids stand)."""
    throughput_repeats: int = 3
    allocation: str = "uniform"
    allocation_params: Params = Params()
    allocation_sha256: str | None = None
    ties: str = "low_index"
    threads: int | None = None
    """torch's intra-op threads the run computes with on the CPU (part of the identity where
    pinned, as for vision runs: `shrinkbench.core.sweep.pin_threads`); None: not pinned."""
    unit: str = WEIGHT
    tasks: tuple[str, ...] | None = None
    """zero-shot tasks through lm-evaluation-harness as `task:metric` (`shrinkbench.llm.tasks`);
    None (the default): the preset's tasks with the metric it names per task (`offline`: none);
    empty: none (left out of the identity)."""
    tasks_sha256: str | None = None
    dtype: str | None = None
    """float32 (left out of the identity), bfloat16 or float16: the model is loaded, pruned and
    evaluated in it (calibration statistics are summed in float64 whatever it is); None (the
    default): the preset's (`offline` float32; `wanda`, `sparsegpt`, `llm-pruner` float16)."""
    task_root: str | None = None  # a folder of <task>/<split>.jsonl task files (location, not identity)
    text_root: str | None = None
    download: bool = False
    save_to: str | None = None  # structured units: save the compacted model there (save_pretrained, safetensors)

    def __post_init__(self) -> None:
        nm = parse_pattern(self.pattern)
        preset = get_protocol(self.protocol)
        if self.dataset is None:
            object.__setattr__(self, "dataset", preset.text)
        if self.calib_text is None:
            object.__setattr__(self, "calib_text", preset.calib_text if self.protocol != DEFAULT_PROTOCOL
                               else self.dataset)
        if self.seq_len is None and preset.context is not None:
            object.__setattr__(self, "seq_len", preset.context)
        if self.eval_windows is None:
            object.__setattr__(self, "eval_windows", preset.eval_windows or 0)
        if self.calib_sequences is None:
            object.__setattr__(self, "calib_sequences", preset.calib_sequences)
        if self.tasks is None:  # the preset decides; an explicit () or another list is a recorded change
            object.__setattr__(self, "tasks", preset_task_entries(preset))
        if self.dtype is None:
            object.__setattr__(self, "dtype", preset.dtype)
        if self.strategy == DENSE:
            _check(self.sparsity in (None, 0) and self.pattern == "unstructured",
                   f"the dense run (strategy 'none') prunes nothing: it takes no sparsity (got {self.sparsity}) and "
                   f"no pattern (got {self.pattern!r})")
            _check(self.scope is None and not self.strategy_params and self.strategy_label is None,
                   "the dense run (strategy 'none') takes no scope, strategy parameters or label")
            object.__setattr__(self, "sparsity", 0.0)
            object.__setattr__(self, "strategy_params", Params())
            object.__setattr__(self, "unit", WEIGHT)  # one dense run for weight and structured pruning
            _check(self.allocation == "uniform" and not self.allocation_params and self.ties == "low_index",
                   "the dense run (strategy 'none') prunes nothing: it takes no allocation and no tie rule")
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
        for name in ("calib_sequences", "calib_batch", "finetune_batch", "throughput_repeats"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.eval_windows >= 0, f"eval_windows must be >= 1, or 0 for every whole window of the test split, "
                                       f"got {self.eval_windows}")
        _check(self.seq_len is None or self.seq_len >= 2,
               f"seq_len must be >= 2 (a window predicts seq_len - 1 tokens), got {self.seq_len}")
        _check(self.finetune_steps >= 0, f"finetune_steps must be >= 0, got {self.finetune_steps}")
        self._check_recovery_and_refinement()
        _check(math.isfinite(self.finetune_lr) and self.finetune_lr >= 0,
               f"finetune_lr must be a finite number >= 0, got {self.finetune_lr}")
        _check(self.layers in LAYER_SETS, f"layers must be one of {', '.join(LAYER_SETS)}, got {self.layers!r}")
        _check(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        _check(self.ties in TIE_RULES, f"ties must be one of {', '.join(TIE_RULES)}, got {self.ties!r}")
        _check(isinstance(self.allocation, str) and bool(self.allocation.strip()),
               f"allocation must be a name such as uniform or owl, or module:Class / file.py:Class, "
               f"got {self.allocation!r}")
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
            _check(self.allocation == "uniform" and self.ties == "low_index",
                   f"allocation and ties apply to weight pruning; the structured unit {self.unit} allocates with scope")
        elif self.save_to is not None:
            raise ConfigError("save_to saves a compacted model: it needs a structured unit (blocks, heads, channels, "
                              "width); a weight-pruned model keeps its shapes")

    def _check_recovery_and_refinement(self) -> None:
        _check(self.finetune_method in FINETUNE_METHODS,
               f"finetune_method must be one of {', '.join(FINETUNE_METHODS)}, got {self.finetune_method!r}")
        lora_set = [f.name for f in dataclasses.fields(self) if f.name.startswith("lora_")
                    and getattr(self, f.name) != f.default]
        if self.finetune_method != "lora":
            _check(not lora_set, f"{lora_set[0] if lora_set else ''} sets the LoRA recovery fine-tune; give "
                                 f"finetune_method lora too, or leave it out")
        else:
            _check(self.finetune_steps >= 1, "finetune_method lora trains adapters for finetune_steps steps; give "
                                             "finetune_steps >= 1")
            _check(isinstance(self.lora_rank, int) and not isinstance(self.lora_rank, bool) and self.lora_rank >= 1,
                   f"lora_rank must be a whole number >= 1, got {self.lora_rank!r}")
            _check(math.isfinite(self.lora_alpha) and self.lora_alpha > 0,
                   f"lora_alpha must be a finite number > 0, got {self.lora_alpha}")
            _check(math.isfinite(self.lora_dropout) and 0 <= self.lora_dropout < 1,
                   f"lora_dropout must lie in [0, 1), got {self.lora_dropout}")
            _check(len(self.lora_targets) >= 1 and all(isinstance(t, str) and t.strip() for t in self.lora_targets),
                   f"lora_targets must name at least one module (such as q_proj), got {list(self.lora_targets)}")
        if self.refine is None:
            _check(not self.refine_params and self.refine_sha256 is None,
                   "refine_params set the mask refinement; give refine (dsnot) too, or leave them out")
        else:
            _check(isinstance(self.refine, str) and self.refine.strip() != "",
                   f"refine must name a mask refinement (dsnot), got {self.refine!r}")
            _check(not self.is_dense, "the dense run (strategy 'none') has no mask to refine; leave refine out")
            _check(not self.structured, f"refine {self.refine} swaps single weights of a mask; unit {self.unit} removes "
                                        f"whole units: leave refine out")

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
                 base={"seed": 0}, finetune={"epochs": 0, "steps": self.finetune_steps, "lr": self.finetune_lr,
                                             "method": self.finetune_method})
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
        if self.allocation == "uniform" and not self.allocation_params:  # the run ids before allocations
            d.pop("allocation")
            d.pop("allocation_params")
        if self.allocation_sha256 is None:
            d.pop("allocation_sha256")
        if self.ties == "low_index":  # the run ids before seeded tie-breaking
            d.pop("ties")
        if self.finetune_method == "full":  # run ids of full fine-tunes and one-shot runs stay as they were
            for key in [k for k in d if k.startswith("lora_")] + ["finetune_method"]:
                d.pop(key)
        if self.refine is None:
            d.pop("refine")
            d.pop("refine_params")
        if self.refine_sha256 is None:
            d.pop("refine_sha256")
        if not self.tasks:  # no zero-shot tasks: the run ids of records before tasks existed
            d.pop("tasks")
            d.pop("tasks_sha256")
        if self.dtype == "float32":
            d.pop("dtype")
        if self.threads is None:  # unpinned: the run ids of records before threads were pinned
            d.pop("threads")
        if self.protocol == DEFAULT_PROTOCOL:  # the offline protocol: the run ids it always had
            d.pop("protocol")
        else:
            d["protocol_version"] = get_protocol(self.protocol).version
        if self.protocol == DEFAULT_PROTOCOL and self.calib_text == self.dataset:
            d.pop("calib_text")  # calibrated on the evaluation text: text_sha256 pins it
            d.pop("calib_sha256")
        elif self.is_dense:  # the dense run draws no calibration windows; calib_sha256 then pins a second text
            d.pop("calib_text")
            if self.calib_sha256 is None:
                d.pop("calib_sha256")
        return d

    @property
    def preset(self):
        """The protocol preset (`shrinkbench.llm.protocols.Protocol`)."""
        return get_protocol(self.protocol)

    def protocol_deviations(self, model_context: int | None = None) -> dict[str, Any]:
        """The settings this run changed from its preset: {field: value} (a preset of the
        model's context compares `seq_len` with `model_context` where given)."""
        p = self.preset
        out = {}
        for key, preset_value in (("dataset", p.text), ("eval_windows", p.eval_windows or 0),
                                  ("calib_sequences", p.calib_sequences)):
            if getattr(self, key) != preset_value:
                out[key] = getattr(self, key)
        if self.calib_text != (p.calib_text if self.protocol != DEFAULT_PROTOCOL else self.dataset):
            out["calib_text"] = self.calib_text
        context = p.context if p.context is not None else model_context
        if context is not None and self.seq_len != context:
            out["seq_len"] = self.seq_len
        if self.dtype != p.dtype:  # the preset's dtype is data; a run in another one says so
            out["dtype"] = self.dtype
        if tuple(self.tasks) != preset_task_entries(p):
            out["tasks"] = ",".join(self.tasks) or "none"
        if self.is_dense:
            out.pop("calib_sequences", None)
            out.pop("calib_text", None)
        return out

    def protocol_label(self, model_context: int | None = None) -> str:
        """`offline@v1`, or `wanda@v1 modified: eval_windows=4` for a run that changed its preset
        (the model's context of `wanda`/`sparsegpt` is the preset's, whatever the number)."""
        deviations = self.protocol_deviations(model_context)
        label = self.preset.label
        if deviations:
            label += " modified: " + ", ".join(f"{k}={v}" for k, v in sorted(deviations.items()))
        return label

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
        for key in ("exclude", "lora_targets", "tasks"):
            if isinstance(plain.get(key), list):
                plain[key] = tuple(plain[key])
        if isinstance(plain.get("tasks"), str) and plain["tasks"].strip().lower() == "none":
            plain["tasks"] = ()  # as --tasks none writes it: no tasks (a preset's left out, recorded)
        return build(cls, plain, where)


@dataclass(frozen=True)
class _OneBase:
    seed: int = 0
