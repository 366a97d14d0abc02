"""DSnoT mask refinement and the LoRA recovery fine-tune of the language-model track.

DSnoT against swaps computed by hand on layers written here (which weight is grown, which is
pruned, and why), its stopping rule (threshold, the same-sign condition under N:M, the cycle
cap), exact counts and N:M after refinement on random layers and in the engine, bad input and
a misbehaving refinement; LoRA merged with the mask keeps pruned weights exactly zero and moves
kept ones, trained through peft offline on the tiny LLaMA of tests/test_llm.py."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers", reason="the LLM track needs transformers (pip install .[llm])")

from shrinkbench.core.errors import ConfigError, StrategyError  # noqa: E402
from shrinkbench.core.selection import nm_mask  # noqa: E402
from shrinkbench.llm.engine import prune_model, pruned_layers  # noqa: E402
from shrinkbench.llm.methods import LayerInputs, Wanda, keep_mask  # noqa: E402
from shrinkbench.llm.refine import DSnoT, LLM_REFINEMENTS, MaskRefinement, dsnot_refine  # noqa: E402

from test_llm import _cache, _cfg, _tiny_model, tiny  # noqa: E402,F401  (fixtures)
from test_llm_trust import base_args  # noqa: E402


def _inputs(m, v, sq, sequences=1) -> LayerInputs:
    """Statistics with sum_t X_j / n_seq = m_j, mean per-sequence variance v_j, sum_t X_j^2 = sq_j."""
    t = lambda values: torch.tensor(values, dtype=torch.float64) * sequences  # noqa: E731
    return LayerInputs(tokens=10, sq_norm=torch.tensor(sq, dtype=torch.float64), sequences=sequences,
                       sums=t(m), seq_var=t(v))


# ------------------------------------------------------------------ DSnoT by hand
W_2X4 = torch.tensor([[0.30, 0.25, -1.0, 2.0],
                      [0.05, 0.02, 1.0, -1.0]])
KEEP_2X4 = torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)  # Wanda's 50% per row (|W|, ||X|| = 1)
X_2X4 = _inputs(m=[1, 1, 1, 1], v=[1, 0.5, 1, 1], sq=[1, 1, 1, 1])


def test_the_written_layer_keeps_what_wandas_rule_keeps():
    scores = Wanda().score(W_2X4, X_2X4)
    assert torch.equal(keep_mask(scores, 0.5, None, "row"), KEEP_2X4)


def test_dsnot_grows_by_error_over_variance_and_prunes_the_weakest_opposite_sign_weight():
    """Row 0: pruned 0.30 and 0.25, error e = 0.30 + 0.25 = 0.55 > 0.1 (m_j = 1). e > 0, so grow
    the pruned weight with the largest W m / v: column 0 gives 0.30 / 1, column 1 gives
    0.25 / 0.5 = 0.5, so column 1 (the variance decides, not the size); prune the kept weight of
    negative W m (it lowers e) with the lowest Wanda score: column 2 (-1.0). e becomes
    0.55 - 1.0 - 0.25 = -0.70 (unstructured: no same-sign condition). Cycle 2: e < 0 needs a
    pruned weight with W m < 0 to grow: none (column 0 is positive), so the row stops.
    Row 1: e = 0.05 + 0.02 = 0.07 <= 0.1: no swap (the threshold)."""
    trace: list = []
    refined = dsnot_refine(W_2X4, KEEP_2X4, X_2X4, None, trace=trace)
    assert refined.int().tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]
    assert trace == [(1, 1)]  # one swap, in cycle 1, on one row


def test_a_lower_threshold_lets_the_small_error_row_swap():
    """Row 1 at threshold 0.05: e = 0.07 > 0.05; grow column 0 (0.05 / 1 > 0.02 / 0.5 = 0.04);
    prune the only kept weight with W m < 0, column 3 (-1.0); e = 0.07 - 1.0 - 0.05 = -0.98."""
    refined = dsnot_refine(W_2X4, KEEP_2X4, X_2X4, None, threshold=0.05)
    assert refined.int().tolist() == [[0, 1, 0, 1], [1, 0, 1, 0]]


def test_the_statistics_are_per_sequence_averages():
    """m_j is the input's sum over one sequence averaged over sequences: four sequences whose
    sums add to 4 give m = 1, the same swaps as above; so do variances summed over 4 sequences."""
    refined = dsnot_refine(W_2X4, KEEP_2X4, _inputs([1, 1, 1, 1], [1, 0.5, 1, 1], [1] * 4, sequences=4), None)
    assert refined.int().tolist() == [[0, 1, 0, 1], [0, 0, 1, 1]]


W_2X8 = torch.tensor([[0.30, 0.25, -1.0, 2.0, 0.1, 0.4, 3.0, -0.2],
                      [0.30, 0.25, 0.5, 2.0, 0.1, 0.4, 3.0, -0.2]])
X_2X8 = _inputs(m=[1] * 8, v=[1, 0.5, 1, 1, 1, 1, 1, 1], sq=[1] * 8)


def test_dsnot_under_2_4_keeps_the_error_sign_and_stops_at_the_cycle_cap():
    """2:4 by magnitude keeps columns 2, 3 | 5, 6 of both rows; e = 0.30 + 0.25 + 0.1 - 0.2 = 0.45.
    Cycle 1 grows column 1 (0.25 / 0.5, the largest W m / v) and prunes, in its group 0-3, the
    kept weight of lowest score (|W|):
    row 0: column 2 (-1.0): e would become 0.45 - 1.0 - 0.25 = -0.80, the sign flips, so under
    N:M the swap is not made and the row stops (mask unchanged);
    row 1: column 2 (0.5): e = 0.45 + 0.5 - 0.25 = 0.70, same sign: swapped. Cycle 2 grows
    column 0 (0.30) and prunes column 3 (the group's last original kept one): e = 2.4; cycle 3
    grows column 4 (0.1) and prunes column 5 (0.4 < 3.0 in group 4-7): e = 2.7; then no pruned
    weight with W m > 0 is left and the row stops. With max_cycles 1 only cycle 1 is made."""
    keep = nm_mask(W_2X8.abs(), 2, 4)
    assert keep.int().tolist() == [[0, 0, 1, 1, 0, 1, 1, 0]] * 2
    trace: list = []
    refined = dsnot_refine(W_2X8, keep, X_2X8, (2, 4), W_2X8.abs(), trace=trace)
    assert refined.int().tolist() == [[0, 0, 1, 1, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0, 1, 0]]
    assert trace == [(1, 1), (2, 1), (3, 1)]
    once = dsnot_refine(W_2X8, keep, X_2X8, (2, 4), W_2X8.abs(), max_cycles=1)
    assert once.int().tolist() == [[0, 0, 1, 1, 0, 1, 1, 0], [0, 1, 0, 1, 0, 1, 1, 0]]
    unstructured = dsnot_refine(W_2X8, keep, X_2X8, None, W_2X8.abs())  # no same-sign condition
    assert unstructured[0].int().tolist() != keep[0].int().tolist()


def _random_case(seed, rows=16, cols=32, sequences=3):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(rows, cols, generator=g)
    x = torch.randn(sequences, 20, cols, generator=g, dtype=torch.float64) + torch.randn(cols, generator=g) * 0.5
    flat = x.reshape(-1, cols)
    stats = LayerInputs(flat.shape[0], (flat * flat).sum(0), None, sequences, flat.sum(0),
                        x.var(dim=1, unbiased=False).sum(0))
    return weight, stats


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("nm", [None, (2, 4), (4, 8), (1, 4)])
def test_counts_are_exact_and_every_swap_is_a_pruned_weight_for_a_kept_one(seed, nm):
    weight, stats = _random_case(seed)
    scores = Wanda().score(weight, stats)
    keep = keep_mask(scores, 0.5 if nm is None else 0.0, nm, "row")
    for cycles in (1, 3, 50):
        trace: list = []
        new = dsnot_refine(weight, keep, stats, nm, scores, max_cycles=cycles, threshold=0.0, trace=trace)
        assert torch.equal(new.sum(1), keep.sum(1))
        if nm is not None:
            assert bool((new.reshape(-1, nm[1]).sum(1) == nm[0]).all())
        grown, pruned = new & ~keep, keep & ~new
        assert torch.equal(grown.sum(1), pruned.sum(1))
        assert int(grown.sum(1).max()) <= cycles and len(trace) <= cycles  # at most one swap per row and cycle
    assert not torch.equal(new, keep)  # threshold 0 on random layers: something moves
    none = dsnot_refine(weight, keep, stats, nm, scores, threshold=float("inf"))
    assert torch.equal(none, keep)


def test_unstructured_swaps_follow_the_error_sign_one_cycle_at_a_time():
    """An independent check of cycle 1 on random rows: the grown weight is the argmax (e > 0) or
    argmin (e < 0) of W m / v over the pruned ones of the right sign, the pruned one the lowest
    Wanda score among the kept ones whose W m has the sign opposite to e."""
    weight, stats = _random_case(11, rows=40)
    scores = Wanda().score(weight, stats)
    keep = keep_mask(scores, 0.5, None, "row")
    new = dsnot_refine(weight, keep, stats, None, scores, max_cycles=1, threshold=0.0)
    m = stats.sums / stats.sequences
    v = stats.seq_var / stats.sequences
    metric = weight.double() * m
    for i in range(weight.shape[0]):
        e = float((metric[i] * ~keep[i]).sum())
        sign = 1 if e > 0 else -1
        growth = torch.where(~keep[i] & (metric[i] * sign > 0), metric[i] / v * sign, torch.tensor(-float("inf")))
        prune = torch.where(keep[i] & (metric[i] * sign < 0), scores[i], torch.tensor(float("inf")))
        expect = keep[i].clone()
        expect[int(growth.argmax())], expect[int(prune.argmin())] = True, False
        assert torch.equal(new[i], expect), i


# ------------------------------------------------------------------ DSnoT in the engine and runs
def test_the_engine_refines_the_attention_layers_on_the_dense_values(tiny):
    model = _tiny_model(tiny)
    dense = {n: l.weight.detach().clone() for n, l in pruned_layers(model).items()}
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    plain = prune_model(_tiny_model(tiny), Wanda(), 0.5, None, "row", (), ids)
    masks = prune_model(model, Wanda(), 0.5, None, "row", (), ids, refine=DSnoT(threshold=0.0))
    moved = []
    for n, layer in pruned_layers(model).items():
        assert torch.equal(masks[n].sum(1), plain[n].sum(1))
        assert torch.equal(layer.weight.detach(), dense[n] * masks[n])  # kept values are the dense ones
        if ".layers.0." not in n:
            continue  # later blocks see what the refined blocks before them produce
        if ".mlp." in n:
            assert torch.equal(masks[n], plain[n]), n  # skipped by default, as the reference's --skip_layer mlp
        else:
            moved.append(not torch.equal(masks[n], plain[n]))
    assert any(moved)  # block 0 sees the same inputs in both runs, and the refinement changed its masks


def test_the_engine_keeps_n_m_under_refinement_for_a_data_free_method(tiny):
    from shrinkbench.llm.methods import Magnitude

    model = _tiny_model(tiny)
    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(3))]
    masks = prune_model(model, Magnitude(), 0.5, (2, 4), "layer", (), ids, refine=DSnoT(threshold=0.0, skip=()))
    for keep in masks.values():
        assert bool((keep.reshape(-1, 4).sum(1) == 2).all())


def test_a_refined_run_has_its_own_identity_and_tag(tiny, tmp_path):
    from shrinkbench.core.sweep import run_one
    from shrinkbench.core.store import Store

    plain = _cfg(tiny, strategy="wanda")
    refined = _cfg(tiny, strategy="wanda", refine="dsnot", refine_params={"threshold": 0.0})
    assert "refine" not in plain.identity() and "finetune_method" not in plain.identity()
    assert refined.run_id != plain.run_id != _cfg(tiny, strategy="wanda", refine="dsnot").run_id
    assert run_one(refined, str(tmp_path)).status == "ok"
    record = Store(tmp_path).read(refined.run_id)
    # two refinements that differ in a parameter are two methods to the analysis, as allocations are
    assert record["method_tags"] == ["row", "dsnot threshold=0.0"] and record["config"]["refine_params"] == {
        "threshold": 0.0}
    assert _cfg(tiny, strategy="wanda", refine="dsnot").record_names()["method_tags"] == ["row", "dsnot"]
    data_free = _cfg(tiny, strategy="magnitude", refine="dsnot")  # draws calibration windows for the refinement
    assert run_one(data_free, str(tmp_path)).status == "ok"


class Miscount(MaskRefinement):
    name = "miscount"

    def refine(self, weight, keep, inputs, nm, scores):
        new = keep.clone()
        new[0] = True
        return new


def test_a_misbehaving_refinement_fails_its_run_only(tiny, tmp_path):
    from shrinkbench.core.sweep import run_one

    LLM_REFINEMENTS.register("miscount", Miscount)
    try:
        outcome = run_one(_cfg(tiny, strategy="wanda", refine="miscount"), str(tmp_path))
    finally:
        LLM_REFINEMENTS.remove("miscount")
    assert outcome.status == "failed" and "changed a row's kept count" in outcome.error
    from shrinkbench.llm.refine import checked_refine

    not_a_mask = type("NotAMask", (MaskRefinement,), {"refine": lambda self, *a: keep_mask})()
    with pytest.raises(StrategyError, match="must return a bool mask"):
        checked_refine(not_a_mask, "x", W_2X4, KEEP_2X4, X_2X4, None, None)
    raises = type("Raises", (MaskRefinement,), {"refine": lambda self, *a: 1 / 0})()
    with pytest.raises(StrategyError, match="raised on layer x: ZeroDivisionError"):
        checked_refine(raises, "x", W_2X4, KEEP_2X4, X_2X4, None, None)


@pytest.mark.parametrize("kw, message", [
    (dict(strategy="sparsegpt", refine="dsnot"), "overrides prune() and may change the kept weights"),
    (dict(strategy="wanda", refine="dsnott"), "unknown mask refinement"),
    (dict(strategy="none", sparsity=0.0, refine="dsnot"), "has no mask to refine"),
    (dict(strategy="magnitude", scope="global", refine="dsnot"), "scope global"),
    (dict(strategy="wanda", refine="dsnot", refine_params={"skip": ["*.nothing.*"]}), "matches none"),
    (dict(strategy="wanda", refine="dsnot", refine_params={"skip": ["*"]}), "leaves none"),
    (dict(strategy="wanda", refine="dsnot", refine_params={"max_cycles": 0}), "max_cycles must be"),
    (dict(strategy="wanda", refine="dsnot", refine_params={"threshold": -1}), "threshold must be"),
    (dict(strategy="wanda", refine="dsnot", refine_params={"cycles": 3}), "cycles"),
    (dict(strategy="wanda", refine_params={"threshold": 0.0}), "give refine"),
    (dict(finetune_method="lora"), "finetune_steps >= 1"),
    (dict(finetune_steps=1, finetune_method="lora", lora_rank=0), "lora_rank must be"),
    (dict(finetune_steps=1, finetune_method="lora", lora_alpha=-1.0), "lora_alpha must be"),
    (dict(finetune_steps=1, finetune_method="lora", lora_dropout=1.0), "lora_dropout must lie"),
    (dict(finetune_steps=1, finetune_method="lora", lora_targets=("c_attn",)), "no linear layer named 'c_attn'"),
    (dict(finetune_steps=1, lora_rank=4), "give finetune_method lora"),
    (dict(finetune_steps=1, finetune_method="adapter"), "finetune_method must be one of"),
])
def test_bad_refinement_and_lora_settings_are_refused_before_any_run(tiny, kw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        _cfg(tiny, **kw)


@pytest.mark.parametrize("args, message", [
    (["--strategy", "sparsegpt", "--refine", "dsnot"], "overrides prune()"),
    (["--lora-target", "nope", "--finetune-steps", "1", "--finetune-method", "lora"], "no linear layer named 'nope'"),
    (["--lora-rank", "4", "--finetune-steps", "1"], "give --finetune-method lora"),
    (["--finetune-method", "lora"], "give --finetune-steps too"),
    (["--refine-param", "threshold=0"], "give --refine too"),
])
def test_the_command_line_refuses_in_one_line_and_writes_nothing(tiny, tmp_path, capsys, args, message):
    from shrinkbench.cli import main

    store = tmp_path / "store"
    assert main(base_args(tiny, store, *args)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(store.glob("runs/*.json"))


# ------------------------------------------------------------------ LoRA
def test_a_masked_merge_keeps_zeros_exactly_and_moves_kept_weights():
    from shrinkbench.llm.lora import merge_with_masks

    layer = torch.nn.Linear(4, 2, bias=False)
    keep = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 1]], dtype=torch.bool)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0, -2.0, 0.0], [0.0, 3.0, 0.0, 4.0]]))
    delta = torch.tensor([[0.5, -0.25, 0.125, 7.0], [-1.0, 0.5, -3.0, 0.25]])  # B A * alpha / r
    assert merge_with_masks([(layer, delta)], {id(layer): "l"}, {"l": keep}) == 1
    assert layer.weight.tolist() == [[1.5, 0.0, -1.875, 0.0], [0.0, 3.5, 0.0, 4.25]]
    assert bool((layer.weight[~keep] == 0).all()) and not torch.signbit(layer.weight[~keep]).any()
    with pytest.raises(Exception, match="NaN or inf"):
        merge_with_masks([(layer, delta * float("nan"))], {id(layer): "l"}, {"l": keep})


def test_lora_trains_through_peft_offline_and_the_merge_keeps_the_masks(tiny):
    from shrinkbench.llm.lora import lora_recover
    from shrinkbench.llm.methods import Magnitude

    cfg = _cfg(tiny, strategy="magnitude", finetune_steps=3, finetune_lr=1e-2, finetune_method="lora", lora_rank=2,
               lora_targets=("q_proj", "v_proj", "down_proj"))
    model = _tiny_model(tiny)
    masks = prune_model(model, Magnitude(), 0.5, None, "layer", (), None)
    before = {n: l.weight.detach().clone() for n, l in pruned_layers(model).items()}
    record = {"epochs": []}
    train = torch.randint(0, 300, (4000,), generator=torch.Generator().manual_seed(0))
    facts = lora_recover(model, masks, train, cfg, torch.device("cpu"), record)
    # r (in + out) per adapted layer: q 32->32, v 32->16, down 64->32, in 2 blocks
    assert facts["trainable_params"] == 2 * 2 * ((32 + 32) + (32 + 16) + (64 + 32))
    assert facts["adapted_layers"] == 6 == facts["masked_merges"] and len(record["epochs"]) == 3
    assert not any("lora" in n for n, _ in model.named_modules())  # plain modules again
    for n, layer in pruned_layers(model).items():
        w = layer.weight.detach()
        assert bool((w[~masks[n]] == 0).all()), n  # pruned stay exactly zero
        adapted = n.rsplit(".", 1)[-1] in ("q_proj", "v_proj", "down_proj")
        assert (not torch.equal(w[masks[n]], before[n][masks[n]])) == adapted, n


def test_a_lora_run_records_its_budget_and_identity(tiny, tmp_path):
    from shrinkbench.llm.runner import execute
    from shrinkbench.core.store import Store

    full = _cfg(tiny, strategy="wanda", finetune_steps=2, finetune_lr=1e-3)
    lora = _cfg(tiny, strategy="wanda", finetune_steps=2, finetune_lr=1e-3, finetune_method="lora")
    assert lora.run_id != full.run_id and lora.replace(lora_rank=4).run_id != lora.run_id
    assert "finetune_method" not in full.identity() and lora.identity()["lora_targets"] == ["q_proj", "v_proj"]
    record = execute(lora, Store(tmp_path))
    m = {(x["stage"], x["metric"]): x["value"] for x in record["metrics"]}
    assert record["status"] == "ok" and record["budget"]["method"] == "lora" and record["budget"]["steps"] == 2
    assert record["budget"]["trainable_params"] == 2 * 8 * ((32 + 32) + (32 + 16))
    assert m[("post", "sparsity")] == 0.5 and m[("post", "perplexity")] != m[("pre", "perplexity")]
    assert record["method_tags"] == ["row", "LoRA r8 recovery 2 steps"]
    assert all(kept["kept"] * 2 == kept["numel"] for kept in record["layers"])


def test_a_suite_selects_dsnot_on_top_of_wanda_and_refuses_it_in_run(tiny, tmp_path):
    from shrinkbench.core.suite import load_suite
    from test_llm_trust import write_llm_suite

    suite = write_llm_suite(tmp_path / "s.toml", tiny, patterns='["unstructured", "2:4"]', strategies=(
        '["wanda", {name = "wanda", refine = "dsnot", refine_params = {threshold = 0.05}}]'))
    pruned = [c for c in load_suite(str(suite)).configs if not c.is_dense]
    refined = sorted((c.pattern, c.refine, dict(c.refine_params)) for c in pruned if c.refine)
    assert len(pruned) == 4 and refined == [("2:4", "dsnot", {"threshold": 0.05}),
                                            ("unstructured", "dsnot", {"threshold": 0.05})]
    bad = write_llm_suite(tmp_path / "b.toml", tiny, strategies='[{name = "sparsegpt", refine = "dsnot"}]')
    with pytest.raises(ConfigError, match="overrides prune"):
        load_suite(str(bad))


# ------------------------------------------------------------------ a user's refinement and allocation
USER_CODE = '''
import torch

from shrinkbench.llm.allocation import LayerAllocation
from shrinkbench.llm.refine import MaskRefinement


def real(weight):  # the dry runs use layers of 8 rows; the tiny model's have 16, 32 or 64
    return weight.shape[0] != 8


class Mirror(MaskRefinement):
    """well behaved: each row's mask reversed (row counts and, under N:M, every group's count kept)"""
    def __init__(self, flip: bool = True):
        self.flip = flip

    def applies_to(self, layer):
        return "self_attn" in layer

    def refine(self, weight, keep, inputs, nm, scores):
        return keep.flip(1) if self.flip else keep.clone()


class LateRaise(MaskRefinement):
    def refine(self, weight, keep, inputs, nm, scores):
        if real(weight):
            raise RuntimeError("boom")
        return keep.clone()


class LateShape(MaskRefinement):
    def refine(self, weight, keep, inputs, nm, scores):
        return keep[:, :-1] if real(weight) else keep.clone()


class LateNotBool(MaskRefinement):
    def refine(self, weight, keep, inputs, nm, scores):
        return keep.float() if real(weight) else keep.clone()


class LateCount(MaskRefinement):
    def refine(self, weight, keep, inputs, nm, scores):
        new = keep.clone()
        if real(weight):
            new[0] = True
        return new


class LateRevive(MaskRefinement):
    """revives a pruned weight of row 0 and prunes a kept one of row 1: the layer's total is kept"""
    def refine(self, weight, keep, inputs, nm, scores):
        new = keep.clone()
        if real(weight):
            new[0, int((~keep[0]).nonzero()[0])] = True
            new[1, int(keep[1].nonzero()[0])] = False
        return new


