"""Scratch: the ImageNet-size non-zero spectrum of G straight from the score Jacobian.

``python -m benchmarks.prototype_spectrum [route] [threads]``, route ``sym`` (this
prototype) or ``lib`` (``local_data_lowrank(...).eigenvalues()`` today); prints one JSON
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
    from manifoldlib.geometry import _metric_coefficients  # scratch: private on purpose

    model, x, _ = build("imagenet")
    base = _rss_mb()
    w0, c0 = time.perf_counter(), time.process_time()
    out = {"route": route}
    if route == "lib":
        lam = ml.local_data_lowrank(model, x).eigenvalues()[0]
    else:
        s, logp = ml.score_jacobian(model, x, return_logp=True)
        out["jacobian_wall_s"] = time.perf_counter() - w0
        out["jacobian_cpu_s"] = time.process_time() - c0
        gram = sym_gram(s.flatten(2)[0])
        out["gram_wall_s"] = time.perf_counter() - w0 - out["jacobian_wall_s"]
        k = _metric_coefficients(logp)[0]  # (C-1, C) float64
        lam = torch.linalg.eigvalsh(k @ gram @ k.T).flip(0).clamp_min(0)
    out["wall_s"] = time.perf_counter() - w0
    out["cpu_s"] = time.process_time() - c0
    out["peak_rss_mb"] = _rss_mb()
    out["base_rss_mb"] = base
    out["eigenvalues"] = [float(v) for v in lam]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
