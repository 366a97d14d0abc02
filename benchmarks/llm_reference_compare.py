"""Our language-model pruning methods against their published code, on SmolLM2-135M, CPU.

    python benchmarks/llm_reference_compare.py --refs REFS [--calib 4] [--seq-len 128] [--eval-windows 8]

REFS is a folder holding checkouts of the reference repositories (nothing is downloaded here):

    REFS/wanda      git clone https://github.com/locuslab/wanda            (magnitude, Wanda)
    REFS/sparsegpt  git clone https://github.com/IST-DASLab/sparsegpt      (SparseGPT, llama.py)
    REFS/OWL        git clone https://github.com/luuyin/OWL                (OWL on Wanda and magnitude)
    REFS/RIA        git clone https://github.com/biomedical-cybernetics/Relative-importance-and-activation-pruning

RIA's cases: `ria 2:4 reallocated` is its heuristic channel reallocation alone (`--reallocation`;
ours `permute=true lsa=false`), `ria 2:4 permuted` the published channel permutation
(`--reallocation --lsa`; ours `permute=true`).

A repository that is absent is named and its rows are skipped. Each reference runs in its own
process (they all call their package `lib`): its own whole-model driver (`prune_magnitude`,
`prune_wanda`, `llama_sequential`, `prune_wanda_outlier`, `prune_mag_outlier`, `prune_ria`) is
called on SmolLM2-135M with three shims that change no arithmetic: the calibration loader
(`get_loaders`, so their `datasets` import may be absent) returns OUR calibration windows (the run seed's draw, `--calib` windows of
`--seq-len` KJV train tokens), `Tensor.cuda` is the identity (the code sorts on the GPU), and
each decoder block computes its rotary embeddings when the caller passes only `position_ids`
(the drivers predate transformers 4.48, whose LLaMA blocks take `position_embeddings`); RIA's
channel permutation also has its hard-coded `"cuda:7"` mapped to the CPU. Ours
runs `shrinkbench.llm.engine.prune_model` on the same windows. Both models are then measured
with the same held-out windows (`shrinkbench.llm.runner.window_nll`).

Printed per (method, pattern): the agreement of the kept sets (the fraction of identical
keep/prune decisions; mean over the pruned layers, and the lowest layer), the sparsity each
actually reached, perplexity of each, and the seconds each took to prune (at the given threads;
state the machine's load with the numbers). Agreement in block 0 is printed on its own: block 0
sees the same inputs in both, later blocks what the already pruned blocks produce, so an early
difference carries on. `--self` also runs each reference a second time with the same windows in
the opposite order and prints how much it agrees with itself: a float32 running mean summed in
another order is the scale of disagreement that is nobody's error.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

CASES = {
    # name: (repository folder, our strategy, our params, allocation, sparsity, pattern)
    "magnitude 50%": ("wanda", "magnitude", {}, None, 0.5, None),
    "magnitude 2:4": ("wanda", "magnitude", {}, None, 0.5, (2, 4)),
    "wanda 50%": ("wanda", "wanda", {}, None, 0.5, None),
    "wanda 2:4": ("wanda", "wanda", {}, None, 0.5, (2, 4)),
    "sparsegpt 50%": ("sparsegpt", "sparsegpt", {}, None, 0.5, None),
    "sparsegpt 2:4": ("sparsegpt", "sparsegpt", {}, None, 0.5, (2, 4)),
    "wanda+owl 70%": ("OWL", "wanda", {}, "owl", 0.7, None),
    "magnitude+owl 70%": ("OWL", "magnitude", {}, "owl", 0.7, None),
    "ria 50%": ("RIA", "ria", {}, None, 0.5, None),
    "ria 2:4": ("RIA", "ria", {}, None, 0.5, (2, 4)),
    "ria 2:4 reallocated": ("RIA", "ria", {"permute": True, "lsa": False}, None, 0.5, (2, 4)),
    "ria 2:4 permuted": ("RIA", "ria", {"permute": True}, None, 0.5, (2, 4)),
}
OWL_M, OWL_LAMBDA = 5.0, 0.08


def load_smollm2():
    from shrinkbench.llm.models import load_model, model_sha256, resolve_model

    source = resolve_model("smollm2-135m", False)
    model, tokenizer = load_model(source, model_sha256(source), None)
    return model.eval(), tokenizer


def windows(seq_len: int, calib: int, evals: int, seed: int):
    """(calibration windows, evaluation windows) exactly as a run of ours draws them."""
    import torch

    from shrinkbench.core.seeds import generator
    from shrinkbench.llm.models import model_sha256, resolve_model
    from shrinkbench.llm.runner import _text, text_tokens
    from shrinkbench.llm.text import calibration_windows, eval_windows

    model, tokenizer = load_smollm2()
    source = resolve_model("smollm2-135m", False)
    train, test = text_tokens(_text("kjv", None, False), tokenizer, model_sha256(source), None)
    calibration = calibration_windows(train, seq_len, calib, generator(seed, "calibration"), "kjv")
    return calibration.to(torch.int64), eval_windows(test, seq_len, evals, "kjv")


def kept_sets(model) -> dict:
    from shrinkbench.llm.engine import pruned_layers

    return {n: (layer.weight.detach() != 0) for n, layer in pruned_layers(model).items()}


def perplexity(model, evals) -> float:
    import math

    import torch

    from shrinkbench.llm.runner import window_nll

    nll = window_nll(model, evals, torch.device("cpu"))
    return math.exp(sum(nll) / (evals.shape[0] * (evals.shape[1] - 1)))


# ------------------------------------------------------------------ the reference, in its own process
class RotaryShim:
    """Wraps a LLaMA decoder block so a caller passing only `position_ids` (or nothing) gets the
    rotary embeddings computed as the model itself would (`model.model.rotary_emb`)."""

    @staticmethod
    def install(model):
        import torch
        from torch import nn

        rotary = model.model.rotary_emb

        class Shim(nn.Module):
            def __init__(self, block):
                super().__init__()
                self.block = block

            def forward(self, hidden, attention_mask=None, position_ids=None, position_embeddings=None, **kw):
                if position_ids is None:
                    position_ids = torch.arange(hidden.shape[1], device=hidden.device)[None]
                if position_embeddings is None:
                    position_embeddings = rotary(hidden, position_ids)
                return self.block(hidden, attention_mask=attention_mask, position_ids=position_ids,
                                  position_embeddings=position_embeddings, **kw)

        for i, block in enumerate(model.model.layers):
            model.model.layers[i] = Shim(block)

    @staticmethod
    def remove(model):
        for i, shim in enumerate(model.model.layers):
            model.model.layers[i] = shim.block


def run_reference(case: str, repo: Path, calibration, sparsity: float, nm) -> None:
    """Prune SmolLM2 with the reference's own driver; print its result as one JSON line."""
    import torch

    if "datasets" not in sys.modules:  # their lib/data.py imports it; the loader it defines is replaced
        import types

        try:
            import datasets  # noqa: F401
        except ImportError:
            sys.modules["datasets"] = types.ModuleType("datasets")
            sys.modules["datasets"].load_dataset = None
    torch.Tensor.cuda = lambda self, *a, **k: self  # the references sort thresholds "on the GPU"
    torch.cuda.synchronize = lambda *a, **k: None
    torch.cuda.empty_cache = lambda *a, **k: None
    model, tokenizer = load_smollm2()
    model.seqlen = calibration.shape[1]
    model.hf_device_map = {}
    loader = [(calibration[i: i + 1], None) for i in range(calibration.shape[0])]
    if os.environ.get("REFERENCE_REVERSED"):  # the same windows in the opposite order (--self)
        loader = loader[::-1]
    n, m = nm or (0, 0)
    folder = repo.name
    sys.path.insert(0, str(repo))
    RotaryShim.install(model)
    cpu = torch.device("cpu")
    started = time.perf_counter()
    with torch.no_grad():
        if folder == "wanda":
            import lib.prune as ref

            ref.get_loaders = lambda *a, **k: (loader, None)
            args = SimpleNamespace(nsamples=len(loader), seed=0, sparsity_ratio=sparsity, use_variant=False,
                                   prune_method=case.split()[0])
            (ref.prune_magnitude if case.startswith("magnitude") else ref.prune_wanda)(
                args, model, tokenizer, cpu, prune_n=n, prune_m=m)
        elif folder == "sparsegpt":
            import llama as ref

            ref.args = SimpleNamespace(nsamples=len(loader), true_sequential=False, minlayer=-1, maxlayer=1000,
                                       prune_only="", invert=False, wbits=16, sparsity=sparsity, prunen=n, prunem=m,
                                       percdamp=0.01, blocksize=128)
            ref.llama_sequential(model, loader, cpu)
        elif folder == "OWL":
            import lib.prune_all as ref

            ref.get_loaders = lambda *a, **k: (loader, None)
            args = SimpleNamespace(nsamples=len(loader), seed=0, sparsity_ratio=sparsity, use_variant=False,
                                   Hyper_m=OWL_M, Lamda=OWL_LAMBDA, model="smollm2")
            driver = ref.prune_wanda_outlier if case.startswith("wanda") else ref.prune_mag_outlier
            driver(args, model, tokenizer, cpu, prune_n=n, prune_m=m)
        elif folder == "RIA":
            import lib.prune as ref

            real_to = torch.Tensor.to  # its assignment step moves tensors to "cuda:7": here the CPU

            def to_cpu(self, *a, **k):
                a = tuple("cpu" if isinstance(x, str) and x.startswith("cuda") else x for x in a)
                if isinstance(k.get("device"), str) and k["device"].startswith("cuda"):
                    k["device"] = "cpu"
                return real_to(self, *a, **k)

            torch.Tensor.to = to_cpu

            ref.get_loaders = lambda *a, **k: (loader, None)
            args = SimpleNamespace(nsamples=len(loader), seed=0, sparsity_ratio=sparsity, calib_dataset="c4",
                                   seqlen=model.seqlen, model="llama-smollm2", prune_method="ria", a=0.5,
                                   reconstruction=False, reallocation="permuted" in case or "reallocated" in case,
                                   lsa="permuted" in case,
                                   importance_score="sum", gptq=False, per_outneuron=False, semi_sparse_acc=False,
                                   fast=False)
            ref.prune_ria(args, model, tokenizer, cpu, prune_n=n, prune_m=m)
    seconds = time.perf_counter() - started
    RotaryShim.remove(model)
    out = Path(os.environ["REFERENCE_OUT"])
    torch.save(kept_sets(model), out / "masks.pt")
    evals = torch.load(out / "evals.pt", weights_only=True)
    print(json.dumps({"seconds": seconds, "perplexity": perplexity(model, evals)}))


