"""The training loop shared by base-model training and fine-tuning.

One step: forward, cross-entropy, backward (during which `masks.hook_gradients()` zeroes each
weight's gradient at pruned positions as it is written, so momentum and Adam state stay zero
there and the weights exactly 0), optimizer step, scheduler step; `masks.mask_weights()` runs
once at the end of every epoch as a guard (per step it was 3% of an MLP's step and changed no
number: see `shrinkbench.vision.pruning.masks`). A non-finite loss stops training with
`TrainingDivergedError` naming the epoch and step. With `amp` on a CUDA device the forward
pass runs under float16 autocast and the loss is scaled (`torch.amp.GradScaler`; the scaled
gradients are masked, 0 and 1 commute with unscaling, and a step with non-finite gradients is
skipped by the scaler). Max pooling runs through `shrinkbench.vision.kernels` (the same
function, faster on the CPU).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from shrinkbench.vision.config import TrainConfig
from shrinkbench.core.device import autocast, precision
from shrinkbench.core.errors import TrainingDivergedError
from shrinkbench.vision.kernels import fast_max_pooling


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at `step` of `total` steps.

    constant: 1; cosine: (1 + cos(pi * step / total)) / 2; step: 0.1 ** (#milestones at
    50% and 75% of total passed).
    """
    if schedule == "constant" or total <= 0:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
    return 0.1 ** sum(step >= m * total for m in (0.5, 0.75))


def train(model: nn.Module, batch_source: Callable[[torch.Generator], Iterable], cfg: TrainConfig,
          generator: torch.Generator, *, masks=None, device: torch.device | str = "cpu",
          evaluate: Callable[[nn.Module], dict[str, float]] | None = None,
          log: list[dict[str, Any]] | None = None, tag: str = "", amp: bool = False,
          on_epoch: Callable[[dict[str, Any]], None] | None = None, start_epoch: int = 0,
          stop_after: int | None = None, step_hook=None) -> list[dict[str, Any]]:
    """Train `model` for epochs `start_epoch + 1 .. stop_after` (default: `cfg.epochs`) of
    `cfg`'s schedule: the learning rate follows the schedule over all `cfg.epochs` epochs, so
    a run that starts at epoch k continues a schedule (learning-rate rewinding) and one that
    stops after epoch k is that schedule's first k epochs (the weights a rewind goes back to).
    Returns (and appends to `log`) one entry per epoch.

    `batch_source(generator)` yields shuffled (x, y) training batches for one epoch, drawn
    from `generator`; `evaluate(model)` (optional) gives validation metrics per epoch;
    `step_hook(step, total)` (optional) runs after every optimizer step and may return new
    masks (gradual pruning), which the loop enforces from then on. Max pooling computes
    through the faster kernel of the same function (`shrinkbench.vision.kernels`).
    """
    log = [] if log is None else log
    last = cfg.epochs if stop_after is None else min(stop_after, cfg.epochs)
    if last <= start_epoch:
        return log
    device = torch.device(device)
    if masks is not None:
        masks.attach(model)
    optimizer = make_optimizer(model.parameters(), cfg)
    use_amp = precision(amp, device) == "float16-mixed"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    hooks = [masks.hook_gradients()] if masks is not None else []  # grad *= mask inside backward
    try:
        with fast_max_pooling(model):
            _epochs(model, batch_source, cfg, generator, masks, hooks, device, evaluate, log, tag, use_amp, scaler,
                    optimizer, on_epoch, start_epoch, last, step_hook)
    finally:
        for h in hooks:
            h.remove()
    return log


def _epochs(model, batch_source, cfg, generator, masks, hooks: list, device, evaluate, log, tag, use_amp, scaler,
            optimizer, on_epoch, start_epoch, last, step_hook) -> None:
    """The epochs of `train`; `hooks` holds the gradient hooks of the masks in force."""
    step, total = 0, None
    for epoch in range(start_epoch + 1, last + 1):
        model.train()
        batches = batch_source(generator)
        if total is None:
            total = cfg.epochs * len(batches)
            step = start_epoch * len(batches)
        start = time.perf_counter()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        for x, y in batches:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, step, total)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, use_amp):
                out = model(x)
                loss = F.cross_entropy(out, y)
            if not torch.isfinite(loss):
                raise TrainingDivergedError(
                    f"{tag or 'training'}: loss became {loss.item()} at epoch {epoch}, step {step + 1} "
                    f"(lr {optimizer.param_groups[0]['lr']:.3g}); lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            step += 1
            if step_hook is not None:
                new = step_hook(step, total)
                if new is not None:
                    for h in hooks:
                        h.remove()
                    masks = new.attach(model)
                    hooks[:] = [masks.hook_gradients()]
                    masks.mask_optimizer_state(optimizer)
            n = y.shape[0]
            seen += n
            loss_sum += loss.detach().double() * n
            correct += (out.detach().argmax(1) == y).sum()
        if masks is not None:
            masks.mask_weights()  # the guard, once per epoch
        entry: dict[str, Any] = {
            "phase": tag, "epoch": epoch, "lr_end": optimizer.param_groups[0]["lr"],
            "train_loss": float(loss_sum.item()) / max(seen, 1),
            "train_top1": 100.0 * int(correct.item()) / max(seen, 1),
        }
        entry["seconds"] = time.perf_counter() - start
        if evaluate is not None:
            entry.update({f"val_{k}": v for k, v in evaluate(model).items()})
        log.append(entry)
        if on_epoch is not None:
            on_epoch(entry)
