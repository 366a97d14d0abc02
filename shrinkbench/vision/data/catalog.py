"""The registered datasets, one decorated function each.

Normalisation statistics are per-channel pixel mean and (population) standard deviation
over the official training images, scaled to 0..1:
  fashion-mnist 0.2860 / 0.3530 (recomputed from the Debian files; tests check them),
  mnist 0.1307 / 0.3081 (the PyTorch examples' values),
  cifar10 (0.4914, 0.4822, 0.4465) / (0.2470, 0.2435, 0.2616) and
  cifar100 (0.5071, 0.4865, 0.4409) / (0.2673, 0.2564, 0.2762) (the widely used values,
  also ShrinkBench's to 3 digits; not recomputed here because CIFAR is not installed),
  imagenet (0.485, 0.456, 0.406) / (0.229, 0.224, 0.225) (torchvision's),
  digits 0.3054 / 0.3247 (recomputed after the 28x28 resize over its 1500 training images).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from shrinkbench.vision.data.cifar import CIFAR10, CIFAR100, CifarFiles, read_binary, read_python
from shrinkbench.vision.data.idx import read_image_label_pair
from shrinkbench.vision.data.load import hold_out_indices
from shrinkbench.vision.data.sources import FileFormat, builtin_dataset, dataset, torchvision_download
from shrinkbench.vision.data.spec import DatasetSpec, TensorSplit
from shrinkbench.core.errors import DataNotFoundError

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_AUGMENTATION = "random crop 32x32 after 4-pixel zero padding of the raw image, then horizontal flip p=0.5 (He et al. 2016)"
DIGITS_TEST_SIZE = 297
DIGITS_TEST_SEED = 0
DIGITS_SIZE = 28


def idx_format(num_classes: int) -> FileFormat:
    """The four MNIST-style IDX files, gzipped or not (or with Kaggle's dotted names)."""
    alternatives = tuple((f"{n}.gz", n, n.replace("-idx", ".idx")) for n in IDX_FILES)

    def read(paths: dict[str, Path]) -> tuple[TensorSplit, TensorSplit]:
        def pair(images: str, labels: str) -> TensorSplit:
            x, y = read_image_label_pair(paths[f"{images}.gz"], paths[f"{labels}.gz"], num_classes)
            return TensorSplit(torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y))

        return pair(*IDX_FILES[:2]), pair(*IDX_FILES[2:])

    return FileFormat("IDX", alternatives, read)


def cifar_formats(files: CifarFiles) -> tuple[FileFormat, ...]:
    python = files.python_train + files.python_test
    binary = files.binary_train + files.binary_test
    return (
        FileFormat("CIFAR python", tuple((n,) for n in python), lambda paths: read_python(paths, files)),
        FileFormat("CIFAR binary", tuple((n,) for n in binary), lambda paths: read_binary(paths, files)),
    )


@dataset(
    DatasetSpec(
        name="fashion-mnist",
        input_shape=(1, 28, 28),
        num_classes=10,
        val_size=5000,
        in_memory=True,
        mean=(0.2860,),
        std=(0.3530,),
        augmentation="none",
        source="Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 60000 train / 10000 test 28x28 grey images, 10 classes; IDX files",
        train_examples=60000,
    ),
    folders=("FashionMNIST/raw",),
    download=torchvision_download("FashionMNIST"),
    fix="install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
)
def fashion_mnist() -> tuple[FileFormat, ...]:
    return (idx_format(10),)


@dataset(
    DatasetSpec(
        name="mnist",
        input_shape=(1, 28, 28),
        num_classes=10,
        val_size=5000,
        in_memory=True,
        mean=(0.1307,),
        std=(0.3081,),
        augmentation="none",
        source="MNIST (LeCun et al. 1998): 60000 train / 10000 test 28x28 grey digits, 10 classes; IDX files",
        train_examples=60000,
    ),
    folders=("MNIST/raw",),
    download=torchvision_download("MNIST"),
)
def mnist() -> tuple[FileFormat, ...]:
    return (idx_format(10),)


