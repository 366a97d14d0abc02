"""Text for calibration and perplexity, with fixed splits and a record of what was read.

Sources (`TEXTS`):

- `kjv` (offline default): the King James Bible (1611, public domain) from Debian's
  `bible-kjv-text`, read with its `bible` program (package `bible-kjv`): all 31,102 verses,
  Genesis 1:1 to Revelation 22:21, one verse per line without its reference. Split by verse
  order: the first 90% of the verses (27,992: Genesis 1:1 to Romans 2:29) are
  `train`, the last 10% `test`.
- `wikitext2`: WikiText-2 (raw) through the `datasets` library, its own train and test splits,
  documents joined with "\\n\\n" (the convention of the SparseGPT and Wanda evaluations).
- `c4`: the C4 shards those papers use (`en/c4-train.00000-of-01024.json.gz` for calibration,
  `en/c4-validation.00000-of-00008.json.gz` for perplexity), through `datasets`.
- `file:<path>`: a UTF-8 text file, split by lines as `kjv` is (first 90% train).

`datasets` sources read a local copy (its cache) and download only with `download=True`.
Every source reports `info`: what was read (files, package version), the sha256 of the text
of each split, and the split rule. The run config's `text_sha256` pins the train and test text
together (sha256 of `sha256(train) + sha256(test)`).

Windows. Perplexity = exp(sum of NLL / number of predicted tokens) over the first
`eval_windows` non-overlapping windows of `seq_len` tokens of the tokenized test split
(stride = seq_len; each window predicts its seq_len - 1 later tokens from the earlier ones).
Calibration: `calib_sequences` windows of `seq_len` tokens of the tokenized train split whose
starts the run seed draws uniformly (with replacement) from [0, len(train) - seq_len].
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from shrinkbench.core.errors import ConfigError, DataNotFoundError
from shrinkbench.core.registry import Registry

TEST_FRACTION = 0.1


@dataclass(frozen=True)
class TextSplits:
    name: str
    train: str
    test: str
    info: dict = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256((_sha(self.train) + _sha(self.test)).encode()).hexdigest()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_lines(lines: list[str], name: str, info: dict) -> TextSplits:
    """First 90% of the lines train, the last 10% test (at least one line each)."""
    lines = [line for line in lines if line.strip()]
    if len(lines) < 2:
        raise ConfigError(f"text {name!r} has {len(lines)} non-empty line(s); it needs at least 2 (train and test)")
    n_test = max(1, round(len(lines) * TEST_FRACTION))
    train, test = "\n".join(lines[:-n_test]), "\n".join(lines[-n_test:])
    info = {**info, "split": f"lines in order: first {len(lines) - n_test} train, last {n_test} test",
            "train_sha256": _sha(train), "test_sha256": _sha(test)}
    return TextSplits(name, train, test, info)


def _kjv(root: str | None, download: bool) -> TextSplits:
    program = shutil.which("bible")
    data = Path("/usr/lib/bible.data")
    if program is None or not data.is_file():
        raise DataNotFoundError("text kjv needs Debian's bible-kjv and bible-kjv-text packages "
                                "(apt-get install bible-kjv bible-kjv-text; scripts/setup.sh does it)")
    out = subprocess.run([program, "-f", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin"), "COLUMNS": "0"}, timeout=120)
    if out.returncode != 0:
        raise DataNotFoundError(f"text kjv: `bible -f Gen1:1-Rev22:21` failed: {out.stderr.strip()[:200]}")
    verses = [line.split(" ", 1)[1] for line in out.stdout.splitlines() if " " in line]
    if len(verses) != 31102:
        raise DataNotFoundError(f"text kjv: bible printed {len(verses)} verses, expected 31,102")
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "bible-kjv-text"], capture_output=True,
                             text=True).stdout.strip() if shutil.which("dpkg-query") else "unknown"
    info = {"source": "Debian bible-kjv-text " + version, "file": str(data),
            "file_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "verses": len(verses)}
    return split_lines(verses, "kjv", info)


def _datasets(name: str, path: str, config: str | None, files: dict | None, download: bool,
              root: str | None) -> dict[str, str]:
    try:
        import datasets
    except ImportError:
        raise DataNotFoundError(f"text {name} needs the `datasets` library (pip install datasets) and a local copy "
                                f"of {path} (or --download)") from None
    mode = None if download else datasets.DownloadMode.REUSE_DATASET_IF_EXISTS
    if not download:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    try:
        loaded = datasets.load_dataset(path, config, data_files=files, download_mode=mode, cache_dir=root)
    except Exception as exc:  # datasets raises many kinds; all mean "not here"
        raise DataNotFoundError(f"text {name}: could not load {path} {config or ''} without a network "
                                f"({type(exc).__name__}); pass --download or put it in the datasets cache") from None
    return {split: "\n\n".join(loaded[split]["text"]) for split in loaded}


def _wikitext2(root: str | None, download: bool) -> TextSplits:
    parts = _datasets("wikitext2", "wikitext", "wikitext-2-raw-v1", None, download, root)
    info = {"source": "datasets wikitext/wikitext-2-raw-v1", "split": "its train and test splits, joined by \\n\\n"}
    return TextSplits("wikitext2", parts["train"], parts["test"],
                      {**info, "train_sha256": _sha(parts["train"]), "test_sha256": _sha(parts["test"])})


def _c4(root: str | None, download: bool) -> TextSplits:
    files = {"train": "en/c4-train.00000-of-01024.json.gz", "validation": "en/c4-validation.00000-of-00008.json.gz"}
    parts = _datasets("c4", "allenai/c4", None, files, download, root)
    info = {"source": "datasets allenai/c4 " + ", ".join(files.values()),
            "split": "train shard 0 for calibration, validation shard 0 for perplexity"}
    return TextSplits("c4", parts["train"], parts["validation"],
                      {**info, "train_sha256": _sha(parts["train"]), "test_sha256": _sha(parts["validation"])})


TEXTS: Registry[Callable[[str | None, bool], TextSplits]] = Registry("text")
TEXTS.register("kjv", _kjv, aliases=("bible-kjv",))
TEXTS.register("wikitext2", _wikitext2, aliases=("wikitext-2",))
TEXTS.register("c4", _c4)
SOURCES = {
    "kjv": ("the King James Bible, Debian bible-kjv-text (offline)", "verses in order: first 90% train, last 10% test"),
    "wikitext2": ("WikiText-2 raw through the datasets library (its cache; --download from the hub)",
                  "its own train and test splits, documents joined with \"\\n\\n\""),
    "c4": ("C4 English shards en/c4-train.00000-of-01024 and en/c4-validation.00000-of-00008 through datasets",
           "train shard for calibration, validation shard for perplexity"),
}
"""Where each registered text comes from and how it is split (for `shrinkbench datasets`)."""
DATASETS_TEXTS = ("wikitext2", "c4")
"""The texts read through the datasets library (the ones `--download` and `--text-root` act on)."""


def read_text(name: str, root: str | None = None, download: bool = False) -> TextSplits:
    """The train and test text of `name` (a registered text or `file:<path>`). `root` is the
    datasets cache folder of a text read through the datasets library (wikitext2, c4); the
    other texts refuse it."""
    if root is not None and (name.startswith("file:") or TEXTS.canonical(name) not in DATASETS_TEXTS):
        raise ConfigError(f"text_root (--text-root) is the datasets cache folder of {', '.join(DATASETS_TEXTS)}; "
                          f"text {name} does not read it: leave it out")
    if name.startswith("file:"):
        path = Path(name[5:]).expanduser()
        if path.is_dir():
            raise ConfigError(f"text file:{path} is a folder; name a UTF-8 text file inside it")
        if not path.is_file():
            raise DataNotFoundError(f"text file {path} does not exist")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise ConfigError(f"text file {path} is not UTF-8 text") from None
        return split_lines(lines, name, {"source": str(path.resolve())})
    try:
        return TEXTS.get(name)(root, download)
    except KeyError as exc:
        raise type(exc)(f"{exc} (or file:<path> for a UTF-8 text file)") from None


# ------------------------------------------------------------------------------ tokens
def token_ids(text: str, tokenizer, cache_key: str | None = None):
    """The text's token ids as a 1-D int64 tensor (no special tokens added), cached by
    `cache_key` (text and tokenizer hashes) under `<cache>/llm/tokens/` when given."""
    import torch

    from shrinkbench.llm.models import cache_root

    path = cache_root() / "llm" / "tokens" / f"{cache_key}.pt" if cache_key else None
    if path is not None and path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a corrupt cache file is recomputed
            path.unlink(missing_ok=True)
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.int64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(ids, tmp)
        os.replace(tmp, path)
    return ids


def eval_windows(ids, seq_len: int, windows: int, name: str):
    """(windows, seq_len) tensor: the first `windows` non-overlapping windows of the test ids."""
    available = ids.numel() // seq_len
    if available < windows:
        raise ConfigError(f"text {name!r}: its test split has {ids.numel():,} tokens, {available} window(s) of "
                          f"{seq_len}; the run asks for eval_windows = {windows} (lower it or seq_len)")
    return ids[: windows * seq_len].reshape(windows, seq_len)


def calibration_windows(ids, seq_len: int, count: int, generator, name: str):
    """(count, seq_len) tensor of train windows whose starts `generator` draws uniformly."""
    import torch

    if ids.numel() < seq_len:
        raise ConfigError(f"text {name!r}: its train split has {ids.numel():,} tokens, fewer than one calibration "
                          f"window of seq_len = {seq_len}")
    starts = torch.randint(0, ids.numel() - seq_len + 1, (count,), generator=generator)
    return torch.stack([ids[s: s + seq_len] for s in starts.tolist()])
