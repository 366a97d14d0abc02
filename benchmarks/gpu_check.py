"""The GPU path, for a machine with CUDA: SmolLM2-135M in float16, calibrated with one block at a
time on the GPU, evaluated through accelerate's device_map, and the 2:4 kernel speedup.

    python benchmarks/gpu_check.py [--device cuda] [--store FOLDER]

Without CUDA it says so and exits 0 (nothing to check here). With it:

1. GPU memory of calibration: SmolLM2-135M loaded in float16 on the CPU, SparseGPT at 2:4 with
   `work_device` = the GPU (`shrinkbench.llm.engine.prune_calibrated`, step 4): the peak of
   `torch.cuda.max_memory_allocated` during calibration against the model's weight bytes and one
   block's. Passes when the peak stays below the whole model's weights (it holds one block, the
   captured hidden states and one block's statistics).
2. The same run through `shrinkbench prune-llm --dtype float16 --device cuda --pattern 2:4`
   (the record's perplexity, its placement, and `semi_structured_speedup`: the pruned linears
   with torch's semi-structured sparse kernels against dense, float16, timed in alternation).
3. The same calibration with the whole model on the GPU: its masks must equal step 1's (one
   block at a time changes where weights wait, not what is computed).

Prints every number with the GPU's name, torch's version and the settings.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def smollm2(dtype: str):
    from shrinkbench.llm.models import load_model, model_sha256, resolve_model

    source = resolve_model("smollm2-135m")
    return load_model(source, model_sha256(source), None, dtype)


def calibration_batches(tokenizer, seq_len=256, count=16, batch=4):
    from shrinkbench.core.seeds import generator
    from shrinkbench.llm.text import calibration_windows, read_text, token_ids

    ids = token_ids(read_text("kjv").train, tokenizer)
    windows = calibration_windows(ids, seq_len, count, generator(0, "calibration"), "kjv")
    return [windows[i: i + batch] for i in range(0, count, batch)]


def main() -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--store", default=None, help="where prune-llm writes its record (default: a temporary folder)")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: skipped, this machine has no CUDA device (torch.cuda.is_available() is False)")
        return 0
    from shrinkbench.llm.engine import decoder_blocks, prune_model
    from shrinkbench.llm.methods import SparseGPT

    dev = torch.device(a.device)
    print(f"GPU {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, SmolLM2-135M float16, SparseGPT 2:4, "
          f"16 calibration windows x 256 KJV tokens, seed 0")
    model, tokenizer = smollm2("float16")
    batches = calibration_batches(tokenizer)
    weights = sum(t.numel() * t.element_size() for t in model.parameters())
    _, blocks = decoder_blocks(model)
    block = sum(t.numel() * t.element_size() for t in blocks[0].parameters())
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    t = time.perf_counter()
    masks_offloaded = prune_model(model, SparseGPT(), 0.5, (2, 4), "block", (), batches, work_device=dev)
    torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated(dev) - base
    print(f"1. one block at a time: peak GPU memory {peak / 2**20:.1f} MiB during calibration ({seconds:.1f} s); the "
          f"model's weights {weights / 2**20:.1f} MiB, one block {block / 2**20:.1f} MiB; the model stayed on "
          f"{next(model.parameters()).device}: " + ("PASS" if peak < weights else "FAIL (peak >= the whole model)"))
    whole, _ = smollm2("float16")
    whole.to(dev)
    masks_whole = prune_model(whole, SparseGPT(), 0.5, (2, 4), "block", (), [b.to(dev) for b in batches])
    same = all(torch.equal(masks_offloaded[n].cpu(), masks_whole[n].cpu()) for n in masks_whole)
    print(f"3. the whole model on the GPU gives the same masks: {'PASS' if same else 'FAIL'}")
    del model, whole
    torch.cuda.empty_cache()
    with tempfile.TemporaryDirectory() as tmp:
        store = a.store or tmp
        done = subprocess.run([sys.executable, "-m", "shrinkbench.cli", "prune-llm", "--model", "smollm2-135m",
                               "--strategy", "sparsegpt", "--pattern", "2:4", "--dtype", "float16", "--device", a.device,
                               "--store", store, "--format", "json"], capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            print(f"2. prune-llm failed ({done.returncode}): {done.stderr.strip()[-600:]}")
            return 1
        record = json.loads(done.stdout)
    values = {m["metric"]: m["value"] for m in record["metrics"] if m["stage"] == "post"}
    speedup = values.get("semi_structured_speedup")
    print(f"2. prune-llm float16 on {a.device}: perplexity {values['perplexity']:.3f}, sparsity {values['sparsity']:.4f}, "
          f"placement {sorted(set((record.get('placement') or {'': a.device}).values()))}, 2:4 kernel speedup "
          + (f"{speedup:.3f}x" if speedup is not None else f"not measured: {record['measure_notes']}"))
    return 0 if peak < weights and same else 1


if __name__ == "__main__":
    raise SystemExit(main())
