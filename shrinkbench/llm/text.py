"""Text for calibration and perplexity, with fixed splits and a record of what was read.

Sources (`TEXTS`):

- `kjv` (offline default): the King James Bible (1611, public domain) from Debian's
  `bible-kjv-text`, read with its `bible` program (package `bible-kjv`): all 31,102 verses,
  Genesis 1:1 to Revelation 22:21, one verse per line without its reference. Split by verse
  order: the first 90% of the verses (27,992: Genesis 1:1 to Romans 2:29) are
  `train`, the last 10% `test`.
- `wikitext2`: WikiText-2 (raw, wikitext-2-raw-v1), its own train and test splits, rows joined
  with "\\n\\n" (the convention of the SparseGPT and Wanda evaluations), read from the hub's
  parquet files (`Salesforce/wikitext`, `wikitext-2-raw-v1/{train,test}-00000-of-00001.parquet`)
  in `--text-root` (laid out as the repository) or the Hugging Face hub cache, or from the
  `datasets` library's Arrow cache (`wikitext/wikitext-2-raw-v1/<version>/<hash>/wikitext-test.arrow`).
- `c4`: the C4 shards those papers use (`en/c4-train.00000-of-01024.json.gz` for calibration,
  `en/c4-validation.00000-of-00008.json.gz` for perplexity; gzip json lines), from `--text-root`
  or the hub cache.
- `fortunes` (offline, the second English text): Debian's `fortunes` package, English
  quotations, jokes and literature excerpts, each cookie a document, every 10th cookie test.
- `file:<path>`: a UTF-8 text file, split by lines as `kjv` is (first 90% train).

WikiText-2 and C4 download (into the hub cache) only with `download=True`.
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
    train_docs: tuple[str, ...] = ()
    test_docs: tuple[str, ...] = ()
    """The documents (rows, verses, lines) the splits join, for the presets that draw or join by document."""

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
    return TextSplits(name, train, test, info, tuple(lines[:-n_test]), tuple(lines[-n_test:]))


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


# ------------------------------------------------------------------ WikiText-2 and C4 files
WIKITEXT_REPO = "Salesforce/wikitext"
WIKITEXT_FILES = {"train": "wikitext-2-raw-v1/train-00000-of-00001.parquet",
                  "test": "wikitext-2-raw-v1/test-00000-of-00001.parquet"}
"""The hub's parquet files of wikitext-2-raw-v1 (one string column `text`, one row a line)."""
C4_REPO = "allenai/c4"
C4_FILES = {"train": "en/c4-train.00000-of-01024.json.gz", "test": "en/c4-validation.00000-of-00008.json.gz"}
"""The C4 shards SparseGPT and Wanda read: json lines {"text", "timestamp", "url"}, gzip."""


def _hub_file(name: str, repo: str, relative: str, root: str | None, download: bool) -> Path | None:
    """`relative` (a path in the hub repository `repo`) from `root` (a folder laid out as the
    repository), from the Hugging Face hub cache, or downloaded into it with `download`."""
    if root is not None:
        candidate = Path(root).expanduser() / relative
        if candidate.is_file():
            return candidate
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        try_to_load_from_cache = None
    if try_to_load_from_cache is not None:
        cached = try_to_load_from_cache(repo, relative, repo_type="dataset")
        if isinstance(cached, str) and Path(cached).is_file():
            return Path(cached)
    if download:
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(repo, relative, repo_type="dataset"))
        except Exception as exc:  # offline, no such file, no permission: one line
            raise DataNotFoundError(f"text {name}: could not download {repo}/{relative} "
                                    f"({type(exc).__name__}: {' '.join(str(exc).split())[:120]})") from None
    return None


FORTUNES = Path("/usr/share/games/fortunes")
FORTUNES_LEFT_OUT = ("ascii-art",)
"""Debian `fortunes` files that are pictures, not text."""