class LateGroup(MaskRefinement):
    """under N:M: in row 0, a kept weight of the first group swapped for a pruned one of the second"""
    def refine(self, weight, keep, inputs, nm, scores):
        new = keep.clone()
        if real(weight) and nm is not None:
            m = nm[1]
            new[0, int(keep[0, :m].nonzero()[0])] = False
            new[0, m + int((~keep[0, m:2 * m]).nonzero()[0])] = True
        return new


class LateInPlace(MaskRefinement):
    def refine(self, weight, keep, inputs, nm, scores):
        if real(weight):
            weight.mul_(2)
        return keep.clone()


class LateApplies(MaskRefinement):
    def applies_to(self, layer):
        return "yes"

    def refine(self, weight, keep, inputs, nm, scores):
        return keep.clone()


class EarlyCount(MaskRefinement):
    def refine(self, weight, keep, inputs, nm, scores):
        return torch.ones_like(keep)


class EarlyUnreachable(LayerAllocation):
    def sparsities(self, layers, sparsity):
        return [0.0] + [1.0] * (len(layers) - 1)


class LateAllocRaise(LayerAllocation):
    def sparsities(self, layers, sparsity):
        if real(layers[0].weight):
            raise ValueError("no allocation today")
        return [sparsity] * len(layers)


