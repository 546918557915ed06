"""The verdict's intervals and p-values against scipy's t-tests (the oracle) on random samples of unequal sizes
and spreads, where Welch's degrees of freedom are fractional: ``ttest_ind(equal_var=False)`` for independent
seeds, ``ttest_rel`` for seeds paired by common random numbers (scipy 1.11+ ``confidence_interval``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from intrakd.report.verdict import judge, paired_interval, p_value, welch_interval

#: (n_a, n_b, sd_a, sd_b, shift): unequal sizes and spreads, effects from clearly positive to clearly negative
CASES = [(3, 5, 1.0, 4.0, 2.0), (4, 7, 3.0, 0.5, -1.5), (6, 3, 0.2, 2.5, 0.3), (5, 5, 1.0, 1.0, 4.0),
         (9, 4, 2.0, 0.7, -3.0), (3, 3, 0.5, 5.0, 0.0)]


def _sample(case, seed):
    n_a, n_b, sd_a, sd_b, shift = case
    rng = np.random.default_rng(seed)
    return rng.normal(10 + shift, sd_a, n_a), rng.normal(10, sd_b, n_b)


@pytest.mark.parametrize("level", [0.95, 0.9])
@pytest.mark.parametrize("case", CASES)
def test_welch_interval_is_scipys_welch_t_interval_with_fractional_df(case, level):
    for seed in range(5):
        a, b = _sample(case, seed)
        effect, low, high, df = welch_interval(a, b, level)
        ref = stats.ttest_ind(a, b, equal_var=False)
        ci = ref.confidence_interval(level)
        assert effect == pytest.approx(a.mean() - b.mean(), rel=1e-12, abs=1e-12)
        assert (low, high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
        assert df == pytest.approx(ref.df, rel=1e-12) and df != round(df)  # Welch-Satterthwaite, not n_a + n_b - 2
        assert p_value(">", (effect, low, high, df), level=level)[0] == pytest.approx(ref.pvalue, rel=1e-9)


@pytest.mark.parametrize("level", [0.95, 0.9])
@pytest.mark.parametrize("n", [3, 4, 7])
def test_paired_interval_is_scipys_paired_t_interval(n, level):
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        b = rng.normal(20, 3, n)
        a = b + rng.normal(0.8, 1.5, n)  # paired: a shares b's seed-level noise
        effect, low, high, df = paired_interval(a, b, level)
        ref = stats.ttest_rel(a, b)
        ci = ref.confidence_interval(level)
        assert effect == pytest.approx(np.mean(a - b), rel=1e-12)
        assert (low, high) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
        assert df == ref.df == n - 1
        assert p_value("<", (effect, low, high, df), level=level)[0] == pytest.approx(ref.pvalue, rel=1e-9)


def test_judge_on_scipys_interval_agrees_with_scipys_one_sided_test():
    """``>`` is agreed exactly when scipy's one-sided Welch test of a > b rejects at 2.5 % (the lower bound of the
    two-sided 95 % interval above 0), disagreed when the test of a < b does; ``<`` mirrors it. The samples give
    all three outcomes."""
    seen = set()
    for case, seed in ((c, s) for c in CASES for s in range(5)):
        a, b = _sample(case, seed)
        _, low, high, _ = welch_interval(a, b)
        greater = stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue < 0.025
        less = stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue < 0.025
        want = "agree" if greater else "disagree" if less else "inconclusive"
        assert judge(">", low, high, len(a), len(b)) == want
        mirrored = {"agree": "disagree", "disagree": "agree"}.get(want, want)
        assert judge("<", low, high, len(a), len(b)) == mirrored
        assert not math.isnan(low)
        seen.add(want)
    assert seen == {"agree", "disagree", "inconclusive"}
