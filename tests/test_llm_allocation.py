"""Layer allocation (OWL), RIA and ties in the language-model track: hand-computed small cases,
the published code's formulas written out independently, exact counts at every allocation,
N:M kept exactly, seeded tie-breaking, bad input, and the analysis's tie warnings."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")

from shrinkbench.core.errors import ConfigError, StrategyError  # noqa: E402
from shrinkbench.core.selection import nm_mask, tied_nm_groups, tied_rows_top_k, tied_top_k, top_k_mask  # noqa: E402
from shrinkbench.llm.allocation import (OWL, LayerView, allocated_counts, apportion, owl_block_sparsities,  # noqa: E402
                                        owl_outlier_ratios)
from shrinkbench.llm.engine import pruned_layers, prune_model  # noqa: E402
from shrinkbench.llm.methods import (RIA, AllocatedSparsity, TieLedger, keep_mask, keep_row_shares,  # noqa: E402
                                     nm_swap_values, resolve_llm_strategy, ria_channel_order, ria_lsa_order,
                                     ria_lsa_step, ria_score, selecting)

from test_llm import _cache, _cfg, _cli, _tiny_model, _tokenizer, tiny  # noqa: E402,F401  (fixtures, helpers)


# ------------------------------------------------------------------ OWL by hand
def _view(name, block, weight, sq_norm):
    w = torch.tensor(weight, dtype=torch.float32)
    return LayerView(name, block, w, torch.tensor(sq_norm, dtype=torch.float64), 10)


def test_owl_outlier_ratio_of_a_2x4_layer_by_hand():
    # A = |W| * sqrt(sq_norm): block 0 = [1 1 1 1 / 1 1 1 9], mean 2, m = 3 -> one entry above 6 of 8
    # block 1: W all ones, sq_norm [1 1 1 81] -> A rows [1 1 1 9], mean 3, m = 3 -> none above 9 (9 is not > 9)
    views = [_view("b0", 0, [[1, 1, 1, 1], [1, 1, 1, -9]], [1, 1, 1, 1]),
             _view("b1", 1, [[1, 1, 1, 1], [1, 1, 1, 1]], [1, 1, 1, 81])]
    assert owl_outlier_ratios(views, 3.0) == {0: 12.5, 1: 0.0}
    # m = 2: block 1's threshold is 6, so both 9s are outliers (25%); block 0's is 4: one 9 (12.5%)
    assert owl_outlier_ratios(views, 2.0) == {0: 12.5, 1: 25.0}


def test_owl_ratios_pool_the_layers_of_a_block():
    # two layers in block 0: A = [1 1 1 1 | 1 1 1 1 1 1 1 13], mean 2, m = 5 -> 13 > 10: 1 of 12
    views = [_view("q", 0, [[1, 1, 1, 1]], [1, 1, 1, 1]),
             _view("k", 0, [[1, 1, 1, 1], [1, 1, 1, 13]], [1, 1, 1, 1])]
    assert owl_outlier_ratios(views, 5.0) == {0: pytest.approx(100 / 12)}


def _published_owl(ratios, sparsity, lam):
    """The lines of luuyin/OWL lib/prune_all.py (prune_wanda_outlier), written out with numpy."""
    r = np.array(ratios)
    r = ((r - r.min()) * (1 / (r.max() - r.min()) * lam * 2))
    r = r - np.mean(r) + (1 - sparsity)
    return 1 - r  # the layer sparsity the code prunes at: layer_sparsity_ratio = 1 - all_layer_ratio[i]


@pytest.mark.parametrize("ratios, sparsity, lam", [([12.5, 0.0], 0.5, 0.08), ([3.0, 1.0, 7.0, 2.5], 0.7, 0.08),
                                                   ([0.1, 0.4, 0.2], 0.6, 0.05)])
def test_owl_block_sparsities_are_the_published_formula(ratios, sparsity, lam):
    ours = owl_block_sparsities(ratios, sparsity, lam)
    assert ours == pytest.approx(list(_published_owl(ratios, sparsity, lam)), abs=1e-12)
    assert sum(ours) / len(ours) == pytest.approx(sparsity)
    assert max(ours) - min(ours) == pytest.approx(2 * lam)


def test_owl_by_hand_two_blocks_and_exact_counts():
    # ratios 12.5 and 0 at s = 0.5, lam = 0.08: scaled [0.16, 0], mean 0.08 -> densities 0.58, 0.42
    assert owl_block_sparsities([12.5, 0.0], 0.5, 0.08) == pytest.approx([0.42, 0.58])
    views = [_view("b0", 0, [[1, 1, 1, 1], [1, 1, 1, -9]], [1, 1, 1, 1]),
             _view("b1", 1, [[1, 1, 1, 1], [1, 1, 1, 1]], [1, 1, 1, 81])]
    # K = 8 of 16; shares 8 * 0.58 = 4.64 and 3.36 -> floors 4, 3, the remainder 0.64 wins the last one
    assert allocated_counts(OWL(m=3.0), views, 0.5) == [5, 3]
    assert owl_block_sparsities([2.0, 2.0, 2.0], 0.6, 0.08) == [0.6, 0.6, 0.6]  # equal ratios: uniform


def test_apportion_is_exact_and_each_layer_within_one_of_its_share():
    rng = np.random.default_rng(0)
    for _ in range(50):
        numels = [int(x) for x in rng.integers(8, 400, size=7)]
        sparsities = [float(x) for x in rng.uniform(0.3, 0.8, size=7)]
        total = int(rng.integers(1, sum(numels)))
        kept = apportion(numels, sparsities, total)
        weights = [(1 - s) * n for s, n in zip(sparsities, numels)]
        shares = [total * w / sum(weights) for w in weights]
        assert sum(kept) == total and all(abs(k - s) < 1 for k, s in zip(kept, shares))


def test_owl_parameters_and_unreachable_targets_are_refused():
    with pytest.raises(ConfigError, match="m .* must be > 0"):
        OWL(m=0)
    with pytest.raises(ConfigError, match="lam .* must be > 0"):
        OWL(lam=-0.1)
    with pytest.raises(ConfigError, match="cannot be reached"):
        OWL(lam=0.3).check_target(0.5)   # 0.5 - 0.6 < 0
    with pytest.raises(ConfigError, match="cannot be reached"):
        OWL(lam=0.08).check_target(0.9)  # 0.9 + 0.16 >= 1
    OWL(lam=0.08).check_target(0.8)


# ------------------------------------------------------------------ RIA by hand
def test_ria_score_of_a_2x4_layer_by_hand():
    w = torch.tensor([[1.0, 2.0, 0.0, -1.0], [3.0, 0.0, 1.0, 0.0]])
    sq = torch.tensor([4.0, 1.0, 16.0, 1.0], dtype=torch.float64)  # ||X_j|| = 2 1 4 1, ** 0.5 = sqrt2 1 2 1
    # row sums 4, 4; column sums 4, 2, 1, 1
    r2 = math.sqrt(2)
    expected = torch.tensor([[(1 / 4 + 1 / 4) * r2, 2 / 4 + 2 / 2, 0.0, 1 / 4 + 1 / 1],
                             [(3 / 4 + 3 / 4) * r2, 0.0, (1 / 4 + 1 / 1) * 2, 0.0]], dtype=torch.float64)
    assert torch.allclose(ria_score(w, sq, 0.5), expected)
    # an all-zero column contributes 0, not NaN: each 1 is 1/1 of its row and 1/2 of its column
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert torch.equal(ria_score(z, torch.tensor([4.0, 1.0], dtype=torch.float64), 1.0),
                       torch.tensor([[3.0, 0.0], [3.0, 0.0]], dtype=torch.float64))  # a = 1: times ||X_0|| = 2


def _published_reallocation(metric: torch.Tensor, m: int) -> torch.Tensor:
    """biomedical-cybernetics/Relative-importance-and-activation-pruning lib/prune.py, the
    `reallocation` branch with importance_score 'sum', written out."""
    sorted_idx = torch.sort(torch.sum(metric, dim=0), stable=True)[1]
    index = torch.zeros_like(sorted_idx)
    for ii in range(1, m + 1):
        part = sorted_idx[int(metric.shape[1] * (ii - 1) / m): int(metric.shape[1] * ii / m)]
        index[ii - 1::m] = part if ii % 2 == 1 else part.flip(0)
    return index


def test_ria_channel_order_by_hand_and_as_published():
    scores = torch.tensor([[5.0, 3.0, 8.0, 1.0, 7.0, 2.0, 6.0, 4.0]])
    # ascending by column sum: 3 5 1 7 | 0 6 4 2; positions 1, 3 ascending, 2, 4 descending
    assert ria_channel_order(scores, 4).tolist() == [3, 7, 0, 2, 5, 1, 6, 4]
    metric = torch.rand(6, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(ria_channel_order(metric, 4), _published_reallocation(metric, 4))
    with pytest.raises(ConfigError, match="multiple of M=4"):
        ria_channel_order(torch.rand(2, 6), 4)


# RIA's linear-sum-assignment refinement, a 4x8 layer by hand (scores, M = 4, N = 2: groups g0 = columns
# 0-3 and g1 = 4-7 of the starting order; a group keeps each row's two highest scores)
LSA_4X8 = torch.tensor([[3, 0, 2, 3, 0, 0, 1, 0],
                        [3, 3, 2, 0, 3, 1, 3, 0],
                        [0, 1, 0, 0, 1, 3, 0, 2],
                        [0, 0, 1, 1, 1, 1, 0, 2]], dtype=torch.float64)


def _kept_total(scores, order, n, m):
    permuted = scores[:, order]
    return float((permuted * nm_mask(permuted, n, m)).sum())


def test_ria_lsa_of_a_4x8_layer_by_hand():
    # position c = 0: V[r, k] = what group r keeps with its first channel taken from group k
    #   V[0,0] = g0 as is, rows [3 0 2 3] [3 3 2 0] [0 1 0 0] [0 0 1 1]: 6 + 6 + 1 + 2 = 15
    #   V[1,1] = g1 as is, rows [0 0 1 0] [3 1 3 0] [1 3 0 2] [1 1 0 2]: 1 + 6 + 5 + 3 = 15
    #   V[0,1] = g0 with column 4:  [0 0 2 3] [3 3 2 0] [1 1 0 0] [1 0 1 1]: 5 + 6 + 2 + 2 = 15
    #   V[1,0] = g1 with column 0:  [3 0 1 0] [3 1 3 0] [0 3 0 2] [0 1 0 2]: 4 + 6 + 5 + 3 = 18
    # keeping: 15 + 15 = 30; exchanging columns 0 and 4: 15 + 18 = 33 -> exchanged
    identity = torch.arange(8)
    assert nm_swap_values(LSA_4X8, 0, 2, 4).tolist() == [[15.0, 15.0], [18.0, 15.0]]
    after = ria_lsa_step(LSA_4X8, identity, 0, 2, 4)
    assert after.tolist() == [4, 1, 2, 3, 0, 5, 6, 7]
    # position c = 1 in that order (g0 = columns 4 1 2 3, g1 = 0 5 6 7): keeping gives 15 + 18 = 33,
    # exchanging columns 1 and 5: g0 [0 0 2 3] [3 1 2 0] [1 3 0 0] [1 1 1 1] = 5 + 5 + 4 + 2 = 16, g1
    # [3 0 1 0] [3 3 3 0] [0 1 0 2] [0 0 0 2] = 4 + 6 + 3 + 2 = 15: 31 < 33, kept; likewise at c = 2, 3
    assert nm_swap_values(LSA_4X8[:, after], 1, 2, 4).tolist() == [[15.0, 16.0], [15.0, 18.0]]
    assert ria_lsa_order(LSA_4X8, identity, 2, 4).tolist() == [4, 1, 2, 3, 0, 5, 6, 7]
    assert _kept_total(LSA_4X8, identity, 2, 4) == 30.0 and _kept_total(LSA_4X8, after, 2, 4) == 33.0


@pytest.mark.parametrize("n, m", [(1, 4), (2, 4), (3, 4), (4, 8), (1, 2)])
def test_nm_swap_values_are_the_kept_sums_of_the_exchanged_groups(n, m):
    """Against forming every exchanged group and summing each row's top n directly."""
    scores = torch.rand(5, 3 * m, generator=torch.Generator().manual_seed(n * 10 + m), dtype=torch.float64)
    for c in range(m):
        values = nm_swap_values(scores, c, n, m)
        for r in range(3):
            for k in range(3):
                group = scores[:, r * m: (r + 1) * m].clone()
                group[:, c] = scores[:, k * m + c]
                direct = group.sort(dim=1, descending=True).values[:, :n].sum()
                assert math.isclose(float(values[r, k]), float(direct), rel_tol=1e-12), (c, r, k)


