"""Exact selection primitives shared by the tracks: keep exactly k scores, or N of every M.

`top_k_mask(scores, k)`: of a 1-D tensor, the k largest, ties to the lower index, computed
without a full sort: t = the k-th largest score (`kthvalue`), keep every score > t, then the
lowest-indexed scores == t until k are kept.

`nm_mask(scores, n, m)`: N:M semi-structured sparsity (Mishra et al. 2021, "Accelerating Sparse
Deep Neural Networks"): in every group of M consecutive entries along a layer's flattened input
(reduction) dimension, the N highest, ties to the lower index (a stable sort); a layer whose input
dimension is not a multiple of M is a one-line ConfigError.

Both are deterministic; a tie-decided choice is therefore the lower index's, never a method's merit.
Given a `torch.Generator` (`generator=`), both break ties in a random order the generator draws
instead (a random permutation as the secondary key), so the seeds of a data-free method show
the spread its arbitrary rule creates; the decisions that are not ties are the same either way.

Ties as a measurement (`tied_top_k`, `tied_nm_groups`): a keep/prune decision is *made by a
tie* when the entry's score equals the selection's boundary score (the k-th largest) and the
entries of that score are split, some kept and some pruned: then every one of them could have
gone the other way. `tied_top_k(scores, k)` counts those entries (0 when the tied entries are
all kept or all pruned). In N:M a group's kept set is not unique when its N-th and (N+1)-th
largest scores are equal; `tied_nm_groups` counts those groups and the entries tied at the
boundary inside them.
"""
from __future__ import annotations

import torch

from shrinkbench.core.errors import ConfigError


