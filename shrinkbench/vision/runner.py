"""One run: base model -> prune -> fine-tune -> evaluate -> one record.

Seeds: the base model comes from `cfg.base.seed` (initial weights, data order and dropout
of its training). The run seed `cfg.seed` drives everything after it: which training
batches score the weights, random masks, fine-tuning data order, augmentation and dropout.
Each use gets its own generator derived from (seed, purpose), and the whole run executes
inside a forked torch RNG, so a run changes no global state and the same config gives the
same numbers on the CPU, bit for bit (on a GPU: with `deterministic` on, as far as torch has
deterministic kernels; the record lists the operations that had none).

Stages: `pre` is measured right after the (last) pruning step, before fine-tuning (for the
dense run: the base model itself); `post` after fine-tuning. Accuracy and loss on the
validation and test splits at both stages; structure metrics at both; measured cost
(latency, throughput, peak memory) at `post`, of the model as it would be deployed: the
compacted one where the granularity compacts (channels), else the masked one, timed in
alternation with the dense model of the same architecture (`measured_speedup`). A
compacted model must compute what the masked one does: the largest logit difference on a
probe batch is recorded (`deployed`), and a difference above `COMPACTION_TOLERANCE` fails
the run.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable

import torch
from torch import nn

from shrinkbench.analysis.schema import RECORD_SCHEMA
from shrinkbench.vision.bases import obtain_base
from shrinkbench.vision.config import DataConfig, RunConfig
from shrinkbench.core.device import autocast, deterministic_algorithms, precision
from shrinkbench.core.device import resolve_device
from shrinkbench.core.errors import StrategyError, TrainingDivergedError
from shrinkbench.core.seeds import derive_seed, generator
from shrinkbench.core.store import Store
from shrinkbench.core.usercode import checked_strategy_source


COMPACTION_TOLERANCE = 1e-3
"""Largest logit difference between a compacted model and its masked original that a run
accepts (float32 sums in another order differ by about 1e-6; a wrong compaction by far more)."""


@functools.lru_cache(maxsize=4)
def _splits(dataset: str, root: str | None, download: bool, val_size: int, split_seed: int,
            train_size: int | None):
    import dataclasses

    from shrinkbench.vision.data import load_splits
    from shrinkbench.vision.data.load import subset

    splits = load_splits(dataset, root=root, download=download, val_size=val_size, split_seed=split_seed)
    if train_size is None or train_size >= len(splits.train):
        return splits
    order = torch.randperm(len(splits.train), generator=generator(split_seed, "train-subset"))
    return dataclasses.replace(splits, train=subset(splits.train, order[:train_size].sort().values))


def load_data(dataset: str, data: DataConfig):
    """The fixed splits of `dataset` (read once per process); with `data.train_size`, the
    training split is cut down to that many examples chosen by the split seed."""
    return _splits(dataset, data.root, data.download, data.val_size, data.split_seed, data.train_size)


@functools.lru_cache(maxsize=16)
def macs_profile(model_name: str):
    """Dense per-layer MACs of a zoo model, counted once per process on the meta device."""
    from shrinkbench.core.macs import count_macs
    from shrinkbench.vision.models import build_on_meta, model_spec

    return count_macs(build_on_meta(model_name), model_spec(model_name).input_shape)


def weights_digest(model: nn.Module) -> str:
    """sha256 of every parameter's and buffer's name, dtype, shape and bytes: equal digests,
    equal function (in eval mode, which evaluation sets). Used to skip an evaluation pass
    that repeats the one just made (the last epoch's validation and the stage's `val`)."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        t = tensor.detach()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class RunContext:
    """What one run needs: its config, data, device and measuring functions.

    `loader_workers` (DataLoader worker processes for datasets on disk) and pinned memory
    (on CUDA) change how fast batches arrive, never which batches: not part of the config.
    """

    def __init__(self, cfg: RunConfig, device: torch.device, loader_workers: int = 0):
        from shrinkbench.vision.models import model_spec

        self.cfg = cfg
        self.device = device
        self.loader = {"num_workers": loader_workers, "pin_memory": device.type == "cuda"}
        self.splits = load_data(cfg.dataset, cfg.data)
        self.spec = self.splits.spec
        self.model_spec = model_spec(cfg.model)
        self.profile = macs_profile(cfg.model)
        self._evaluated: dict[tuple, dict[str, float]] = {}

    # -- data
    def train_batches(self, batch_size: int, augment: bool) -> Callable[[torch.Generator], Any]:
        from shrinkbench.vision.data import batches

        def source(gen: torch.Generator):
            return batches(self.splits.train, batch_size, shuffle=True, generator=gen,
                           augment=augment, spec=self.spec, **self.loader)
        return source

    def eval_batches(self, split):
        from shrinkbench.vision.data import batches

        return batches(split, self.cfg.measure.eval_batch_size, shuffle=False, generator=None,
                       augment=False, spec=self.spec, **self.loader)

    def score_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """`score_batches` batches of the training split, drawn with the run seed, no augmentation."""
        from shrinkbench.vision.data import batches

        out = []
        for x, y in batches(self.splits.train, self.cfg.score_batch_size, shuffle=True,
                            generator=generator(self.cfg.seed, "score"), augment=False, spec=self.spec,
                            **self.loader):
            out.append((x.to(self.device), y.to(self.device)))
            if len(out) == self.cfg.score_batches:
                break
        return out

    # -- measuring
    def accuracy(self, model: nn.Module, split_name: str) -> dict[str, float]:
        from shrinkbench.vision.metrics import evaluate

        split = self.splits.val if split_name == "val" else self.splits.test
        key = (split_name, id(model), weights_digest(model))
        if key not in self._evaluated:  # the same weights on the same split: the pass is not repeated
            with autocast(self.device, self.cfg.amp):
                self._evaluated = {key: evaluate(model, self.eval_batches(split), self.device),
                                   **{k: v for k, v in self._evaluated.items() if k[0] != split_name}}
        return dict(self._evaluated[key])

    def measure(self, model: nn.Module, stage: str, deployed: nn.Module | None = None) -> list[dict[str, Any]]:
        """Structure and accuracy of `model`; at `post` also the measured cost of `deployed`
        (default: `model`) against a dense model of the same architecture."""
        from shrinkbench.core.metrics import LatencySettings, measure_cost, measure_structure
        from shrinkbench.vision.models import create_model

        rows = [{"stage": stage, "split": "none", "metric": k, "value": float(v)}
                for k, v in measure_structure(model, self.profile).items()]
        for split in ("val", "test"):
            rows += [{"stage": stage, "split": split, "metric": k, "value": float(v)}
                     for k, v in self.accuracy(model, split).items()]
        m = self.cfg.measure
        if stage == "post" and m.latency:
            settings = LatencySettings(m.latency_batch_sizes, m.latency_warmup, m.latency_repeats)
            dense = create_model(self.cfg.model, seed=self.cfg.base.seed).to(self.device)
            with autocast(self.device, self.cfg.amp):
                cost = measure_cost(deployed if deployed is not None else model, self.model_spec.input_shape,
                                    settings, self.device, seed=derive_seed(self.cfg.seed, "latency"), reference=dense)
            rows += [{"stage": stage, "split": "none", "metric": k, "value": float(v)} for k, v in cost.items()]
        return rows

    def deployed(self, model: nn.Module, masks) -> tuple[nn.Module, dict[str, Any]]:
        """The model as deployed (compacted where the granularity compacts) and what the
        record says of it: its real params and MACs, and how far its logits are from the
        masked model's on a probe batch (a difference above COMPACTION_TOLERANCE is an error)."""
        from shrinkbench.core.errors import StrategyError
        from shrinkbench.core.macs import count_macs
        from shrinkbench.vision.pruning.granularity import granularity

        unit = granularity(self.cfg.granularity)
        small = unit.deployed(model, masks, self.model_spec.input_shape, self.excluded)
        info: dict[str, Any] = {"kind": "compacted" if small is not model else "masked"}
        info["params"] = sum(p.numel() for p in small.parameters())
        info["macs"] = count_macs(small, self.model_spec.input_shape).macs
        if small is not model:
            probe = torch.randn((4, *self.model_spec.input_shape),
                                generator=generator(self.cfg.seed, "compaction-probe")).to(self.device)
            flags = [(mod, mod.training) for mod in model.modules()]
            model.eval()
            small.eval()
            try:
                with torch.inference_mode():
                    info["max_abs_logit_diff"] = float((model(probe) - small(probe)).abs().max())
            finally:
                for mod, training in flags:
                    mod.training = training
            if not info["max_abs_logit_diff"] <= COMPACTION_TOLERANCE:
                raise StrategyError(f"the compacted model's logits differ from the masked model's by "
                                    f"{info['max_abs_logit_diff']:.3g} (tolerance {COMPACTION_TOLERANCE:g})")
        return small, info

    @property
    def excluded(self) -> tuple[str, ...]:
        return self.model_spec.excluded if self.cfg.exclude is None else self.cfg.exclude


