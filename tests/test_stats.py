"""Statistics helpers against slow, obvious versions; trace_mc's errors against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from oracles import ref_auroc, ref_delong, ref_fpr_at_tpr, ref_trace

import manifoldlib as ml
from manifoldlib import stats

# ------------------------------------------------------------------ AUROC, DeLong, FPR95


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.integers(0, 6, size=rng.integers(1, 30)).astype(float)  # many ties
    s_out = rng.integers(2, 9, size=rng.integers(1, 30)).astype(float)
    assert stats.auroc(s_in, s_out) == pytest.approx(ref_auroc(s_in, s_out), abs=1e-12)


def test_auroc_extremes_and_inputs():
    assert stats.auroc([0.0, 1.0], [2.0, 3.0]) == 1.0
    assert stats.auroc([2.0, 3.0], [0.0, 1.0]) == 0.0
    assert stats.auroc(torch.ones(4), torch.ones(3)) == 0.5
    with pytest.raises(ValueError, match="scores_in"):
        stats.auroc([], [1.0])
    with pytest.raises(ValueError, match="scores_out"):
        stats.auroc([1.0], [float("nan")])
    with pytest.raises(ValueError, match="one-dimensional"):
        stats.auroc(np.ones((2, 2)), [1.0])


@pytest.mark.parametrize("seed", range(4))
def test_delong_covariance_matches_the_pair_kernel_with_ties(seed):
    """Mutation: the within-sample midranks left out (placements from the pooled ranks alone)
    or ``ddof=0`` in the covariances changes the covariance and fails."""
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 25), rng.integers(2, 25)
    s_in = rng.integers(0, 6, size=(3, n)).astype(float)  # ties
    s_out = rng.integers(2, 9, size=(3, m)).astype(float)
    aucs, cov = stats.delong_covariance(s_in, s_out)
    ref_aucs, ref_cov = ref_delong(s_in, s_out)
    np.testing.assert_allclose(aucs, ref_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-12)
    for r in range(3):
        assert aucs[r] == pytest.approx(stats.auroc(s_in[r], s_out[r]), abs=1e-12)


def test_delong_known_case_by_hand():
    # in = [0, 1], out = [0.5, 2]: V10 = [1/2, 1], V01 = [1, 1/2]; AUC = 3/4;
    # var = var(V10)/2 + var(V01)/2 = 1/8 / 2 + 1/8 / 2 = 1/8.
    aucs, cov = stats.delong_covariance([0.0, 1.0], [0.5, 2.0])
    assert aucs[0] == 0.75 and cov[0, 0] == pytest.approx(0.125)
    area, low, _ = stats.auroc_interval([0.0, 1.0], [0.5, 2.0])
    half = (area - low) / 1.959963984540054
    assert half**2 == pytest.approx(0.125, rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        stats.delong_covariance([1.0], [2.0, 3.0])


def test_auroc_interval_matches_the_pair_kernel():
    rng = np.random.default_rng(7)
    s_in, s_out = rng.normal(size=40).round(1), rng.normal(0.8, size=25).round(1)
    area, lo, hi = stats.auroc_interval(s_in, s_out, confidence=0.9)
    ref_area, ref_cov = ref_delong(s_in, s_out)
    z, sd = 1.6448536269514722, math.sqrt(ref_cov[0, 0])
    assert area == pytest.approx(ref_area[0], abs=1e-12)
    assert lo == pytest.approx(max(0.0, ref_area[0] - z * sd), abs=1e-12)
    assert hi == pytest.approx(min(1.0, ref_area[0] + z * sd), abs=1e-12)
    with pytest.raises(ValueError, match="at least 2"):
        stats.auroc_interval([1.0], [1.0, 2.0])


def test_delong_test_paired():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(size=200), rng.normal(1.0, size=150)
    same = stats.delong_test(s_in, s_out, s_in, s_out)
    assert same.difference == 0 and same.p_value == 1.0
    # A monotone transform has the same ranks: same AUROC, p = 1.
    mono = stats.delong_test(s_in, s_out, np.exp(s_in), np.exp(s_out))
    assert mono.p_value == 1.0
    # A much better score: tiny p-value, the right sign; the variance formula matches the oracle.
    better = stats.delong_test(s_in, s_out + 2.0, s_in, s_out)
    assert better.difference > 0.2 and better.p_value < 1e-6
    _, cov = ref_delong(np.stack([s_in[:20], s_in[:20]]), np.stack([s_out[:15] + 2, s_out[:15]]))
    small = stats.delong_test(s_in[:20], s_out[:15] + 2, s_in[:20], s_out[:15])
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert small.std_error == pytest.approx(se, rel=1e-9)
    assert small.p_value == pytest.approx(math.erfc(abs(small.difference / se) / math.sqrt(2)))
    with pytest.raises(ValueError, match="same inputs"):
        stats.delong_test(s_in, s_out, s_in[:5], s_out)


@pytest.mark.parametrize("seed", range(5))
def test_fpr_matches_threshold_scan(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.integers(0, 30, size=rng.integers(1, 60)).astype(float)
    s_out = rng.integers(10, 40, size=rng.integers(1, 60)).astype(float)
    for tpr in (0.5, 0.9, 0.95, 1.0):
        assert stats.fpr_at_tpr(s_in, s_out, tpr) == pytest.approx(ref_fpr_at_tpr(s_in, s_out, tpr))


def test_fpr_known_cases():
    s_in = np.arange(100.0)  # the 95% threshold is 94
    assert stats.fpr_at_tpr(s_in, [94.0, 94.5, 200.0, -1.0]) == 0.5
    assert stats.fpr_at_tpr(s_in, s_in + 1000) == 0.0
    assert stats.fpr_at_tpr(s_in, s_in) == 0.95
    with pytest.raises(ValueError, match="tpr"):
        stats.fpr_at_tpr(s_in, s_in, 0.0)


def test_the_metrics_share_one_validator_naming_the_argument():
    """fpr_at_tpr, delong_test and delong_covariance check scores as auroc does."""
    good = [0.1, 0.2, 0.3]
    cases = [
        (lambda bad: stats.fpr_at_tpr(bad, good), "scores_in"),
        (lambda bad: stats.fpr_at_tpr(good, bad), "scores_out"),
        (lambda bad: stats.delong_test(good, good, good, bad), "out_b"),
        (lambda bad: stats.auroc(bad, good), "scores_in"),
        (lambda bad: stats.auroc_interval(good, bad), "scores_out"),
    ]
    for call, name in cases:
        for bad, why in (
            ([], "empty"),
            ([[0.1], [0.2]], "one-dimensional"),
            ([0.1, float("nan")], "NaN"),
        ):
            with pytest.raises(ValueError, match=f"{name} .*{why}|{name} is {why}"):
                call(bad)
    with pytest.raises(ValueError, match=r"scores_out must be \(n,\) or \(K, n\)"):
        stats.delong_covariance([good], [[[0.1, 0.2]]])
    with pytest.raises(ValueError, match="scores_in contains NaN"):
        stats.delong_covariance([0.1, float("inf")], good)


def slow_median(values):
    s = sorted(float(v) for v in values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


@pytest.mark.parametrize(
    "values", [[3.0], [1.0, 2.0, 3.0, 10.0], [5, 1, 4, 2, 3], [0.52, 0.4, 0.9, 0.6, 0.1, 0.55]]
)
def test_median_is_the_mean_of_the_two_middle_values(values):
    # Mutation: returning torch.median (the lower middle value) fails the even counts.
    assert stats.median(values) == pytest.approx(slow_median(values))
    assert stats.median(torch.tensor(values, dtype=torch.float64)) == pytest.approx(
        slow_median(values)
    )


def test_median_of_an_even_count_differs_from_torch_median():
    x = torch.tensor([1.0, 2.0, 3.0, 10.0])
    assert float(x.median()) == 2.0 and stats.median(x) == 2.5


def slow_binomial_p(k, n, p):
    probs = [math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(n + 1)]
    return min(1.0, sum(q for q in probs if q <= probs[k] * (1 + 1e-7)))


@pytest.mark.parametrize("k,n,p", [(0, 8, 0.5), (6, 8, 0.5), (62, 100, 0.5), (3, 20, 0.1)])
def test_binomial_test_sums_the_outcomes_no_more_likely(k, n, p):
    assert stats.binomial_test(k, n, p) == pytest.approx(slow_binomial_p(k, n, p), rel=1e-9)


def test_mcnemar_counts_only_discordant_pairs():
    # 6 pairs only the first succeeds, 0 the reverse: p = 2 / 2^6 by hand.
    assert stats.mcnemar_test(6, 0) == pytest.approx(2 / 64)
    assert stats.mcnemar_test(3, 3) == pytest.approx(1.0)
    assert stats.mcnemar_test(0, 0) == 1.0
    with pytest.raises(ValueError, match="only_first"):
        stats.mcnemar_test(-1, 2)


def slow_holm(p):
    m = len(p)
    out = []
    for pi in p:  # adjusted p_i = max over j with p_j <= p_i of min(1, (m - rank_j) p_j)
        ranked = sorted(p)
        vals = [min(1.0, (m - r) * ranked[r]) for r in range(m) if ranked[r] <= pi]
        out.append(max(vals))
    return out


def test_holm_matches_the_step_down_definition():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=12) ** 2
        np.testing.assert_allclose(stats.holm_adjust(p), slow_holm(list(p)), rtol=1e-12)
    # By hand: p = (0.01, 0.04, 0.03) -> (0.03, 0.06, 0.06).
    np.testing.assert_allclose(stats.holm_adjust([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    with pytest.raises(ValueError, match="p_values"):
        stats.holm_adjust([0.5, 1.5])


def test_claim_and_guard_lines_are_marked_differently():
    c = stats.claim("AUROC 0.94", "> 0.85")
    g = stats.guard("median 0.52", "0.50-0.54, today's value +- 0.02")
    assert c == "AUROC 0.94  (claim: > 0.85)" and stats.CLAIM_MARK in c
    assert (
        g == "median 0.52  (guard: 0.50-0.54, today's value +- 0.02)" and stats.CLAIM_MARK not in g
    )
    with pytest.raises(ValueError, match="hypothesis"):
        stats.claim("x", " ")
    with pytest.raises(ValueError, match="band"):
        stats.guard("x", "")


# --- trace_mc: the clustered standard error against a brute-force simulation -------------


@pytest.fixture
def pool(mlp):
    """50 inputs at scales 0.2 to 3: exact traces that differ a lot between inputs."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(50, 6, dtype=torch.float64, generator=gen)
    return x * torch.linspace(0.2, 3.0, 50, dtype=torch.float64).unsqueeze(1)


