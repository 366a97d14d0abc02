"""Measured against theoretical speedup of structurally pruned SmolLM2-135M on the CPU, and our
compacted model against Torch-Pruning's compaction of the same MLP channels and head groups.

    python benchmarks/llm_structured_speed.py [--threads 1] [--repeats 5] [--prompt 256]
        [--new-tokens 64] [--cases depth channels heads] [--tp-limit 60] [--out results.json]

Cases (SmolLM2-135M, float32, calibration: 8 KJV train windows of 128 tokens, seed 0):
  depth: 15 of 30 blocks removed by block influence (ShortGPT); channels: half the MLP channels
  of every block removed by Wanda-sp (uniform); heads: 3 of 9 query heads per block, i.e. one
  GQA group (a key/value head with its 3 query heads) of 3, by magnitude. Each compacted model
  and the dense one are timed in alternation (`shrinkbench.llm.structured.cost.measure`: prefill
  at batch 1 and 8 for a `--prompt`-token prompt, decode per token with the KV cache over
  `--new-tokens`, medians of `--repeats` rounds after one warm-up round); theoretical speedup
  from MACs per token with the LM head and attention's matmuls counted.

Torch-Pruning (`torch-pruning`, optional), timed against our compacted model in alternation the
same way: `*_speed_ours_over_tp` is its latency / ours (above 1: ours is faster). MLP channels:
its dependency graph prunes the same channels of a copy. Head groups: its dependency graph is
asked for the group of block 0's o_proj input channels (where its LLM example's MetaPruner roots
an attention group) within `--tp-limit` seconds; with torch-pruning 1.6.1 (its `__version__`
reads 1.6.0) and transformers 5 that closure does not terminate (the reason is recorded;
Torch-Pruning issue #527), so the same head groups are then removed with its layer functions
(`tp.prune_linear_out_channels` on q/k/v rows, `tp.prune_linear_in_channels` on o_proj
columns: its pruning without its graph), the max abs difference of its logits from ours
recorded, and timed. Times depend on the machine and its load: quote the threads and the load
with the numbers.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from shrinkbench.llm.structured.compact import compact  # noqa: E402
from shrinkbench.llm.structured.cost import CostSettings, measure  # noqa: E402
from shrinkbench.llm.structured.prune import StructuredSpec, structured_plan  # noqa: E402
from shrinkbench.llm.structured.units import decoder_blocks, geometry, group_rows  # noqa: E402


def smollm2():
    from shrinkbench.llm.models import load_model, model_sha256, resolve_model

    source = resolve_model("smollm2-135m")
    return load_model(source, model_sha256(source))


def calibration(tokenizer, count: int = 8, length: int = 128):
    from shrinkbench.core.seeds import generator
    from shrinkbench.llm.text import calibration_windows, read_text, token_ids

    text = read_text("kjv")
    ids = token_ids(text.train, tokenizer, None)
    windows = calibration_windows(ids, length, count, generator(0, "calibration"), "kjv")
    return [windows[i: i + 4] for i in range(0, count, 4)]


def torch_pruning_channels(dense, plan) -> tuple[torch.nn.Module | None, str]:
    """Torch-Pruning's compaction of the MLP channels `plan` removed, or (None, the reason)."""
    try:
        import torch_pruning as tp
    except ImportError:
        return None, "torch-pruning is not installed"
    model = copy.deepcopy(dense).eval()
    try:
        ids = torch.zeros(1, 8, dtype=torch.int64)
        torch.set_grad_enabled(True)  # its tracer follows autograd
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=ids,
                                                      output_transform=lambda out: out.logits)
        for i, block in enumerate(decoder_blocks(model)):
            keep = set(plan.kept_channels[i].tolist())
            removed = [j for j in range(block.mlp.gate_proj.out_features) if j not in keep]
            graph.get_pruning_group(block.mlp.gate_proj, tp.prune_linear_out_channels, idxs=removed).prune()
    except Exception as exc:  # report why it cannot, as the issue asks
        return None, f"Torch-Pruning failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    finally:
        torch.set_grad_enabled(False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model, f"torch-pruning {tp.__version__}"


class _OutOfTime(Exception):
    pass


def _alarm(signum, frame):
    raise _OutOfTime


def torch_pruning_heads(dense, plan, limit: int) -> tuple[torch.nn.Module | None, str]:
    """Torch-Pruning's compaction of the head groups `plan` removed, or (None, the reason).

    First its dependency graph (the group of block 0's o_proj input channels for the first removed
    group, within `limit` seconds); if that fails, its layer functions on q/k/v rows and o_proj
    columns of every block (the returned reason says which)."""
    try:
        import torch_pruning as tp
    except ImportError:
        return None, "torch-pruning is not installed"
    geo = geometry(dense)
    removed = {}
    for i in range(geo.blocks):
        keep = set(plan.kept_groups[i].tolist())
        removed[i] = group_rows(geo, torch.tensor([g for g in range(geo.kv_heads[i]) if g not in keep]))
    model = copy.deepcopy(dense).eval()
    said = f"torch-pruning {tp.__version__}: "
    from torch_pruning.dependency.group import Group

    o_proj = decoder_blocks(model)[0].self_attn.o_proj
    added = {"all": 0, "o_proj": 0}
    add_dep = Group.add_dep

    def counting_add_dep(self, dep, idxs):  # how the group grows while we wait
        added["all"] += 1
        added["o_proj"] += dep.target.module is o_proj
        return add_dep(self, dep, idxs)

    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        torch.set_grad_enabled(True)  # its tracer follows autograd
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, 8, dtype=torch.int64),
                                                      output_transform=lambda out: out.logits)
        Group.add_dep = counting_add_dep
        start = time.perf_counter()
        signal.alarm(limit)
        group = graph.get_pruning_group(o_proj, tp.prune_linear_in_channels, idxs=removed[0][0].tolist())
        signal.alarm(0)
        said += f"its dependency graph gave a head group of {len(group)} dependencies (not used: see below); "
    except _OutOfTime:
        said += (f"its dependency graph did not finish the head group of block 0 (o_proj input channels) in "
                 f"{time.perf_counter() - start:.0f} s: {added['all']} dependencies added, block 0's o_proj "
                 f"{added['o_proj']} times (the closure through attention and the rotary embedding grows "
                 f"without end); ")
    except Exception as exc:
        said += f"its dependency graph failed: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}; "
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        Group.add_dep = add_dep
        torch.set_grad_enabled(False)
    model = copy.deepcopy(dense).eval()
    for i, block in enumerate(decoder_blocks(model)):
        q, kv = removed[i]
        attn = block.self_attn
        tp.prune_linear_out_channels(attn.q_proj, q.tolist())
        tp.prune_linear_out_channels(attn.k_proj, kv.tolist())
        tp.prune_linear_out_channels(attn.v_proj, kv.tolist())
        tp.prune_linear_in_channels(attn.o_proj, q.tolist())
    for p in model.parameters():
        p.requires_grad_(False)
    return model, said + "timed: its layer functions (prune_linear_out/in_channels) on the same head groups"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--cases", nargs="+", choices=("depth", "channels", "heads"),
                        default=["depth", "channels", "heads"])
    parser.add_argument("--tp-limit", type=int, default=60,
                        help="seconds Torch-Pruning's dependency graph gets for one head group")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = CostSettings(prompt=args.prompt, new_tokens=args.new_tokens, repeats=args.repeats)
    dense, tokenizer = smollm2()
    batches = calibration(tokenizer)
    results = {"conditions": {"threads": args.threads, "prompt": args.prompt, "new_tokens": args.new_tokens,
                              "repeats": args.repeats, "torch": torch.__version__, "cpu": platform.processor() or
                              platform.machine(), "cores": os.cpu_count(), "load_average": os.getloadavg()}}
    cases = {"depth: 15 of 30 blocks (block influence)": StructuredSpec("blocks", 15, "block_influence"),
             "width: half the MLP channels (Wanda-sp, uniform)": StructuredSpec("channels", 0.5, "wanda_sp"),
             "width: one GQA head group of 3 per block (magnitude)": StructuredSpec("heads", 3, "magnitude")}
    chosen = {"blocks": "depth", "channels": "channels", "heads": "heads"}
    cases = {name: spec for name, spec in cases.items() if chosen[spec.unit] in args.cases}
    with torch.no_grad():
        for name, spec in cases.items():
            plan = structured_plan(dense, spec, batches, seed=0)
            small = compact(dense, plan)
            results[name] = measure(small, dense, settings)
            print(name, {k: round(v, 4) for k, v in results[name].items() if "speedup" in k or "theoretical" in k},
                  flush=True)
            if spec.unit in ("channels", "heads"):
                theirs, said = (torch_pruning_channels(dense, plan) if spec.unit == "channels"
                                else torch_pruning_heads(dense, plan, args.tp_limit))
                key = f"torch_pruning_{spec.unit}"
                results[key] = {"version_or_reason": said}
                if theirs is not None:
                    ids = torch.randint(0, 1000, (1, 32), generator=torch.Generator().manual_seed(0))
                    results[key]["max_abs_logit_difference"] = float(
                        (small(input_ids=ids).logits - theirs(input_ids=ids).logits).abs().max())
                    versus = measure(small, theirs, settings)
                    results[key].update(
                        {k.replace("speedup", "speed_ours_over_tp"): v for k, v in versus.items() if k.endswith("speedup")})
                    results[key]["params_equal"] = versus["params"] == versus["params_dense"]
                print(key, results[key], flush=True)
    results["conditions"]["load_average_after"] = os.getloadavg()
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
