"""Measured cost of a (compacted) causal language model on the CPU, beside its theoretical cost.

Measured, with the dense model timed in alternation (one pass of each per round, same process,
same threads; medians over `repeats` rounds after `warmup`):

- **prefill latency** (time to first token) at batch B for a prompt of `prompt` tokens: one forward
  pass that fills the KV cache and computes the last position's logits (`logits_to_keep=1`, as
  `generate` does), then the argmax;
- **decode latency per token**: after an untimed prefill, `new_tokens` greedy steps, each one
  token with the KV cache, the dense and the pruned model taking their steps in turn; the median
  over all timed steps of all rounds (robust to a busy machine's spikes); **decode tokens/s** =
  B / that;
- **peak memory** of the batch-1 prefill (`shrinkbench.core.metrics.cost.peak_memory`);
- **params** (a tied embedding counted once).

Theoretical, the vision track's MACs convention (multiply-accumulates of Linear weights and
matmuls for one token; embedding lookups, norms, activations, rotary embedding and additions
excluded), with attention's matmuls stated: one token at a position that attends to c keys
(itself included) costs

    MACs(c) = sum over Linear layers of in x out  (q, k, v, o, gate, up, down of every block; LM head)
            + sum over blocks of 2 x heads x head_dim x c   (q.k^T over c keys, then p.V)

Prefill per token averages c over the prompt's causal positions, c = (prompt + 1) / 2, and counts
the LM head once per prompt (its MACs / prompt: only the last position's logits are computed);
decode per token averages c over the new tokens, c = prompt + (new_tokens + 1) / 2.
`theoretical_speedup` = dense MACs / pruned MACs at the same c; `measured / theoretical` is
how much of it the CPU delivers.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from shrinkbench.llm.structured.units import geometry


@dataclass(frozen=True)
class CostSettings:
    prompt: int = 256
    new_tokens: int = 64
    prefill_batches: tuple[int, ...] = (1, 8)
    decode_batches: tuple[int, ...] = (1,)
    warmup: int = 1
    repeats: int = 5
    seed: int = 0


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


def macs_per_token(model, context: float) -> dict[str, float]:
    """(linear, attention, total) MACs of one token attending to `context` keys (see above)."""
    linear = sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    geo = geometry(model)
    attention = sum(2 * h * geo.head_dim * context for h in geo.heads)
    return {"linear": float(linear), "attention": float(attention), "total": float(linear + attention)}


def theoretical(model, settings: CostSettings) -> dict[str, float]:
    prefill = macs_per_token(model, (settings.prompt + 1) / 2)
    head = model.get_output_embeddings()
    head_macs = head.in_features * head.out_features
    prefill_total = prefill["total"] - head_macs + head_macs / settings.prompt  # the head runs on the last position only
    decode = macs_per_token(model, settings.prompt + (settings.new_tokens + 1) / 2)
    return {"params": float(params(model)), "macs_linear": prefill["linear"],
            "macs_attention_prefill": prefill["attention"], "macs_prefill": prefill_total,
            "macs_attention_decode": decode["attention"], "macs_decode": decode["total"]}


def _cache_of(out):
    return getattr(out, "cache", None) if getattr(out, "cache", None) is not None else out.past_key_values


def prefill(model, ids: torch.Tensor):
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1].argmax(-1, keepdim=True), _cache_of(out)


def decode_alternating(models, ids: torch.Tensor, steps: int) -> list[list[float]]:
    """Seconds of each of `steps` greedy one-token steps with the KV cache, after an untimed
    prefill, for every model; the models take their steps in turn (step-level alternation), so
    the machine's load at that moment falls on all of them alike."""
    states = [prefill(model, ids) for model in models]
    times: list[list[float]] = [[] for _ in models]
    for _ in range(steps):
        for j, model in enumerate(models):
            token, cache = states[j]
            start = time.perf_counter()
            out = model(input_ids=token, cache=cache, use_cache=True, logits_to_keep=1)
            states[j] = out.logits[:, -1].argmax(-1, keepdim=True), _cache_of(out)
            times[j].append(time.perf_counter() - start)
    return times


class _Prefill(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, ids):
        return prefill(self.inner, ids)[0]


def measure(model, dense, settings: CostSettings = CostSettings()) -> dict[str, float]:
    """Measured and theoretical cost of `model` and of `dense`, timed in alternation; keys
    `<what>` for the model, `<what>_dense` for the dense one, and the ratios."""
    from shrinkbench.core.metrics.cost import peak_memory

    gen = torch.Generator().manual_seed(settings.seed)
    vocab = min(geometry(model).vocab, geometry(dense).vocab)
    inputs = {b: torch.randint(0, vocab, (b, settings.prompt), generator=gen)
              for b in sorted(set(settings.prefill_batches) | set(settings.decode_batches))}
    times: dict[str, list[float]] = {}
    pair = (("_dense", dense), ("", model))
    with torch.inference_mode():
        for round_ in range(settings.warmup + settings.repeats):
            for b in settings.prefill_batches:
                for suffix, net in pair:
                    start = time.perf_counter()
                    prefill(net, inputs[b])
                    spent = time.perf_counter() - start
                    if round_ >= settings.warmup:
                        times.setdefault(f"prefill_b{b}{suffix}", []).append(spent)
            for b in settings.decode_batches:
                steps = decode_alternating([net for _, net in pair], inputs[b], settings.new_tokens)
                if round_ >= settings.warmup:
                    for (suffix, _), spent in zip(pair, steps):
                        times.setdefault(f"decode_b{b}{suffix}", []).extend(spent)
    out: dict[str, float] = {}
    for key, values in times.items():
        out[f"{key.replace('_dense', '')}_s{'_dense' if key.endswith('_dense') else ''}"] = statistics.median(values)
    for b in settings.prefill_batches:
        out[f"prefill_b{b}_speedup"] = out[f"prefill_b{b}_s_dense"] / out[f"prefill_b{b}_s"]
        out[f"prefill_b{b}_tokens_per_s"] = b * settings.prompt / out[f"prefill_b{b}_s"]
    for b in settings.decode_batches:
        out[f"decode_b{b}_speedup"] = out[f"decode_b{b}_s_dense"] / out[f"decode_b{b}_s"]
        out[f"decode_b{b}_tokens_per_s"] = b / out[f"decode_b{b}_s"]
    for suffix, net in pair:
        out[f"peak_memory_b1{suffix}"] = float(peak_memory(_Prefill(net), inputs[min(inputs)]))
        for key, value in theoretical(net, settings).items():
            out[f"{key}{suffix}"] = value
    out["theoretical_speedup_prefill"] = out["macs_prefill_dense"] / out["macs_prefill"]
    out["theoretical_speedup_decode"] = out["macs_decode_dense"] / out["macs_decode"]
    for b in settings.decode_batches:
        out[f"decode_b{b}_of_theoretical"] = out[f"decode_b{b}_speedup"] / out["theoretical_speedup_decode"]
    for b in settings.prefill_batches:
        out[f"prefill_b{b}_of_theoretical"] = out[f"prefill_b{b}_speedup"] / out["theoretical_speedup_prefill"]
    return out
