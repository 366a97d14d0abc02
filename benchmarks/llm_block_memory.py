"""Calibration's working memory grows with one block, not with the model: SparseGPT's sequential
procedure (`shrinkbench.llm.engine.prune_calibrated`) against calibrating every layer in one pass.

    python benchmarks/llm_block_memory.py [--hidden 512] [--blocks 2 8] [--sequences 16] [--seq-len 128]

For each depth (tiny random LLaMA models of 2 and of 8 blocks, otherwise identical) and each
procedure, a fresh subprocess builds the model, then samples its resident set size (RSS, from
/proc/self/statm, every millisecond in a thread) while it calibrates and prunes with SparseGPT at
50%, and reports peak RSS during calibration minus RSS just before it: the memory calibration needs
beyond the model's own weights (which are in RAM either way, and are printed for scale).

- `sequential` (the toolkit): capture block 0's inputs, then per block: its layers' input
  statistics (XᵀX in float64), prune, run it to give the next block's inputs. What it holds at
  once: the hidden states of the calibration tokens and ONE block's statistics. On a GPU the same
  code keeps the model on the CPU and only that block on the GPU (`work_device`).
- `one pass` (the naive alternative, written here for comparison): hooks on every layer, one forward
  of the whole model over the calibration tokens summing every layer's XᵀX at once, then pruning.
  It holds every block's statistics together, so it grows with the model.

The expected result: `sequential`'s extra memory is about the same at 2 and 8 blocks; `one pass`'s
grows about 4x. Prints the numbers and the conditions; RSS moves with the allocator, quote it with
that caveat (the differences asked about here are tens of MB).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class PeakRSS:
    """The largest RSS seen while inside, sampled every millisecond."""

    def __enter__(self):
        self.peak, self._stop = rss(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())


def one_pass(model, batches, sparsity):
    """Every layer's XᵀX summed in one forward of the whole model, then every layer pruned."""
    import torch

    from shrinkbench.llm.engine import pruned_layers
    from shrinkbench.llm.methods import LayerInputs, SparseGPT

    layers = pruned_layers(model)
    stats = {n: LayerInputs(0, torch.zeros(l.in_features, dtype=torch.float64),
                            torch.zeros(l.in_features, l.in_features, dtype=torch.float64)) for n, l in layers.items()}

    def collector(name):
        def hook(module, args):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).to(torch.float64)
            stats[name].tokens += x.shape[0]
            stats[name].sq_norm += (x * x).sum(0)
            stats[name].xtx += x.T @ x
        return hook

    handles = [l.register_forward_pre_hook(collector(n)) for n, l in layers.items()]
    with torch.no_grad():
        for ids in batches:
            model(input_ids=ids, use_cache=False)
        for h in handles:
            h.remove()
        for n, layer in layers.items():
            new, keep = SparseGPT().prune(layer.weight.data, stats[n], sparsity, None, "block")
            layer.weight.data.copy_(new * keep)


def child(blocks: int, hidden: int, procedure: str, sequences: int, seq_len: int) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from shrinkbench.llm.engine import prune_model
    from shrinkbench.llm.methods import SparseGPT

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=512, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=blocks,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=seq_len)
    model = LlamaForCausalLM(config).eval()
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 512, (4, seq_len), generator=g) for _ in range(sequences // 4)]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    from shrinkbench.llm.methods import LayerInputs, sparsegpt_prune

    with torch.no_grad():  # warm-up: torch's lazily loaded kernels (LAPACK's Cholesky...) are not calibration's memory
        model(input_ids=batches[0][:1, :8], use_cache=False)
        x = torch.randn(64, 32, dtype=torch.float64)
        sparsegpt_prune(torch.randn(8, 32), LayerInputs(64, (x * x).sum(0), x.T @ x), 0.5, None, "block")
    time.sleep(0.05)
    before = rss()
    with PeakRSS() as peak:
        if procedure == "sequential":
            prune_model(model, SparseGPT(), 0.5, None, "block", (), batches)
        else:
            one_pass(model, batches, 0.5)
    return {"blocks": blocks, "procedure": procedure, "weights_b": weights, "extra_b": peak.peak - before}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--blocks", type=int, nargs="+", default=[2, 8])
    p.add_argument("--sequences", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--child", nargs=2, metavar=("BLOCKS", "PROCEDURE"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(child(int(a.child[0]), a.hidden, a.child[1], a.sequences, a.seq_len)))
        return 0
    rows = []
    for blocks in a.blocks:
        for procedure in ("sequential", "one-pass"):
            done = subprocess.run([sys.executable, __file__, "--child", str(blocks), procedure, "--hidden",
                                   str(a.hidden), "--sequences", str(a.sequences), "--seq-len", str(a.seq_len)],
                                  capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if done.returncode:
                sys.exit(done.stderr.strip()[-400:])
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(f"tiny LLaMA, hidden {a.hidden}, MLP {4 * a.hidden}, SparseGPT 50%, {a.sequences} calibration sequences x "
          f"{a.seq_len} tokens, float32; one subprocess per row, 1 thread; {platform.machine()}, {os.cpu_count()} "
          f"cores; peak RSS during calibration minus RSS before it")
    print(f"{'blocks':>6}  {'procedure':<10}  {'weights MB':>10}  {'calibration extra MB':>20}")
    for r in rows:
        print(f"{r['blocks']:>6}  {r['procedure']:<10}  {r['weights_b'] / 2**20:>10.1f}  {r['extra_b'] / 2**20:>20.1f}")
    by = {(r["blocks"], r["procedure"]): r["extra_b"] for r in rows}
    lo, hi = min(a.blocks), max(a.blocks)
    for procedure in ("sequential", "one-pass"):
        print(f"{procedure}: extra memory at {hi} blocks / at {lo} blocks = {by[(hi, procedure)] / by[(lo, procedure)]:.2f} "
              f"(the model's weights: {hi / lo:.0f}x more blocks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
