"""One pair-chooser for the studies: seeded (source, target) pairs of test images.

Every study that walks from one test image towards another draws its pairs here. Five
rules remain, because the committed results files were made with them and each file's
pairs must stay what they are (``tests/test_experiment_pairs.py`` re-draws them):

- ``"other_class"`` (``leaf_geodesics``, seed 16; ``orbits``, seed 23): ``n`` distinct sources
  by a seeded permutation, each target drawn uniformly among the images of another class.
- ``"unsure_source"`` (``algorithm1_study`` and ``paper_like``, seed 13): the paper's code: a
  source drawn uniformly among the images on which no class has probability above
  ``max_confidence``, the target uniformly among all images, redrawn while it has the
  source's class or the source was already drawn.
- ``"shifted"`` (``ch12_step_size``, seed 12: chapter 12's first code cell): sources drawn
  uniformly with replacement, the target a uniform non-zero shift away (any class).
- ``"class_pairs"`` (``ch11_paths``, seed 0: chapter 11): for each given pair of classes
  ``(a, b)``, the first eligible image of class ``a`` and the first of class ``b`` in the
  order of a seeded permutation (eligible: the paper's rule, correctly classified with no
  class above ``max_confidence``).
- ``"in_classes"`` (``ch10_noisy_paths`` and ``ch10_paths``, seed 6: chapter 10): for each given
  pair of classes ``(a, b)`` a source drawn uniformly among the images of class ``a``; then,
  for each pair, a target drawn uniformly among the images of class ``b``.

Run nothing here; import :func:`choose_pairs`.
"""

from __future__ import annotations

import torch

RULES = ("other_class", "unsure_source", "shifted", "class_pairs", "in_classes")


def choose_pairs(
    labels: torch.Tensor,
    n: int,
    seed: int,
    *,
    rule: str = "other_class",
    confidence: torch.Tensor | None = None,
    max_confidence: float = 0.99,
    class_pairs: tuple[tuple[int, int], ...] | None = None,
    eligible: torch.Tensor | None = None,
    return_generator: bool = False,
) -> tuple[torch.Tensor, ...]:
    """``n`` seeded (source, target) index pairs of the images with these ``labels``.

    Args:
        labels: ``(N,)`` class labels of the candidate images.
        n: number of pairs (``"class_pairs"``, ``"in_classes"``: ``len(class_pairs)``).
        seed: seed of the one ``torch.Generator`` that draws them.
        rule: one of :data:`RULES` (see the module docstring).
        confidence: ``(N,)`` the model's top probability on each image (``"unsure_source"``).
        max_confidence: largest top probability of a source (``"unsure_source"``).
        class_pairs: ``(a, b)`` class pairs, one per pair (``"class_pairs"``, ``"in_classes"``).
        eligible: ``(N,)`` bool, the images a pair may use (``"class_pairs"``).
        return_generator: also return the generator, in the state after the draws (a
            chapter that draws more from the same generator continues its sequence).

    Returns:
        ``(n,)`` source indices and ``(n,)`` target indices (int64), and the generator when
        ``return_generator``.

    Raises:
        ValueError: unknown ``rule``, ``confidence`` missing for ``"unsure_source"``,
            ``class_pairs`` or ``eligible`` missing or of the wrong size for ``"class_pairs"``,
            or no eligible image of a class asked for.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    g = torch.Generator().manual_seed(seed)
    if rule == "in_classes":
        if class_pairs is None or len(class_pairs) != n:
            raise ValueError(
                f'rule="in_classes" needs class_pairs ({n} pairs), got {class_pairs!r}'
            )

        def draw(classes: list[int]) -> torch.Tensor:
            idx = []
            for c in classes:
                members = (labels == c).nonzero().flatten()
                if len(members) == 0:
                    raise ValueError(f"no image of class {c}")
                idx.append(int(members[torch.randint(len(members), (1,), generator=g)]))
            return torch.tensor(idx)

        src = draw([a for a, _ in class_pairs])
        tgt = draw([b for _, b in class_pairs])
        return (src, tgt, g) if return_generator else (src, tgt)
    if rule == "class_pairs":
        if class_pairs is None or eligible is None or len(class_pairs) != n:
            raise ValueError(
                f'rule="class_pairs" needs class_pairs ({n} pairs) and eligible (N,), got '
                f"{class_pairs!r} and {None if eligible is None else tuple(eligible.shape)}"
            )
        if eligible.shape != labels.shape:
            raise ValueError(f"eligible must have shape {tuple(labels.shape)}")
        order = torch.randperm(len(labels), generator=g)
        cand = order[eligible[order]]
        first = {}
        for c in {c for pair in class_pairs for c in pair}:
            hits = cand[labels[cand] == c]
            if len(hits) == 0:
                raise ValueError(f"no eligible image of class {c}")
            first[c] = int(hits[0])
        src = torch.tensor([first[a] for a, _ in class_pairs])
        tgt = torch.tensor([first[b] for _, b in class_pairs])
        return (src, tgt, g) if return_generator else (src, tgt)
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