class LateAllocLength(LayerAllocation):
    def sparsities(self, layers, sparsity):
        return [sparsity] * (len(layers) - int(real(layers[0].weight)))


class LateAllocUnreachable(LayerAllocation):
    """the first layer keeps everything it has, the others nothing: the first would need more than 100%"""
    def sparsities(self, layers, sparsity):
        if not real(layers[0].weight):
            return [sparsity] * len(layers)
        return [0.0] + [1.0] * (len(layers) - 1)
'''

LATE_REFINEMENTS = {"LateRaise": "raised on layer model.layers.0.self_attn.q_proj: RuntimeError: boom",
                    "LateShape": "must return a bool mask of shape (32, 32)",
                    "LateNotBool": "must return a bool mask of shape (32, 32)",
                    "LateCount": "changed a row's kept count",
                    "LateRevive": "changed a row's kept count",
                    "LateInPlace": "changed the weight it was given in place"}
LATE_ALLOCATIONS = {"LateAllocRaise": "raised: ValueError: no allocation today",
                    "LateAllocLength": "returned 13 sparsities for 14 layers",
                    "LateAllocUnreachable": "would have to keep"}


def test_misbehaving_user_refinements_and_allocations_fail_their_runs_only(tiny, tmp_path):
    """One sweep: Wanda alone, with a well-behaved user refinement, with each misbehaving one, and
    magnitude with each misbehaving user allocation; every misbehaving run fails with one line
    naming its class, every other run of the sweep completes."""
    from shrinkbench.core.store import Store
    from shrinkbench.core.suite import load_suite
    from shrinkbench.core.sweep import run_local
    from test_llm_trust import write_llm_suite

    code = tmp_path / "mine.py"
    code.write_text(USER_CODE)
    entries = (['"wanda"', f'{{name = "wanda", refine = "{code}:Mirror"}}']
               + [f'{{name = "wanda", refine = "{code}:{c}"}}' for c in LATE_REFINEMENTS]
               + [f'{{name = "magnitude", allocation = "{code}:{c}"}}' for c in LATE_ALLOCATIONS])
    suite = write_llm_suite(tmp_path / "s.toml", tiny, strategies="[" + ", ".join(entries) + "]",
                            run="calib_sequences = 4\n")
    configs = load_suite(str(suite)).configs
    assert all(len(c.refine_sha256) == 64 for c in configs if c.refine)  # each user file pinned in the id
    store = Store(tmp_path / "store")
    run_local(configs, store, progress=False)
    records = {r["run_id"]: r for r in store.records()}
    assert len(records) == len(configs) == 2 + len(LATE_REFINEMENTS) + len(LATE_ALLOCATIONS) + 1  # + dense
    for cfg in configs:
        record = records[cfg.run_id]
        which = (cfg.refine or cfg.allocation).rpartition(":")[2] if (cfg.refine or ":" in cfg.allocation) else None
        expected = LATE_REFINEMENTS.get(which) or LATE_ALLOCATIONS.get(which)
        if expected is None:
            assert record["status"] == "ok", (which, record["error"])
            continue
        assert record["status"] == "failed" and record["metrics"] == [], which
        assert which in record["error"] and expected in record["error"] and "\n" not in record["error"], record["error"]
    mirrored = next(records[c.run_id] for c in configs if c.refine and c.refine.endswith(":Mirror"))
    assert mirrored["provenance"]["refine_source_sha256"] == mirrored["config"]["refine_sha256"]


def test_a_users_refinement_runs_with_the_dsnot_protocol_and_its_source_is_its_identity(tiny, tmp_path):
    from shrinkbench.core.sweep import run_one

    code = tmp_path / "mine.py"
    code.write_text(USER_CODE)
    mirror = _cfg(tiny, strategy="wanda", refine=f"{code}:Mirror", pattern="2:4")
    outcome = run_one(mirror, str(tmp_path / "store"))
    assert outcome.status == "ok"
    # the engine used it: attention layers carry the mirrored Wanda mask, the MLP the plain one
    model = _tiny_model(tiny)
    from shrinkbench.llm.engine import prune_model
    from shrinkbench.llm.refine import resolve_refinement

    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(0))]
    plain = prune_model(_tiny_model(tiny), Wanda(), 0.5, (2, 4), "row", (), ids)
    refined = prune_model(model, Wanda(), 0.5, (2, 4), "row", (), ids,
                          refine=resolve_refinement(f"{code}:Mirror"))
    first_attention = "model.layers.0.self_attn.q_proj"
    assert torch.equal(refined[first_attention], plain[first_attention].flip(1))
    assert torch.equal(refined["model.layers.0.mlp.up_proj"], plain["model.layers.0.mlp.up_proj"])
    # parameters reach its constructor and join the identity; an edited file makes a new run id
    assert _cfg(tiny, strategy="wanda", refine=f"{code}:Mirror", pattern="2:4",
                refine_params={"flip": False}).run_id != mirror.run_id
    code.write_text(USER_CODE + "\n# edited\n")
    assert _cfg(tiny, strategy="wanda", refine=f"{code}:Mirror", pattern="2:4").run_id != mirror.run_id
    # the planned file changed before the run: one line, no record
    with pytest.raises(ConfigError, match="refine file .* changed since this run was planned"):
        run_one(mirror.replace(seed=5), str(tmp_path / "store"))


def test_a_refinement_that_breaks_n_m_groups_fails_its_run_only(tiny, tmp_path):
    from shrinkbench.core.sweep import run_one

    code = tmp_path / "mine.py"
    code.write_text(USER_CODE)
    outcome = run_one(_cfg(tiny, strategy="wanda", pattern="2:4", refine=f"{code}:LateGroup"), str(tmp_path))
    assert outcome.status == "failed" and "LateGroup" in outcome.error and "not 2:4 in every group" in outcome.error


def test_dsnot_refines_ria_in_its_permuted_groups(tiny):
    """RIA's channel permutation forms its 2:4 groups in another column order; DSnoT swaps inside
    those groups, so the refined mask is 2:4 in that order (and N:M checks pass)."""
    from shrinkbench.llm.methods import RIA, ria_channel_order, ria_lsa_order, ria_score
    from shrinkbench.llm.engine import dense_input_stats

    ids = [torch.randint(0, 300, (4, 16), generator=torch.Generator().manual_seed(1))]
    stats = dense_input_stats(_tiny_model(tiny), (), ids)
    model = _tiny_model(tiny)
    dense = {n: l.weight.detach().clone() for n, l in pruned_layers(model).items()}
    masks = prune_model(model, RIA(permute=True), 0.5, (2, 4), "layer", (), ids,
                        refine=DSnoT(threshold=0.0, skip=()))
    plain = prune_model(_tiny_model(tiny), RIA(permute=True), 0.5, (2, 4), "layer", (), ids)
    assert any(not torch.equal(masks[n], plain[n]) for n in masks)  # DSnoT swapped somewhere
    for n in [n for n in masks if ".layers.0." in n]:  # block 0: the same inputs as the dense model
        scores = ria_score(dense[n], stats[n].sq_norm)
        order = ria_lsa_order(scores, ria_channel_order(scores, 4), 2, 4)
        assert bool((masks[n][:, order].reshape(-1, 4).sum(1) == 2).all()), n


@pytest.mark.parametrize("args, message", [
    (["--strategy", "wanda", "--refine", "{code}:EarlyCount"], "dry run of refinement"),
    (["--strategy", "wanda", "--refine", "{code}:LateApplies"], "must return True or False"),
    (["--strategy", "wanda", "--refine", "{code}:Nope"], "has no class 'Nope'"),
    (["--strategy", "wanda", "--refine", "{code}:Mirror", "--refine-param", "twist=1"], "no parameter 'twist'"),
    (["--strategy", "sparsegpt", "--refine", "{code}:Mirror"], "overrides prune()"),
    (["--strategy", "wanda", "--refine", "{code}:LateAllocRaise"], "is not a subclass of"),
    (["--allocation", "{code}:EarlyUnreachable"], "cannot reach the target 0.5: layer blocks.0.a would have to keep"),
    (["--allocation", "{code}:Mirror"], "is not a subclass of"),
])
def test_a_bad_user_refinement_or_allocation_is_refused_before_any_run(tiny, tmp_path, capsys, args, message):
    from shrinkbench.cli import main

    code = tmp_path / "mine.py"
    code.write_text(USER_CODE)
    store = tmp_path / "store"
    assert main(base_args(tiny, store, *[a.format(code=code) for a in args])) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(store.glob("runs/*.json"))