@pytest.mark.parametrize("seed", range(4))
def test_an_lsa_step_is_the_best_of_every_assignment_and_never_loses(seed):
    """Brute force over the 4! assignments of position c's channels to 4 groups (2:4, 16 columns)."""
    import itertools

    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(6, 16, generator=g, dtype=torch.float64)
    order = torch.randperm(16, generator=g)
    for c in range(4):
        best = -1.0
        for perm in itertools.permutations(range(4)):
            candidate = order.clone()
            for r, k in enumerate(perm):
                candidate[r * 4 + c] = order[k * 4 + c]
            best = max(best, _kept_total(scores, candidate, 2, 4))
        stepped = ria_lsa_step(scores, order, c, 2, 4)
        assert math.isclose(_kept_total(scores, stepped, 2, 4), best, rel_tol=1e-12)
        assert sorted(stepped.tolist()) == list(range(16))
        order = stepped
    start = ria_channel_order(scores, 4)
    assert _kept_total(scores, ria_lsa_order(scores, start, 2, 4), 2, 4) >= _kept_total(scores, start, 2, 4)


# ------------------------------------------------------------------ ties by hand
def test_tie_counts_by_hand():
    s = torch.tensor([1.0, 2.0, 2.0, 3.0])
    assert tied_top_k(s, 2) == 2      # the two 2s share the boundary; one is kept, one pruned
    assert tied_top_k(s, 3) == 0      # both 2s kept: nothing decided by the tie rule
    assert tied_top_k(s, 1) == 0
    rows = torch.tensor([[1.0, 2.0, 2.0, 3.0], [4.0, 3.0, 2.0, 1.0]])
    assert tied_rows_top_k(rows, 2) == 2
    groups = torch.tensor([[1.0, 2.0, 2.0, 3.0, 3.0, 1.0, 2.0, 0.0]])
    assert tied_nm_groups(groups, 2, 4) == (1, 2)  # group 1: 2nd and 3rd largest equal; group 2: unique
    assert tied_nm_groups(torch.ones(1, 4), 2, 4) == (1, 4)


