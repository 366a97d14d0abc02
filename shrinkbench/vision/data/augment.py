"""Data augmentation drawn from an explicit `torch.Generator`.

`pad_crop_flip` works on a whole in-memory batch at once; `random_resized_crop_box` gives
the crop of one on-disk image. Both draw only from the generator they are given, so a
generator seeded the same way gives the same augmented data bit for bit.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pad_crop_flip(x: torch.Tensor, padding: int, flip_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """Per example: zero-pad by `padding` pixels, crop back to H x W at a uniform offset,
    then mirror left-right with probability `flip_p`.

    Draw order: offsets ``(dy, dx) = randint(0, 2 * padding + 1, (B, 2))`` (only when
    padding > 0), then ``flip = rand(B) < flip_p`` (only when flip_p > 0). The crop and flip
    are one gather: output pixel (i, j) of example b is padded pixel
    ``(dy_b + i, dx_b + j)``, or ``(dy_b + i, dx_b + W - 1 - j)`` when flipped.
    """
    batch, channels, height, width = x.shape
    if batch == 0 or (padding == 0 and flip_p == 0):
        return x
    padded = F.pad(x, (padding,) * 4) if padding else x
    padded_width = width + 2 * padding
    if padding:
        offsets = torch.randint(0, 2 * padding + 1, (batch, 2), generator=generator)
    else:
        offsets = torch.zeros(batch, 2, dtype=torch.int64)
    rows = offsets[:, :1] + torch.arange(height)  # B x H
    cols = offsets[:, 1:] + torch.arange(width)  # B x W
    if flip_p > 0:
        flip = torch.rand(batch, generator=generator) < flip_p
        cols = torch.where(flip[:, None], cols.flip(1), cols)
    flat = (rows[:, :, None] * padded_width + cols[:, None, :]).reshape(batch, 1, height * width)
    out = torch.gather(padded.reshape(batch, channels, -1), 2, flat.expand(batch, channels, height * width))
    return out.reshape(batch, channels, height, width)


def random_resized_crop_box(
    height: int,
    width: int,
    generator: torch.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> tuple[int, int, int, int]:
    """(top, left, h, w) of an Inception-style random crop (Szegedy et al., 2015).

    Up to `attempts` times: area fraction ``s ~ U(scale)``, aspect ``r = exp(U(log ratio))``,
    ``w = round(sqrt(s * H * W * r))``, ``h = round(sqrt(s * H * W / r))``; the first box that
    fits is placed uniformly. Otherwise the largest centred box whose aspect is clamped to
    `ratio`.
    """
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(attempts):
        draws = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * draws[0])
        aspect = math.exp(log_lo + (log_hi - log_lo) * draws[1])
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            return top, left, h, w
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        h, w = height, round(height * ratio[1])
    else:
        h, w = height, width
    return (height - h) // 2, (width - w) // 2, h, w
