"""Row-wise top-k by each row's k-th largest (`core.selection.top_k_rows`, issue 24) selects what
the stable descending sort it replaced selected, entry for entry, counts the same ties, and draws
the same random numbers: property tests against the implementation before (kept here verbatim),
on quantized scores (many ties), signed zeros, infinities and NaN, with and without a generator."""
import pytest
import torch

from shrinkbench.core.selection import (_select_rows, ordered_desc, tied_rows_top_k, tied_top_k,
                                        top_k_mask, top_k_rows, top_k_with_ties)
from shrinkbench.llm.methods import TieLedger, keep_row_shares, keep_top, selecting


def sorted_keep_top(scores, k, per_row, generator):
    """keep_top before issue 24's last round: a stable sort of every row."""
    scores = scores.to(torch.float64)
    if per_row:
        order = ordered_desc(scores, generator)
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(1, order[:, :k], True)
        return keep, tied_rows_top_k(scores, k, order)
    keep, tied = top_k_with_ties(scores.reshape(-1), k, generator)
    return keep.reshape(scores.shape), tied


def sorted_keep_row_shares(scores, kept, generator):
    """keep_row_shares before issue 24's last round."""
    scores = scores.to(torch.float64)
    rows, cols = scores.shape
    q, extra = divmod(int(kept), rows)
    order = ordered_desc(scores, generator)
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep.scatter_(1, order[:, :q], True)
    tied = 0
    if extra:
        candidates = scores.gather(1, order[:, q: q + 1]).flatten()
        more = top_k_mask(candidates, extra, generator)
        keep[more, order[more, q]] = True
        tied += tied_top_k(candidates, extra)
    tied += tied_rows_top_k(scores[~more] if extra else scores, q)
    if extra:
        tied += tied_rows_top_k(scores[more], q + 1)
    return keep, tied


def score_cases():
    g = torch.Generator().manual_seed(0)
    yield "random", torch.randn(12, 40, generator=g)
    yield "quantized", torch.randint(0, 4, (12, 40), generator=g).double()  # most rows split at their boundary
    yield "signed zeros", torch.randint(-1, 2, (12, 40), generator=g).double() * torch.where(
        torch.rand(12, 40, generator=g) < 0.5, -0.0, 0.0)  # 0.0 and -0.0 mixed: equal scores
    x = torch.randint(0, 3, (12, 40), generator=g).double()
    x[0, :6], x[1, :30], x[2, 3:9] = float("inf"), float("-inf"), float("-inf")
    yield "infinities", x
    y = torch.randint(0, 3, (12, 40), generator=g).double()
    y[0, 5], y[3, :7], y[7, 39] = float("nan"), float("nan"), float("nan")
    yield "nan", y
    yield "float32", torch.randint(0, 5, (12, 40), generator=g).float()
    yield "one row", torch.randint(0, 2, (1, 40), generator=g).double()


CASES = list(score_cases())


@pytest.mark.parametrize("seeded", [False, True], ids=["lower index", "seeded ties"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_top_k_rows_equals_the_sort_and_draws_the_same_numbers(case, seeded):
    _, scores = case
    for k in (0, 1, 7, 20, 39, 40):
        old_gen = torch.Generator().manual_seed(3) if seeded else None
        new_gen = torch.Generator().manual_seed(3) if seeded else None
        keep, tied = sorted_keep_top(scores, k, True, old_gen)
        new_keep, new_tied = top_k_rows(scores.to(torch.float64), k, new_gen)
        assert torch.equal(new_keep, keep), k
        assert new_tied == tied, k
        assert int(new_keep.sum(1).min()) == int(new_keep.sum(1).max()) == k
        if seeded:  # the same draws: the generators stand at the same place afterwards
            assert torch.equal(old_gen.get_state(), new_gen.get_state())


@pytest.mark.parametrize("seeded", [False, True], ids=["lower index", "seeded ties"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_keep_top_and_row_shares_keep_what_they_kept_before(case, seeded):
    _, scores = case
    rows, cols = scores.shape
    for kept in (0, 1, rows * 3, rows * 3 + 5, rows * cols // 2 + 1, rows * cols - 1, rows * cols):
        for fn, old in ((lambda s: keep_row_shares(s, kept), lambda s, g: sorted_keep_row_shares(s, kept, g)),
                        (lambda s: keep_top(s, kept // rows, True), lambda s, g: sorted_keep_top(s, kept // rows, True, g))):
            old_gen = torch.Generator().manual_seed(5) if seeded else None
            keep, tied = old(scores, old_gen)
            ledger = TieLedger(torch.Generator().manual_seed(5) if seeded else None)
            with selecting(ledger):
                new_keep = fn(scores)
            assert torch.equal(new_keep, keep), kept
            assert ledger.tied == tied and ledger.decisions == scores.numel(), kept
            if seeded:
                assert torch.equal(old_gen.get_state(), ledger.generator.get_state())


def test_top_k_rows_by_hand():
    scores = torch.tensor([[3.0, 1.0, 3.0, 3.0, 0.0],    # k=2: boundary 3 held by three: split, keep the first two 3s
                           [5.0, 4.0, 3.0, 2.0, 1.0],    # no tie
                           [2.0, 2.0, 1.0, 1.0, 1.0]])   # boundary 2 held by exactly the two kept: not split
    keep, tied = top_k_rows(scores, 2)
    assert keep.tolist() == [[True, False, True, False, False],
                             [True, True, False, False, False],
                             [True, True, False, False, False]]
    assert tied == 3
    assert _select_rows(scores, 2)[1:] == (1, 3)  # one split row, three tied entries in it



def test_has_nan_reads_the_sum_first_and_never_misses_nor_invents_one():
    from shrinkbench.core.selection import has_nan

    x = torch.randn(32, 8)
    assert not has_nan(x)
    y = x.clone()
    y[4, 2] = float("nan")
    assert has_nan(y)
    both = x.clone()
    both[0, 0], both[1, 1] = float("inf"), float("-inf")  # their sum is NaN, no entry is
    assert not has_nan(both)
    assert not has_nan(torch.full((8,), 60000.0, dtype=torch.float16))  # the float16 sum overflows