def test_the_ledger_counts_a_layer_with_quantized_magnitudes():
    w = torch.tensor([[0.5, 0.5, 0.25, 0.75], [0.5, 0.25, 0.25, 1.0]])
    ledger = TieLedger()
    with selecting(ledger):
        keep = keep_mask(w.abs(), 0.5, (2, 4), "layer")
    # row 0: 0.75 kept, then the two 0.5 tie for one place; row 1: 1.0 and 0.5 kept, unique
    assert keep.tolist() == [[True, False, False, True], [True, False, False, True]]
    assert (ledger.groups, ledger.tied_groups, ledger.tied, ledger.decisions) == (2, 1, 2, 8)
    ledger = TieLedger()
    with selecting(ledger):
        keep_mask(w.abs(), 0.5, None, "layer")  # keep 4 of 8: 1.0 .75 then two of the three 0.5s
    assert ledger.tied == 3 and ledger.decisions == 8


def test_seeded_tie_breaking_changes_only_tied_decisions_and_is_reproducible():
    scores = torch.tensor([3.0] + [2.0] * 10 + [1.0] * 5)
    low = top_k_mask(scores, 4)
    assert low.nonzero().flatten().tolist() == [0, 1, 2, 3]
    draws = [top_k_mask(scores, 4, torch.Generator().manual_seed(s)) for s in range(6)]
    for keep in draws:
        assert int(keep.sum()) == 4 and bool(keep[0]) and not bool(keep[11:].any())
    assert len({tuple(k.nonzero().flatten().tolist()) for k in draws}) > 1
    assert torch.equal(top_k_mask(scores, 4, torch.Generator().manual_seed(2)), draws[2])
    group = torch.tensor([[1.0, 2.0, 2.0, 2.0] * 8])
    seeded = [nm_mask(group, 2, 4, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    for keep in seeded:
        assert bool((keep.reshape(-1, 4).sum(1) == 2).all()) and not bool(keep[0, ::4].any())
    assert len({tuple(k.flatten().tolist()) for k in seeded}) > 1


def test_row_shares_keep_the_exact_total_with_rows_differing_by_one():
    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.5, 1.0], [4.0, 3.0, 0.5, 1.0]])
    keep = keep_row_shares(scores, 7)   # 2 per row, the extra one to row 1 (its 3rd best 2.5 is highest)
    assert keep.sum(1).tolist() == [2, 3, 2] and bool(keep[1, 2])
    keep = keep_mask(scores, AllocatedSparsity(7, 12), None, "row")
    assert int(keep.sum()) == 7