def _train_base(ctx: RunContext) -> Callable[[nn.Module, bool], dict[str, Any]]:
    from shrinkbench.core.provenance import environment
    from shrinkbench.vision.training import train as train_loop

    cfg = ctx.cfg

    def run(model: nn.Module, train: bool = True, stop_after: int | None = None) -> dict[str, Any]:
        model.to(ctx.device)
        start = time.perf_counter()
        log: list = []
        if train:
            with torch.random.fork_rng(devices=_rng_devices(ctx.device)):
                torch.manual_seed(derive_seed(cfg.base.seed, "base-dropout"))
                train_loop(model, ctx.train_batches(cfg.base.train.batch_size, cfg.base.train.augment),
                          cfg.base.train, generator(cfg.base.seed, "base-order"), device=ctx.device,
                          log=log, tag="base", amp=cfg.amp, stop_after=stop_after,
                          evaluate=lambda m: {"top1": ctx.accuracy(m, "val")["top1"]})
        metrics = {f"{split}_{k}": v for split in ("val", "test") for k, v in ctx.accuracy(model, split).items()}
        model.cpu()
        return {"metrics": metrics, "epochs": log, "seconds": time.perf_counter() - start,
                "provenance": {**environment(ctx.device), "precision": precision(cfg.amp, ctx.device)}}

    return run


