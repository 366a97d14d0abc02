"""N:M selection by each group's N-th largest (through the columns for many groups, row by row
for few) equals the stable descending sort it replaced, entry for entry,
and the tie counts equal the sorted ones (ties, -inf of dead entries, +inf, NaN, dtypes)."""
import pytest
import torch

from shrinkbench.core.selection import nm_mask, nm_mask_and_ties, nth_largest_columns, tied_nm_groups


def sorted_nm_mask(scores, n, m, alive=None):
    """The implementation before issue 24: a stable argsort of every group in float64."""
    rows = scores.reshape(scores.shape[0], -1).to(torch.float64)
    if alive is not None:
        rows = rows.masked_fill(~alive.reshape(rows.shape), float("-inf"))
    groups = rows.reshape(-1, m)
    order = torch.argsort(-groups, dim=1, stable=True)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, order[:, :n], True)
    if alive is not None:
        keep &= torch.isfinite(groups)
    return keep.reshape(scores.shape)


def sorted_tied_nm_groups(scores, n, m):
    groups = scores.reshape(scores.shape[0], -1).to(torch.float64).reshape(-1, m)
    ordered = torch.sort(groups, dim=1, descending=True).values
    boundary = ordered[:, n - 1: n]
    split = ordered[:, n - 1] == ordered[:, n]
    equal = (groups == boundary).sum(1)
    return int(split.sum()), int(equal[split].sum())


def score_cases():
    g = torch.Generator().manual_seed(0)
    yield "random", torch.randn(16, 64, generator=g)
    yield "ties", torch.randint(0, 3, (16, 64), generator=g).float()  # most groups tie somewhere
    yield "zeros", torch.zeros(8, 32)
    x = torch.randn(16, 64, generator=g)
    x[0, :4] = float("inf")
    x[1, 4:8] = float("-inf")
    x[2, 8:10] = float("inf")
    yield "infinities", x
    yield "float16", torch.randint(0, 4, (8, 64), generator=g).half()
    yield "bfloat16", torch.randn(8, 64, generator=g).bfloat16()
    yield "conv-shaped", torch.randint(0, 2, (6, 4, 2, 4), generator=g).double()


@pytest.fixture(params=["columns", "rows"])
def path(request, monkeypatch):
    """Both ways `nm_mask`, `tied_nm_groups` and `nm_mask_and_ties` take (by the number of
    groups: through the columns for many, a sort or the rows' selection for few), each tested."""
    import shrinkbench.core.selection as selection

    monkeypatch.setattr(selection, "SORT_BELOW_GROUPS", 0 if request.param == "columns" else 10**9)
    return request.param


@pytest.mark.parametrize("n,m", [(2, 4), (4, 8), (1, 4), (3, 4), (1, 2), (8, 16)])
@pytest.mark.parametrize("case", list(score_cases()), ids=lambda c: c[0])
def test_counted_ranks_select_what_the_stable_sort_selected(case, n, m, path):
    _, scores = case
    g = torch.Generator().manual_seed(1)
    alive = torch.rand(scores.shape, generator=g) > 0.3
    assert torch.equal(nm_mask(scores, n, m), sorted_nm_mask(scores, n, m))
    assert torch.equal(nm_mask(scores, n, m, alive), sorted_nm_mask(scores, n, m, alive))
    assert tied_nm_groups(scores, n, m) == sorted_tied_nm_groups(scores, n, m)
    keep, ties = nm_mask_and_ties(scores, n, m)
    assert torch.equal(keep, sorted_nm_mask(scores, n, m)) and ties == sorted_tied_nm_groups(scores, n, m)


def test_columns_by_hand_and_nan_falls_back_to_the_sort(path):
    groups = torch.tensor([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0], [0.0, 4.0, -1.0, 7.0]])
    for n, expected in ((1, ([3.0, 5.0, 7.0], [3.0, 5.0, 4.0])), (2, ([3.0, 5.0, 4.0], [2.0, 5.0, 0.0])),
                        (3, ([2.0, 5.0, 0.0], [1.0, 5.0, -1.0]))):
        nth, after = nth_largest_columns(groups, n)
        assert (nth.tolist(), after.tolist()) == expected
    assert tied_nm_groups(groups, 2, 4) == (1, 4)  # row 1 split at its boundary (four 5s); rows 0, 2 not
    assert nm_mask(groups, 2, 4).tolist() == [[False, True, True, False], [True, True, False, False],
                                              [False, True, False, True]]
    nan = torch.tensor([[float("nan"), 1.0, 2.0, 0.5]])
    assert torch.equal(nm_mask(nan, 2, 4), sorted_nm_mask(nan, 2, 4))
    assert tied_nm_groups(nan, 2, 4) == sorted_tied_nm_groups(nan, 2, 4)
    keep, ties = nm_mask_and_ties(nan, 2, 4)
    assert torch.equal(keep, sorted_nm_mask(nan, 2, 4)) and ties == sorted_tied_nm_groups(nan, 2, 4)


def test_all_finite_reads_the_sum_first_and_never_misses_a_bad_entry():
    from shrinkbench.llm.methods import all_finite

    x = torch.randn(64, 64)
    assert all_finite(x)
    for bad in (float("nan"), float("inf"), float("-inf")):
        y = x.clone()
        y[3, 5] = bad
        assert not all_finite(y)
    both = x.clone()
    both[0, 0], both[1, 1] = float("inf"), float("-inf")  # their sum is NaN, still caught
    assert not all_finite(both)
    huge = torch.full((4,), torch.finfo(torch.float32).max)  # finite entries whose float32 sum overflows
    assert all_finite(huge) and all_finite(torch.full((8,), 60000.0, dtype=torch.float16))