# ------------------------------------------------------------------ the engine: exact counts at every allocation
@pytest.mark.parametrize("name", ["magnitude", "wanda", "sparsegpt", "ria"])
@pytest.mark.parametrize("sparsity", [0.5, 0.7])
def test_owl_keeps_the_exact_total_with_every_method(tiny, name, sparsity):
    model = _tiny_model(tiny)
    strategy = resolve_llm_strategy(name)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    masks = prune_model(model, strategy, sparsity, None, strategy.default_scope, (), ids, allocation=OWL(lam=0.1))
    total = sum(m.numel() for m in masks.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(total * (1 - sparsity))
    by_block = {}
    for n, m in masks.items():
        by_block.setdefault(n.split(".")[2], []).append(float(m.sum()) / m.numel())
    means = [sum(v) / len(v) for v in by_block.values()]
    assert max(means) - min(means) == pytest.approx(0.2, abs=0.02)  # two blocks: the whole 2 lam range
    for n, layer in pruned_layers(model).items():
        assert torch.equal(layer.weight != 0, masks[n] & (layer.weight != 0))


def test_owl_follows_the_dense_models_outlier_ratios(tiny):
    from shrinkbench.llm.engine import allocate, dense_input_stats

    model = _tiny_model(tiny)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(7))]
    stats = dense_input_stats(model, (), ids)
    views = [LayerView(n, int(n.split(".")[2]), layer.weight.data, stats[n].sq_norm, stats[n].tokens)
             for n, layer in pruned_layers(model).items()]
    ratios = owl_outlier_ratios(views, 5.0)
    allocated = allocate(model, OWL(), 0.5, (), ids)
    denser = min(ratios, key=lambda b: -ratios[b])  # the block with more outliers keeps more
    kept = {b: sum(a.kept for n, a in allocated.items() if int(n.split(".")[2]) == b) for b in ratios}
    assert ratios[0] != ratios[1] and kept[denser] > kept[1 - denser]