def test_mean_stderr_is_the_clustered_error_of_sampled_images(mlp, pool):
    """Images drawn from a pool, 4 draws each: the spread of the estimate over 300 repeats.

    Its variance is sigma_b^2 / B + sigma_w^2 / (B S); mean_stderr^2 must estimate it (ratio
    of root-mean-squares within 18%). Mutation: the old formula, the standard deviation of
    all B * S draws over sqrt(B * S), divides sigma_b^2 by S too and gives a ratio of 0.68 (measured).
    """
    exact = torch.stack([ref_trace(mlp, xi.unsqueeze(0))[0] for xi in pool])
    assert exact.std() / exact.mean() > 0.5  # the between-image part matters here
    gen = torch.Generator().manual_seed(11)
    means, ses = [], []
    for _ in range(300):
        idx = torch.randint(0, len(pool), (10,), generator=gen)
        est = ml.trace_mc(mlp, pool[idx], samples=4, generator=gen)
        means.append(est.mean)
        ses.append(est.mean_stderr)
    spread = float(np.std(means, ddof=1))
    predicted = float(np.sqrt(np.mean(np.square(ses))))
    assert abs(np.mean(means) - float(exact.mean())) < 4 * spread / math.sqrt(300)
    assert 0.82 < predicted / spread < 1.18, (predicted, spread)


