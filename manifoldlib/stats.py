"""Statistics for the book's claims: binomial intervals and the AUROC with its interval.

- :func:`wilson_interval`, :func:`clopper_pearson_interval`: success rates (of paths, ...);
- :func:`auroc` (Mann-Whitney) and :func:`auroc_interval` (DeLong): how well a score
  separates two samples; :func:`delong_covariance` and :func:`delong_test`: DeLong's
  covariance of several AUROCs on the same inputs and his paired test of two (one algorithm,
  the midrank placements of Sun & Xu, 2014, behind all four); :func:`fpr_at_tpr`: the false
  positive rate at a given true positive rate ("FPR95"). Every score argument goes through one
  validator (finite, non-empty, one-dimensional or ``(K, n)`` where several scores are taken).
- :func:`binomial_test` (exact binomial) and :func:`mcnemar_test` (exact McNemar, for paired
  binary outcomes): tests for the small samples of paths the chapters run;
  :func:`holm_adjust`: Holm's step-down correction of many p-values.
- :func:`median`: the median of a sample, with the mean of the two middle values for an even
  count (``torch.median`` returns the lower one).
- :func:`claim` and :func:`guard`: the printed line of a *claim* (a hypothesis whose threshold
  was fixed before looking) and of a *regression guard* (a band around today's value that only
  detects change), marked differently so that a guard is never read as a finding. Convention: a score is larger for the second sample (e.g. out of
  distribution), and ``auroc(first, second)`` is the probability that an input of the second
  sample scores higher than one of the first (ties count one half).

Nothing here knows about models: inputs are counts or one-dimensional score arrays.

Introduced in the chapters "How far horizontal paths get between test images" (book/12) and
"Out-of-distribution detection by distance from leaf pieces" (book/13); the tests, the
median and the claim/guard lines in "The spectrum of G" (book/06).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

__all__ = [
    "CLAIM_MARK",
    "GUARD_MARK",
    "DelongResult",
    "auroc",
    "auroc_interval",
    "binomial_test",
    "claim",
    "clopper_pearson_interval",
    "delong_covariance",
    "delong_test",
    "fpr_at_tpr",
    "guard",
    "holm_adjust",
    "mcnemar_test",
    "median",
    "wilson_interval",
]

#: How a claim is marked in a printed line: ``"measured  (claim: hypothesis)"``.
CLAIM_MARK = "(claim: "
#: How a regression guard is marked: ``"measured  (guard: band)"``.
GUARD_MARK = "(guard: "


def _check_counts(successes: int, trials: int, confidence: float) -> None:
    for value, name in ((successes, "successes"), (trials, "trials")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and trials = {trials}, got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Unlike the textbook ``p +- z sqrt(p(1-p)/n)`` it never leaves ``[0, 1]`` and does not
    collapse to a point at 0 or n successes (0/200 gives about ``[0, 0.019]``).

    Args:
        successes: number of successes ``k``.
        trials: number of trials ``n >= 1``.
        confidence: coverage of the interval (two-sided).

    Returns:
        ``(low, high)``.

    Introduced in the chapter "How far horizontal paths get between test images".
    """
    _check_counts(successes, trials, confidence)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def clopper_pearson_interval(
    successes: int, trials: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Clopper-Pearson ("exact") interval for a binomial proportion.

    The bounds are the proportions ``p`` at which observing ``k`` or more (resp. ``k`` or
    fewer) successes has probability ``(1 - confidence) / 2``, through the beta quantiles
    ``Beta(k, n - k + 1)`` and ``Beta(k + 1, n - k)``. Conservative: coverage at least the
    nominal level for every ``p``.

    Args:
        successes: number of successes ``k``.
        trials: number of trials ``n >= 1``.
        confidence: coverage of the interval (two-sided).

    Returns:
        ``(low, high)``.

    Introduced in the chapter "How far horizontal paths get between test images".
    """
    from scipy.stats import beta

    _check_counts(successes, trials, confidence)
    alpha = 1 - confidence
    k, n = int(successes), int(trials)
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def _as_scores(values: object, name: str, *, matrix: bool = False) -> np.ndarray:
    """Scores as a float64 array, checked: ``(n,)``, or also ``(K, n)`` with ``matrix``.

    The one validator of scores (every metric here, the median, Holm): non-empty and finite.
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 and not (matrix and arr.ndim == 2):
        want = "(n,) or (K, n)" if matrix else "one-dimensional (one score per input)"
        raise ValueError(f"{name} must be {want}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one score")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite scores")
    return arr


def _placements(s_in: np.ndarray, s_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's placements of ``K`` scores, by midranks: the one algorithm of this module.

    Sun & Xu (2014): with ``T_z`` the midranks (ties averaged) in the pooled sample, ``T_x``
    among the out scores and ``T_y`` among the in scores, the share of in scores below out
    score ``j`` (ties 1/2) is ``(T_z,j - T_x,j) / n`` and the share of out scores above in
    score ``i`` (ties 1/2) is ``1 - (T_z,i - T_y,i) / m``. One sort per score:
    ``O(K (n + m) log(n + m))``.

    Args:
        s_in: ``(K, n)`` in-distribution scores.
        s_out: ``(K, m)`` out-of-distribution scores.

    Returns:
        ``in_place`` ``(K, n)`` and ``out_place`` ``(K, m)``; the AUROCs are
        ``out_place.mean(1)``.
    """
    from scipy.stats import rankdata

    n, m = s_in.shape[1], s_out.shape[1]
    tz = rankdata(np.concatenate([s_out, s_in], axis=1), axis=1)
    out_place = (tz[:, :m] - rankdata(s_out, axis=1)) / n
    in_place = 1.0 - (tz[:, m:] - rankdata(s_in, axis=1)) / m
    return in_place, out_place


def auroc(scores_in: object, scores_out: object) -> float:
    """Area under the ROC curve of a score that should be larger out of distribution.

    Computed as the Mann-Whitney statistic: ``P(S_out > S_in) + P(S_out = S_in) / 2`` over all
    pairs, which equals the area under the ROC curve of the test "out if score > t". 0.5 is
    chance, 1 a perfect separation, 0 a perfect separation in the wrong direction. Runs in
    ``O((n + m) log(n + m))`` by midranks (the placements of :func:`delong_covariance`)
    instead of counting the ``n m`` pairs.

    Args:
        scores_in: ``(n,)`` scores of in-distribution inputs (tensor, array or sequence).
        scores_out: ``(m,)`` scores of out-of-distribution inputs.

    Returns:
        The AUROC in ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    s_in, s_out = _as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out")
    _, out_place = _placements(s_in[None], s_out[None])
    return float(out_place.mean())


def delong_covariance(scores_in: object, scores_out: object) -> tuple[np.ndarray, np.ndarray]:
    """AUROCs of several scores on the same inputs and DeLong's covariance of the estimates.

    DeLong, DeLong & Clarke-Pearson (1988), computed with midranks as in Sun & Xu (2014)
    (see :func:`_placements`): with ``m`` OOD (positive) and ``n`` in-distribution inputs,
    ``V10_j`` the share of in scores below OOD score ``j`` and ``V01_i`` the share of OOD
    scores above in score ``i`` (ties 1/2), the AUROC is the mean of ``V10``, and
    ``Cov(AUC_r, AUC_s) = S10_rs / m + S01_rs / n`` with ``S10``, ``S01`` the sample
    covariances of the placements. ``O(K (n + m) log(n + m))``.

    Args:
        scores_in: ``(K, n)`` (or ``(n,)``) in-distribution scores, the same ``n`` inputs for
            every score, ``n >= 2``.
        scores_out: ``(K, m)`` (or ``(m,)``) OOD scores, ``m >= 2``.

    Returns:
        ``aurocs`` ``(K,)`` and their covariance ``(K, K)``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    s_in = np.atleast_2d(_as_scores(scores_in, "scores_in", matrix=True))
    s_out = np.atleast_2d(_as_scores(scores_out, "scores_out", matrix=True))
    if s_in.shape[0] != s_out.shape[0]:
        raise ValueError(f"as many scores in as out: {s_in.shape[0]} and {s_out.shape[0]}")
    n, m = s_in.shape[1], s_out.shape[1]
    if n < 2 or m < 2:
        raise ValueError("DeLong's covariance needs at least 2 scores on each side")
    v01, v10 = _placements(s_in, s_out)
    aurocs = v10.mean(axis=1)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aurocs, cov


def auroc_interval(
    scores_in: object, scores_out: object, confidence: float = 0.95
) -> tuple[float, float, float]:
    """AUROC with DeLong's normal-approximation confidence interval.

    DeLong, DeLong & Clarke-Pearson (1988): the AUROC and its variance
    ``var(V_out) / m + var(V_in) / n`` from :func:`delong_covariance` with one score.
    Deterministic (no bootstrap), so a printed claim such as "the lower bound exceeds 0.9" is
    reproducible.

    Args:
        scores_in: ``(n,)`` in-distribution scores, ``n >= 2``.
        scores_out: ``(m,)`` out-of-distribution scores, ``m >= 2``.
        confidence: two-sided coverage.

    Returns:
        ``(auroc, low, high)``, the bounds clipped to ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    s_in, s_out = _as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out")
    if s_in.size < 2 or s_out.size < 2:
        raise ValueError("auroc_interval needs at least 2 scores on each side")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    aurocs, cov = delong_covariance(s_in, s_out)
    area = float(aurocs[0])
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(max(float(cov[0, 0]), 0.0))
    return area, max(0.0, area - half), min(1.0, area + half)


@dataclass
class DelongResult:
    """DeLong's paired test of two AUROCs measured on the same inputs.

    Attributes:
        auroc_a: AUROC of the first score.
        auroc_b: AUROC of the second score.
        difference: ``auroc_a - auroc_b``.
        std_error: standard error of the difference.
        z: ``difference / std_error`` (0 when both are 0).
        p_value: two-sided p-value of "the two AUROCs are equal" (normal approximation).
    """

    auroc_a: float
    auroc_b: float
    difference: float
    std_error: float
    z: float
    p_value: float


def delong_test(in_a: object, out_a: object, in_b: object, out_b: object) -> DelongResult:
    """Paired DeLong test: do two scores of the same inputs have the same AUROC?

    ``var(AUC_a - AUC_b) = var_a + var_b - 2 cov_ab`` from :func:`delong_covariance`; the two
    scores must be computed on the same inputs, in the same order. When the standard error is
    0 (e.g. both scores separate perfectly), ``z = 0`` and ``p = 1`` if the AUROCs are equal,
    ``p = 0`` otherwise.

    Args:
        in_a: ``(n,)`` in-distribution scores of the first method.
        out_a: ``(m,)`` OOD scores of the first method.
        in_b: ``(n,)`` in-distribution scores of the second method, same inputs.
        out_b: ``(m,)`` OOD scores of the second method, same inputs.

    Returns:
        A :class:`DelongResult`.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    a_in, b_in = _as_scores(in_a, "in_a"), _as_scores(in_b, "in_b")
    a_out, b_out = _as_scores(out_a, "out_a"), _as_scores(out_b, "out_b")
    if a_in.size != b_in.size or a_out.size != b_out.size:
        raise ValueError("a paired test needs both scores on the same inputs (equal sizes)")
    aucs, cov = delong_covariance(np.stack([a_in, b_in]), np.stack([a_out, b_out]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    if se < 1e-12:
        z, p = 0.0, (1.0 if abs(diff) < 1e-12 else 0.0)
    else:
        z = diff / se
        p = 2 * (1 - NormalDist().cdf(abs(z)))
    return DelongResult(float(aucs[0]), float(aucs[1]), diff, se, z, p)


def fpr_at_tpr(scores_in: object, scores_out: object, tpr: float = 0.95) -> float:
    """False-positive rate at a given true-positive rate ("FPR95" for ``tpr = 0.95``).

    As in the OOD literature (Liang et al., 2018; Liu et al., 2020), in-distribution inputs are
    the positives: the threshold ``t`` is the smallest score with at least ``tpr`` of the
    in-distribution scores ``<= t`` (accepted), and the FPR is the share of OOD inputs that are
    accepted too, ``P(S_out <= t)``. 0 is perfect, ``1 - tpr`` is about chance.

    Args:
        scores_in: ``(n,)`` in-distribution scores.
        scores_out: ``(m,)`` out-of-distribution scores.
        tpr: the share of in-distribution inputs to accept, in ``(0, 1]``.

    Returns:
        The FPR in ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    s_in, s_out = _as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out")
    if not 0 < tpr <= 1:
        raise ValueError(f"tpr must be in (0, 1], got {tpr!r}")
    threshold = np.sort(s_in)[math.ceil(tpr * s_in.size - 1e-9) - 1]
    return float((s_out <= threshold).mean())


def claim(measured: str, hypothesis: str) -> str:
    """The printed line of a claim: a hypothesis with a threshold fixed before looking.

    Args:
        measured: what was measured, with its value (``"AUROC 0.94"``).
        hypothesis: the hypothesis and its threshold (``"> 0.85"``), stated before the run.

    Returns:
        ``"<measured>  (claim: <hypothesis>)"``; the chapter then asserts the hypothesis.

    Introduced in the chapter "The spectrum of G".
    """
    if not hypothesis.strip():
        raise ValueError("hypothesis must state the claim's threshold, got an empty string")
    return f"{measured}  {CLAIM_MARK}{hypothesis})"


def guard(measured: str, band: str) -> str:
    """The printed line of a regression guard: a band around today's value.

    A guard detects that a number changed (a library change, another CPU); it is not a
    finding, and a reader must not read it as one.

    Args:
        measured: what was measured, with its value.
        band: the band the value must stay in (``"0.50-0.54, today's value +- 0.02"``).

    Returns:
        ``"<measured>  (guard: <band>)"``.

    Introduced in the chapter "The spectrum of G".
    """
    if not band.strip():
        raise ValueError("band must state the guarded range, got an empty string")
    return f"{measured}  {GUARD_MARK}{band})"


def median(values: object) -> float:
    """The median of a sample; for an even count the mean of the two middle values.

    ``torch.median`` (and ``Tensor.median``) return the *lower* of the two middle values, which
    for the 4 to 10 paths of a chapter can differ visibly from the median as usually defined.

    Args:
        values: ``(n,)`` numbers (tensor, array or sequence), finite, ``n >= 1``.

    Returns:
        The median as a float.

    Introduced in the chapter "The spectrum of G".
    """
    arr = _as_scores(values, "values")
    ordered = np.sort(arr)
    mid = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[mid])
    return float((ordered[mid - 1] + ordered[mid]) / 2)


def binomial_test(successes: int, trials: int, p: float = 0.5) -> float:
    """Exact two-sided binomial test of ``P(success) = p``.

    The p-value sums the probabilities of all outcomes no more likely than the observed one
    (the convention of R's ``binom.test`` and ``scipy.stats.binomtest``).

    Args:
        successes: observed successes ``k``.
        trials: trials ``n >= 1``.
        p: success probability under the null hypothesis, in ``(0, 1)``.

    Returns:
        The two-sided p-value.

    Introduced in the chapter "The spectrum of G".
    """
    from scipy.stats import binomtest

    _check_counts(successes, trials, 0.95)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    return float(binomtest(int(successes), int(trials), p).pvalue)


def mcnemar_test(only_first: int, only_second: int) -> float:
    """Exact McNemar test for paired binary outcomes.

    Of ``n`` pairs, only the discordant ones carry information: ``only_first`` pairs where the
    first condition succeeds and the second fails, ``only_second`` the reverse. Under the null
    hypothesis (both conditions succeed equally often) each discordant pair falls either way
    with probability 1/2, so the p-value is the exact two-sided binomial test of
    ``only_first`` out of ``only_first + only_second`` at 1/2 (1 when there is no discordant
    pair).

    Args:
        only_first: pairs where only the first condition succeeds.
        only_second: pairs where only the second succeeds.

    Returns:
        The two-sided p-value.

    Introduced in the chapter "The spectrum of G".
    """
    for value, name in ((only_first, "only_first"), (only_second, "only_second")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if only_first + only_second == 0:
        return 1.0
    return binomial_test(int(only_first), int(only_first + only_second), 0.5)


def holm_adjust(p_values: object) -> np.ndarray:
    """Holm's step-down adjustment of p-values for many tests.

    Sort the ``m`` p-values, multiply the ``i``-th smallest (``i = 0, 1, ...``) by
    ``m - i``, make the sequence non-decreasing and cap it at 1. Rejecting where the adjusted
    value is below ``alpha`` keeps the family-wise error rate at ``alpha`` for any dependence
    between the tests, and rejects at least what Bonferroni rejects.

    Args:
        p_values: ``(m,)`` p-values in ``[0, 1]``.

    Returns:
        ``(m,)`` adjusted p-values, in the input order.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    p = _as_scores(p_values, "p_values")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("p_values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted
