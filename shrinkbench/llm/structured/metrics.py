"""Metrics of structurally pruned language models (`shrinkbench.llm.structured.cost` defines
the measurements: prefill and decode timed in alternation with the dense model; MACs per token
with attention's matmuls counted)."""
from __future__ import annotations

from shrinkbench.core.metrics.registry import metric


@metric(unit="ratio", higher_is_better=True, kind="cost", stages=("post",), per_batch_size=True)
def decode_speedup(dense_seconds: float, seconds: float) -> float:
    """decode_speedup_bB = median t(dense) / median t(pruned) of one greedy decode step with the
    KV cache at batch B, over the steps of 64 new tokens after a seq_len-token prompt, the two
    models taking their steps in turn in one process."""
    return dense_seconds / seconds


@metric(unit="s", higher_is_better=False, kind="cost", stages=("post",), per_batch_size=True)
def decode_s(seconds: float) -> float:
    """decode_s_bB = median seconds per generated token at batch B with the KV cache."""
    return seconds


@metric(unit="s", higher_is_better=None, kind="cost", stages=("post",), per_batch_size=True)
def decode_s_dense(seconds: float) -> float:
    """decode_s_dense_bB = the dense model's decode_s_bB, timed in alternation with the run's."""
    return seconds


@metric(unit="ratio", higher_is_better=True, kind="cost", stages=("post",), per_batch_size=True)
def prefill_speedup(dense_seconds: float, seconds: float) -> float:
    """prefill_speedup_bB = median t(dense) / median t(pruned) of the prefill (time to first
    token) of a seq_len-token prompt at batch B, timed in alternation."""
    return dense_seconds / seconds


@metric(unit="s", higher_is_better=False, kind="cost", stages=("post",), per_batch_size=True)
def prefill_s(seconds: float) -> float:
    """prefill_s_bB = median seconds of the prefill of a seq_len-token prompt at batch B."""
    return seconds


@metric(unit="MACs", higher_is_better=False, kind="structure", stages=("post",))
def macs_per_token(linear: float, attention: float) -> float:
    """macs_per_token = sum of in x out over every Linear (LM head included) + sum over blocks of
    2 x heads x head_dim x c (q.k^T and p.V), c = seq_len + 32.5 keys: one decoded token
    averaged over 64 new tokens after a seq_len-token prompt."""
    return linear + attention


@metric(unit="ratio", higher_is_better=True, kind="structure", stages=("post",))
def theoretical_speedup_decode(dense_macs: float, macs: float) -> float:
    """theoretical_speedup_decode = macs_per_token(dense) / macs_per_token(pruned)."""
    return dense_macs / macs
