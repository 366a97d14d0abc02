"""Metrics of causal language models (the LLM track, `shrinkbench.llm`).

Perplexity is measured over the first `eval_windows` non-overlapping windows of `seq_len`
tokens of a text's held-out split (`shrinkbench.llm.text`); each window predicts its
seq_len - 1 later tokens, so T = eval_windows * (seq_len - 1) tokens are predicted in all.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from shrinkbench.core.metrics.registry import metric


@dataclass(frozen=True)
class NLLSum:
    """Summed negative log-likelihood (nats) over `tokens` predicted tokens."""

    total: float
    tokens: int


@metric(unit="ppl", higher_is_better=False, kind="accuracy")
def perplexity(nll: NLLSum) -> float:
    """Perplexity = exp(sum_t -log p(x_t | x_<t) / T) over the T predicted tokens of the held-out
    windows (non-overlapping, stride = seq_len; no token is predicted twice)."""
    return math.exp(nll.total / nll.tokens)


@metric(unit="nats/token", higher_is_better=False, kind="accuracy")
def nll(nll: NLLSum) -> float:
    """Mean negative log-likelihood = sum_t -log p(x_t | x_<t) / T (natural log), log of perplexity."""
    return nll.total / nll.tokens


@metric(unit="ppl", higher_is_better=False, kind="accuracy")
def perplexity_c4(nll: NLLSum) -> float:
    """SparseGPT's C4 validation perplexity (the wanda and sparsegpt presets' second text):
    perplexity_c4 = exp(sum of NLL / T) over every window of the first 256 x seq_len tokens of the first 1,100 documents of
    en/c4-validation.00000-of-00008 joined with " " (Frantar & Alistarh 2023, datautils.get_c4)."""
    return math.exp(nll.total / nll.tokens)


@metric(unit="nats/token", higher_is_better=False, kind="accuracy")
def nll_c4(nll: NLLSum) -> float:
    """nll_c4 = sum of NLL / T: the mean NLL per predicted token of the C4 validation windows of
    `perplexity_c4` (its log)."""
    return nll.total / nll.tokens


@metric(unit="fraction", higher_is_better=None, kind="structure", stages=("post",))
def sparsity(zeros: int, numel: int) -> float:
    """sparsity = zero weights / weights, over the pruned layers (the transformer blocks' linears)."""
    return zeros / numel


@metric(unit="fraction", higher_is_better=None, kind="structure", stages=("post",))
def tie_share(tied: int, decisions: int) -> float:
    """tie_share = keep/prune decisions made by the tie rule / all decisions of the run's
    selections: a decision is made by a tie when its score equals its selection's boundary score
    (the k-th largest of its layer, row, block, all layers, or the N-th of its N:M group) and the
    entries of that score are split between kept and pruned (`shrinkbench.core.selection`).
    Nonzero: some of the run's mask is the tie rule's (lower index, or the seed's order), not the
    method's."""
    return tied / decisions if decisions else 0.0


@metric(unit="fraction", higher_is_better=None, kind="structure", stages=("post",))
def nm_tie_groups(tied_groups: int, groups: int) -> float:
    """nm_tie_groups = N:M groups whose kept set is not unique (the N-th and (N+1)-th highest
    scores of the group are equal) / all N:M groups of the pruned layers."""
    return tied_groups / groups if groups else 0.0


@metric(unit="s", higher_is_better=False, kind="cost", stages=("post",))
def prune_seconds(seconds: float) -> float:
    """prune_seconds = wall time of pruning (calibration passes and every layer's selection or
    reconstruction), excluding loading the model and measuring it."""
    return seconds


@metric(unit="tokens/s", higher_is_better=True, kind="cost", stages=("post",))
def tokens_per_s(times: list[float], tokens: int) -> float:
    """tokens_per_s = tokens / median(t): one forward pass over a batch of one window of seq_len
    tokens, timed `throughput_repeats` times after one warm-up."""
    return tokens / statistics.median(times)


@metric(unit="ratio", higher_is_better=True, kind="cost", stages=("post",))
def semi_structured_speedup(dense_seconds: float, sparse_seconds: float) -> float:
    """semi_structured_speedup = t(dense linear layers) / t(the same layers with torch's
    semi-structured (2:4) sparse kernels), on CUDA only, timed in alternation."""
    return dense_seconds / sparse_seconds


@metric(unit="%", higher_is_better=True, kind="accuracy")
def zeroshot_mean(chosen: list[float]) -> float:
    """zeroshot_mean = (1/K) sum_k a_k over the run's K zero-shot tasks, a_k the metric its
    `tasks` entry names for task k (`task:acc` or `task:acc_norm`, written out in the config and
    in the record's `tasks.mean_takes`), in percent (lm-evaluation-harness, 0-shot;
    `shrinkbench.llm.tasks`)."""
    return sum(chosen) / len(chosen)


def _register_task_metrics() -> None:
    """`<task>_acc` and, where the task reports it, `<task>_acc_norm` for every registered task."""
    from shrinkbench.llm.tasks import TASKS, metric_name

    for name in TASKS.names():
        task = TASKS.get(name)
        for m in task.metrics:
            how = ("argmax_c ll_c" if m == "acc" else "argmax_c ll_c / len(c), len(c) in characters")

            def fn(fraction: float) -> float:
                return 100.0 * fraction

            fn.__doc__ = (f"{metric_name(name, m)} = 100 x (1/n) sum_i [{how} == gold_i] over the n examples of "
                          f"{name}'s {task.split} split, ll_c the log-likelihood of choice c's tokens after the "
                          f"task's prompt, 0-shot, as lm-evaluation-harness scores {name} ({m}); in percent. Its "
                          f"stderr, n, the task's version and the harness's are in the record's `tasks`.")
            if name == "lambada_openai":
                fn.__doc__ = (f"{metric_name(name, m)} = 100 x (1/n) sum_i [every token of example i's last word is "
                              f"the model's greedy argmax after the passage and the word's earlier tokens] over "
                              f"the n passages of lambada_openai's test split, 0-shot, as lm-evaluation-harness "
                              f"scores it (acc); in percent.")
            metric(unit="%", higher_is_better=True, kind="accuracy", name=metric_name(name, m))(fn)
        for m in task.extra:  # lambada_openai's perplexity: a number of its own, never in the mean

            def ppl(value: float) -> float:
                return value

            ppl.__doc__ = (f"{metric_name(name, m)} = exp(-(1/n) sum_i ll_i), ll_i = log p(last word of passage i | "
                           f"the rest of it) summed over the word's tokens, over the n passages of {name}'s "
                           f"{task.split} split (lm-evaluation-harness's `perplexity` aggregation, 0-shot); lower is "
                           f"better; its bootstrap stderr is in the record's `tasks`.")
            metric(unit="ppl", higher_is_better=False, kind="accuracy", name=metric_name(name, m))(ppl)


_register_task_metrics()


import shrinkbench.llm.structured.metrics  # noqa: E402,F401  (registers the structured pruning metrics)
