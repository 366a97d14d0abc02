"""Our protocol presets against the published data code: the same windows, token for token.

Runs Wanda's `lib/data.py` (locuslab/wanda), SparseGPT's `datautils.py` (IST-DASLab/sparsegpt)
and LLM-Pruner's `LLMPruner/datasets/{example_samples,ppl_dataset}.py` (horseee/LLM-Pruner)
from checkouts you give, OUTSIDE the package: their `datasets.load_dataset` is replaced by a
reader of the same local files our presets read, and `AutoTokenizer.from_pretrained` by the
model's tokenizer. Then, for several seeds, it compares their calibration windows, their
WikiText-2 test tokens and SparseGPT/Wanda's C4 validation tokens with ours
(`shrinkbench.llm.windows`). The files are written here in the published formats (the hub's
wikitext-2-raw-v1 parquet, C4's json.gz shards) from Debian texts (KJV verses and fortunes
cookies grouped into long documents), since nothing is downloaded.

    python benchmarks/published_draws.py --wanda PATH --sparsegpt PATH --llm-pruner PATH
        [--model smollm2-135m] [--seq-len 256] [--samples 16] [--seeds 0 1 2]

A checkout that is absent is said so and skipped. Prints one line per comparison and
`all equal` or what differs; exit 1 if anything differs.
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import sys
import tempfile
import types
from pathlib import Path


class Rows:
    """What `load_dataset(...)` returns to the published code: len, [i]['text'], [:k]['text'], ['text']."""

    def __init__(self, texts):
        self.texts = list(texts)

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.texts
        if isinstance(key, slice):
            return {"text": self.texts[key]}
        return {"text": self.texts[key]}


def write_files(root: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from shrinkbench.llm.text import read_text

    kjv, fortunes = read_text("kjv"), read_text("fortunes")
    wiki = root / "wikitext-2-raw-v1"
    wiki.mkdir(parents=True)
    pq.write_table(pa.table({"text": list(kjv.train_docs[:3000])}), wiki / "train-00000-of-00001.parquet")
    pq.write_table(pa.table({"text": list(kjv.test_docs)}), wiki / "test-00000-of-00001.parquet")
    (root / "en").mkdir()
    groups = [" ".join(fortunes.train_docs[k: k + 12]) for k in range(0, 6000, 12)]  # ~500 long documents
    for name, docs in (("c4-train.00000-of-01024.json.gz", groups),
                       ("c4-validation.00000-of-00008.json.gz", list(fortunes.test_docs))):
        with gzip.open(root / "en" / name, "wt", encoding="utf-8") as handle:
            for doc in docs:
                handle.write(json.dumps({"text": doc, "timestamp": "", "url": ""}) + "\n")


def load_module(path: Path, name: str, stub_datasets, tokenizer):
    """Import a published file with `datasets` and `AutoTokenizer.from_pretrained` stubbed."""
    import transformers

    sys.modules["datasets"] = stub_datasets
    transformers.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: tokenizer)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wanda", type=Path, help="a checkout of locuslab/wanda")
    parser.add_argument("--sparsegpt", type=Path, help="a checkout of IST-DASLab/sparsegpt")
    parser.add_argument("--llm-pruner", type=Path, help="a checkout of horseee/LLM-Pruner")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)

    import torch

    from shrinkbench.llm.config import LLMRunConfig
    from shrinkbench.llm.models import load_tokenizer, model_sha256, resolve_model
    from shrinkbench.llm.text import read_text
    from shrinkbench.llm.windows import calibration_set, evaluation_windows, second_windows

    source = resolve_model(args.model, False)
    sha = model_sha256(source)
    tokenizer = load_tokenizer(source, sha)
    root = Path(tempfile.mkdtemp(prefix="published-draws-"))
    write_files(root)
    wiki, c4 = read_text("wikitext2", str(root)), read_text("c4", str(root))

    def load_dataset(path, *rest, data_files=None, split=None, **_):
        if path == "wikitext":
            return Rows(wiki.train_docs if split == "train" else wiki.test_docs)
        if path == "allenai/c4":
            return Rows(c4.train_docs if split == "train" else c4.test_docs)
        raise FileNotFoundError(f"this comparison reads wikitext and allenai/c4 only, not {path}")

    stub = types.ModuleType("datasets")
    stub.load_dataset = load_dataset
    differences = 0
    print(f"model {args.model} tokenizer {type(tokenizer).__name__}; seq_len {args.seq_len}; {args.samples} "
          f"calibration windows; seeds {args.seeds}; files in {root}")

    def same(label: str, theirs: torch.Tensor, ours: torch.Tensor) -> None:
        nonlocal differences
        equal = theirs.shape == ours.shape and bool(torch.equal(theirs, ours))
        differences += not equal
        print(f"{label}: {'equal' if equal else 'DIFFERENT'} ({tuple(theirs.shape)} theirs, {tuple(ours.shape)} ours)")

    def call(function, nsamples, seed, seqlen):
        """Their loader with the tokenizer where it takes one (Wanda; SparseGPT since 2024: model, tokenizer)."""
        import inspect

        names = list(inspect.signature(function).parameters)
        extra = {"tokenizer": [tokenizer], "model": ["model"]}
        rest = [v for n in names[3:] for v in extra.get(n, [])]
        return function(nsamples, seed, seqlen, *rest)

    def whole(ids: torch.Tensor) -> torch.Tensor:
        """The tokens their evaluation reads: nsamples = numel // seqlen whole windows."""
        return ids[:, : (ids.numel() // args.seq_len) * args.seq_len]

    checkouts = {"wanda": (args.wanda, "lib/data.py"), "sparsegpt": (args.sparsegpt, "datautils.py")}
    for preset, (checkout, relative) in checkouts.items():
        if checkout is None or not (checkout / relative).is_file():
            print(f"{preset}: no checkout given or {relative} absent in {checkout}; skipped")
            continue
        module = load_module(checkout / relative, f"published_{preset}", stub, tokenizer)
        for seed in args.seeds:
            cfg = LLMRunConfig(protocol=preset, seq_len=args.seq_len, strategy="wanda", seed=seed,
                               calib_sequences=args.samples)
            loader, valenc = call(module.get_c4, args.samples, seed, args.seq_len)
            theirs = torch.cat([inp for inp, _ in loader])
            ours, _ = calibration_set(cfg, c4, tokenizer, sha, args.samples, None, seed)
            same(f"{preset} seed {seed}: calibration windows from the C4 train shard", theirs, ours)
        cfg = LLMRunConfig(protocol=preset, seq_len=args.seq_len)
        ours = second_windows(cfg, c4, tokenizer).reshape(1, -1)
        same(f"{preset}: C4 validation windows (first 1,100 documents, 256 x seq_len)", whole(valenc.input_ids), ours)
        _, testenc = call(module.get_wikitext2, 1, 0, args.seq_len)
        ours = evaluation_windows(cfg, wiki, tokenizer, sha).reshape(1, -1)
        same(f"{preset}: WikiText-2 test windows (every whole window)", whole(testenc.input_ids), ours)
    if args.llm_pruner is not None and (args.llm_pruner / "LLMPruner/datasets/example_samples.py").is_file():
        base = args.llm_pruner / "LLMPruner" / "datasets"
        examples = load_module(base / "example_samples.py", "published_llm_pruner", stub, tokenizer)
        ppl = load_module(base / "ppl_dataset.py", "published_llm_pruner_ppl", stub, tokenizer)
        cfg = LLMRunConfig(protocol="llm-pruner")
        for seed in args.seeds:
            random.seed(seed)  # hf_prune.py's set_random_seed(args.seed) before get_examples
            theirs = examples.get_c4(tokenizer, 10, 64)
            ours, _ = calibration_set(cfg.replace(seed=seed, strategy="wanda"), c4, tokenizer, sha, 10, None, seed)
            same(f"llm-pruner seed {seed}: 10 calibration windows of 64 tokens", theirs, ours)
        theirs = ppl.process_data(Rows(wiki.test_docs), tokenizer, 128, "text").tensors
        ours = evaluation_windows(cfg, wiki, tokenizer, sha)
        same("llm-pruner: WikiText-2 test windows of 128", theirs, ours)
    else:
        print(f"llm-pruner: no checkout given or LLMPruner/datasets absent in {args.llm_pruner}; skipped")
    print("all equal" if differences == 0 else f"{differences} comparison(s) differ")
    return 0 if differences == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