@pytest.mark.parametrize("lsa", [True, False])
@pytest.mark.parametrize("nm", [(2, 4), (4, 8)])
def test_ria_n_m_with_permutation_keeps_n_of_every_m_in_the_permuted_order(tiny, nm, lsa):
    model = _tiny_model(tiny)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(1))]
    strategy = RIA(permute=True, lsa=lsa)
    dense = {n: l.weight.detach().clone() for n, l in pruned_layers(model).items()}
    masks = prune_model(model, strategy, 1 - nm[0] / nm[1], nm, "layer", (), ids)
    moved = 0
    for n, keep in masks.items():
        assert int(keep.sum()) * nm[1] == keep.numel() * nm[0]
        moved += int(not bool((keep.reshape(-1, nm[1]).sum(1) == nm[0]).all()))
    assert moved > 0  # somewhere the groups are not the consecutive columns
    # block 0 sees the embeddings only: its masks are exactly the formula on the permuted columns
    from shrinkbench.llm.engine import dense_input_stats

    stats = dense_input_stats(_tiny_model(tiny), (), ids)
    for n in [n for n in masks if ".layers.0." in n]:
        scores = ria_score(dense[n], stats[n].sq_norm)
        order = ria_channel_order(scores, nm[1])
        if lsa:
            order = ria_lsa_order(scores, order, *nm)
        expected = torch.empty_like(masks[n])
        expected[:, order] = nm_mask(scores[:, order], *nm)
        assert torch.equal(masks[n], expected), n
        # the permutation is applied consistently: the layer is its dense weight masked in place (no
        # weight moved), and that mask is N:M in the permuted column order
        weight = pruned_layers(model)[n].weight.detach()
        assert torch.equal(weight, dense[n] * masks[n])
        assert bool((masks[n][:, order].reshape(-1, nm[1]).sum(1) == nm[0]).all())
    # the model's function is the masked one: a fresh dense model with the masks multiplied in
    masked = _tiny_model(tiny)
    with torch.no_grad():
        for n, layer in pruned_layers(masked).items():
            layer.weight.mul_(masks[n])
        probe = torch.randint(0, 300, (2, 16), generator=torch.Generator().manual_seed(5))
        assert torch.equal(model(input_ids=probe).logits, masked(input_ids=probe).logits)


