"""One spectrum case, run in a fresh process so that its peak memory can be measured.

``python -m benchmarks.spectrum CASE ROUTE [THREADS]`` prints one JSON line.

CASE is ``mnist`` (1x28x28, C = 10, the paper's CNN), ``cifar10`` (3x32x32, C = 10, VGG-11 at
1/8 width) or ``imagenet`` (3x224x224, C = 1000, a small random ReLU net). ROUTE is
``lowrank`` (manifoldlib: the score Jacobian, then the (C-1) x (C-1) Gram matrix) or
``dense`` (the reference way: per-sample ``torch.autograd.functional.jacobian``, the dense
n x n matrix G, then ``eigvalsh``).

Peak memory is the process's peak resident set size (``VmHWM``, see ``_rss_mb``), which,
unlike ``tracemalloc``, sees torch's allocator; ``base_rss_mb`` is the peak after imports and model
construction, before the case runs. The dense route at ImageNet size runs under an address
space limit, so that its n x n allocation fails cleanly instead of pressing on a shared
machine's memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time

CASES = ("mnist", "cifar10", "imagenet")
ROUTES = ("lowrank", "dense")


def _rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    ``VmHWM`` (the high-water mark of this process's own memory map) rather than
    ``ru_maxrss``: Linux carries ``ru_maxrss`` over from the parent through fork and exec,
    so a child of a large process would report the parent's peak.
    """
    try:
        for line in open("/proc/self/status").read().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def build(case: str):
    """The model (eval mode, seeded) and one input for a case."""
    import torch
    from torch import nn

    import manifoldlib as ml

    torch.manual_seed(0)
    if case == "mnist":
        from benchmarks.cases import load_mnist_model

        model, weights = load_mnist_model("auto")
        data = ml.load_mnist(ml.current_profile().mnist_source)
        return model, data.test_x[:1].clone(), f"MnistCNN ({weights})"
    if case == "cifar10":
        return ml.VGG(width=0.125).eval(), torch.randn(1, 3, 32, 32), "VGG-11 width 1/8 (random)"
    if case == "imagenet":
        net = nn.Sequential(
            nn.Conv2d(3, 16, 7, stride=4, padding=3),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 1000),
        ).eval()
        desc = "conv(3-16,7,s4) ReLU conv(16-32,3,s2) ReLU maxpool4 fc(1568-1000) (random)"
        return net, torch.randn(1, 3, 224, 224), desc
    raise ValueError(f"case must be one of {CASES}, got {case!r}")


def run(case: str, route: str) -> dict:
    """Compute the non-zero spectrum of G for one input; return timings and results."""
    import torch
    import torch.nn.functional as F

    import manifoldlib as ml
    from manifoldlib.reference import reference_jacobian

    model, x, desc = build(case)
    n = x[0].numel()
    out: dict = {"case": case, "route": route, "model": desc, "n": n}
    with torch.no_grad():
        out["C"] = int(model(x).shape[1])
    if route == "dense" and case == "imagenet":
        # The n x n matrix needs n^2 * 4 bytes = 84 GiB: cap the address space so the attempt
        # fails cleanly (the library refuses earlier, with a message naming the low-rank route).
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = 16 * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        out["address_space_limit_gb"] = cap / 2**30
    out["base_rss_mb"] = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        if route == "lowrank":
            g = ml.local_data_lowrank(model, x)
            lam = g.eigenvalues()[0]
            out["rank"] = int(g.rank()[0])
            out["trace"] = float(g.trace()[0])
        else:
            try:
                ml.local_data_matrix(model, x)
                out["library_dense"] = "computed"
            except ValueError as err:
                out["library_dense"] = f"refused: {err}"
            j = reference_jacobian(model, x[0])  # (C, n), one backward pass per class
            with torch.no_grad():
                p = F.softmax(model(x), dim=1)[0]
            G = (j.T * p) @ j  # dense n x n: sum_i p_i grad log p_i grad log p_i^T
            lam = torch.linalg.eigvalsh(G).flip(0)[: out["C"] - 1].clamp_min(0)
            out["trace"] = float(torch.diagonal(G).sum())
        out["ok"] = True
        out["eigenvalues"] = [float(v) for v in lam]
    except (RuntimeError, MemoryError) as err:
        out["ok"] = False
        out["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    out["wall_s"] = time.perf_counter() - wall
    out["cpu_s"] = time.process_time() - cpu
    out["peak_rss_mb"] = _rss_mb()
    out["peak_above_base_mb"] = out["peak_rss_mb"] - out["base_rss_mb"]
    return out


def main() -> None:
    """Entry point: ``python -m benchmarks.spectrum CASE ROUTE [THREADS]``."""
    case, route = sys.argv[1], sys.argv[2]
    if route not in ROUTES:
        raise SystemExit(f"route must be one of {ROUTES}, got {route!r}")
    import torch

    if len(sys.argv) > 3:
        torch.set_num_threads(int(sys.argv[3]))
    print(json.dumps(run(case, route)))


if __name__ == "__main__":
    main()