def _rng_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


def prepare_base(cfg: RunConfig, store: Store, device: str | None = None, loader_workers: int = 0) -> str:
    """Make (train or load) the base model of `cfg` and cache it in the store, as `execute`
    would; returns where it came from (`trained`, `checkpoint`, or `cached`). Parallel
    executors call this once per base model before the runs that share it."""
    from shrinkbench.vision.models import create_model

    if store.has_base(cfg.base_id):
        return "cached"
    dev = resolve_device(device)
    with deterministic_algorithms(cfg.deterministic):
        ctx = RunContext(cfg, dev, loader_workers)
        base = obtain_base(cfg, store, lambda: create_model(cfg.model, seed=cfg.base.seed), _train_base(ctx))
    return base.info.get("source", "cached")


def execute(cfg: RunConfig, store: Store, device: str | None = None,
            on_epoch: Callable[[dict], None] | None = None, loader_workers: int = 0,
            save_pruned: bool = False) -> dict[str, Any]:
    """Run `cfg` (already validated) and return its record (not yet stored).

    A diverging loss makes a `failed` record with the reason; other errors propagate.
    """
    dev = resolve_device(device)
    with deterministic_algorithms(cfg.deterministic) as nondeterministic:
        record = _execute(cfg, store, dev, on_epoch, loader_workers, save_pruned)
    record["provenance"].update(precision=precision(cfg.amp, dev), loader_workers=loader_workers,
                                nondeterministic_ops=sorted(nondeterministic) if cfg.deterministic else None)
    return record