def test_the_lsa_refinement_keeps_at_least_the_heuristics_score_in_every_layer(tiny):
    model = _tiny_model(tiny)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(1))]
    from shrinkbench.llm.engine import dense_input_stats

    stats = dense_input_stats(model, (), ids)
    gained = 0
    for n, layer in pruned_layers(model).items():
        scores = ria_score(layer.weight.detach(), stats[n].sq_norm)
        heuristic = ria_channel_order(scores, 4)
        refined = ria_lsa_order(scores, heuristic, 2, 4)
        before, after = _kept_total(scores, heuristic, 2, 4), _kept_total(scores, refined, 2, 4)
        assert after >= before - 1e-12 * abs(before), n
        gained += after > before
    assert gained > 0


def test_seeded_ties_make_magnitude_seed_dependent_on_quantized_weights(tiny):
    def pruned(seed):
        model = _tiny_model(tiny)
        with torch.no_grad():
            for layer in pruned_layers(model).values():  # 4-bit-like: few distinct magnitudes
                layer.weight.copy_(torch.round(layer.weight * 8) / 8)
        ledger = TieLedger(torch.Generator().manual_seed(seed) if seed is not None else None)
        masks = prune_model(model, resolve_llm_strategy("magnitude"), 0.5, (2, 4), "layer", (), None, ledger=ledger)
        return masks, ledger

    low, ledger = pruned(None)
    assert ledger.tied_groups > 0 and 0 < ledger.tied <= ledger.decisions
    a, b, a2 = pruned(0)[0], pruned(1)[0], pruned(0)[0]
    assert all(torch.equal(a[n], a2[n]) for n in a)
    assert any(not torch.equal(a[n], b[n]) for n in a) and any(not torch.equal(a[n], low[n]) for n in a)


# ------------------------------------------------------------------ runs, identity, bad input
def test_run_records_ties_and_the_identity_keeps_old_run_ids(tiny, tmp_path):
    from shrinkbench.llm.runner import execute
    from shrinkbench.core.store import Store

    cfg = _cfg(tiny, strategy="magnitude", pattern="2:4")
    assert cfg.replace(allocation="uniform", ties="low_index").run_id == cfg.run_id
    assert "ties" not in cfg.identity() and "allocation" not in cfg.identity()
    seeded = cfg.replace(ties="seeded")
    assert seeded.run_id != cfg.run_id and seeded.identity()["ties"] == "seeded"
    record = execute(cfg, Store(tmp_path / "store"))
    m = {x["metric"]: x["value"] for x in record["metrics"]}
    ties = record["ties"]
    assert m["tie_share"] == ties["tied"] / ties["decisions"] and m["nm_tie_groups"] == ties["tied_groups"] / ties["groups"]
    assert ties["groups"] * 4 == ties["decisions"] == sum(x["numel"] for x in record["layers"])
    owl = execute(_cfg(tiny, strategy="magnitude", allocation="owl"), Store(tmp_path / "store"))
    assert owl["status"] == "ok" and "owl" in owl["method_tags"]
    assert sum(x["kept"] for x in owl["layers"]) == round(sum(x["numel"] for x in owl["layers"]) * 0.5)


