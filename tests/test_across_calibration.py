"""The across-settings calibration rows hold within Monte-Carlo tolerance."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from shrinkbench.analysis.across_calibration import METHODS, null_rates, power_rates, verdict_power
from shrinkbench.analysis.calibration import main

REPS = 400
ALPHA = 0.05


@pytest.mark.parametrize("settings", [5, 20])
def test_family_wise_error_under_the_null_is_at_most_alpha(settings):
    rates = null_rates(settings, REPS, np.random.default_rng(settings))
    bound = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)
    assert rates.verdict <= bound and rates.nemenyi <= bound and rates.wilcoxon <= bound
    if settings == 5:
        assert rates.wilcoxon == 0.0  # the smallest signed-rank p with 5 settings is 0.0625


@pytest.mark.parametrize("settings", [5, 20])
def test_verdict_power_matches_the_non_central_t(settings):
    exact = verdict_power(settings)
    rates = power_rates(settings, REPS, np.random.default_rng(100 + settings))
    se = math.sqrt(exact * (1 - exact) / REPS)  # pairs of one study are correlated: count studies only
    assert abs(rates.verdict - exact) <= 4 * se + 1e-9


def test_verdict_power_formula_against_a_direct_simulation_of_the_t_interval():
    # independent of the toolkit: the lower Bonferroni bound of a one-sample t interval above 0
    rng = np.random.default_rng(0)
    n, m, sd = 10, METHODS * (METHODS - 1) // 2, math.sqrt(2 / 3)
    d = rng.normal(1.0, sd, (20000, n))
    low = d.mean(axis=1) - sps.t.ppf(1 - ALPHA / (2 * m), n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    assert (low > 0).mean() == pytest.approx(verdict_power(n), abs=0.012)


def test_calibration_script_prints_the_across_rows(capsys):
    assert main(["--reps", "10", "--across"]) == 0
    out = capsys.readouterr().out
    assert "Across settings: family-wise error" in out and "Across settings: power per pair" in out