# ------------------------------------------------------------------ ours, and the table
def run_ours(strategy_name, params, allocation_name, sparsity, nm, calibration, evals, calib_batch: int):
    from shrinkbench.llm.allocation import resolve_allocation
    from shrinkbench.llm.engine import prune_model
    from shrinkbench.llm.methods import resolve_llm_strategy

    model, _ = load_smollm2()
    strategy = resolve_llm_strategy(strategy_name, params)
    allocation = resolve_allocation(allocation_name, {"m": OWL_M, "lam": OWL_LAMBDA}) if allocation_name else None
    batches = [calibration[i: i + calib_batch] for i in range(0, len(calibration), calib_batch)]
    started = time.perf_counter()
    prune_model(model, strategy, sparsity, nm, strategy.default_scope, (), batches if strategy.needs_inputs or (
        allocation and allocation.needs_inputs) else None, allocation=allocation)
    seconds = time.perf_counter() - started
    return kept_sets(model), seconds, perplexity(model, evals)


def agreement(ours: dict, reference: dict) -> tuple[float, float, str, float]:
    """(mean over layers, lowest layer, its name, mean over block 0's layers) of the fraction of
    identical keep/prune decisions. Block 0 sees the same inputs in both (the embeddings); later
    blocks see what the already pruned blocks before them produce, so differences carry on."""
    shares = {n: float((ours[n] == reference[n]).double().mean()) for n in ours}
    low = min(shares, key=shares.get)
    first = [v for n, v in shares.items() if ".layers.0." in n]
    return sum(shares.values()) / len(shares), shares[low], low, sum(first) / len(first)


