"""The data registry: real Fashion-MNIST, the search order, fixed splits, reproducible batches."""
from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from shrinkbench.vision.data import (
    DATASETS,
    DataSplits,
    DatasetSpec,
    TensorSplit,
    batches,
    dataset_spec,
    describe_search,
    hold_out_indices,
    load_splits,
)
from shrinkbench.vision.data import locate
from shrinkbench.core.errors import ConfigError, DataNotFoundError, UnknownNameError
from test_data_formats import write_idx_dataset

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (DEBIAN_FASHION / "train-images-idx3-ubyte.gz").exists(),
    reason="Debian's dataset-fashion-mnist is not installed (/usr/share/datasets/fashion-mnist)",
)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No user data folder, an empty system folder, a private download cache, downloads off."""
    monkeypatch.delenv("SHRINKBENCH_DATA", raising=False)
    monkeypatch.delenv("SHRINKBENCH_DOWNLOAD", raising=False)
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


# ---------------------------------------------------------------- real Fashion-MNIST


@needs_fashion
def test_fashion_mnist_from_the_debian_package():
    splits = load_splits("fashion-mnist")
    assert splits.location == f"{DEBIAN_FASHION} (IDX)"
    assert (len(splits.train), len(splits.val), len(splits.test)) == (55000, 5000, 10000)
    assert splits.train.x.shape == (55000, 1, 28, 28) and splits.train.x.dtype == torch.uint8
    assert splits.spec.num_classes == 10 and splits.spec.input_shape == (1, 28, 28)
    # Xiao et al. 2017: 6000 training and 1000 test images per class
    official_train = torch.cat([splits.train.y, splits.val.y])
    assert torch.bincount(official_train).tolist() == [6000] * 10
    assert torch.bincount(splits.test.y).tolist() == [1000] * 10
    # the normalisation constants of the spec are the training-set pixel statistics
    pixels = torch.cat([splits.train.x, splits.val.x]).double() / 255
    assert pixels.mean().item() == pytest.approx(splits.spec.mean[0], abs=5e-5)
    assert pixels.std(unbiased=False).item() == pytest.approx(splits.spec.std[0], abs=5e-5)


@needs_fashion
def test_fashion_mnist_test_images_agree_with_torchvisions_reader(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((DEBIAN_FASHION / f"{name}.gz").read_bytes()))
    splits = load_splits("fashion-mnist")
    assert torch.equal(splits.test.x[:, 0], read_image_file(str(tmp_path / "t10k-images-idx3-ubyte")))
    assert torch.equal(splits.test.y, read_label_file(str(tmp_path / "t10k-labels-idx1-ubyte")))


# ---------------------------------------------------------------- where data is looked for


def test_root_argument_then_environment_then_system_then_cache(isolated, monkeypatch):
    write_idx_dataset(isolated / "mine" / "fashion-mnist", seed=1)
    write_idx_dataset(isolated / "env" / "fashion-mnist", seed=2)
    write_idx_dataset(isolated / "system" / "fashion-mnist", seed=3)
    write_idx_dataset(isolated / "cache" / "shrinkbench" / "data" / "FashionMNIST" / "raw", seed=4, gz=False)
    monkeypatch.setenv("SHRINKBENCH_DATA", str(isolated / "env"))
    order = [("mine", {"root": isolated / "mine"}), ("env", {}), ("system", {}), ("cache", {})]
    for i, (folder, kwargs) in enumerate(order):
        assert load_splits("fashion-mnist", val_size=2, **kwargs).location.startswith(str(isolated / folder))
        if folder != "mine":
            shutil.rmtree(isolated / folder)
        if folder == "env":
            monkeypatch.delenv("SHRINKBENCH_DATA")


def test_tiny_idx_files_load_via_root_and_environment(isolated, monkeypatch):
    arrays = write_idx_dataset(isolated / "data" / "fashion-mnist", n_train=12, n_test=5)
    via_root = load_splits("fashion-mnist", root=isolated / "data", val_size=3)
    monkeypatch.setenv("SHRINKBENCH_DATA", str(isolated / "data"))
    via_env = load_splits("fashion-mnist", val_size=3)
    for splits in (via_root, via_env):
        assert splits.location == f"{isolated / 'data' / 'fashion-mnist'} (IDX)"
        assert (len(splits.train), len(splits.val), len(splits.test)) == (9, 3, 5)
        assert torch.equal(splits.test.x[:, 0], torch.from_numpy(arrays["t10k-images-idx3-ubyte"]))
        assert splits.test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert torch.equal(via_root.train.x, via_env.train.x) and torch.equal(via_root.val.y, via_env.val.y)


def test_files_directly_in_a_folder_are_read_only_when_the_user_names_it(isolated, monkeypatch):
    write_idx_dataset(isolated / "bare", gz=False)
    assert load_splits("mnist", root=isolated / "bare", val_size=1).location == f"{isolated / 'bare'} (IDX)"
    monkeypatch.setenv("SHRINKBENCH_DATA", str(isolated / "bare"))  # a shared folder: MNIST or Fashion-MNIST?
    with pytest.raises(DataNotFoundError):
        load_splits("mnist", val_size=1)


def test_missing_data_lists_every_place_and_the_fixes(isolated, monkeypatch):
    monkeypatch.setenv("SHRINKBENCH_DATA", str(isolated / "env"))
    (isolated / "env" / "fashion-mnist").mkdir(parents=True)
    (isolated / "env" / "fashion-mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(DataNotFoundError) as err:
        load_splits("fashion-mnist", root=isolated / "nowhere")
    message = str(err.value)
    assert "\n" not in message
    places = describe_search("fashion-mnist", root=isolated / "nowhere")
    assert len(places) == 3 * 4 + 1 + 1  # 3 folders under each of 4 bases, the bare root, the download
    for place in places[:-1]:
        assert place in message
    assert f"{isolated / 'env' / 'fashion-mnist'} ($SHRINKBENCH_DATA) [IDX: lacks train-labels-idx1-ubyte.gz" in message
    for fix in ("--data-root", "SHRINKBENCH_DATA=DIR", "dataset-fashion-mnist", "--download", "SHRINKBENCH_DOWNLOAD=1"):
        assert fix in message
    assert places.index(f"{isolated / 'nowhere' / 'fashion-mnist'} (root argument)") == 0
    assert places[-1].startswith(f"torchvision download into {isolated / 'cache' / 'shrinkbench' / 'data'}")


def test_imagenet_and_digits_describe_their_own_places(isolated):
    assert not any("torchvision download" in p for p in describe_search("imagenet"))
    assert describe_search("digits") == ["scikit-learn's bundled copy (sklearn.datasets.load_digits)"]
    with pytest.raises(DataNotFoundError, match="torchvision cannot download ImageNet"):
        load_splits("imagenet", download=True)


class FakeTorchvisionFashionMNIST:
    """Stands in for torchvision.datasets.FashionMNIST(root, train, download): writes its raw layout."""

    calls: list = []

    def __init__(self, root, train=True, download=False):
        FakeTorchvisionFashionMNIST.calls.append((root, train, download))
        raw = Path(root) / "FashionMNIST" / "raw"
        if download and not raw.exists():
            write_idx_dataset(raw, n_train=10, n_test=4, gz=False)


def test_download_happens_only_when_allowed(isolated, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeTorchvisionFashionMNIST)
    FakeTorchvisionFashionMNIST.calls.clear()
    with pytest.raises(DataNotFoundError, match="--download"):
        load_splits("fashion-mnist")
    assert FakeTorchvisionFashionMNIST.calls == []
    monkeypatch.setenv("SHRINKBENCH_DOWNLOAD", "maybe")
    with pytest.raises(ConfigError, match="SHRINKBENCH_DOWNLOAD"):
        load_splits("fashion-mnist")
    monkeypatch.setenv("SHRINKBENCH_DOWNLOAD", "1")
    splits = load_splits("fashion-mnist", val_size=2)
    cache = isolated / "cache" / "shrinkbench" / "data"
    assert FakeTorchvisionFashionMNIST.calls == [(str(cache), True, True), (str(cache), False, True)]
    assert splits.location == f"{cache / 'FashionMNIST' / 'raw'} (IDX)" and len(splits.test) == 4
    monkeypatch.delenv("SHRINKBENCH_DOWNLOAD")
    assert load_splits("fashion-mnist", val_size=2).location == splits.location  # found again, no download
    assert len(FakeTorchvisionFashionMNIST.calls) == 2


def test_unknown_dataset_names_suggest_close_matches():
    with pytest.raises(UnknownNameError, match="did you mean 'fashion-mnist'"):
        load_splits("fashion_mnist")
    with pytest.raises(UnknownNameError, match="cifar10"):
        dataset_spec("cifar-10")


# ---------------------------------------------------------------- specs and splits


def test_registry_holds_the_six_datasets_with_consistent_specs():
    assert sorted(DATASETS.names()) == ["cifar10", "cifar100", "digits", "fashion-mnist", "imagenet", "mnist"]
    for name in DATASETS:
        spec = dataset_spec(name)
        assert spec.name == name and len(spec.mean) == spec.input_shape[0]
        assert spec.augments == (spec.augmentation != "none" and spec.in_memory)
    assert dataset_spec("cifar10").crop_padding == 4 and dataset_spec("cifar100").num_classes == 100
    with pytest.raises(ConfigError, match="one value per channel"):
        DatasetSpec("x", (3, 8, 8), 10, 0, True, (0.5,), (0.2,), "none", "test")


def test_hold_out_is_a_fixed_disjoint_cover():
    for n, k, seed in ((10, 3, 0), (1797, 297, 0), (60000, 5000, 0), (60000, 5000, 7)):
        train, val = hold_out_indices(n, k, seed)
        assert len(val) == k and len(train) == n - k
        assert torch.equal(torch.sort(torch.cat([train, val])).values, torch.arange(n))
        again_train, again_val = hold_out_indices(n, k, seed)
        assert torch.equal(train, again_train) and torch.equal(val, again_val)
    # the documented rule: sorted first val_size entries of randperm(n) seeded with split_seed
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(3))[:4].sort().values
    assert torch.equal(hold_out_indices(10, 4, 3)[1], expected)
    assert not torch.equal(hold_out_indices(100, 10, 0)[1], hold_out_indices(100, 10, 1)[1])
    with pytest.raises(ConfigError, match="between 0 and 9"):
        hold_out_indices(10, 10, 0)


def test_split_seed_moves_the_validation_set_only(isolated):
    write_idx_dataset(isolated / "fashion-mnist", n_train=40, n_test=5)
    a = load_splits("fashion-mnist", root=isolated, val_size=8, split_seed=0)
    b = load_splits("fashion-mnist", root=isolated, val_size=8, split_seed=1)
    ids = lambda split: set(split.x[:, 0, 0, 0].tolist())  # the writer stamps image k with k
    assert ids(a.train).isdisjoint(ids(a.val)) and ids(a.train) | ids(a.val) == set(range(40))
    assert ids(a.val) != ids(b.val) and torch.equal(a.test.x, b.test.x)
    assert a.split_id == "fashion-mnist/val8/seed0"
    with pytest.raises(ConfigError, match="val_size"):
        load_splits("fashion-mnist", root=isolated, val_size=40)


def test_digits_sizes_values_and_fixed_test_split():
    from sklearn.datasets import load_digits

    a, b = load_splits("digits"), load_splits("digits", split_seed=5)
    assert (len(a.train), len(a.val), len(a.test)) == (1200, 300, 297)
    assert a.train.x.shape[1:] == (1, 28, 28) and a.train.x.dtype == torch.float32
    assert 0 <= a.train.x.min() and a.train.x.max() <= 1
    assert torch.equal(a.test.x, b.test.x) and not torch.equal(a.val.y, b.val.y)
    labels = np.bincount(load_digits().target)
    together = torch.cat([a.train.y, a.val.y, a.test.y])
    assert torch.bincount(together).tolist() == labels.tolist()
    official_train = torch.cat([a.train.x, a.val.x]).double()
    assert official_train.mean().item() == pytest.approx(a.spec.mean[0], abs=5e-5)
    assert official_train.std(unbiased=False).item() == pytest.approx(a.spec.std[0], abs=5e-5)


# ---------------------------------------------------------------- batches


def stamped_split(n: int, channels: int = 3, size: int = 8) -> TensorSplit:
    """Images whose pixel values encode the example index (index = 256 * x[0, 0, 0] + x[0, 0, 1])."""
    x = torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = torch.arange(n) // 256, torch.arange(n) % 256
    return TensorSplit(x, torch.arange(n) % 10)


def unnormalise(x: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    mean, std = torch.tensor(spec.mean).view(1, -1, 1, 1), torch.tensor(spec.std).view(1, -1, 1, 1)
    return torch.round((x * std + mean) * 255).to(torch.int64)


CIFAR_LIKE = DatasetSpec("tiny", (3, 8, 8), 10, 0, True, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
                         "random crop 8 after 2-pixel zero padding, flip p=0.5", "test", crop_padding=2, flip_p=0.5)


@pytest.mark.parametrize("batch_size, drop_last", [(7, False), (7, True), (50, False), (64, False), (1, False)])
def test_every_example_exactly_once_per_pass(batch_size, drop_last):
    split = stamped_split(50)
    loader = batches(split, batch_size, shuffle=True, generator=torch.Generator().manual_seed(1), augment=False,
                     spec=CIFAR_LIKE, drop_last=drop_last)
    seen = []
    for x, y in loader:
        raw = unnormalise(x, CIFAR_LIKE)
        index = raw[:, 0, 0, 0] * 256 + raw[:, 0, 0, 1]
        assert torch.equal(y, index % 10) and x.dtype == torch.float32 and x.shape[1:] == (3, 8, 8)
        seen.extend(index.tolist())
    expected_batches = 50 // batch_size if drop_last else math.ceil(50 / batch_size)
    assert len(loader) == expected_batches
    assert len(seen) == len(set(seen)) == (expected_batches * batch_size if drop_last else 50)
    assert seen != sorted(seen)  # shuffled


def test_unshuffled_batches_are_in_order_and_normalised_by_hand():
    split = stamped_split(20)
    x, y = next(iter(batches(split, 20, shuffle=False, generator=None, augment=False, spec=CIFAR_LIKE)))
    for c in range(3):
        expected = (split.x[:, c].double() / 255 - CIFAR_LIKE.mean[c]) / CIFAR_LIKE.std[c]
        torch.testing.assert_close(x[:, c].double(), expected, atol=1e-5, rtol=0)
    assert torch.equal(y, split.y)
    digits = TensorSplit(torch.full((2, 1, 4, 4), 0.5), torch.zeros(2, dtype=torch.int64))
    spec = dataset_spec("digits")
    x, _ = next(iter(batches(digits, 2, shuffle=False, generator=None, augment=False, spec=spec)))
    torch.testing.assert_close(x, torch.full_like(x, (0.5 - spec.mean[0]) / spec.std[0]))


def collect(split, spec, seed, augment=True, batch_size=16):
    loader = batches(split, batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed), augment=augment, spec=spec)
    return [pair for pair in loader]


def test_same_generator_seed_gives_identical_batches_bit_for_bit():
    split = stamped_split(40)
    first, again, other = collect(split, CIFAR_LIKE, 3), collect(split, CIFAR_LIKE, 3), collect(split, CIFAR_LIKE, 4)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][1], other[0][1])


def test_augmentation_only_for_augmenting_datasets():
    fashion = dataset_spec("fashion-mnist")
    split = stamped_split(40, channels=1, size=28)
    plain, augmented = collect(split, fashion, 3, augment=False), collect(split, fashion, 3, augment=True)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(plain, augmented))
    cifar_split = stamped_split(40)
    plain, augmented = collect(cifar_split, CIFAR_LIKE, 3, augment=False), collect(cifar_split, CIFAR_LIKE, 3, augment=True)
    assert all(a[0].shape == b[0].shape and torch.equal(a[1], b[1]) for a, b in zip(plain, augmented))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(plain, augmented))


def test_augmented_images_are_crops_of_the_padded_image_possibly_mirrored():
    split = stamped_split(64)
    loader = batches(split, 64, shuffle=False, generator=torch.Generator().manual_seed(0), augment=True, spec=CIFAR_LIKE)
    x, _ = next(iter(loader))
    raw = unnormalise(x, CIFAR_LIKE)
    padded = torch.nn.functional.pad(split.x.to(torch.int64), (2, 2, 2, 2))
    flips = 0
    for k in range(64):
        candidates = [
            (flip, dy, dx)
            for dy in range(5)
            for dx in range(5)
            for flip in (False, True)
            if torch.equal(raw[k], (lambda c: c.flip(-1) if flip else c)(padded[k, :, dy : dy + 8, dx : dx + 8]))
        ]
        assert candidates, f"example {k} is not a crop of its padded image"
        flips += candidates[0][0]
    assert 16 < flips < 48  # p = 0.5 over 64 examples


def test_batches_validate_their_arguments():
    split = stamped_split(4)
    with pytest.raises(ConfigError, match="batch_size"):
        batches(split, 0, shuffle=False, generator=None, augment=False, spec=CIFAR_LIKE)
    with pytest.raises(ConfigError, match="channels"):
        batches(split, 2, shuffle=False, generator=None, augment=False, spec=dataset_spec("mnist"))


def test_data_splits_are_frozen():
    split = stamped_split(2)
    splits = DataSplits(CIFAR_LIKE, split, split, split, "here")
    with pytest.raises(AttributeError):
        splits.location = "elsewhere"
