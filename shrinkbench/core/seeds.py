"""Seeds: every use of a seed gets its own generator, derived from (seed, purpose).

`derive_seed(seed, purpose)` = the first 15 hex digits of sha256("<seed>/<purpose>"), a
63-bit integer, so that the streams of two purposes (score batches, random masks, data order,
dropout, calibration windows, ...) are independent and no library code touches torch's global
RNG. Both tracks use these two functions; their purposes are listed in each runner's docstring.
"""
from __future__ import annotations

import hashlib


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 63-bit seed for one use of a seed: sha256("<seed>/<purpose>")."""
    return int(hashlib.sha256(f"{seed}/{purpose}".encode()).hexdigest()[:15], 16)


def generator(seed: int, purpose: str):
    """A `torch.Generator` seeded with `derive_seed(seed, purpose)`."""
    import torch

    return torch.Generator().manual_seed(derive_seed(seed, purpose))