def sparsity_of(masks: dict) -> float:
    return 1 - sum(int(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())


def run_worker(refs: Path, case: str, calibration, evals, threads: int, reversed_order: bool):
    """(result, masks) of the reference in a process of its own, or (None, its last error line)."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        torch.save(calibration, Path(tmp) / "calibration.pt")
        torch.save(evals, Path(tmp) / "evals.pt")
        env = {**os.environ, "REFERENCE_OUT": tmp, "OMP_NUM_THREADS": str(threads)}
        if reversed_order:
            env["REFERENCE_REVERSED"] = "1"
        done = subprocess.run([sys.executable, __file__, "--refs", str(refs), "--worker", case,
                               "--threads", str(threads)], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            return None, (done.stderr.strip().splitlines()[-1:] or ["(no message)"])[0]
        return (json.loads(done.stdout.strip().splitlines()[-1]),
                torch.load(Path(tmp) / "masks.pt", weights_only=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refs", required=True, help="folder with checkouts wanda, sparsegpt, OWL, RIA")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help=f"of: {', '.join(CASES)}")
    parser.add_argument("--calib", type=int, default=4, help="calibration windows (default 4)")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per window (default 128)")
    parser.add_argument("--eval-windows", type=int, default=8, help="held-out windows (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="run seed: draws the calibration windows")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--self", action="store_true", dest="self_check",
                        help="also run each reference on the same windows in the opposite order and print its "
                             "agreement with itself (how much its own float rounding moves its mask)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    refs = Path(args.refs)
    if args.worker:
        folder, _, _, _, sparsity, nm = CASES[args.worker]
        out = Path(os.environ["REFERENCE_OUT"])
        run_reference(args.worker, refs / folder, torch.load(out / "calibration.pt", weights_only=True), sparsity, nm)
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        print(f"unknown case {unknown[0]!r}; choose from: {', '.join(CASES)}", file=sys.stderr)
        return 2
    absent = sorted({CASES[c][0] for c in args.cases if not (refs / CASES[c][0]).is_dir()})
    for folder in absent:
        print(f"absent: {refs / folder} (clone the reference repository there, see this script's docstring); "
              f"its rows are skipped", file=sys.stderr)
    calibration, evals = windows(args.seq_len, args.calib, args.eval_windows, args.seed)
    print(f"SmolLM2-135M (GGUF Q4_1 dequantized), KJV: {args.calib} calibration windows of {args.seq_len} tokens "
          f"(seed {args.seed}), perplexity on {args.eval_windows} held-out windows; CPU, {args.threads} thread(s); "
          f"torch {torch.__version__}")
    print(f"| case | agreement (mean, lowest layer) | block 0 | sparsity ref / ours | ppl reference | ppl ours | "
          f"s reference | s ours |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for case in args.cases:
        folder, strategy, params, allocation, sparsity, nm = CASES[case]
        if folder in absent:
            continue
        reference, ref_masks = run_worker(refs, case, calibration, evals, args.threads, False)
        if reference is None:
            print(f"| {case} | reference failed: {ref_masks[:150]} | | | | | | |", flush=True)
            continue
        if args.self_check:
            again, again_masks = run_worker(refs, case, calibration, evals, args.threads, True)
            itself = (f"; reference vs itself, calibration order reversed: "
                      f"{100 * agreement(again_masks, ref_masks)[0]:.2f}%, ppl {again['perplexity']:.2f}"
                      if again is not None else f"; reversed run failed: {again_masks[:100]}")
        else:
            itself = ""
        ours, seconds, ppl = run_ours(strategy, params, allocation, sparsity, nm, calibration, evals, 1)
        mean, low, name, first = agreement(ours, ref_masks)
        print(f"| {case} | {100 * mean:.2f}% ({100 * low:.2f}% {name.replace('model.layers.', '')}) | "
              f"{100 * first:.2f}% | "
              f"{sparsity_of(ref_masks):.4f} / {sparsity_of(ours):.4f} | {reference['perplexity']:.2f} | {ppl:.2f} | "
              f"{reference['seconds']:.1f} | {seconds:.1f} |{itself}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
