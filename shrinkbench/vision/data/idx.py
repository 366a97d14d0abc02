"""IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a 4-byte magic number
``0x00 0x00 <type> <ndim>``, then `ndim` big-endian uint32 sizes, then the values in C
order, big-endian. Type 0x08 is unsigned byte, so label files start with 2049 (0x0801,
1 dimension) and image files with 2051 (0x0803, 3 dimensions). Compression is detected
from the gzip magic bytes, not from the file name.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from shrinkbench.vision.data.spec import DataFormatError, one_line

IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
LABELS_MAGIC = 2049
IMAGES_MAGIC = 2051
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it starts with the gzip magic bytes."""
    with open(path, "rb") as handle:
        raw = handle.read()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise DataFormatError(f"{path}: corrupt gzip data ({one_line(err)}); delete the file and fetch it again") from None


def parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """Decode IDX bytes to an array of the stored shape (native byte order)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataFormatError(f"{path}: not an IDX file (magic {raw[:4].hex() or 'missing'}, expected 0000<type><ndim>)")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: IDX header truncated ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataFormatError(
            f"{path}: IDX file of shape {shape} should have {expected} bytes but has {len(raw)} (truncated or corrupt)"
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def read_idx(path: Path, magic: int | None = None) -> np.ndarray:
    """Read one IDX file; `magic` (e.g. 2051 for images) is checked when given."""
    raw = read_bytes(path)
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic is not None and found != magic:
        raise DataFormatError(f"{path}: IDX magic number is {found}, expected {magic}")
    return parse_idx(raw, path)


def read_image_label_pair(images: Path, labels: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x H x W uint8) and labels (N int64) from two matching IDX files."""
    x = read_idx(images, IMAGES_MAGIC)
    y = read_idx(labels, LABELS_MAGIC).astype(np.int64)
    if len(x) != len(y):
        raise DataFormatError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataFormatError(f"{labels}: labels must lie in 0..{num_classes - 1}, found {y.min()}..{y.max()}")
    return x, y