def cifar_spec(name: str, num_classes: int, mean: tuple[float, ...], std: tuple[float, ...], source: str) -> DatasetSpec:
    """CIFAR-10 and CIFAR-100 share shape, split sizes and augmentation."""
    return DatasetSpec(
        name=name,
        input_shape=(3, 32, 32),
        num_classes=num_classes,
        val_size=5000,
        in_memory=True,
        mean=mean,
        std=std,
        augmentation=CIFAR_AUGMENTATION,
        source=source,
        crop_padding=4,
        flip_p=0.5,
        train_examples=50000,
    )


@dataset(
    cifar_spec(
        "cifar10", 10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        "CIFAR-10 (Krizhevsky 2009): 50000 train / 10000 test 32x32 colour images, 10 classes; python or binary batches",
    ),
    folders=("cifar-10-batches-py", "cifar-10-batches-bin"),
    download=torchvision_download("CIFAR10"),
)
def cifar10() -> tuple[FileFormat, ...]:
    return cifar_formats(CIFAR10)


@dataset(
    cifar_spec(
        "cifar100", 100, (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762),
        "CIFAR-100 (Krizhevsky 2009): 50000 train / 10000 test 32x32 colour images, 100 fine classes; python or binary files",
    ),
    folders=("cifar-100-python", "cifar-100-binary"),
    download=torchvision_download("CIFAR100"),
)
def cifar100() -> tuple[FileFormat, ...]:
    return cifar_formats(CIFAR100)


def _read_image_folders(paths):
    """`shrinkbench.vision.data.imagefolder.read_image_folders`, imported (with torchvision) when used."""
    from shrinkbench.vision.data.imagefolder import read_image_folders

    return read_image_folders(paths)


@dataset(
    DatasetSpec(
        name="imagenet",
        input_shape=(3, 224, 224),
        num_classes=1000,
        val_size=10000,
        in_memory=False,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        augmentation="train: random resized crop 224 (area 8-100%, aspect 3/4-4/3) + horizontal flip p=0.5; eval: resize 256, centre crop 224",
        source="ImageNet ILSVRC-2012 (Russakovsky et al. 2015) as an image folder: train/<class>/*.JPEG, val/<class>/*.JPEG (the official val is our test)",
    ),
    fix="torchvision cannot download ImageNet; get it from image-net.org and sort val/ into class folders",
)
def imagenet() -> tuple[FileFormat, ...]:
    return (FileFormat("ImageFolder", (("train",), ("val",)), _read_image_folders),)



@builtin_dataset(
    DatasetSpec(
        name="digits",
        input_shape=(1, DIGITS_SIZE, DIGITS_SIZE),
        num_classes=10,
        val_size=300,
        in_memory=True,
        mean=(0.3054,),
        std=(0.3247,),
        augmentation="none",
        source="scikit-learn load_digits (UCI optical digits): 1797 8x8 images, values 0..16 scaled to 0..1, "
        "bilinearly upsampled to 28x28 (align_corners=False); fixed test split of 297 by seed 0",
        train_examples=1797 - DIGITS_TEST_SIZE,
    ),
    place="scikit-learn's bundled copy (sklearn.datasets.load_digits)",
)
def digits() -> tuple[TensorSplit, TensorSplit, str]:
    """Official train (1500) and the fixed test split (297): ``hold_out_indices(1797, 297, 0)``."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataNotFoundError(
            "digits comes from scikit-learn's bundled copy, but scikit-learn is not installed; install it with pip install scikit-learn"
        ) from None
    images, labels = load_digits(return_X_y=True)
    x = torch.from_numpy(images).to(torch.float32).reshape(-1, 1, 8, 8) / 16
    x = F.interpolate(x, size=(DIGITS_SIZE, DIGITS_SIZE), mode="bilinear", align_corners=False)
    full = TensorSplit(x.contiguous(), torch.from_numpy(labels).to(torch.int64))
    train, test = hold_out_indices(len(full), DIGITS_TEST_SIZE, DIGITS_TEST_SEED)
    return full.subset(train), full.subset(test), f"scikit-learn {sklearn.__version__} load_digits"
