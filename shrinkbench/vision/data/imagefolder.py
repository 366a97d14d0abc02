"""ImageNet-style image folders read from disk: ``<dir>/{train,val}/<class>/<image>``.

Classes are the sorted sub-folder names of ``train``; ``val`` must use class folders too
(names a subset of train's). Items are uint8 C x H x W tensors; batches are normalised by
`shrinkbench.vision.data.batching` after collation (uint8 is 4x cheaper to pass between workers).

Transforms (the standard ImageNet ones, He et al. 2016 / torchvision references):
  train: Inception-style random resized crop to 224 (area 8-100 %, aspect 3/4-4/3,
         bilinear, antialiased), then horizontal flip with p = 0.5;
  eval:  resize the shorter side to 256 (bilinear, antialiased), centre crop 224.
Random choices come from a per-example `torch.Generator` seeded with the seed the sampler
passes along with the index, so results do not depend on the number of workers.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from shrinkbench.vision.data.augment import random_resized_crop_box
from shrinkbench.vision.data.spec import DataFormatError, one_line

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".webp", ".tif", ".tiff"})
INPUT_SIZE = 224
RESIZE_SIZE = 256


@dataclass(frozen=True, eq=False)
class ImageFolderSplit(Dataset):
    """A list of (image path, label) with the train (augmenting) or eval transform."""

    samples: tuple[tuple[str, int], ...]
    classes: tuple[str, ...]
    augment: bool = False
    input_size: int = INPUT_SIZE
    resize_size: int = RESIZE_SIZE

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples], dtype=torch.int64)

    def subset(self, indices: torch.Tensor) -> "ImageFolderSplit":
        return dataclasses.replace(self, samples=tuple(self.samples[int(i)] for i in indices))

    def with_augmentation(self, augment: bool) -> "ImageFolderSplit":
        return dataclasses.replace(self, augment=augment)

    def __getitem__(self, key: int | tuple[int, int | None]) -> tuple[torch.Tensor, int]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, label = self.samples[index]
        try:
            with Image.open(path) as opened:
                image = opened.convert("RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise DataFormatError(f"{path}: not a readable image ({one_line(err)})") from None
        size = [self.input_size, self.input_size]
        if self.augment:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            top, left, h, w = random_resized_crop_box(image.height, image.width, generator or torch.default_generator)
            image = TF.resized_crop(image, top, left, h, w, size, antialias=True)
            if torch.rand(1, generator=generator).item() < 0.5:
                image = TF.hflip(image)
        else:
            image = TF.center_crop(TF.resize(image, self.resize_size, antialias=True), size)
        return TF.pil_to_tensor(image), label


def _class_folders(directory: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(directory) if e.is_dir() and not e.name.startswith("."))


def _images_in(folder: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames.sort()
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
    return found


def scan_image_folder(directory: Path, classes: tuple[str, ...] | None = None) -> ImageFolderSplit:
    """All images under ``directory/<class>/``; labels index the sorted class names.

    With `classes` given (the training classes), folder names must be among them and a
    class may have no images (a validation folder of a subset); otherwise every class
    folder must hold at least one image.
    """
    folders = _class_folders(directory)
    require_images = classes is None
    if not folders:
        raise DataFormatError(f"{directory} has no class sub-folders; arrange images as {directory}/<class>/<image>")
    if classes is None:
        classes = tuple(folders)
    unknown = sorted(set(folders) - set(classes))
    if unknown:
        raise DataFormatError(f"{directory} has class folders not in the training set: {', '.join(unknown[:5])}")
    index = {name: i for i, name in enumerate(classes)}
    samples = []
    for name in folders:
        images = _images_in(directory / name)
        if not images and require_images:
            kinds = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise DataFormatError(f"{directory / name} holds no images ({kinds})")
        samples.extend((path, index[name]) for path in images)
    return ImageFolderSplit(tuple(samples), classes)


def read_image_folders(paths: dict[str, Path]) -> tuple[ImageFolderSplit, ImageFolderSplit]:
    """(train, test) from the ``train`` and ``val`` folders; the official val is our test."""
    train = scan_image_folder(paths["train"])
    return train, scan_image_folder(paths["val"], train.classes)
