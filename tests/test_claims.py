"""The claim helpers of the experiment contract: the seed interval of a mean (against scipy's one-sample t test),
the interval of a difference of two means (against scipy's Welch test and a hand computation), the one-sided claim
"measured > threshold" (every verdict, and nothing to compare), and how the scorecard shows it."""

import csv
import math

import numpy as np
import pytest
from scipy import stats

from phaselab.experiment import (
    AGREES,
    DISAGREES,
    INCONCLUSIVE,
    Claim,
    exceeds,
    judge,
    seed_interval,
    student_t_quantile,
    welch_interval,
)
from phaselab.summary import SCORECARD_COLUMNS, scorecard_rows, summary_html, write_scorecard_csv


@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.6827])
@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_seed_interval_is_scipys_one_sample_t_interval(n, confidence):
    values = np.random.default_rng(n).normal(0.3, 2.0, n)
    low, high = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    mean, half, k = seed_interval(values, confidence)
    assert k == n
    assert mean == pytest.approx((low + high) / 2, rel=1e-12)
    assert half == pytest.approx((high - low) / 2, rel=1e-12)


def test_seed_interval_drops_non_finite_values_and_needs_two():
    values = np.array([1.0, np.nan, 2.0, np.inf, 4.0])
    low, high = stats.ttest_1samp([1.0, 2.0, 4.0], 0.0).confidence_interval(0.95)
    assert seed_interval(values) == pytest.approx(((low + high) / 2, (high - low) / 2, 3))
    mean, half, n = seed_interval([np.nan, 5.0])
    assert (mean, n) == (5.0, 1) and math.isnan(half)
    mean, half, n = seed_interval([np.nan])
    assert n == 0 and math.isnan(mean) and math.isnan(half)
    assert seed_interval(np.array([[1.0, 3.0], [5.0, 7.0]]))[2] == 4  # any shape: all its values


@pytest.mark.parametrize("confidence", [0.95, 0.99, 0.6827])
@pytest.mark.parametrize("na, nb", [(2, 2), (3, 8), (6, 6), (40, 5)])
def test_welch_interval_is_scipys_unequal_variance_interval(na, nb, confidence):
    g = np.random.default_rng(100 * na + nb)
    a, b = g.normal(0.3, 2.0, na), g.normal(-0.5, 0.4, nb)
    test = stats.ttest_ind(a, b, equal_var=False)
    low, high = test.confidence_interval(confidence)
    diff, half, dof = welch_interval(a, b, confidence)
    assert diff == pytest.approx((low + high) / 2, rel=1e-12)
    assert half == pytest.approx((high - low) / 2, rel=1e-12)
    assert dof == pytest.approx(test.df, rel=1e-12)