def top_k_mask(scores: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool mask of a 1-D `scores` keeping the k largest, ties to the lower index (or, with a
    `generator`, a random subset of the tied entries it draws)."""
    return top_k_with_ties(scores, k, generator)[0]


def top_k_with_ties(scores: torch.Tensor, k: int, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, int]:
    """(`top_k_mask`, `tied_top_k`) of a 1-D `scores` from one threshold search."""
    n = scores.numel()
    if not 0 <= k <= n:
        raise ValueError(f"cannot keep {k} of {n} scores")
    if k == 0:
        return torch.zeros(n, dtype=torch.bool, device=scores.device), 0
    threshold = torch.kthvalue(scores.cpu() if scores.device.type == "mps" else scores,
                               n - k + 1).values.to(scores.device)
    keep = scores > threshold
    above = int(keep.sum().item())
    missing = k - above
    tied = torch.nonzero(scores == threshold).flatten()
    if generator is not None and missing < len(tied):
        tied = tied[torch.randperm(len(tied), generator=generator).to(tied.device)]
    keep[tied[:missing]] = True
    return keep, (len(tied) if above < k < above + len(tied) else 0)


def tied_top_k(scores: torch.Tensor, k: int) -> int:
    """How many of `scores` (any shape, taken flat) a top-k selection decides by its tie rule:
    the entries equal to the k-th largest score when they are split between kept and pruned
    (see the module docstring); 0 when k is 0 or all."""
    flat = scores.reshape(-1)
    n = flat.numel()
    if k <= 0 or k >= n:
        return 0
    threshold = torch.kthvalue(flat.cpu() if flat.device.type == "mps" else flat, n - k + 1).values.to(flat.device)
    above = int((flat > threshold).sum())
    equal = int((flat == threshold).sum())
    return equal if above < k < above + equal else 0


def tied_rows_top_k(scores: torch.Tensor, k: int, order: torch.Tensor | None = None) -> int:
    """`tied_top_k` of every row of a 2-D `scores` (the k largest of each row), summed; `order`
    (each row's indices by descending score, if known) saves a sort."""
    n = scores.shape[1]
    if k <= 0 or k >= n:
        return 0
    if order is None:
        boundary = torch.sort(scores, dim=1, descending=True).values[:, k - 1: k]
    else:
        boundary = scores.gather(1, order[:, k - 1: k])
    above = (scores > boundary).sum(1)
    equal = (scores == boundary).sum(1)
    split = (above < k) & (above + equal > k)
    return int(equal[split].sum())


SORT_BELOW_GROUPS = 16384
"""Fewer groups than this are sorted (one call; SparseGPT selects N:M on M columns at a time),
more are ranked by comparisons (`group_ranks`); both give the same selection."""


def group_ranks(groups: torch.Tensor) -> torch.Tensor | None:
    """Each entry's position in its row (a group) sorted by descending score, ties to the lower
    index: rank_i = #{j: s_j > s_i} + #{j < i: s_j == s_i}, the position a stable descending
    sort gives it, counted by M^2 comparisons of whole columns instead of sorting millions of
    rows of M (LLM N:M pruning: issue 24). None where a score is NaN (the sort's order of NaN
    is not this rule; callers sort then)."""
    if torch.isnan(groups).any():
        return None
    m = groups.shape[1]
    ranks = torch.zeros(groups.shape, dtype=torch.int8 if m < 128 else torch.int32, device=groups.device)
    columns = groups.unbind(1)
    for i in range(m):
        rank = ranks[:, i]
        for j in range(m):
            if j != i:
                rank += (columns[j] >= columns[i]) if j < i else (columns[j] > columns[i])
    return ranks


def tied_nm_groups(scores: torch.Tensor, n: int, m: int, keep: torch.Tensor | None = None) -> tuple[int, int]:
    """(groups whose kept set is not unique, entries tied at their boundary) of an N:M selection
    over `scores` (shaped like a weight, groups of M consecutive entries of each row). `keep`: an
    N:M keep-mask of `scores` already made (any tie order: only which values are kept matters).

    A group's kept set is not unique when its N-th and (N+1)-th largest scores are equal, i.e.
    when the smallest kept score equals the largest pruned one; its tied entries are those
    equal to that score."""
    groups = scores.reshape(scores.shape[0], -1).reshape(-1, m)
    if groups.shape[0] < SORT_BELOW_GROUPS or torch.isnan(groups).any():  # few groups, or NaN: sort
        ordered = torch.sort(groups.to(torch.float64), dim=1, descending=True).values
        nth, split = ordered[:, n - 1], ordered[:, n - 1] == ordered[:, n]
    else:
        kept = (nm_mask(scores, n, m) if keep is None else keep).reshape(groups.shape)
        nth = torch.where(kept, groups, float("inf")).amin(1)
        split = nth == torch.where(kept, float("-inf"), groups).amax(1)
    return _tie_counts(groups, nth, split)


def _tie_counts(groups: torch.Tensor, nth: torch.Tensor, split: torch.Tensor) -> tuple[int, int]:
    """(split groups, their entries equal to the group's N-th largest `nth`), compared only in
    the split groups (usually few)."""
    return int(split.sum()), int((groups[split] == nth[split][:, None]).sum())


def nm_mask_and_ties(scores: torch.Tensor, n: int, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(`nm_mask(scores, n, m)`, `tied_nm_groups(scores, n, m)`) with one sort where the groups
    are few (SparseGPT selects on M columns at a time, tens of thousands of calls per model):
    a stable descending sort of each group gives the kept positions (its first N, ties to the
    lower index) and the N-th and (N+1)-th largest values at once."""
    groups = scores.reshape(scores.shape[0], -1)
    if groups.shape[1] % m or groups.numel() // m >= SORT_BELOW_GROUPS:
        keep = nm_mask(scores, n, m)
        return keep, tied_nm_groups(scores, n, m, keep)
    groups = groups.reshape(-1, m)
    if torch.isnan(groups).any():
        return nm_mask(scores, n, m), tied_nm_groups(scores, n, m)
    values, order = torch.sort(groups, dim=1, descending=True, stable=True)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    nth, split = values[:, n - 1], values[:, n - 1] == values[:, n]
    return keep.reshape(scores.shape), _tie_counts(groups, nth, split)


def ordered_desc(scores: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices sorting each row of a 2-D `scores` by descending score; ties in index order, or
    (with a `generator`) in a random order it draws, one permutation of the columns for all rows."""
    if generator is None:
        return torch.argsort(-scores, dim=1, stable=True)
    shuffle = torch.randperm(scores.shape[1], generator=generator).to(scores.device)
    return shuffle[torch.argsort(-scores[:, shuffle], dim=1, stable=True)]


def nm_mask(scores: torch.Tensor, n: int, m: int, alive: torch.Tensor | None = None,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Keep-mask of one layer's `scores` (shaped like its weight): the N highest of every M
    consecutive entries along the flattened input dimension, ties to the lower index (with a
    `generator`: in a random order it draws)."""
    rows = scores.reshape(scores.shape[0], -1)
    if rows.shape[1] % m:
        raise ConfigError(f"N:M sparsity needs the input dimension to be a multiple of M={m}, got {rows.shape[1]}")
    if alive is not None:
        rows = rows.masked_fill(~alive.reshape(rows.shape).to(rows.device), float("-inf"))
    groups = rows.reshape(-1, m)
    ranks = group_ranks(groups) if generator is None and groups.shape[0] >= SORT_BELOW_GROUPS else None
    if ranks is not None:  # the stable descending sort's positions, counted (see group_ranks)
        keep = ranks < n
        if alive is not None:
            keep &= torch.isfinite(groups)
        return keep.reshape(scores.shape)
    groups = groups.to(torch.float64)
    if generator is None:
        order = torch.argsort(-groups, dim=1, stable=True)  # descending score, lower index first among ties
    else:  # an independent random order of each group's M positions as the secondary key
        keys = torch.rand(groups.shape, generator=generator, dtype=torch.float64).to(groups.device)
        shuffle = torch.argsort(keys, dim=1)
        order = shuffle.gather(1, torch.argsort(-groups.gather(1, shuffle), dim=1, stable=True))
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    if alive is not None:
        keep &= torch.isfinite(groups)  # a weight already pruned is never revived
    return keep.reshape(scores.shape)
