"""DSnoT on SmolLM2-135M: our refinement against the published code, same windows, same start.

    python benchmarks/llm_reference_dsnot.py --reference PATH [--cases 0.5,0.7,2:4]
        [--calib 8] [--eval 8] [--seq-len 256] [--threads 1] [--out results.json]

PATH is the DSnoT repository (github.com/zyxxmu/DSnoT, ICLR 2024): a checkout, or the bare git
folder the toolkit's `fetch` leaves (its HEAD is extracted to a temporary folder). Without it
the script says so and exits 2. Nothing of theirs is copied into the package; their
`lib/prune.py:prune_DSnoT` runs here, from their files, on the CPU, with four adaptations made in
this process and printed: (1) `get_loaders` returns our calibration windows (KJV train windows
the run seed 0 draws, exactly those of a shrinkbench run with the same settings), (2) a
stand-in `datasets` module where theirs is not installed (their loader, which needs it, is never
called), (3) a forward pre-hook gives each decoder layer the rotary `position_embeddings` that
transformers >= 4.48 passes from the model (their per-layer loop passes only `attention_mask`
and `position_ids`), and (4) for the "same start" rows one line is inserted before
`weight_mask = torch.zeros_like(initial_metric) == 1`: `initial_metric` is set to -inf where
our Wanda start mask (recorded layer by layer from our refined run) prunes, so their sort prunes
exactly our start mask; their Wanda metric, statistics and refinement loop are untouched. Their
defaults: `max_cycle_time` 50, `update_threshold` 0.1, `pow_of_var_regrowing` 1, `skip_layer`
mlp, `without_same_sign` true.

Per case: perplexity (our `window_nll` on the first `--eval` KJV test windows) of the dense
model, our Wanda, our Wanda + DSnoT, theirs from our start mask, theirs from their own Wanda
start; the fraction of identical keep/prune decisions per pruned layer (ours vs theirs,
minimum, mean) over the refined (attention) layers and over all; the swaps each made (weights
whose decision differs from the start mask) and how many are common; seconds of each pruning
pass (statistics, selection, refinement; the same protocol block by block); how many layers, in
pruning order, are identical before the first one that differs; and the control: their code
against itself with the calibration windows in reverse order (the same statistics up to the
order of float32 additions), agreement and perplexity.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

ANCHOR = "            weight_mask = torch.zeros_like(initial_metric) == 1\n"
HOOK = "            initial_metric = _SHRINKBENCH_START(i, name, initial_metric)\n"


def reference_folder(path: str) -> Path:
    """A folder holding lib/prune.py: `path` itself, or HEAD of a bare git folder extracted."""
    where = Path(path).expanduser()
    if (where / "lib" / "prune.py").is_file():
        return where
    if (where / "HEAD").is_file() and (where / "objects").is_dir():
        target = Path(tempfile.mkdtemp(prefix="dsnot-ref-"))
        archive = subprocess.run(["git", f"--git-dir={where}", "archive", "HEAD"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        if (target / "lib" / "prune.py").is_file():
            return target
    sys.exit(f"no DSnoT repository at {path}: give a checkout of github.com/zyxxmu/DSnoT (with lib/prune.py) or "
             f"the bare git folder fetched from it")


def load_reference(folder: Path, start_hook: bool):
    """Their lib/prune.py as a module of their `lib` package; with `start_hook` the one line of
    adaptation (4) of the module docstring inserted."""
    sys.path.insert(0, str(folder))
    try:
        import datasets  # noqa: F401
    except ImportError:  # adaptation (2): their lib/data.py imports it at the top; we never call its loaders
        sys.modules["datasets"] = types.SimpleNamespace(load_dataset=None)
    source = (folder / "lib" / "prune.py").read_text()
    if start_hook:
        if source.count(ANCHOR) != 1:
            sys.exit("their lib/prune.py changed: the line the start mask is injected before is not there once")
        source = source.replace(ANCHOR, HOOK + ANCHOR)
    name = "lib.prune_start" if start_hook else "lib.prune"
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(folder / "lib" / "prune.py"))
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "lib"
    exec(compile(source, str(folder / "lib" / "prune.py"), "exec"), module.__dict__)
    return module


def rotary_hooks(model):
    """Adaptation (3): each decoder layer gets `position_embeddings` where its caller passes none."""
    inner = model.model

    def hook(layer, args, kwargs):
        if kwargs.get("position_embeddings") is None:
            hidden = args[0] if args else kwargs["hidden_states"]
            ids = kwargs.get("position_ids")
            if ids is None:
                ids = torch.arange(hidden.shape[1]).unsqueeze(0)
            kwargs["position_embeddings"] = inner.rotary_emb(hidden, ids)
        return args, kwargs

    return [layer.register_forward_pre_hook(hook, with_kwargs=True) for layer in inner.layers]


def reference_args(nsamples: int, sparsity: float):
    return argparse.Namespace(nsamples=nsamples, seed=0, initial_method="wanda", sparsity_ratio=sparsity,
                              max_cycle_time=50, update_threshold=0.1, pow_of_var_regrowing=1.0,
                              pow_of_var_pruning=1.0, skip_layer="mlp", skip_sub_layer="no_skip",
                              without_same_sign=True, without_DSnoT=False, get_time_overhead=False)


def run_reference(module, model, windows, seq_len, sparsity, nm, start=None) -> float:
    """Their prune_DSnoT on `model` in place (adaptations (1), (3), (4)); its seconds."""
    module.get_loaders = lambda *a, **k: ([(w.unsqueeze(0), None) for w in windows], None)  # adaptation (1)
    if start is not None:
        def inject(i, name, metric):
            keep = start[f"model.layers.{i}.{name}"].to(metric.device)
            return torch.where(keep, metric, torch.full_like(metric, -float("inf")))
        module._SHRINKBENCH_START = inject
    model.seqlen, model.hf_device_map = seq_len, {}
    handles = rotary_hooks(model)
    n, m = nm if nm else (0, 0)
    t = time.perf_counter()
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):  # their per-layer progress lines
            module.prune_DSnoT(reference_args(len(windows), sparsity), model, None, torch.device("cpu"),
                               prune_n=m - n if nm else 0, prune_m=m)
    finally:
        for h in handles:
            h.remove()
    return time.perf_counter() - t


class Recording:
    """Wraps our DSnoT to record each refined layer's start mask."""

    def __init__(self, inner):
        self.inner, self.start, self.current, self.name = inner, {}, None, inner.name

    def applies_to(self, layer):
        self.current = layer
        return self.inner.applies_to(layer)

    def refine(self, weight, keep, inputs, nm, scores):
        self.start[self.current] = keep.clone()
        return self.inner.refine(weight, keep, inputs, nm, scores)


