"""Executing a run's plan (`shrinkbench.vision.plans`): one handler per kind of phase, applied in
order to one state (the model, its masks, the weights a control starts from).

Generators, all derived from the run seed (`shrinkbench.core.seeds.derive_seed`): `strategy-<step>` for the
k-th pruning step, `strategy-gradual-<event>` for gradual pruning's events, `finetune-order`
for the data order of every training phase (one generator through the whole plan),
`control-shuffle` for the layerwise shuffle, `reinit` for new initial weights.

Controls (Frankle, Dziugaite, Roy, Carbin 2021; Liu, Sun, Zhou, Huang, Darrell 2019) change
one thing each and keep the rest of the plan:

- `layerwise_shuffle`: each layer's mask is permuted uniformly at random (its density kept),
  applied to the weights the last pruning step saw (or rewound to), then trained as planned.
- `reinit`: the mask is kept; the weights are new initial weights of the same init recipe,
  drawn with the run seed; then trained as planned (so after training, with the fine-tuning
  budget; at initialisation, with the base recipe).
- `from_scratch`: `reinit`, and the training after it is the base recipe's full budget (the
  pruned architecture trained from scratch, Liu et al. 2019).
- `invert`: the strategy's scores are negated, so the lowest-scored weights are kept.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from shrinkbench.vision.plans import Control, Gradual, MeasurePre, Prune, Rewind, Train


def gradual_target(kind: str, value: float, fraction: float) -> float:
    """The target at `fraction` (0..1) of gradual pruning's window, by the cubic schedule of
    Zhu & Gupta 2017, s_t = s_f (1 - (1 - fraction)^3), where s is the fraction removed:
    of the prunable weights (sparsity target), of the parameters (compression c: s = 1 - 1/c)
    or of the MACs (speedup r: s = 1 - 1/r)."""
    ramp = 1.0 - (1.0 - fraction) ** 3
    if kind == "sparsity":
        return value * ramp
    removed = (1.0 - 1.0 / value) * ramp
    return 1.0 / (1.0 - removed)


def gradual_events(start: float, end: float, every: int, total_steps: int) -> list[int]:
    """Optimizer steps after which gradual pruning prunes: t0 + every, t0 + 2 every, ... up
    to t1, and t1 itself (so the last event reaches the final target), where t0 = round(start
    * total) and t1 = max(t0 + 1, round(end * total)). At t0 itself the target is 0."""
    t0 = round(start * total_steps)
    t1 = min(total_steps, max(t0 + 1, round(end * total_steps)))
    events = list(range(t0 + every, t1, every))
    return [s for s in events if s >= 1] + [t1]


class PlanExecution:
    """The state a plan runs on, and one method per phase kind (`HANDLERS`)."""

    def __init__(self, cfg, ctx, model: nn.Module, record: dict, on_epoch, strategy, origin: Callable[[], dict],
                 run=None):
        from shrinkbench.vision.pruning.granularity import granularity
        from shrinkbench.core.seeds import generator

        self.cfg, self.ctx, self.model, self.record, self.on_epoch = cfg, ctx, model, record, on_epoch
        self.strategy = strategy
        self.unit = granularity(cfg.granularity)
        self.masks = None
        self.order = generator(cfg.seed, "finetune-order")
        self.unpruned: dict[str, torch.Tensor] | None = None  # what the last pruning step saw
        self.origin = origin  # the base training's epoch-k weights: origin(k)
        self.run_info = run  # what a strategy's scoring context offers of the run (`RunInfo`)
        self.log: list[dict[str, Any]] = []

    def run(self, plan: list):
        for phase in plan:
            HANDLERS[type(phase)](self, phase)
        return self.masks

    # -- phases
    def prune(self, phase: Prune) -> None:
        from shrinkbench.core.seeds import generator

        self.unpruned = _state(self.model)
        self.masks = self.unit.prune(self.model, self.strategy, self.cfg.target, phase.value,
                                     excluded=self.ctx.excluded, batches=self.ctx.score_batches(),
                                     generator=generator(self.cfg.seed, f"strategy-{phase.step}"), masks=self.masks,
                                     input_shape=self.ctx.model_spec.input_shape, run=self.run_info,
                                     round_to=self.cfg.round_to)
        self.log.append({"phase": "prune", "step": phase.step, "target": phase.value,
                         "kept": self.masks.kept() if len(self.masks) else None})

    def rewind(self, phase: Rewind) -> None:
        self.model.load_state_dict(self.origin(phase.epoch))
        self.unpruned = _state(self.model)
        self.masks.apply(self.model)
        self.log.append({"phase": "rewind", "epoch": phase.epoch})

    def control(self, phase: Control) -> None:
        from shrinkbench.vision.models import create_model
        from shrinkbench.core.seeds import derive_seed, generator

        if phase.name == "layerwise_shuffle":
            self.masks = shuffled_within_layers(self.masks, generator(self.cfg.seed, "control-shuffle"))
            self.model.load_state_dict(self.unpruned)
        elif phase.name == "reinit":
            fresh = create_model(self.cfg.model, seed=derive_seed(self.cfg.seed, "reinit"))
            self.model.load_state_dict(fresh.state_dict())
        self.masks.apply(self.model)
        self.log.append({"phase": "control", "control": phase.name})

    def measure_pre(self, phase: MeasurePre) -> None:
        self.record["metrics"] += self.ctx.measure(self.model, "pre")

    def train(self, phase: Train) -> None:
        from shrinkbench.vision.training import train

        recipe = self.cfg.finetune if phase.source == "finetune" else self.cfg.base.train
        stop = phase.start_epoch + phase.epochs
        train(self.model, self.ctx.train_batches(recipe.batch_size, recipe.augment), recipe, self.order,
              masks=self.masks, device=self.ctx.device, log=self.record["epochs"], tag=phase.tag, amp=self.cfg.amp,
              evaluate=lambda m: {"top1": self.ctx.accuracy(m, "val")["top1"]}, on_epoch=self.on_epoch,
              start_epoch=phase.start_epoch, stop_after=stop)
        self.log.append({"phase": "train", "recipe": phase.source, "epochs": phase.epochs,
                         "start_epoch": phase.start_epoch})

    def gradual(self, phase: Gradual) -> None:
        from shrinkbench.core.seeds import generator
        from shrinkbench.vision.training import train

        cfg, recipe = self.cfg, self.cfg.finetune
        batches = self.ctx.train_batches(recipe.batch_size, recipe.augment)
        steps_per_epoch = len(batches(torch.Generator().manual_seed(0)))
        total = recipe.epochs * steps_per_epoch
        events = gradual_events(phase.start, phase.end, phase.every, total)
        t0 = round(phase.start * total)
        t1 = events[-1]
        pending = dict.fromkeys(events)

        def hook(step: int, _total: int):
            if step not in pending:
                return None
            fraction = 1.0 if step == t1 else (step - t0) / (t1 - t0)
            value = gradual_target(cfg.target, cfg.compression, fraction) if step != t1 else cfg.compression
            training = self.model.training
            self.masks = self.unit.prune(self.model, self.strategy, cfg.target, value, excluded=self.ctx.excluded,
                                         batches=self.ctx.score_batches(), masks=self.masks,
                                         generator=generator(cfg.seed, f"strategy-gradual-{len(self.log)}"),
                                         input_shape=self.ctx.model_spec.input_shape, run=self.run_info,
                                         round_to=cfg.round_to)
            self.log.append({"phase": "prune", "step": step, "target": value, "kept": self.masks.kept()})
            if step == t1:
                self.record["metrics"] += self.ctx.measure(self.model, "pre")
            self.model.train(training)
            return self.masks

        train(self.model, batches, recipe, self.order, masks=self.masks, device=self.ctx.device,
              log=self.record["epochs"], tag="gradual", amp=cfg.amp,
              evaluate=lambda m: {"top1": self.ctx.accuracy(m, "val")["top1"]}, on_epoch=self.on_epoch,
              step_hook=hook)
        if not any(e["phase"] == "prune" for e in self.log):  # pragma: no cover - events always include t1
            raise RuntimeError("gradual pruning never pruned")


HANDLERS: dict[type, Callable[[PlanExecution, Any], None]] = {
    Prune: PlanExecution.prune, Rewind: PlanExecution.rewind, Control: PlanExecution.control,
    MeasurePre: PlanExecution.measure_pre, Train: PlanExecution.train, Gradual: PlanExecution.gradual,
}


def shuffled_within_layers(masks, gen: torch.Generator):
    """Each layer's mask permuted uniformly at random (same kept count per layer): the
    layerwise-shuffle control of Frankle et al. 2021."""
    from shrinkbench.vision.pruning.masks import MaskSet

    out = {}
    for name, mask in masks.items():
        flat = mask.reshape(-1).cpu()
        out[name] = flat[torch.randperm(flat.numel(), generator=gen)].reshape(mask.shape).to(mask.device)
    return MaskSet(out, masks.extra)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
