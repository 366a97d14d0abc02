"""Channel criteria: how a group of coupled channels is scored (higher = keep), each a
registered strategy of granularity `channel` in a global and a layerwise scope.

A channel strategy scores the output channels of every producer layer (`score(ctx)` returns
`{layer: tensor of length C_out}`), and a group's score is the sum over its producer channels
(`GroupSet.group_scores`); criteria that score a group as a whole override `score_groups`.
With F_c the weights of filter (or neuron) c of a layer, flattened:

    l1:       s_c = ||F_c||_1                          Li, Kadav, Durdanovic, Samet, Graf 2017
    l2:       s_c = ||F_c||_2                          (the L2 variant of the same)
    fpgm:     s_c = sum_j ||F_c - F_j||_2 over the layer's filters j: the filters nearest the
              geometric median (smallest total distance) are the most replaceable
                                                       He, Liu, Wang, Hu, Yang 2019 (FPGM)
    bn_scale: s_g = sum over the group's BatchNorm channels of |gamma|
                                                       Liu, Li, Shen, Huang, Yan, Zhang 2017
    taylor:   s_g = mean over score batches b of (sum over the parameters p that produce the
              group's channels, its filter rows, biases and BatchNorm scales and shifts, of
              g_p,b * w_p)^2, g = dL/dp on batch b     Molchanov, Mallya, Tyree, Frosio, Kautz 2019
    random:   s_g ~ U[0, 1) i.i.d. from the run generator, in group order

A user's own channel criterion is a `ChannelStrategy` subclass in a file of its own, scored
like the built-ins (see the README).
"""
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from shrinkbench.vision.pruning.base import STRATEGIES, Strategy

if TYPE_CHECKING:  # pragma: no cover
    import torch


class ChannelStrategy(Strategy):
    """Base class of channel strategies: `score(ctx)` gives each producer layer's output
    channels a score (`ctx.weights` holds those layers' weights, `ctx.groups` the groups);
    `score_groups(ctx)` turns them into one score per group (the sum over its producers)."""

    granularities = ("channel",)

    def score_groups(self, ctx) -> "torch.Tensor":
        from shrinkbench.vision.structured.prune import checked_channel_scores

        return ctx.groups.group_scores(checked_channel_scores(self, self.score(ctx), ctx))


def _flat_rows(w):
    return w.detach().reshape(w.shape[0], -1).double()


class FilterNorm(ChannelStrategy):
    """Filter norm ||F_c||_p (p = 1: Li et al. 2017; p = 2: its L2 variant)."""

    def __init__(self, p: int, scope: str, name: str):
        self.p, self.scope, self.name = p, scope, name
        self.criterion = f"l{p}"
        self.description = f"filter norm ||F_c||_{p}, " + ("ranked over all groups" if scope == "global" else
                                                          "each layer removes the same fraction")

    def score(self, ctx):
        return {n: _flat_rows(w).norm(p=self.p, dim=1) for n, w in ctx.weights.items()}


class GeometricMedian(ChannelStrategy):
    """FPGM (He et al. 2019): sum of distances of a filter to the layer's other filters."""

    criterion = "fpgm"

    def __init__(self, scope: str, name: str):
        self.scope, self.name = scope, name
        self.description = "distance to the layer's geometric median (sum_j ||F_c - F_j||_2), " + (
            "ranked over all groups" if scope == "global" else "each layer removes the same fraction")

    def score(self, ctx):
        import torch

        out = {}
        for n, w in ctx.weights.items():
            rows = _flat_rows(w)
            out[n] = torch.cdist(rows, rows).sum(dim=1)
        return out


class BatchNormScale(ChannelStrategy):
    """Network slimming (Liu et al. 2017): the group's BatchNorm scales |gamma|, summed."""

    criterion = "bn_scale"

    def __init__(self, scope: str, name: str):
        self.scope, self.name = scope, name
        self.description = "BatchNorm scale |gamma| summed over the group's norms, " + (
            "ranked over all groups" if scope == "global" else "each layer removes the same fraction")

    def check(self, groups) -> None:
        from shrinkbench.core.errors import ConfigError

        bare = [g for g in groups.groups if not g.norms]
        if bare:
            raise ConfigError(f"strategy {self.name!r} scores channels by their BatchNorm scale, but "
                              f"{len(bare)} channel groups have no BatchNorm (e.g. {bare[0].describe()}); "
                              "use a filter-norm or Taylor criterion for this model")

    def score_groups(self, ctx):
        import torch

        self.check(ctx.groups)
        modules = dict(ctx.model.named_modules())
        return torch.tensor([sum(float(modules[m].weight.detach()[c].abs()) for m, c in g.norms)
                             for g in ctx.groups.groups], dtype=torch.float64)


class GroupTaylor(ChannelStrategy):
    """First-order Taylor importance of the whole group (Molchanov et al. 2019)."""

    criterion = "taylor"

    def __init__(self, scope: str, name: str):
        self.scope, self.name = scope, name
        self.description = "(sum of g*w over the group's producing parameters)^2, mean over score batches, " + (
            "ranked over all groups" if scope == "global" else "each layer removes the same fraction")

    def score_groups(self, ctx):
        import torch

        producing = {}
        for g in ctx.groups.groups:
            for s in g.slices:
                if s.dim == 0 and not s.virtual:
                    producing.setdefault(s.tensor, []).append((g.index, s.index))
        names = sorted(producing)
        per_batch = ctx.parameter_gradients(names)
        params = dict(ctx.model.named_parameters())
        scores = torch.zeros(len(ctx.groups.groups), dtype=torch.float64)
        for grads in per_batch:
            z = torch.zeros_like(scores)
            for name in names:
                contribution = (grads[name].double() * params[name].detach().double())
                rows = contribution.reshape(contribution.shape[0], -1).sum(dim=1)
                for index, channels in producing[name]:
                    z[index] += rows[list(channels)].sum()
            scores += z ** 2
        return scores / max(len(per_batch), 1)


class RandomChannels(ChannelStrategy):
    """Random groups: s_g ~ U[0, 1) from the run generator."""

    criterion = "random"
    scope = "layerwise"
    name = "random_channels"
    description = "s ~ U[0, 1) per group, each layer removes the same fraction"

    def score_groups(self, ctx):
        import torch

        return torch.rand(len(ctx.groups.groups), generator=ctx.generator, dtype=torch.float64)


_BUILTINS = []
for _scope in ("global", "layerwise"):
    _BUILTINS += [(f"{_scope}_l1", partial(FilterNorm, 1, _scope, f"{_scope}_l1")),
                  (f"{_scope}_l2", partial(FilterNorm, 2, _scope, f"{_scope}_l2")),
                  (f"{_scope}_fpgm", partial(GeometricMedian, _scope, f"{_scope}_fpgm")),
                  (f"{_scope}_bn_scale", partial(BatchNormScale, _scope, f"{_scope}_bn_scale")),
                  (f"{_scope}_taylor", partial(GroupTaylor, _scope, f"{_scope}_taylor"))]
for _name, _factory in _BUILTINS:
    STRATEGIES.register(_name, _factory)
STRATEGIES.register("random_channels", RandomChannels)