def test_welch_interval_by_hand_and_its_edge_cases():
    # a = (1, 2, 3): mean 2, s² = 1; b = (4, 6): mean 5, s² = 2. v_a = 1/3, v_b = 1, so the standard error is
    # √(4/3) and ν = (4/3)² / ((1/3)²/2 + 1²/1) = 32/19 ≈ 1.68, whose t quantile lies between the textbook
    # t_{0.975, 2} = 4.303 and t_{0.975, 1} = 12.706
    diff, half, dof = welch_interval([1.0, 2.0, 3.0], [4.0, 6.0])
    assert diff == -3.0 and dof == pytest.approx(32 / 19, rel=1e-14)
    assert half == pytest.approx(stats.t.ppf(0.975, 32 / 19) * math.sqrt(4 / 3), rel=1e-12)
    assert 4.303 < half / math.sqrt(4 / 3) < 12.706
    # non-finite values are dropped, any shape is flattened, and it is antisymmetric in (a, b)
    assert welch_interval([1.0, np.nan, 2.0, 3.0], np.array([[4.0], [6.0], [np.inf]])) == pytest.approx(
        (diff, half, dof))
    assert welch_interval([4.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx((3.0, half, dof))
    # fewer than two values on either side: the difference, but no interval
    d1, h1, n1 = welch_interval([1.0, 2.0], [5.0])
    assert d1 == -3.5 and math.isnan(h1) and math.isnan(n1)
    d0, h0, _ = welch_interval([], [1.0, 2.0])
    assert math.isnan(d0) and math.isnan(h0)
    # both samples constant: the difference is known exactly
    assert welch_interval([2.0, 2.0, 2.0], [1.0, 1.0]) == (1.0, 0.0, 3.0)


def test_student_t_quantile_is_the_two_sided_quantile():
    assert student_t_quantile(3) == pytest.approx(4.302653, abs=1e-6)  # the textbook t_{0.975, 2}
    assert student_t_quantile(math.inf, 1 - 0.0027) == pytest.approx(3.0, abs=1e-4)  # the normal 3σ
    assert student_t_quantile(11, 0.9) == pytest.approx(stats.t.ppf(0.95, 10))
    assert math.isnan(student_t_quantile(1))


def test_exceeds_gives_every_verdict_from_the_interval():
    up = exceeds("x", "s", measured=0.3, uncertainty=0.2)
    assert up.verdict == AGREES and up.relation == ">"
    assert (up.theory, up.measured, up.uncertainty, up.tolerance) == (0.0, 0.3, 0.2, 0.0)
    assert "above" in up.note
    down = exceeds("x", "s", measured=-0.3, uncertainty=0.2)
    assert down.verdict == DISAGREES and "below" in down.note
    across = exceeds("x", "s", measured=0.1, uncertainty=0.2)
    assert across.verdict == INCONCLUSIVE and "straddles" in across.note
    # the threshold is the claim's theory; the interval is judged against it, not against 0
    assert exceeds("x", "s", measured=1.5, uncertainty=0.2, threshold=1.0).verdict == AGREES
    assert exceeds("x", "s", measured=1.1, uncertainty=0.2, threshold=1.0).verdict == INCONCLUSIVE
    assert exceeds("x", "s", measured=0.7, uncertainty=0.2, threshold=1.0).theory == 1.0
    # a given note, figure and where are kept
    c = exceeds("x", "s", measured=-1.0, uncertainty=0.1, note="why", figure="f", where="w")
    assert (c.note, c.figure, c.where) == ("why", "f", "w")


@pytest.mark.parametrize("measured, uncertainty", [(None, 0.1), (math.nan, 0.1), (0.5, None), (0.5, math.nan),
                                                   (math.inf, 0.1)])
def test_exceeds_is_inconclusive_with_nothing_to_compare(measured, uncertainty):
    c = exceeds("x", "s", measured=measured, uncertainty=uncertainty)
    assert c.verdict == INCONCLUSIVE and c.note
    assert c.measured is None or c.uncertainty is None  # the missing number is recorded as missing


def test_relation_is_part_of_the_claim_record():
    assert judge("x", "s", theory=1.0, measured=1.05, tolerance=0.1).as_dict()["relation"] == "="
    assert exceeds("x", "s", measured=1.0, uncertainty=0.1).as_dict()["relation"] == ">"
    with pytest.raises(ValueError, match="relation"):
        Claim("x", "s", 0.0, 1.0, 0.0, 0.0, AGREES, relation="<")


def test_scorecard_shows_a_one_sided_claim_as_above_its_threshold(tmp_path):
    claims = [judge("equal", "s", theory=2.0, measured=2.01, tolerance=0.1).as_dict(),
              exceeds("sign", "s", measured=0.4, uncertainty=0.1).as_dict()]
    experiments = [{"experiment": "e", "type": "t", "claims": claims, "figures": {"fig": "e/figures/fig.png"},
                    "members": 1, "diverged": 0, "attrs": {}}]
    rows = scorecard_rows(experiments)
    assert [r["relation"] for r in rows] == ["=", ">"]
    write_scorecard_csv(rows, tmp_path / "scorecard.csv")
    with open(tmp_path / "scorecard.csv", newline="") as f:
        written = list(csv.DictReader(f))
    assert tuple(written[0]) == SCORECARD_COLUMNS
    assert SCORECARD_COLUMNS.index("relation") == SCORECARD_COLUMNS.index("theory") - 1
    assert [(r["relation"], r["theory"]) for r in written] == [("=", "2.0"), (">", "0.0")]
    page = summary_html(experiments)
    assert "<td>&gt; 0</td>" in page and "<td>2</td>" in page