USER_ALLOCATIONS = '''
from shrinkbench.llm.allocation import LayerAllocation


class FirstDenser(LayerAllocation):
    """the first half of the layers at s - 0.1, the rest at s + 0.1"""
    def sparsities(self, layers, sparsity):
        half = len(layers) // 2
        return [sparsity - 0.1 if i < half else sparsity + 0.1 for i in range(len(layers))]


class TooMany(LayerAllocation):
    def sparsities(self, layers, sparsity):
        return [sparsity] * (len(layers) + 1)


class LateNan(LayerAllocation):
    """fine on the fake model of the check, NaN on a real one"""
    def sparsities(self, layers, sparsity):
        return [float("nan") if layers[0].weight.shape[0] != 8 else sparsity] * len(layers)
'''


def test_a_users_allocation_plugs_in_and_a_misbehaving_one_fails_its_run_only(tiny, tmp_path):
    from shrinkbench.core.sweep import run_one

    path = tmp_path / "alloc.py"
    path.write_text(USER_ALLOCATIONS)
    cfg = _cfg(tiny, strategy="magnitude", allocation=f"{path}:FirstDenser")
    assert cfg.allocation_sha256 and len(cfg.allocation_sha256) == 64
    assert run_one(cfg, str(tmp_path / "store")).status == "ok"
    with pytest.raises(ConfigError, match="dry run of allocation .*TooMany.* 5 sparsities for 4 layers"):
        _cfg(tiny, strategy="magnitude", allocation=f"{path}:TooMany")
    late = run_one(_cfg(tiny, strategy="magnitude", allocation=f"{path}:LateNan"), str(tmp_path / "store"))
    assert late.status == "failed" and "LateNan" in late.error and "sparsity nan" in late.error


@pytest.mark.parametrize("args, message", [
    (["--allocation", "owl", "--allocation-param", "lam=0.3"], "cannot be reached"),
    (["--allocation", "owl", "--allocation-param", "m=0"], "must be > 0"),
    (["--allocation", "owl", "--pattern", "2:4"], "N:M pattern fixes every layer"),
    (["--allocation", "owl", "--scope", "global"], "scope global is itself an allocation"),
    (["--allocation", "owl", "--strategy", "sparsegpt", "--scope", "row"], "chooses its own row counts"),
    (["--allocation", "owls"], "unknown layer allocation 'owls'"),
    (["--strategy", "ria", "--param", "permute=true"], "with the unstructured pattern it would do nothing"),
    (["--strategy", "ria", "--param", "a=-1"], "must be a finite number >= 0"),
    (["--strategy", "ria", "--pattern", "2:4", "--param", "lsa=false"], "give permute=true too"),
    (["--strategy", "ria", "--pattern", "2:4", "--param", "permute=true", "--param", "lsa=1"],
     "lsa must be true or false"),
    # the tiny model's layers have 32 and 64 inputs: groups of 3 do not divide them
    (["--strategy", "ria", "--pattern", "2:3", "--param", "permute=true"], "inputs, not a multiple of M=3"),
    (["--allocation", "owl", "--sparsity", "0.1", "--allocation-param", "lam=0.1"], "cannot be reached"),
    (["--ties", "random"], "invalid choice"),
    (["--allocation-param", "lam=0.1"], "give --allocation too"),
])
def test_bad_allocation_ria_and_ties_input_is_one_line_exit_2_and_nothing_written(tiny, tmp_path, args, message):
    store = tmp_path / "store"
    done = _cli("prune-llm", "--model", str(tiny / "model"), "--text", f"file:{tiny / 'text.txt'}", "--seq-len", "16",
                "--eval-windows", "1", "--store", str(store), *args, env_cache=tmp_path / "cache")
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) <= 2 and "Traceback" not in done.stderr
    assert not list(store.glob("runs/*.json"))