def _fortunes(root: str | None, download: bool) -> TextSplits:
    """Debian's `fortunes` (English quotations, jokes and literature excerpts, each cookie a
    document): every English file the package installs (the `*.u8` names), ascii-art left out,
    in name order, cookies split on the lines holding only "%"; cookie k (counting from 0 over
    all files) is `test` when k % 10 == 9, else `train` (every category in both splits)."""
    names = sorted(p.name[:-3] for p in FORTUNES.glob("*.u8")) if FORTUNES.is_dir() else []
    names = [n for n in names if n not in FORTUNES_LEFT_OUT and (FORTUNES / n).is_file()]
    if not names:
        raise DataNotFoundError("text fortunes needs Debian's fortunes package (apt-get install fortunes; "
                                "scripts/setup.sh does it)")
    cookies: list[str] = []
    files = {}
    for name in names:
        raw = (FORTUNES / name).read_bytes()
        files[name] = hashlib.sha256(raw).hexdigest()
        text = raw.decode("utf-8", errors="replace")
        cookies += [c.strip("\n") for c in text.split("\n%\n") if c.strip() and c.strip() != "%"]
    train = [c for k, c in enumerate(cookies) if k % 10 != 9]
    test = [c for k, c in enumerate(cookies) if k % 10 == 9]
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "fortunes"], capture_output=True,
                             text=True).stdout.strip() if shutil.which("dpkg-query") else "unknown"
    joined_train, joined_test = "\n\n".join(train), "\n\n".join(test)
    info = {"source": f"Debian fortunes {version}", "folder": str(FORTUNES), "files_sha256": files,
            "split": f"{len(cookies)} cookies of {len(names)} files in name order; every 10th (k % 10 == 9) test, "
                     f"joined by \\n\\n",
            "train_sha256": _sha(joined_train), "test_sha256": _sha(joined_test)}
    return TextSplits("fortunes", joined_train, joined_test, info, tuple(train), tuple(test))


def _datasets_arrow(root: str | None, split: str) -> Path | None:
    """wikitext-2-raw-v1's `split` in the `datasets` library's cache (an Arrow stream file
    `<cache>/[Salesforce___]wikitext/wikitext-2-raw-v1/<version>/<hash>/wikitext-<split>.arrow`),
    under `root` or `HF_DATASETS_CACHE` (default ~/.cache/huggingface/datasets)."""
    places = [Path(root).expanduser()] if root is not None else []
    places.append(Path(os.environ.get("HF_DATASETS_CACHE",
                                      Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
                                      / "datasets")))
    for place in places:
        for folder in ("wikitext", "Salesforce___wikitext"):
            found = sorted((place / folder / "wikitext-2-raw-v1").glob(f"*/*/wikitext-{split}.arrow"))
            if found:
                return found[-1]
    return None


