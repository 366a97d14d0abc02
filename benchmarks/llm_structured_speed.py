"""Measured against theoretical speedup of structurally pruned SmolLM2-135M on the CPU, and our
compacted model against Torch-Pruning's compaction of the same MLP channels.

    python benchmarks/llm_structured_speed.py [--threads 1] [--repeats 5] [--prompt 256]
        [--new-tokens 64] [--out results.json]

Cases (SmolLM2-135M, float32, calibration: 8 KJV train windows of 128 tokens, seed 0):
  depth: 15 of 30 blocks removed by block influence (ShortGPT); width: half the MLP channels of
  every block removed by Wanda-sp (uniform). Each compacted model and the dense one are timed in
  alternation (`shrinkbench.llm.structured.cost.measure`: prefill at batch 1 and 8 for a
  `--prompt`-token prompt, decode per token with the KV cache over `--new-tokens`, medians of
  `--repeats` rounds after one warm-up round); theoretical speedup from MACs per token with the
  LM head and attention's matmuls counted. Torch-Pruning (`torch-pruning`, optional): its
  dependency graph prunes the same MLP channels of a copy; both compacted models are timed in
  alternation, giving ours / Torch-Pruning. Times depend on the machine and its load: quote the
  threads and the load with the numbers.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from shrinkbench.llm.structured.compact import compact  # noqa: E402
from shrinkbench.llm.structured.cost import CostSettings, measure  # noqa: E402
from shrinkbench.llm.structured.prune import StructuredSpec, structured_plan  # noqa: E402
from shrinkbench.llm.structured.units import decoder_blocks  # noqa: E402


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--prompt", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
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
             "width: half the MLP channels (Wanda-sp, uniform)": StructuredSpec("channels", 0.5, "wanda_sp")}
    with torch.no_grad():
        for name, spec in cases.items():
            plan = structured_plan(dense, spec, batches, seed=0)
            small = compact(dense, plan)
            results[name] = measure(small, dense, settings)
            print(name, {k: round(v, 4) for k, v in results[name].items() if "speedup" in k or "theoretical" in k},
                  flush=True)
            if spec.unit == "channels":
                theirs, said = torch_pruning_channels(dense, plan)
                results["torch_pruning"] = {"version_or_reason": said}
                if theirs is not None:
                    versus = measure(small, theirs, settings)
                    results["torch_pruning"].update(
                        {k.replace("speedup", "ours_over_tp"): v for k, v in versus.items() if k.endswith("speedup")})
                    results["torch_pruning"]["params_equal"] = versus["params"] == versus["params_dense"]
                print("torch-pruning", results["torch_pruning"], flush=True)
    results["conditions"]["load_average_after"] = os.getloadavg()
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
