"""Statistics for the book's claims: binomial intervals and the AUROC with its interval.

- :func:`wilson_interval`, :func:`clopper_pearson_interval`: success rates (of paths, ...);
- :func:`auroc` (Mann-Whitney) and :func:`auroc_interval` (DeLong): how well a score
  separates two samples.
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
from statistics import NormalDist

import numpy as np
import torch

__all__ = [
    "CLAIM_MARK",
    "GUARD_MARK",
    "auroc",
    "auroc_interval",
    "binomial_test",
    "claim",
    "clopper_pearson_interval",
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

    The one validator of scores (``stats`` and ``ood``'s metrics): non-empty and finite.
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
    """For each out score the share of in scores below it (ties 1/2), and vice versa.

    Both by binary search in the sorted other sample: ``O((n + m) log(n + m))``.
    """
    sorted_in, sorted_out = np.sort(s_in), np.sort(s_out)
    below_in = np.searchsorted(sorted_in, s_out, side="left")
    not_above_in = np.searchsorted(sorted_in, s_out, side="right")
    out_place = (below_in + not_above_in) / 2 / s_in.size  # P(in < out_j) + P(tie)/2
    above_out = s_out.size - np.searchsorted(sorted_out, s_in, side="right")
    not_below_out = s_out.size - np.searchsorted(sorted_out, s_in, side="left")
    in_place = (above_out + not_below_out) / 2 / s_out.size  # P(out > in_i) + P(tie)/2
    return in_place, out_place


def auroc(scores_in: object, scores_out: object) -> float:
    """Area under the ROC curve of a score that should be larger out of distribution.

    Computed as the Mann-Whitney statistic: ``P(S_out > S_in) + P(S_out = S_in) / 2`` over all
    pairs, which equals the area under the ROC curve of the test "out if score > t". 0.5 is
    chance, 1 a perfect separation, 0 a perfect separation in the wrong direction. Runs in
    ``O((n + m) log(n + m))`` by binary search instead of counting the ``n m`` pairs.

    Args:
        scores_in: ``(n,)`` scores of in-distribution inputs (tensor, array or sequence).
        scores_out: ``(m,)`` scores of out-of-distribution inputs.

    Returns:
        The AUROC in ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    s_in, s_out = _as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out")
    _, out_place = _placements(s_in, s_out)
    return float(out_place.mean())


def auroc_interval(
    scores_in: object, scores_out: object, confidence: float = 0.95
) -> tuple[float, float, float]:
    """AUROC with DeLong's normal-approximation confidence interval.

    DeLong, DeLong & Clarke-Pearson (1988): with the placements ``V_out_j`` (the share of in
    scores below out score ``j``) and ``V_in_i`` (the share of out scores above in score
    ``i``), the AUROC is their mean and its variance is
    ``var(V_out) / m + var(V_in) / n``. Deterministic (no bootstrap), so a printed claim such
    as "the lower bound exceeds 0.9" is reproducible.

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
    in_place, out_place = _placements(s_in, s_out)
    area = float(out_place.mean())
    var = out_place.var(ddof=1) / s_out.size + in_place.var(ddof=1) / s_in.size
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(max(var, 0.0))
    return area, max(0.0, area - half), min(1.0, area + half)


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
