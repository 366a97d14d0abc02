"""What a strategy may look at when it scores weights: `ScoringContext`.

Gradients and activations are computed lazily (only strategies that ask pay for them),
once, and cached. Both are computed with every module in EVAL mode and the modules' own
training flags restored afterwards. Reasons: batch-norm running statistics are not
updated by scoring (the pruned model evaluated before fine-tuning is the base model minus
the pruned weights, nothing else), dropout draws nothing from the global RNG (scores are a
function of the weights, the score batches and the run generator only), and the scores
measure the network as it is evaluated. Neither touches `.grad` of any parameter.

    gradients:   g_l = d/dW_l [ (1/N) * sum over all N score examples of CE(f(x), y) ]
    activations: a_l[i] = mean over score examples (and spatial positions for convolutions)
                 of |x_i|, x = the input of layer l, i = its input channel / feature
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from shrinkbench.core.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from shrinkbench.vision.pruning.masks import MaskSet

Batch = tuple["torch.Tensor", "torch.Tensor"]


@dataclass(frozen=True)
class RunInfo:
    """What a published criterion may need of the run beyond the model it prunes: the run's
    config (as a dict: model, dataset, target, budgets, ...), its run seed and base seed, and the
    prunable weights as they were initialised (`initial_weights()`: the base model built from the
    base seed before any training, so `|w| * |w - w_init|`, the movement of a weight since
    initialisation, is one line). None where the base model is a user's checkpoint, whose
    initial weights are unknown."""

    config: Mapping[str, Any]
    seed: int
    base_seed: int
    initial_state: Callable[[], dict] | None = None
    """The model's state dict at initialisation (built on call), or None (a checkpoint base)."""


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Every module in eval mode inside; each module's own training flag restored after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


class ScoringContext:
    """The model, its prunable weights, the score batches, the run generator and the current
    masks (weights already pruned must stay pruned; `prune` gives them score -inf).
    `dry_run` is True while the toolkit checks a user's strategy on a random batch before a
    sweep starts (`shrinkbench.vision.validate`): a strategy may skip costly side effects then.
    `keep` is the number of prunable weights the selection will keep (None where it depends
    on the scores, e.g. a speedup target), `input_shape` the shape of one example (C, H, W):
    what iterative and data-free criteria (SynFlow) need. `run` is the run's `RunInfo` (config,
    seeds, initial weights; None outside a run, e.g. when `prune` is called on a bare model)."""

    def __init__(self, model: nn.Module, weights: dict[str, nn.Parameter],
                 batches: Sequence[Batch], generator: torch.Generator,
                 masks: MaskSet | None = None, dry_run: bool = False, keep: int | None = None,
                 input_shape: tuple[int, ...] = (), run: RunInfo | None = None):
        self.run = run
        self.dry_run = dry_run
        self.keep = keep
        self.input_shape = tuple(input_shape)
        self.model = model
        self.weights = weights
        self.batches = list(batches)
        self.generator = generator
        self.masks = masks
        self._gradients: dict[str, torch.Tensor] | None = None
        self._activations: dict[str, torch.Tensor] | None = None

    def initial_weights(self) -> dict[str, "torch.Tensor"]:
        """The prunable weights as initialised from the base seed (same names and shapes as
        `weights`, on their device), or a one-line ConfigError where they are unknown: outside a
        run, or a base model loaded from a checkpoint."""
        if self.run is None or self.run.initial_state is None:
            why = "outside a run" if self.run is None else "the base model is a checkpoint"
            raise ConfigError(f"the initial weights are not known here ({why}); a strategy that needs them "
                              "runs from a trained or at-init base model")
        state = self.run.initial_state()
        return {name: state[f"{name}.weight"].to(w.device) for name, w in self.weights.items()}

    @property
    def device(self) -> torch.device:
        return next(iter(self.weights.values())).device

    def _batches_on_device(self, what: str) -> list[Batch]:
        if not self.batches:
            raise ConfigError(f"{what} scores need at least one score batch, got none")
        return [(x.to(self.device), y.to(self.device)) for x, y in self.batches]

    def gradients(self) -> dict[str, "torch.Tensor"]:
        """Per prunable layer, d/dW of the mean cross-entropy over all score examples (eval
        mode; batches of any sizes weigh each example equally)."""
        import torch
        import torch.nn.functional as F

        if self._gradients is None:
            batches = self._batches_on_device("gradient")
            names, params = list(self.weights), list(self.weights.values())
            sums = [torch.zeros_like(p, dtype=torch.float64) for p in params]
            n_examples = sum(len(y) for _, y in batches)
            frozen = [p for p in params if not p.requires_grad]
            for p in frozen:
                p.requires_grad_(True)
            try:
                with eval_mode(self.model), torch.enable_grad():
                    for x, y in batches:
                        loss = F.cross_entropy(self.model(x), y, reduction="sum") / n_examples
                        grads = torch.autograd.grad(loss, params, allow_unused=True)
                        for acc, g in zip(sums, grads):
                            if g is not None:
                                acc += g.double()
            finally:
                for p in frozen:
                    p.requires_grad_(False)
            self._gradients = {n: s.to(p.dtype) for n, s, p in zip(names, sums, params)}
        return self._gradients

    def activations(self) -> dict[str, "torch.Tensor"]:
        """Per prunable layer, the mean |input| per input channel (Conv, ConvTranspose) or
        input feature (Linear), over score examples and spatial positions (eval mode)."""
        import torch
        from torch import nn

        if self._activations is None:
            batches = self._batches_on_device("activation")
            modules = {name: self.model.get_submodule(name) for name in self.weights}
            sums: dict[str, torch.Tensor] = {}
            counts: dict[str, int] = {name: 0 for name in modules}

            def hook_for(name: str, module: nn.Module):
                def hook(_module, inputs, _output):
                    x = inputs[0].detach()
                    if isinstance(module, nn.Linear):
                        channel_dim = x.dim() - 1                  # (..., in_features)
                    else:
                        channel_dim = 1 if x.dim() == module.weight.dim() else 0  # batched?
                    dims = [d for d in range(x.dim()) if d != channel_dim]
                    summed = x.abs().double()
                    if dims:  # sum over an empty dim list would reduce everything
                        summed = summed.sum(dim=dims)
                    sums[name] = sums[name] + summed if name in sums else summed
                    counts[name] += x.numel() // x.shape[channel_dim]
                return hook

            handles = [m.register_forward_hook(hook_for(n, m)) for n, m in modules.items()]
            try:
                with eval_mode(self.model), torch.no_grad():
                    for x, _ in batches:
                        self.model(x)
            finally:
                for handle in handles:
                    handle.remove()
            missing = [n for n in modules if n not in sums]
            if missing:
                raise ConfigError(f"activation scores: layer {missing[0]!r} was not called in "
                                  f"the forward pass")
            self._activations = {n: (sums[n] / counts[n]).to(self.weights[n].dtype)
                                 for n in modules}
        return self._activations
