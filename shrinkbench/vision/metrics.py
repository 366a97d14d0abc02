"""Metrics computed from a model's predictions over a whole data split.

Accuracy is correct / N over the whole split: counts are summed over batches and divided
once, so a partial last batch weighs exactly as many examples as it holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from shrinkbench.core.metrics.registry import metric

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn


@dataclass
class PredictionCounts:
    """Running sums over a split: examples, top-1 and top-5 hits, summed loss."""

    n: int = 0
    correct1: int = 0
    correct5: int = 0
    loss_sum: float = 0.0

    def add(self, logits: "torch.Tensor", targets: "torch.Tensor") -> None:
        import torch.nn.functional as F

        k = min(5, logits.shape[1])
        topk = logits.topk(k, dim=1).indices
        hits = topk.eq(targets.unsqueeze(1))
        self.n += targets.numel()
        self.correct1 += int(hits[:, 0].sum().item())
        self.correct5 += int(hits.any(dim=1).sum().item())
        self.loss_sum += float(F.cross_entropy(logits.float(), targets, reduction="sum").item())


@metric(unit="%", higher_is_better=True, kind="accuracy")
def top1(counts: PredictionCounts) -> float:
    """Top-1 accuracy in percent over the whole split:
    top1 = 100 x #{examples whose highest logit is the true class} / N."""
    return 100.0 * counts.correct1 / counts.n


@metric(unit="%", higher_is_better=True, kind="accuracy")
def top5(counts: PredictionCounts) -> float:
    """Top-5 accuracy in percent over the whole split:
    top5 = 100 x #{examples whose true class is among the 5 highest logits} / N
    (among all logits when there are fewer than 5 classes)."""
    return 100.0 * counts.correct5 / counts.n


@metric(unit="nats", higher_is_better=False, kind="accuracy")
def loss(counts: PredictionCounts) -> float:
    """Mean cross-entropy over the whole split: loss = (1/N) x sum_i -log softmax(z_i)[y_i]."""
    return counts.loss_sum / counts.n


def predict_counts(model: nn.Module, batches: Iterable, device: torch.device | str = "cpu") -> PredictionCounts:
    """Run `model` in eval mode over `batches` of (x, y) and sum the counts (max pooling
    through the faster kernel of the same function, `shrinkbench.vision.kernels`)."""
    import torch

    from shrinkbench.vision.kernels import fast_max_pooling

    counts = PredictionCounts()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), fast_max_pooling(model):
            for x, y in batches:
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                counts.add(model(x), y)
    finally:
        model.train(was_training)
    if counts.n == 0:
        raise ValueError("cannot evaluate on an empty split")
    return counts


def evaluate(model: nn.Module, batches: Iterable, device: torch.device | str = "cpu") -> dict[str, float]:
    """top1, top5 and loss of `model` over the whole split."""
    counts = predict_counts(model, batches, device)
    return {"top1": top1(counts), "top5": top5(counts), "loss": loss(counts)}
