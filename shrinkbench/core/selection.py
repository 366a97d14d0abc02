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
"""Fewer groups than this are selected row by row (`top_k_rows`: one call; SparseGPT selects N:M
on M columns at a time), more through their columns (`nth_largest_columns`); both give the
stable sort's selection."""


def nth_largest_columns(groups: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(n-th largest, (n+1)-th largest) entry of every row of `groups` (G rows of M, no NaN), by
    n+1 passes of a bubble sorting network over the M columns: each compare-exchange is a
    `maximum` and a `minimum` of two whole columns, so a layer's millions of groups take about
    M(n+1) elementwise passes over columns instead of millions of tiny sorts (LLM N:M pruning,
    issue 24). Pass p carries the largest of columns p..M-1 to column p."""
    columns = list(groups.T.contiguous().unbind(0))
    m = len(columns)
    for p in range(min(n + 1, m - 1)):
        for j in range(m - 1, p, -1):
            columns[j - 1], columns[j] = torch.maximum(columns[j - 1], columns[j]), torch.minimum(columns[j - 1], columns[j])
    return columns[n - 1], columns[n]


def tied_nm_groups(scores: torch.Tensor, n: int, m: int) -> tuple[int, int]:
    """(groups whose kept set is not unique, entries tied at their boundary) of an N:M selection
    over `scores` (shaped like a weight, groups of M consecutive entries of each row), whatever
    order the ties were broken in.

    A group's kept set is not unique when its N-th and (N+1)-th largest scores are equal; its
    tied entries are those equal to that score."""
    groups = scores.reshape(scores.shape[0], -1).reshape(-1, m)
    if groups.shape[0] < SORT_BELOW_GROUPS or has_nan(groups):  # few groups, or NaN: sort
        ordered = torch.sort(groups.to(torch.float64), dim=1, descending=True).values
        nth, after = ordered[:, n - 1], ordered[:, n]
    else:
        nth, after = nth_largest_columns(groups, n)
    split = nth == after  # entries compared only in the split groups (usually few)
    return int(split.sum()), int((groups[split] == nth[split][:, None]).sum())


def top_k_rows(scores: torch.Tensor, k: int, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, int]:
    """(keep, tied entries) of a 2-D `scores`: each row's k largest, ties to the lower index
    (exactly the first k of a stable descending sort of the row), with `generator` in the order
    of one random permutation of the columns it draws for all rows (as `ordered_desc`); the tied
    entries are `tied_rows_top_k(scores, k)`: in the rows whose k-th largest score is held by
    kept and pruned entries alike, the entries equal to it.

    By selection, not sorting (issue 24: a row's sort was most of Wanda's time): b = the row's
    k-th largest (`kthvalue`); the entries >= b are the k kept unless b is split, in which case
    the row keeps its entries > b and the lowest-indexed entries == b up to k. Rows are never
    sorted unless a score is NaN (the sort's NaN order is not this rule; then the sort decides)."""
    cols = scores.shape[1]
    if generator is not None:
        shuffle = torch.randperm(cols, generator=generator).to(scores.device)
        keep_shuffled, tied = top_k_rows(scores[:, shuffle], k)
        keep = torch.empty_like(keep_shuffled)
        keep[:, shuffle] = keep_shuffled
        return keep, tied
    if k <= 0 or k >= cols:
        return torch.full(scores.shape, k > 0, dtype=torch.bool, device=scores.device), 0
    if has_nan(scores):
        order = ordered_desc(scores)
        keep = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, order[:, :k], True)
        return keep, tied_rows_top_k(scores, k, order)
    keep, _, tied = _select_rows(scores, k)
    return keep, tied


def _select_rows(scores: torch.Tensor, k: int, boundary: torch.Tensor | None = None,
                 split: torch.Tensor | None = None) -> tuple[torch.Tensor, int, int]:
    """(keep, split rows, tied entries) of `top_k_rows` on NaN-free `scores`, 0 < k < columns, by
    each row's k-th largest `boundary` (a column; found by `kthvalue` when not given) and whether
    it is `split` (held by kept and pruned entries alike)."""
    if boundary is None:
        on_cpu = scores.cpu() if scores.device.type == "mps" else scores  # kthvalue is not on MPS
        boundary = torch.kthvalue(on_cpu, scores.shape[1] - k + 1, dim=1, keepdim=True).values.to(scores.device)
    keep = scores >= boundary
    if split is None:  # every row has at least k entries >= its k-th largest: more in all, some row has more
        if int(keep.sum()) == k * scores.shape[0]:
            return keep, 0, 0
        split = keep.sum(1) > k
    if not bool(split.any()):
        return keep, 0, 0
    row_scores, row_boundary = scores[split], boundary[split]
    equal = row_scores == row_boundary
    missing = k - (row_scores > row_boundary).sum(1, keepdim=True)
    keep[split] = (row_scores > row_boundary) | (equal & (equal.cumsum(1) <= missing))
    return keep, int(split.sum()), int(equal.sum())


def nm_mask_and_ties(scores: torch.Tensor, n: int, m: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(`nm_mask(scores, n, m)`, `tied_nm_groups(scores, n, m)`) from one selection: the groups
    are the rows of `_select_rows`, each group's N-th largest found by `kthvalue` where they are
    few (SparseGPT selects N:M on M columns at a time, tens of thousands of calls per model) and
    through the columns where they are many (`nth_largest_columns`)."""
    groups = scores.reshape(scores.shape[0], -1)
    if groups.shape[1] % m or has_nan(groups):  # a one-line error, or NaN: the sort
        return nm_mask(scores, n, m), tied_nm_groups(scores, n, m)
    groups = groups.reshape(-1, m)
    keep, split, tied = _select_rows(groups, n, *_group_boundary(groups, n))
    return keep.reshape(scores.shape), (split, tied)


def _group_boundary(groups: torch.Tensor, n: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(each group's N-th largest as a column, whether it is split) for `_select_rows`: through the
    columns for many groups, (None, None) for few (`_select_rows` finds them by `kthvalue`)."""
    if groups.shape[0] < SORT_BELOW_GROUPS:
        return None, None
    nth, after = nth_largest_columns(groups, n)
    return nth[:, None], nth == after


def has_nan(scores: torch.Tensor) -> bool:
    """Whether any score is NaN, read from the sum first (a NaN entry makes it NaN; a NaN sum
    from inf - inf or overflow is checked entry by entry)."""
    return not bool(torch.isfinite(scores.sum())) and bool(torch.isnan(scores).any())


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
    if generator is None and not has_nan(groups):  # the stable sort's selection, by selecting
        keep = _select_rows(groups, n, *_group_boundary(groups, n))[0]
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
