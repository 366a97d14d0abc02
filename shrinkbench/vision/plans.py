"""A run's plan: the phases it goes through, built from its config. When pruning happens
(`when`), the schedule and the controls are transformations of this one plan, not
strategies of their own, and the runner executes every plan the same way.

Phases: `Prune(step, value)` (the granularity prunes to that target), `Rewind()` (the weights
left go back to epoch k of base training), `Control(name)` (after the last pruning step:
shuffle each layer's mask, or draw new initial weights), `MeasurePre()` (the `pre` stage),
`Train(source, epochs, start_epoch)` (train with `finetune` or the base recipe, optionally
continuing its schedule from an epoch), `Gradual()` (fine-tuning that prunes as it goes).

    after_training, one_shot, k steps:   [Prune(1), Train, ..., Prune(k), MeasurePre, Train]
        (each Train is finetune.epochs, or with split_budget the budget split over the steps)
    after_training, gradual:             [MeasurePre at the last pruning event, Gradual]
    after_training, weight_rewinding:    [Prune(1), Rewind, Train(base, from epoch r), ...]
    after_training, lr_rewinding:        [Prune(1), Train(base, from epoch r), ...]
    at_init:                             [Prune(1..k) on the initial weights, MeasurePre,
                                          Train(base, all epochs)]
    control reinit / layerwise_shuffle:  Control after the last Prune
    control from_scratch:                Control("reinit") after the last Prune, and every
                                         Train replaced by one of the base recipe, all epochs
    control invert:                      the strategy's scores negated (`Inverted`)

The budget of a plan (`budget`) is the epochs it trains after its starting weights.
"""
from __future__ import annotations

from dataclasses import dataclass

from shrinkbench.vision.config import RunConfig
from shrinkbench.core.errors import ConfigError


@dataclass(frozen=True)
class Prune:
    step: int
    value: float


@dataclass(frozen=True)
class Rewind:
    epoch: int


@dataclass(frozen=True)
class Control:
    name: str  # "layerwise_shuffle" | "reinit"


@dataclass(frozen=True)
class MeasurePre:
    pass


@dataclass(frozen=True)
class Train:
    source: str  # "finetune" | "base"
    epochs: int  # epochs trained in this phase
    start_epoch: int = 0  # where in the source's schedule it starts (learning-rate rewinding)
    tag: str = "finetune"


@dataclass(frozen=True)
class Gradual:
    """Fine-tuning that prunes every `every` steps from `start` to `end` (fractions)."""

    start: float
    end: float
    every: int


def split_epochs(total: int, steps: int) -> list[int]:
    """`total` epochs over `steps` steps, as evenly as whole epochs allow (the remainder to
    the last steps): 5 over 2 -> [2, 3]."""
    base, extra = divmod(total, steps)
    return [base + (1 if i >= steps - extra else 0) for i in range(steps)]


def build_plan(cfg: RunConfig) -> list:
    """The phases of `cfg` (see the module docstring)."""
    from shrinkbench.vision.pruning.granularity import target_at_step

    if cfg.is_dense:
        return [MeasurePre(), Train("finetune", cfg.finetune.epochs)]
    k, schedule = cfg.prune_steps, cfg.schedule
    value = lambda j: target_at_step(cfg.target, cfg.compression, j, k)  # noqa: E731
    control = [Control("reinit" if cfg.control == "from_scratch" else cfg.control)] \
        if cfg.control in ("reinit", "layerwise_shuffle", "from_scratch") else []
    if cfg.control == "from_scratch":  # the pruned architecture, trained from scratch with the base recipe
        return [*(Prune(j, value(j)) for j in range(1, k + 1)), *control, MeasurePre(),
                Train("base", cfg.base.train.epochs, tag="from-scratch")]
    if cfg.when == "at_init":
        return [*(Prune(j, value(j)) for j in range(1, k + 1)), *control, MeasurePre(),
                Train("base", cfg.base.train.epochs, tag="train")]
    if schedule.kind == "gradual":
        return [*control, Gradual(schedule.start, schedule.end, schedule.every)]
    plan: list = []
    if schedule.kind in ("weight_rewinding", "lr_rewinding"):
        r = schedule.rewind_epoch
        for j in range(1, k + 1):
            plan.append(Prune(j, value(j)))
            if schedule.kind == "weight_rewinding":
                plan.append(Rewind(r))
            if j == k:
                plan += [*control, MeasurePre()]
            plan.append(Train("base", cfg.base.train.epochs - r, start_epoch=r, tag=f"retrain-{j}"))
        return plan
    epochs = split_epochs(cfg.finetune.epochs, k) if schedule.split_budget else [cfg.finetune.epochs] * k
    for j in range(1, k + 1):
        plan.append(Prune(j, value(j)))
        if j == k:
            plan += [*control, MeasurePre()]
        plan.append(Train("finetune", epochs[j - 1], tag=f"finetune-{j}"))
    return plan


