"""File formats: IDX, CIFAR (python pickles and binary records), image folders.

Every file is written here in its published format by code independent of the readers
(struct / hand-assembled pickle opcodes / PIL), tiny, in a temporary folder.
"""
from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shrinkbench.vision.data import DataFormatError, batches, load_splits
from shrinkbench.vision.data import locate
from shrinkbench.vision.data.cifar import read_python_batch
from shrinkbench.vision.data.idx import read_idx
from shrinkbench.vision.data.safe_pickle import load_numpy_pickle

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ---------------------------------------------------------------- writers (independent of the readers)


def idx_bytes(values: np.ndarray) -> bytes:
    """IDX as published: 0, 0, type 0x08 (ubyte), ndim, big-endian uint32 sizes, then the bytes."""
    header = bytes([0, 0, 0x08, values.ndim]) + b"".join(struct.pack(">I", d) for d in values.shape)
    return header + values.astype(np.uint8).tobytes()


def write_idx_dataset(folder: Path, n_train: int = 12, n_test: int = 5, gz: bool = True, seed: int = 0) -> dict:
    """Four IDX files of 28x28 images; image k of train has pixel [0, 0] = k (so it is identifiable)."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8) % 10,
    }
    arrays["train-images-idx3-ubyte"][:, 0, 0] = np.arange(n_train)
    folder.mkdir(parents=True, exist_ok=True)
    for name, values in arrays.items():
        data = idx_bytes(values)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


def py2_pickle(obj) -> bytes:
    """What Python 2's ``cPickle.dump(obj, f, 2)`` writes for CIFAR's dicts: str as BINSTRING,
    numpy arrays through ``numpy.core.multiarray._reconstruct`` with the raw bytes as a str."""
    out = bytearray(b"\x80\x02")

    def string(raw: bytes) -> None:
        out.extend(b"U" + bytes([len(raw)]) + raw if len(raw) < 256 else b"T" + struct.pack("<i", len(raw)) + raw)

    def write(o) -> None:
        if isinstance(o, dict):
            out.extend(b"}(")
            for key, value in o.items():
                write(key)
                write(value)
            out.extend(b"u")
        elif isinstance(o, list):
            out.extend(b"](")
            for value in o:
                write(value)
            out.extend(b"e")
        elif isinstance(o, int):
            out.extend(b"K" + bytes([o]) if 0 <= o < 256 else b"J" + struct.pack("<i", o))
        elif isinstance(o, str):
            string(o.encode("latin1"))
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            write(0)
            out.extend(b"\x85")
            string(b"b")
            out.extend(b"\x87R(")
            write(1)
            out.extend(b"(")
            for d in o.shape:
                write(d)
            out.extend(b"tcnumpy\ndtype\n")
            string(b"u1")
            write(0)
            write(1)
            out.extend(b"\x87R(")
            write(3)
            string(b"|")
            out.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff")
            write(0)
            out.extend(b"tb\x89")
            string(o.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    write(obj)
    out.extend(b".")
    return bytes(out)


def cifar_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10_python(folder: Path, per_batch: int = 2, writer=py2_pickle) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = cifar_images(per_batch, seed=i), [(i + j) % 10 for j in range(per_batch)]
        batch = {"batch_label": f"batch {i}", "labels": labels, "data": data, "filenames": [f"img{j}.png" for j in range(per_batch)]}
        (folder / name).write_bytes(writer(batch))
        content[name] = (data, labels)
    (folder / "batches.meta").write_bytes(writer({"label_names": [f"c{k}" for k in range(10)], "num_vis": 3072}))
    return content


def write_cifar_binary(folder: Path, names: list[str], label_bytes: int, per_file: int = 3) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for i, name in enumerate(names):
        data = cifar_images(per_file, seed=10 + i)
        if label_bytes == 1:  # CIFAR-10: the label
            labels = np.array([[(i + j) % 10] for j in range(per_file)], dtype=np.uint8)
        else:  # CIFAR-100: coarse label, fine label
            labels = np.array([[(i + j) % 20, (i + 37 * j) % 100] for j in range(per_file)], dtype=np.uint8)
        (folder / name).write_bytes(np.concatenate([labels, data], axis=1).tobytes())
        content[name] = (data, labels[:, -1])
    return content


# ---------------------------------------------------------------- IDX


def test_idx_files_decode_to_the_written_arrays_gz_and_plain(tmp_path):
    for gz in (True, False):
        arrays = write_idx_dataset(tmp_path / str(gz), gz=gz)
        for name, values in arrays.items():
            path = tmp_path / str(gz) / (f"{name}.gz" if gz else name)
            np.testing.assert_array_equal(read_idx(path), values)


def test_idx_magic_numbers_are_checked(tmp_path):
    write_idx_dataset(tmp_path, gz=False)
    labels = tmp_path / "train-labels-idx1-ubyte"
    assert int.from_bytes(labels.read_bytes()[:4], "big") == 2049
    with pytest.raises(DataFormatError, match="magic number is 2049, expected 2051"):
        read_idx(labels, magic=2051)
    # swapping an images file for a labels file is caught when the dataset is loaded
    (tmp_path / "train-images-idx3-ubyte").write_bytes(labels.read_bytes())
    with pytest.raises(DataFormatError) as err:
        load_splits("mnist", root=tmp_path, val_size=1)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda raw: raw[:-7], "truncated or corrupt"),
        (lambda raw: raw[:6], "header truncated"),
        (lambda raw: b"\x00\x00\x77\x03" + raw[4:], "not an IDX file"),
        (lambda raw: b"PK\x03\x04" + raw[4:], "not an IDX file"),
        (lambda raw: gzip.compress(raw)[:-30], "corrupt gzip data"),
    ],
)
def test_corrupt_idx_files_give_one_line_errors(tmp_path, corrupt, message):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(corrupt(idx_bytes(np.zeros((4, 28, 28), np.uint8))))
    with pytest.raises(DataFormatError, match=message) as err:
        read_idx(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_idx_labels_outside_the_classes_are_refused(tmp_path):
    write_idx_dataset(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([0, 1, 2, 3, 10], np.uint8)))
    with pytest.raises(DataFormatError, match=r"labels must lie in 0\.\.9, found 0\.\.10"):
        load_splits("mnist", root=tmp_path, val_size=1)


# ---------------------------------------------------------------- CIFAR


def assert_cifar_images(x: torch.Tensor, data: np.ndarray) -> None:
    """Row layout: 1024 red values, then 1024 green, then 1024 blue, each 32x32 row-major."""
    assert x.shape == (len(data), 3, 32, 32) and x.dtype == torch.uint8
    for c in range(3):
        for row, col in ((0, 0), (0, 31), (5, 7), (31, 0)):
            np.testing.assert_array_equal(x[:, c, row, col].numpy(), data[:, c * 1024 + row * 32 + col])


@pytest.mark.parametrize(
    "writer",
    [py2_pickle, lambda obj: pickle.dumps(obj, protocol=2), lambda obj: pickle.dumps(obj, protocol=5)],
    ids=["python2-cPickle", "python3-protocol2", "python3-protocol5"],
)
def test_cifar10_python_batches_load(tmp_path, writer):
    content = write_cifar10_python(tmp_path / "cifar-10-batches-py", writer=writer)
    splits = load_splits("cifar10", root=tmp_path, val_size=0)
    assert "cifar-10-batches-py" in splits.location and "CIFAR python" in splits.location
    train_data = np.concatenate([content[f"data_batch_{k}"][0] for k in range(1, 6)])
    train_labels = sum((content[f"data_batch_{k}"][1] for k in range(1, 6)), [])
    assert_cifar_images(splits.train.x, train_data)
    assert splits.train.y.tolist() == train_labels
    assert_cifar_images(splits.test.x, content["test_batch"][0])
    assert splits.test.y.tolist() == content["test_batch"][1]
    assert splits.spec.input_shape == (3, 32, 32) and splits.spec.num_classes == 10


def test_cifar10_binary_batches_load(tmp_path):
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    content = write_cifar_binary(tmp_path / "cifar10" / "cifar-10-batches-bin", names, label_bytes=1)
    splits = load_splits("cifar10", root=tmp_path, val_size=0)
    assert "CIFAR binary" in splits.location
    assert_cifar_images(splits.train.x, np.concatenate([content[n][0] for n in names[:5]]))
    assert splits.train.y.tolist() == np.concatenate([content[n][1] for n in names[:5]]).tolist()
    assert_cifar_images(splits.test.x, content["test_batch.bin"][0])


def test_cifar100_python_and_binary_use_the_fine_labels(tmp_path):
    rng = np.random.default_rng(3)
    for name, n in (("train", 6), ("test", 4)):
        data = cifar_images(n, seed=n)
        batch = {"filenames": ["a"] * n, "batch_label": name, "fine_labels": rng.integers(0, 100, n).tolist(),
                 "coarse_labels": rng.integers(0, 20, n).tolist(), "data": data}
        (tmp_path / "py" / "cifar-100-python").mkdir(parents=True, exist_ok=True)
        (tmp_path / "py" / "cifar-100-python" / name).write_bytes(py2_pickle(batch))
        if name == "test":
            test_batch = batch
    splits = load_splits("cifar100", root=tmp_path / "py", val_size=2)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 2, 4)
    assert splits.test.y.tolist() == test_batch["fine_labels"]
    assert_cifar_images(splits.test.x, test_batch["data"])

    content = write_cifar_binary(tmp_path / "bin" / "cifar-100-binary", ["train.bin", "test.bin"], label_bytes=2)
    splits = load_splits("cifar100", root=tmp_path / "bin", val_size=0)
    assert splits.test.y.tolist() == content["test.bin"][1].tolist()  # the second (fine) label byte
    assert splits.spec.num_classes == 100


def test_cifar_binary_of_wrong_size_is_refused(tmp_path):
    names = [f"data_batch_{k}.bin" for k in range(1, 6)] + ["test_batch.bin"]
    write_cifar_binary(tmp_path / "cifar-10-batches-bin", names, label_bytes=1)
    path = tmp_path / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataFormatError, match="3073-byte CIFAR record"):
        load_splits("cifar10", root=tmp_path, val_size=0)


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_a_forbidden_global_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": cifar_images(1, 0), "labels": [_Exploit(marker)]}, protocol=2))
    with pytest.raises(DataFormatError) as err:
        read_python_batch(path, "labels", 10)
    message = str(err.value)
    assert "refusing to unpickle" in message and "system" in message and "\n" not in message
    assert not marker.exists()
    path.write_bytes(pickle.dumps(Path("x")))  # any class outside numpy is refused too
    with pytest.raises(DataFormatError, match="pathlib"):
        load_numpy_pickle(path)


def test_not_a_pickle_and_wrong_contents_are_one_line_errors(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataFormatError, match="not a readable data pickle"):
        read_python_batch(path, "labels", 10)
    path.write_bytes(py2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    with pytest.raises(DataFormatError, match="N x 3072"):
        read_python_batch(path, "labels", 10)
    path.write_bytes(py2_pickle({"data": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(DataFormatError, match="needs keys 'data' and 'labels'"):
        read_python_batch(path, "labels", 10)


# ---------------------------------------------------------------- image folders (ImageNet layout)


def write_image_folder(root: Path, counts: dict[str, dict[str, int]]) -> None:
    rng = np.random.default_rng(7)
    for split, per_class in counts.items():
        for k, (name, count) in enumerate(per_class.items()):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (40 + 13 * i + 7 * k, 30 + 11 * i)  # various sizes and aspect ratios
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                suffix = ".JPEG" if i % 2 == 0 else ".png"
                Image.fromarray(pixels).save(root / split / name / f"{name}_{i}{suffix}")


@pytest.fixture
def tiny_imagenet(tmp_path):
    write_image_folder(tmp_path / "imagenet", {"train": {"n01": 3, "n02": 3, "n03": 2}, "val": {"n01": 1, "n02": 1, "n03": 1}})
    return tmp_path


def test_image_folder_loads_with_classes_and_splits(tiny_imagenet):
    splits = load_splits("imagenet", root=tiny_imagenet, val_size=2, split_seed=1)
    assert splits.spec.num_classes == 3 and splits.spec.input_shape == (3, 224, 224)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 3)
    assert sorted(splits.test.labels.tolist()) == [0, 1, 2]
    assert splits.train.classes == ("n01", "n02", "n03")
    held = {p for p, _ in splits.val.samples}
    assert held.isdisjoint(p for p, _ in splits.train.samples)
    assert all(f"/n0{label + 1}/" in path for path, label in splits.train.samples + splits.test.samples)


def test_image_folder_eval_batches_match_torchvision_transforms(tiny_imagenet):
    from torchvision import transforms

    splits = load_splits("imagenet", root=tiny_imagenet, val_size=2)
    loader = batches(splits.test, 2, shuffle=False, generator=None, augment=False, spec=splits.spec)
    assert len(loader) == 2
    xs, ys = zip(*loader)
    x, y = torch.cat(xs), torch.cat(ys)
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32 and y.tolist() == splits.test.labels.tolist()
    reference = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(splits.spec.mean, splits.spec.std),
    ])
    for k, (path, _) in enumerate(splits.test.samples):
        with Image.open(path) as image:
            expected = reference(image.convert("RGB"))
        torch.testing.assert_close(x[k], expected, atol=1e-5, rtol=0)


def test_image_folder_augmented_batches_are_seeded_and_independent_of_workers(tiny_imagenet):
    splits = load_splits("imagenet", root=tiny_imagenet, val_size=2)

    def epoch(seed: int, workers: int) -> list[torch.Tensor]:
        loader = batches(splits.train, 4, shuffle=True, generator=torch.Generator().manual_seed(seed),
                         augment=True, spec=splits.spec, num_workers=workers)
        return [torch.cat([x.flatten(), y.float()]) for x, y in loader]

    first = epoch(5, 0)
    assert [len(b) for b in first] == [4 * 3 * 224 * 224 + 4, 2 * 3 * 224 * 224 + 2]
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(5, 0)))
    assert all(torch.equal(a, b) for a, b in zip(first, epoch(5, 1)))
    assert not torch.equal(first[0], epoch(6, 0)[0])


def test_image_folder_layout_errors(tmp_path):
    write_image_folder(tmp_path / "a" / "imagenet", {"train": {"cat": 1}, "val": {"dog": 1}})
    with pytest.raises(DataFormatError, match="class folders not in the training set: dog"):
        load_splits("imagenet", root=tmp_path / "a", val_size=0)
    write_image_folder(tmp_path / "b" / "imagenet", {"train": {"cat": 1, "dog": 1}})
    (tmp_path / "b" / "imagenet" / "val").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "b" / "imagenet" / "val" / "ILSVRC2012_val_00000001.JPEG")
    with pytest.raises(DataFormatError, match="no class sub-folders"):
        load_splits("imagenet", root=tmp_path / "b", val_size=0)


def test_unreadable_image_is_a_one_line_error(tiny_imagenet):
    splits = load_splits("imagenet", root=tiny_imagenet, val_size=0)
    Path(splits.test.samples[0][0]).write_bytes(b"not an image")
    with pytest.raises(DataFormatError, match="not a readable image"):
        next(iter(batches(splits.test, 3, shuffle=False, generator=None, augment=False, spec=splits.spec)))


def test_image_folder_is_found_only_where_searched(tiny_imagenet, monkeypatch, tmp_path):
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", ())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SHRINKBENCH_DATA", str(tiny_imagenet))
    assert load_splits("imagenet", val_size=1).location.startswith(str(tiny_imagenet / "imagenet"))