def _read_parquet(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [str(t) for t in pq.read_table(path, columns=["text"]).column("text").to_pylist()]


def _read_arrow_stream(path: Path) -> list[str]:
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_stream(source).read_all()
    return [str(t) for t in table.column("text").to_pylist()]


def _read_json_lines(path: Path) -> list[str]:
    import gzip
    import json

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _documents(name: str, path: Path, reader) -> list[str]:
    try:
        return reader(path)
    except Exception as exc:  # a truncated or foreign file: one line naming it
        raise ConfigError(f"text {name}: {path} is not in the expected format ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]})") from None


def _wikitext2(root: str | None, download: bool) -> TextSplits:
    docs: dict[str, list[str]] = {}
    files: dict[str, dict] = {}
    for split, relative in WIKITEXT_FILES.items():
        path = _hub_file("wikitext2", WIKITEXT_REPO, relative, root, False)
        reader = _read_parquet
        if path is None:
            path, reader = _datasets_arrow(root, split), _read_arrow_stream
        if path is None:
            path, reader = _hub_file("wikitext2", WIKITEXT_REPO, relative, root, download), _read_parquet
        if path is None:
            raise DataNotFoundError(f"text wikitext2: {WIKITEXT_REPO}/{relative} is not in --text-root, the hub cache "
                                    f"or the datasets cache; pass --download to fetch it")
        docs[split] = _documents("wikitext2", path, reader)
        files[split] = {"file": str(path), "file_sha256": _file_sha256(path), "rows": len(docs[split])}
    train, test = "\n\n".join(docs["train"]), "\n\n".join(docs["test"])
    info = {"source": f"{WIKITEXT_REPO} wikitext-2-raw-v1", "files": files,
            "split": "its train and test splits, rows joined by \\n\\n",
            "train_sha256": _sha(train), "test_sha256": _sha(test)}
    return TextSplits("wikitext2", train, test, info, tuple(docs["train"]), tuple(docs["test"]))


def _c4(root: str | None, download: bool) -> TextSplits:
    docs: dict[str, list[str]] = {}
    files: dict[str, dict] = {}
    for split, relative in C4_FILES.items():
        path = _hub_file("c4", C4_REPO, relative, root, download)
        if path is None:
            raise DataNotFoundError(f"text c4: {C4_REPO}/{relative} is not in --text-root or the hub cache; pass "
                                    f"--download to fetch it")
        docs[split] = _documents("c4", path, _read_json_lines)
        files[split] = {"file": str(path), "file_sha256": _file_sha256(path), "documents": len(docs[split])}
    train, test = "\n\n".join(docs["train"]), "\n\n".join(docs["test"])
    info = {"source": f"{C4_REPO} " + ", ".join(C4_FILES.values()), "files": files,
            "split": "train shard 0 for calibration, validation shard 0 for perplexity (documents joined by \\n\\n)",
            "train_sha256": _sha(train), "test_sha256": _sha(test)}
    return TextSplits("c4", train, test, info, tuple(docs["train"]), tuple(docs["test"]))


TEXTS: Registry[Callable[[str | None, bool], TextSplits]] = Registry("text")
TEXTS.register("kjv", _kjv, aliases=("bible-kjv",))
TEXTS.register("wikitext2", _wikitext2, aliases=("wikitext-2",))
TEXTS.register("c4", _c4)
TEXTS.register("fortunes", _fortunes)
SOURCES = {
    "kjv": ("the King James Bible, Debian bible-kjv-text (offline)", "verses in order: first 90% train, last 10% test"),
    "wikitext2": ("WikiText-2 raw: the hub's parquet files (--text-root, the hub or datasets cache; --download)",
                  "its own train and test splits, documents joined with \"\\n\\n\""),
    "fortunes": ("Debian's fortunes: English quotations and literature excerpts (offline)",
                 "cookies in file order: every 10th test, the rest train"),
    "c4": ("C4 English shards en/c4-train.00000-of-01024 and en/c4-validation.00000-of-00008 (json.gz; --text-root, "
           "the hub cache; --download)",
           "train shard for calibration, validation shard for perplexity"),
}
"""Where each registered text comes from and how it is split (for `shrinkbench datasets`)."""
DATASETS_TEXTS = ("wikitext2", "c4")
"""The texts read from the hub's files (the ones `--download` and `--text-root` act on)."""


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
def token_ids(text: str, tokenizer, cache_key: str | None = None, special_tokens: bool = False):
    """The text's token ids as a 1-D int64 tensor, cached by `cache_key` (text and tokenizer
    hashes) under `<cache>/llm/tokens/` when given; `special_tokens`: as `tokenizer(text)` adds
    them by default (LLaMA's BOS; the published presets), else none."""
    import torch

    from shrinkbench.llm.models import cache_root

    path = cache_root() / "llm" / "tokens" / f"{cache_key}.pt" if cache_key else None
    if path is not None and path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except Exception:  # a corrupt cache file is recomputed
            path.unlink(missing_ok=True)
    ids = torch.tensor(tokenizer(text, add_special_tokens=special_tokens)["input_ids"], dtype=torch.int64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(ids, tmp)
        os.replace(tmp, path)
    return ids


def eval_windows(ids, seq_len: int, windows: int, name: str):
    """(windows, seq_len) tensor: the first `windows` non-overlapping windows of the test ids
    (`windows` 0: every whole window, the last partial one left out, as the published code)."""
    available = ids.numel() // seq_len
    if windows == 0:
        if available == 0:
            raise ConfigError(f"text {name!r}: its test split has {ids.numel():,} tokens, not one window of {seq_len}")
        windows = available
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
