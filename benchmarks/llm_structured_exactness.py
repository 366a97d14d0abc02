"""How exact is compaction on SmolLM2-135M in float32, and what is float32's own floor there?

    python benchmarks/llm_structured_exactness.py [--threads 1] [--out results.json]

For each structured plan of the slow-tier test (depth: 15 blocks by block influence; heads: 3
query heads per block by magnitude; channels: half by Wanda-sp, global; width: half by FLAP with
bias compensation), it prints the max abs difference of the logits between

- `gap32`: the masked model (removed units zero) and the compacted model, both in float32;
- `err_masked32` / `err_compact32`: each float32 model against the same model in true float64
  (`shrinkbench.llm.structured.reference.float64_reference`: LLaMA's RMSNorm and rotary
  embedding otherwise compute in float32 whatever the model's dtype, so `model.double()` alone
  is not float64);
- `gap64`: masked against compacted, both in true float64 (what remains is not rounding);

and, as the float32 floor, the same dense model computed two mathematically identical ways:
every block's MLP channels permuted (gate/up rows, down columns), every block's head groups
permuted (q/k/v rows, o columns), and the dense model in float32 against true float64; and the
same for each masked model (`floor_masked_permuted_*`: the masked model against itself with its
channels or head groups reordered, zeros included). If the
floor is as large as `gap32` while `gap64` is ~1e-12, the compaction is exact and the gap is the
order in which float32 sums. Inputs: the slow test's 48 random token ids (seed 0) and a 256-token
KJV window. Per-block growth: the max abs difference of the hidden states after blocks 1, 10, 20
and the last, for the head-group plan and the permuted-channels floor.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from shrinkbench.llm.structured.compact import compact  # noqa: E402
from shrinkbench.llm.structured.prune import StructuredSpec, structured_plan  # noqa: E402
from shrinkbench.llm.structured.reference import float64_reference  # noqa: E402
from shrinkbench.llm.structured.units import apply_mask, decoder_blocks, geometry, group_rows  # noqa: E402

CASES = {"blocks": StructuredSpec("blocks", 15, "block_influence"),
         "heads": StructuredSpec("heads", 3, "magnitude"),
         "channels": StructuredSpec("channels", 0.5, "wanda_sp", "global"),
         "width": StructuredSpec("width", 0.5, "flap")}


@torch.no_grad()
def run(model, ids, hidden: bool = False):
    out = model(input_ids=ids, use_cache=False, output_hidden_states=hidden)
    return (out.logits, out.hidden_states) if hidden else out.logits


def diff(a, b) -> float:
    return float((a.double() - b.double()).abs().max())


@torch.no_grad()
def permuted(model, what: str, seed: int = 1):
    """A copy computing the same function: per block, MLP channels or head groups reordered."""
    g = torch.Generator().manual_seed(seed)
    model = copy.deepcopy(model)
    geo = geometry(model)
    for i, block in enumerate(decoder_blocks(model)):
        if what == "channels":
            p = torch.randperm(geo.intermediate[i], generator=g)
            for lin in (block.mlp.gate_proj, block.mlp.up_proj):
                lin.weight.copy_(lin.weight[p])
            block.mlp.down_proj.weight.copy_(block.mlp.down_proj.weight[:, p])
        else:
            q, kv = group_rows(geo, torch.randperm(geo.kv_heads[i], generator=g))
            attn = block.self_attn
            attn.q_proj.weight.copy_(attn.q_proj.weight[q])
            attn.k_proj.weight.copy_(attn.k_proj.weight[kv])
            attn.v_proj.weight.copy_(attn.v_proj.weight[kv])
            attn.o_proj.weight.copy_(attn.o_proj.weight[:, q])
    return model


def growth(hs_a, hs_b) -> dict:
    last = len(hs_a) - 1
    return {f"after block {k}": diff(hs_a[k], hs_b[k]) for k in (1, 10, 20, last)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from shrinkbench.llm.models import load_model, model_sha256, resolve_model
    from shrinkbench.llm.text import read_text, token_ids

    source = resolve_model("smollm2-135m")
    dense, tokenizer = load_model(source, model_sha256(source))
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 49152, (2, 32), generator=g)]  # the slow test's calibration and ids
    inputs = {"random48": torch.randint(0, 49152, (1, 48), generator=g),
              "kjv256": token_ids(read_text("kjv").test, tokenizer, None)[:256].reshape(1, -1)}
    results = {"conditions": {"threads": args.threads, "torch": torch.__version__, "cores": os.cpu_count(),
                              "attn_implementation": dense.config._attn_implementation}}
    dense64 = float64_reference(dense)
    floor = {}
    for name, ids in inputs.items():
        ref = run(dense, ids)
        floor[name] = {"logit_max_abs": float(ref.abs().max()),
                       "dense32_vs_float64": diff(ref, run(dense64, ids)),
                       "permuted_channels": diff(ref, run(permuted(dense, "channels"), ids)),
                       "permuted_head_groups": diff(ref, run(permuted(dense, "heads"), ids))}
    results["floor"] = floor
    print("floor", json.dumps(floor), flush=True)
    for case, spec in CASES.items():
        plan = structured_plan(dense, spec, batches, seed=0)
        masked = copy.deepcopy(dense)
        apply_mask(masked, plan)
        small = compact(dense, plan)
        masked64, small64 = float64_reference(masked), float64_reference(small)
        row = {}
        for name, ids in inputs.items():
            m32, s32, m64, s64 = (run(m, ids) for m in (masked, small, masked64, small64))
            row[name] = {"gap32": diff(m32, s32), "err_masked32": diff(m32, m64),
                         "err_compact32": diff(s32, m64), "gap64": diff(m64, s64),
                         "floor_masked_permuted_channels": diff(m32, run(permuted(masked, "channels"), ids)),
                         "floor_masked_permuted_head_groups": diff(m32, run(permuted(masked, "heads"), ids))}
        if case == "heads":
            _, hs_m = run(masked, inputs["random48"], hidden=True)
            _, hs_s = run(small, inputs["random48"], hidden=True)
            row["growth_masked_vs_compact"] = growth(hs_m, hs_s)
            _, hs_d = run(dense, inputs["random48"], hidden=True)
            _, hs_p = run(permuted(dense, "channels"), inputs["random48"], hidden=True)
            row["growth_dense_vs_permuted_channels"] = growth(hs_d, hs_p)
        results[case] = row
        print(case, json.dumps(row), flush=True)
        del masked, small, masked64, small64
    text = json.dumps(results, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