# ------------------------------------------------------------------ the analysis: ties are not merit
def test_tie_warnings_name_the_share_where_it_is_nonzero():
    from shrinkbench.analysis.ties import tie_warnings

    rows = [dict(model="m", dataset="d", strategy=s, compression=2.0, stage="post", metric="tie_share", value=v)
            for s, v in (("magnitude [2:4]", 0.08), ("magnitude [2:4]", 0.10), ("wanda [2:4]", 0.0))]
    table = pd.DataFrame(rows)
    comparisons = pd.DataFrame([dict(model="m", dataset="d", compression=2.0, method="wanda [2:4]",
                                     baseline="magnitude [2:4]")])
    (line,) = tie_warnings(table, comparisons)
    assert "magnitude [2:4] 9.00%" in line and "wanda [2:4] " not in line.split("tie_share")[1]
    table.loc[:, "value"] = 0.0
    assert tie_warnings(table, comparisons) == []
    assert tie_warnings(table[table["metric"] == "none"], comparisons) == []


def test_a_suite_selects_allocations_ria_and_seeded_ties_per_strategy(tiny, tmp_path):
    from shrinkbench.core.suite import load_suite

    from test_llm_trust import write_llm_suite

    path = write_llm_suite(tmp_path / "s.toml", tiny, strategies='[{name = "wanda", allocation = "owl", '
                           'allocation_params = {lam = 0.1}}, "ria", {name = "magnitude", ties = "seeded"}]',
                           run="calib_sequences = 4\n")
    configs = load_suite(str(path)).configs
    by = {(c.strategy, c.allocation, c.ties): c for c in configs}
    assert set(by) == {("none", "uniform", "low_index"), ("wanda", "owl", "low_index"), ("ria", "uniform", "low_index"),
                       ("magnitude", "uniform", "seeded")}
    assert by[("wanda", "owl", "low_index")].allocation_params == {"lam": 0.1}
    assert by[("ria", "uniform", "low_index")].scope == "layer"
    bad = write_llm_suite(tmp_path / "b.toml", tiny, strategies='[{name = "wanda", allocation = "owl"}]',
                          patterns='["2:4"]')
    with pytest.raises(ConfigError, match="N:M pattern fixes every layer"):
        load_suite(str(bad))


def test_the_one_pass_tie_counts_equal_the_separate_ones_on_quantized_scores():
    from shrinkbench.core.selection import ordered_desc, top_k_with_ties

    gen = torch.Generator().manual_seed(4)
    for _ in range(30):
        scores = torch.randint(0, 6, (5, 12), generator=gen).to(torch.float64)
        k = int(torch.randint(0, 13, (1,), generator=gen))
        keep, tied = top_k_with_ties(scores.reshape(-1), min(k * 5, 60))
        assert tied == tied_top_k(scores, min(k * 5, 60)) and int(keep.sum()) == min(k * 5, 60)
        assert tied_rows_top_k(scores, k, ordered_desc(scores)) == tied_rows_top_k(scores, k)


def test_one_answer_to_whether_a_run_draws_calibration_windows():
    """`runner.calibrates` decides the calibration check, the calibration text's hash and the
    idle-option refusals: an allocation or a refinement that needs inputs makes even magnitude draw."""
    from shrinkbench.llm.config import LLMRunConfig
    from shrinkbench.llm.runner import calibrates

    assert not calibrates(LLMRunConfig(strategy="none"))
    assert not calibrates(LLMRunConfig(strategy="magnitude"))
    assert calibrates(LLMRunConfig(strategy="wanda"))
    assert calibrates(LLMRunConfig(strategy="magnitude", allocation="owl"))
    assert calibrates(LLMRunConfig(strategy="magnitude", refine="dsnot"))