def _execute(cfg: RunConfig, store: Store, dev: torch.device, on_epoch, loader_workers: int,
             save_pruned: bool = False) -> dict[str, Any]:
    from shrinkbench.vision.models import create_model
    from shrinkbench.core.provenance import environment, now_iso

    started, t0 = now_iso(), time.perf_counter()
    source = checked_strategy_source(cfg)
    record: dict[str, Any] = {"schema": RECORD_SCHEMA, "run_id": cfg.run_id, "status": "ok",
                              "error": None, "config": cfg.to_dict(), **cfg.record_names(), "metrics": [], "epochs": []}
    ctx = None
    try:
        ctx = RunContext(cfg, dev, loader_workers)
        build = lambda: create_model(cfg.model, seed=cfg.base.seed)  # noqa: E731
        model = build()
        if cfg.when == "at_init":  # the base model's own initial weights; no base training needed
            record["base"] = {"id": cfg.base_id, "source": "initial weights", "sha256": None,
                              "checkpoint_sha256": None, "metrics": None}
        else:
            base = obtain_base(cfg, store, build, _train_base(ctx))
            record["base"] = {k: base.info.get(k) for k in ("id", "source", "sha256", "checkpoint_sha256", "metrics")}
            record["base"]["id"] = cfg.base_id
            model.load_state_dict(base.state)
        model.to(dev)

        def origin(epoch: int) -> dict:  # the base training's weights after `epoch` epochs
            return obtain_base(cfg, store, build, _train_base(ctx), epoch=epoch).state

        with torch.random.fork_rng(devices=_rng_devices(dev)):
            torch.manual_seed(derive_seed(cfg.seed, "dropout"))
            masks = _prune_and_finetune(cfg, ctx, model, record, on_epoch, origin,
                                        None if cfg.base.checkpoint is not None else lambda: build().state_dict())
        deployed, record["deployed"] = ctx.deployed(model, masks)
        record["metrics"] += ctx.measure(model, "post", deployed)
        if save_pruned and masks is not None:
            from shrinkbench.vision.structured.saving import save_pruned_model

            record["deployed"]["saved"] = save_pruned_model(store, cfg, deployed, masks)
        if masks is not None:
            record["layers"] = [{"name": n, "numel": int(m.numel()), "kept": int(m.sum())}
                                for n, m in masks.items()]
    except (TrainingDivergedError, StrategyError) as exc:  # this run fails, the sweep goes on
        record.update(status="failed", error=str(exc), metrics=[])
    record["provenance"] = {**environment(dev), "started_at": started, "finished_at": now_iso(),
                            "seconds": time.perf_counter() - t0, **source}
    if ctx is not None:
        record["provenance"]["data_location"] = ctx.splits.location
    return record


def _prune_and_finetune(cfg: RunConfig, ctx: RunContext, model: nn.Module, record: dict, on_epoch,
                        origin: Callable[[int], dict], initial_state: Callable[[], dict] | None = None):
    """Execute the run's plan (`shrinkbench.vision.plans`) on `model`; returns its masks."""
    from shrinkbench.vision.execution import PlanExecution
    from shrinkbench.vision.plans import Inverted, build_plan
    from shrinkbench.vision.pruning import resolve_strategy

    strategy = None if cfg.is_dense else resolve_strategy(cfg.strategy, cfg.strategy_params)
    if strategy is not None and cfg.control == "invert":
        strategy = Inverted(strategy)
    plan = build_plan(cfg)
    record["budget"] = budget_record(cfg, plan)
    from shrinkbench.vision.pruning.context import RunInfo

    run = RunInfo(cfg.to_dict(), cfg.seed, cfg.base.seed, initial_state)
    execution = PlanExecution(cfg, ctx, model, record, on_epoch, strategy, origin, run)
    masks = execution.run(plan)
    record["plan"] = execution.log
    return masks


def budget_record(cfg: RunConfig, plan: list) -> dict[str, Any]:
    """What the record says of the training a run did after its starting weights: epochs in
    all (`epochs`), how many of them were the fine-tuning recipe's and the base recipe's, and
    whether `prune_steps > 1` split one budget over the steps or fine-tuned fully after each."""
    from shrinkbench.vision.plans import Gradual, Train, budget

    return {"epochs": budget(plan, cfg),
            "finetune_epochs": sum(p.epochs for p in plan if isinstance(p, Train) and p.source == "finetune")
            + sum(cfg.finetune.epochs for p in plan if isinstance(p, Gradual)),
            "base_recipe_epochs": sum(p.epochs for p in plan if isinstance(p, Train) and p.source == "base"),
            "steps": cfg.prune_steps, "split_budget": cfg.schedule.split_budget}
