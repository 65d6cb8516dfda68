"""One pair-chooser for the studies: seeded (source, target) pairs of test images.

Every study that walks from one test image towards another draws its pairs here. Three
rules remain, because three committed results files were made with them and each file's
pairs must stay what they are (``tests/test_experiment_pairs.py`` re-draws them):

- ``"other_class"`` (``leaf_geodesics``, seed 16; ``orbits``, seed 23): ``n`` distinct sources
  by a seeded permutation, each target drawn uniformly among the images of another class.
- ``"unsure_source"`` (``algorithm1_study`` and ``paper_like``, seed 13): the paper's code: a
  source drawn uniformly among the images on which no class has probability above
  ``max_confidence``, the target uniformly among all images, redrawn while it has the
  source's class or the source was already drawn.
- ``"shifted"`` (``ch12_step_size``, seed 12: chapter 12's first code cell): sources drawn
  uniformly with replacement, the target a uniform non-zero shift away (any class).

Run nothing here; import :func:`choose_pairs`.
"""

from __future__ import annotations

import torch

RULES = ("other_class", "unsure_source", "shifted")


def choose_pairs(
    labels: torch.Tensor,
    n: int,
    seed: int,
    *,
    rule: str = "other_class",
    confidence: torch.Tensor | None = None,
    max_confidence: float = 0.99,
    return_generator: bool = False,
) -> tuple[torch.Tensor, ...]:
    """``n`` seeded (source, target) index pairs of the images with these ``labels``.

    Args:
        labels: ``(N,)`` class labels of the candidate images.
        n: number of pairs.
        seed: seed of the one ``torch.Generator`` that draws them.
        rule: one of :data:`RULES` (see the module docstring).
        confidence: ``(N,)`` the model's top probability on each image (``"unsure_source"``).
        max_confidence: largest top probability of a source (``"unsure_source"``).
        return_generator: also return the generator, in the state after the draws (a
            chapter that draws more from the same generator continues its sequence).

    Returns:
        ``(n,)`` source indices and ``(n,)`` target indices (int64), and the generator when
        ``return_generator``.

    Raises:
        ValueError: unknown ``rule``, or ``confidence`` missing for ``"unsure_source"``.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    if rule == "shifted":
        src = torch.randint(len(labels), (n,), generator=g)
        shift = torch.randint(1, len(labels), (n,), generator=g)
        tgt = (src + shift) % len(labels)
        return (src, tgt, g) if return_generator else (src, tgt)
    if rule == "other_class":
        src = torch.randperm(len(labels), generator=g)[:n]
        tgt = []
        for i in src.tolist():
            cand = (labels != labels[i]).nonzero().flatten()
            tgt.append(int(cand[torch.randint(len(cand), (1,), generator=g)]))
        return (src, torch.tensor(tgt), g) if return_generator else (src, torch.tensor(tgt))
    if confidence is None:
        raise ValueError('rule="unsure_source" needs confidence (N,)')
    ok = (confidence <= max_confidence).nonzero().flatten()
    src_l: list[int] = []
    tgt_l: list[int] = []
    while len(src_l) < n:
        s = int(ok[torch.randint(len(ok), (1,), generator=g)])
        t = int(torch.randint(len(labels), (1,), generator=g))
        if int(labels[s]) == int(labels[t]) or s in src_l:
            continue
        src_l.append(s)
        tgt_l.append(t)
    out = torch.tensor(src_l), torch.tensor(tgt_l)
    return (*out, g) if return_generator else out