def keep_masks(model) -> dict[str, torch.Tensor]:
    from shrinkbench.llm.engine import pruned_layers

    return {n: layer.weight.detach() != 0 for n, layer in pruned_layers(model).items()}


def agreement(a: dict, b: dict, names) -> tuple[float, float]:
    values = [float((a[n] == b[n]).double().mean()) for n in names]
    return min(values), sum(values) / len(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="the DSnoT repository (a checkout or a bare git folder)")
    parser.add_argument("--cases", default="0.5,0.7,2:4", help="unstructured sparsities and N:M patterns")
    parser.add_argument("--calib", type=int, default=8, help="calibration windows (seed 0's draws)")
    parser.add_argument("--eval", type=int, default=8, help="held-out KJV windows for perplexity")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    folder = reference_folder(args.reference)
    torch.set_num_threads(args.threads)

    from shrinkbench.core.seeds import generator
    from shrinkbench.llm.config import parse_pattern
    from shrinkbench.llm.engine import prune_model, pruned_layers
    from shrinkbench.llm.methods import Wanda
    from shrinkbench.llm.models import load_model, model_sha256, resolve_model
    from shrinkbench.llm.refine import DSnoT
    from shrinkbench.llm.runner import _text, text_tokens, window_nll
    from shrinkbench.llm.text import calibration_windows, eval_windows

    source = resolve_model("smollm2-135m")
    sha = model_sha256(source)
    dense, tokenizer = load_model(source, sha)
    text = _text("kjv", None, False)
    train, test = text_tokens(text, tokenizer, sha, None)
    calib = calibration_windows(train, args.seq_len, args.calib, generator(0, "calibration"), "kjv")
    batches = [calib[i: i + 4] for i in range(0, len(calib), 4)]
    held_out = eval_windows(test, args.seq_len, args.eval, "kjv")
    cpu = torch.device("cpu")

    def ppl(model) -> float:
        nll = window_nll(model, held_out, cpu)
        return float(torch.tensor(sum(nll) / (len(nll) * (args.seq_len - 1))).exp())

    theirs_start, theirs_own = load_reference(folder, True), load_reference(folder, False)
    print(f"# DSnoT reference: {folder} (HEAD of zyxxmu/DSnoT); adaptations (1)-(4) of this script's docstring; "
          f"the start-mask line inserted before: {ANCHOR.strip()!r}")
    print(f"# SmolLM2-135M float32, KJV, seq_len {args.seq_len}, {args.calib} calibration windows (seed 0), "
          f"{args.eval} eval windows, torch {torch.__version__}, {args.threads} thread(s), {platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    dense_ppl = ppl(dense)
    print(f"# dense perplexity {dense_ppl:.3f}")
    rows = []
    for case in args.cases.split(","):
        nm = parse_pattern(case) if ":" in case else None
        sparsity = 1 - nm[0] / nm[1] if nm else float(case)
        wanda = copy.deepcopy(dense)
        t = time.perf_counter()
        prune_model(wanda, Wanda(), sparsity, nm, "row", (), batches)
        t_wanda = time.perf_counter() - t
        ours = copy.deepcopy(dense)
        recording = Recording(DSnoT())
        t = time.perf_counter()
        masks_ours = prune_model(ours, Wanda(), sparsity, nm, "row", (), batches, refine=recording)
        t_ours = time.perf_counter() - t
        start = {n: recording.start.get(n, masks_ours[n]) for n in masks_ours}  # skipped layers: start = final
        ref = copy.deepcopy(dense)
        t_ref = run_reference(theirs_start, ref, calib, args.seq_len, sparsity, nm, start)
        ref_own = copy.deepcopy(dense)
        t_own = run_reference(theirs_own, ref_own, calib, args.seq_len, sparsity, nm)
        ref_rev = copy.deepcopy(dense)  # the control: their code against itself, calibration order reversed
        run_reference(theirs_own, ref_rev, calib.flip(0), args.seq_len, sparsity, nm)
        # decisions read from the weights (nonzero = kept) on every side: a weight that is 0 in the
        # dense model reads as pruned everywhere, so it cannot make a disagreement
        nonzero = keep_masks(dense)
        mine, theirs, own, rev = keep_masks(ours), keep_masks(ref), keep_masks(ref_own), keep_masks(ref_rev)
        start = {n: start[n] & nonzero[n] for n in start}
        names = list(pruned_layers(dense))
        refined = [n for n in names if ".mlp." not in n]
        swaps_ours = sum(int((mine[n] != start[n]).sum()) for n in names)
        swaps_ref = sum(int((theirs[n] != start[n]).sum()) for n in names)
        common = sum(int(((mine[n] != start[n]) & (theirs[n] != start[n]) & (mine[n] == theirs[n])).sum())
                     for n in names)
        row = {"case": case, "dense_ppl": dense_ppl, "wanda_ppl": ppl(wanda), "ours_ppl": ppl(ours),
               "ref_ppl": ppl(ref), "ref_own_start_ppl": ppl(ref_own),
               "agree_refined_min_mean": agreement(mine, theirs, refined),
               "agree_all_min_mean": agreement(mine, theirs, names),
               "agree_own_start_all_min_mean": agreement(mine, own, names),
               "ref_vs_ref_reversed_all_min_mean": agreement(own, rev, names),
               "ref_reversed_ppl": ppl(ref_rev),
               "identical_layers_before_first_difference": next(
                   (k for k, n in enumerate(names) if not torch.equal(mine[n], theirs[n])), len(names)),
               "first_difference": next((f"{n}: {int((mine[n] != theirs[n]).sum())} decisions" for n in names
                                         if not torch.equal(mine[n], theirs[n])), None),
               "swapped_decisions_ours": swaps_ours, "swapped_decisions_ref": swaps_ref, "common": common,
               "seconds_wanda": t_wanda, "seconds_ours": t_ours, "seconds_ref": t_ref, "seconds_ref_own": t_own}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| case | agreement, refined layers (min / mean) | all layers | swapped decisions ours / theirs / common "
          "| perplexity: Wanda | ours (Wanda + DSnoT) | reference, our start | reference, own start | seconds "
          "ours / reference | identical layers before the first difference | reference vs itself, calibration "
          "order reversed: all layers (min / mean), perplexity |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        a, b = r["agree_refined_min_mean"], r["agree_all_min_mean"]
        print(f"| {r['case']} | {a[0]:.4f} / {a[1]:.4f} | {b[0]:.4f} / {b[1]:.4f} | {r['swapped_decisions_ours']:,} / "
              f"{r['swapped_decisions_ref']:,} / {r['common']:,} | {r['wanda_ppl']:.2f} | {r['ours_ppl']:.2f} | "
              f"{r['ref_ppl']:.2f} | {r['ref_own_start_ppl']:.2f} | {r['seconds_ours']:.1f} / {r['seconds_ref']:.1f} | "
              f"{r['identical_layers_before_first_difference']} of {len(names)} | "
              f"{r['ref_vs_ref_reversed_all_min_mean'][0]:.4f} / {r['ref_vs_ref_reversed_all_min_mean'][1]:.4f}, "
              f"{r['ref_reversed_ppl']:.2f} |")
    print(f"(dense {dense_ppl:.2f}; load average after {os.getloadavg()[0]:.1f})")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