def budget(plan: list, cfg: RunConfig) -> int:
    """Epochs the plan trains after its starting weights."""
    total = 0
    for phase in plan:
        if isinstance(phase, Train):
            total += phase.epochs
        elif isinstance(phase, Gradual):
            total += cfg.finetune.epochs
    return total


def check_plan(cfg: RunConfig) -> None:
    """What a plan cannot do with this config, as a one-line ConfigError (before a sweep)."""
    schedule = cfg.schedule
    if cfg.is_dense:
        return
    if schedule.kind in ("weight_rewinding", "lr_rewinding"):
        last = cfg.base.train.epochs - 1
        if schedule.rewind_epoch > last:
            raise ConfigError(f"schedule.rewind_epoch {schedule.rewind_epoch} leaves nothing of base training "
                              f"({cfg.base.train.epochs} epochs) to retrain; rewind to an epoch from 0 to {last}"
                              if last >= 0 else "rewinding needs base training (base.train.epochs >= 1)")
        if schedule.kind == "weight_rewinding" and cfg.base.checkpoint is not None:
            raise ConfigError("weight rewinding goes back to epoch k of the base model's training, which a checkpoint "
                              "base does not have; train the base model with the toolkit, or use lr_rewinding")
    if schedule.kind == "gradual" and cfg.finetune.epochs < 1:
        raise ConfigError("gradual pruning prunes during fine-tuning: it needs finetune.epochs >= 1")
    if schedule.kind == "gradual" and cfg.prune_steps != 1:
        raise ConfigError("gradual pruning sets its own pruning steps (schedule.every); leave prune_steps at 1")
    if schedule.split_budget and (schedule.kind != "one_shot" or cfg.prune_steps == 1):
        raise ConfigError(f"split_budget splits the fine-tuning budget over the steps of one_shot pruning with "
                          f"prune_steps > 1; schedule {schedule.kind} with prune_steps {cfg.prune_steps} has nothing "
                          f"to split: leave it out")
    if schedule.split_budget and cfg.finetune.epochs < cfg.prune_steps:
        raise ConfigError(f"split_budget spreads finetune.epochs = {cfg.finetune.epochs} over {cfg.prune_steps} steps; "
                          "it needs at least one epoch per step")
    if cfg.control in ("reinit", "from_scratch") and cfg.base.checkpoint is not None:
        raise ConfigError(f"control {cfg.control} draws new initial weights from the base model's init recipe, which "
                          "a checkpoint base does not state; train the base model with the toolkit")
    if cfg.control == "layerwise_shuffle" and cfg.granularity != "weight":
        raise ConfigError("layerwise_shuffle permutes single weights within each layer; it needs weight granularity")
    if cfg.when == "at_init" and cfg.control == "from_scratch":
        raise ConfigError("at initialisation, from_scratch is the reinit control (new initial weights, the base "
                          "recipe's budget); use control = reinit")
    if cfg.when == "at_init" and cfg.base.checkpoint is not None:
        raise ConfigError("pruning at initialisation starts from the base model's initial weights; a checkpoint base "
                          "has none")
    if cfg.when == "at_init" and cfg.base.train.epochs < 1:
        raise ConfigError("pruning at initialisation trains the pruned network with the base recipe; it needs "
                          "base.train.epochs >= 1")


class Inverted:
    """A strategy whose scores are negated: it keeps what the original would prune first
    (the `invert` control). Only the scoring methods the original has are offered."""

    def __init__(self, strategy):
        self._strategy = strategy
        self.name = f"{strategy.name} (inverted)"
        if hasattr(strategy, "score_groups"):
            self.score_groups = lambda ctx: -strategy.score_groups(ctx)

    def __getattr__(self, name):
        return getattr(self._strategy, name)

    def score(self, ctx):
        scores = self._strategy.score(ctx)
        return {n: -s for n, s in scores.items()} if isinstance(scores, dict) else scores
