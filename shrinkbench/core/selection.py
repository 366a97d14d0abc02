"""Exact selection primitives shared by the tracks: keep exactly k scores, or N of every M.

`top_k_mask(scores, k)`: of a 1-D tensor, the k largest, ties to the lower index, computed
without a full sort: t = the k-th largest score (`kthvalue`), keep every score > t, then the
lowest-indexed scores == t until k are kept.

`nm_mask(scores, n, m)`: N:M semi-structured sparsity (Mishra et al. 2021, "Accelerating Sparse
Deep Neural Networks"): in every group of M consecutive entries along a layer's flattened input
(reduction) dimension, the N highest, ties to the lower index (a stable sort); a layer whose input
dimension is not a multiple of M is a one-line ConfigError.

Both are deterministic; a tie-decided choice is therefore the lower index's, never a method's merit.
"""
from __future__ import annotations

import torch

from shrinkbench.core.errors import ConfigError


def top_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of a 1-D `scores` keeping the k largest, ties to the lower index."""
    n = scores.numel()
    if not 0 <= k <= n:
        raise ValueError(f"cannot keep {k} of {n} scores")
    if k == 0:
        return torch.zeros(n, dtype=torch.bool, device=scores.device)
    threshold = torch.kthvalue(scores.cpu() if scores.device.type == "mps" else scores,
                               n - k + 1).values.to(scores.device)
    keep = scores > threshold
    missing = k - int(keep.sum().item())
    tied = torch.nonzero(scores == threshold).flatten()[:missing]
    keep[tied] = True
    return keep


def nm_mask(scores: torch.Tensor, n: int, m: int, alive: torch.Tensor | None = None) -> torch.Tensor:
    """Keep-mask of one layer's `scores` (shaped like its weight): the N highest of every M
    consecutive entries along the flattened input dimension, ties to the lower index."""
    rows = scores.reshape(scores.shape[0], -1).to(torch.float64)
    if rows.shape[1] % m:
        raise ConfigError(f"N:M sparsity needs the input dimension to be a multiple of M={m}, got {rows.shape[1]}")
    if alive is not None:
        rows = rows.masked_fill(~alive.reshape(rows.shape).to(rows.device), float("-inf"))
    groups = rows.reshape(-1, m)
    order = torch.argsort(-groups, dim=1, stable=True)  # descending score, lower index first among ties
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    if alive is not None:
        keep &= torch.isfinite(groups)  # a weight already pruned is never revived
    return keep.reshape(scores.shape)
