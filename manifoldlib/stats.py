"""Statistics for the book's claims: binomial intervals and the AUROC with its interval.

- :func:`wilson_interval`, :func:`clopper_pearson_interval`: success rates (of paths, ...);
- :func:`auroc` (Mann-Whitney) and :func:`auroc_interval` (DeLong): how well a score
  separates two samples. Convention: a score is larger for the second sample (e.g. out of
  distribution), and ``auroc(first, second)`` is the probability that an input of the second
  sample scores higher than one of the first (ties count one half).

Nothing here knows about models: inputs are counts or one-dimensional score arrays.

Introduced in the chapters "How much of the data lies on one leaf" (book/12) and
"Out-of-distribution detection by distance from the data leaf" (book/13).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch

__all__ = ["auroc", "auroc_interval", "clopper_pearson_interval", "wilson_interval"]


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

    Introduced in the chapter "How much of the data lies on one leaf".
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

    Introduced in the chapter "How much of the data lies on one leaf".
    """
    from scipy.stats import beta

    _check_counts(successes, trials, confidence)
    alpha = 1 - confidence
    k, n = int(successes), int(trials)
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def _as_scores(values: object, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one score per input), got {arr.shape}")
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

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
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

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
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