def test_batch_stderr_is_the_error_for_fixed_images(mlp, pool):
    """The same 10 images every repeat, only the draws random: batch_stderr, not mean_stderr.

    Mutation: batch_stderr = mean_stderr (the clustered error) overstates it (ratio 2.9 measured).
    """
    x = pool[::5]
    exact = float(ref_trace(mlp, x).mean())
    gen = torch.Generator().manual_seed(12)
    ests = [ml.trace_mc(mlp, x, samples=4, generator=gen) for _ in range(300)]
    means = np.array([e.mean for e in ests])
    spread = float(means.std(ddof=1))
    predicted = float(np.sqrt(np.mean([e.batch_stderr**2 for e in ests])))
    assert abs(means.mean() - exact) < 4 * spread / math.sqrt(300)
    assert 0.82 < predicted / spread < 1.18, (predicted, spread)
    assert np.mean([e.mean_stderr for e in ests]) > 1.5 * predicted


def test_single_draw_and_single_image_edge_cases(mlp, pool):
    one = ml.trace_mc(mlp, pool[:8], samples=1, generator=torch.Generator().manual_seed(0))
    assert math.isnan(one.batch_stderr)
    assert one.mean_stderr == pytest.approx(float(one.values.std() / math.sqrt(8)))
    single = ml.trace_mc(mlp, pool[:1], samples=6, generator=torch.Generator().manual_seed(0))
    assert single.mean_stderr == pytest.approx(float(single.stderr[0]))
