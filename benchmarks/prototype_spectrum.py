"""Scratch: the ImageNet-size non-zero spectrum of G straight from the score Jacobian.

``python -m benchmarks.prototype_spectrum [route] [threads]``, route ``sym`` (the
symmetric product, now in the library) or ``factor`` (the route before); prints one JSON
line with wall and CPU seconds, the peak resident memory and the top eigenvalues.

The route: S = score Jacobian (C x n, float32, one forward pass and C backward passes in
chunks); its Gram matrix S S^T (C x C) by a symmetric blocked product, only the blocks on
and above the diagonal (a syrk), each block a float32 GEMM over column chunks accumulated in
float64; then G's non-zero spectrum is that of K (S S^T) K^T with K the (C-1) x C metric
coefficients (K^T K = diag p - p p^T): no (C-1) x n factor is formed.
"""

from __future__ import annotations

import json
import sys
import time

import torch


def sym_gram(s: torch.Tensor, blocks: int = 4, cols: int = 8192) -> torch.Tensor:
    """``s @ s.T`` for ``s`` (C, n) float32, in float64, computing only the upper blocks."""
    c, n = s.shape
    out = torch.zeros(c, c, dtype=torch.float64)
    edges = [round(i * c / blocks) for i in range(blocks + 1)]
    for a in range(0, n, cols):
        chunk = s[:, a : a + cols]
        for i in range(blocks):
            ri = chunk[edges[i] : edges[i + 1]]
            # one GEMM for block row i against all rows j >= i
            prod = ri @ chunk[edges[i] :].T
            out[edges[i] : edges[i + 1], edges[i] :] += prod
    upper = out.triu()
    return upper + upper.triu(1).T


def main() -> None:
    route = sys.argv[1] if len(sys.argv) > 1 else "sym"
    torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    import manifoldlib as ml
    from benchmarks.spectrum import _rss_mb, build
    from manifoldlib import _jacobian as _jac  # scratch: private on purpose
    from manifoldlib.geometry import LowRankPSD

    model, x, _ = build("imagenet")
    base = _rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    out = {"route": route, "threads": torch.get_num_threads()}
    s, logp = ml.score_jacobian(model, x, return_logp=True)
    out["jacobian_wall_s"] = time.perf_counter() - w0
    out["jacobian_cpu_s"] = time.process_time() - c0
    if route == "factor":  # before: form the (C-1) x n factor, then its Gram matrix
        g = LowRankPSD(factor=_jac.metric_factor(s, logp), shape=tuple(x.shape[1:]))
    else:  # now (the library for C >= 64): K (S_c S_c^T) K^T by a symmetric product
        g = ml.geometry._ScoreJacobianPSD(s, logp, tuple(x.shape[1:]))
    lam = g.eigenvalues()[0]
    out["rank"] = int(g.rank()[0])
    out["trace"] = float(g.trace()[0])
    out["wall_s"] = time.perf_counter() - w0
    out["cpu_s"] = time.process_time() - c0
    out["peak_rss_mb"] = _rss_mb()
    out["base_rss_mb"] = base
    out["eigenvalues"] = [float(v) for v in lam]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
