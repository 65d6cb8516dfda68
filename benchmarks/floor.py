"""The floor: the fastest a path step could possibly run on this machine.

One step of Algorithm 1 (or of a path across leaves) costs one forward pass and C input
gradients of the classifier. Two floors are measured, both on the machine and thread count
of the run:

- **peak floor**: the step's FLOPs (counted by ``torch.utils.flop_counter``) divided by the
  float32 matrix-product rate of a large square SGEMM (2048^3);
- **shape floor**: the sum of the times of the float32 matrix products that the step's
  convolutions and linear layers reduce to (im2col GEMMs), each timed alone at its own shape
  for a batch of B images and C cotangents. Small or thin products run below peak, so this
  floor is higher (slower) than the peak floor and closer to what any implementation that
  does the same GEMMs can reach; it leaves out the elementwise work (ReLU masks, max-pool
  routing, im2col/col2im copies).

The fraction of the floor a method reaches is ``floor time / measured time``.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.harness import Series, measure


def sgemm_rate(device: str, size: int = 2048, repeats: int = 5) -> dict:
    """Float32 square matmul rate (GFLOP/s), median over repeats, wall and CPU."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # warm-up
    s = Series("sgemm", "GFLOP")
    for _ in range(repeats):
        w, c, _ = measure(lambda: a @ b, device)
        s.add(w, c, 2 * size**3 / 1e9)
    return s.summary()


def path_step_flops(model: nn.Module, x: torch.Tensor) -> dict:
    """FLOPs of one forward pass plus C input-gradients for one image (FlopCounterMode)."""
    from torch.utils.flop_counter import FlopCounterMode

    xg = x[:1].detach().clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fwd:
        scores = model(xg)
    with FlopCounterMode(display=False) as bwd:
        for i in range(scores.shape[1]):
            torch.autograd.grad(scores[0, i], xg, retain_graph=i < scores.shape[1] - 1)
    return {
        "forward_mflop": fwd.get_total_flops() / 1e6,
        "input_gradients_mflop": bwd.get_total_flops() / 1e6,
        "total_mflop": (fwd.get_total_flops() + bwd.get_total_flops()) / 1e6,
    }


def step_gemms(model: nn.Module, x: torch.Tensor, batch: int) -> list[tuple[str, int, int, int]]:
    """The (M, K, N) float32 products of one path step for ``batch`` images.

    Walks the model's Conv2d and Linear layers with forward hooks to get their shapes, then
    lists the forward GEMM (``batch`` rows of patches) and the input-gradient GEMM
    (``batch * C`` rows: one cotangent per class). The first layer's input gradient is the
    gradient with respect to x, so it is needed too.
    """
    shapes: list[tuple[nn.Module, tuple, tuple]] = []
    hooks = [
        m.register_forward_hook(
            lambda m, i, o: shapes.append((m, tuple(i[0].shape), tuple(o.shape)))
        )
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            num_classes = model(x[:1]).shape[1]
    finally:
        for h in hooks:
            h.remove()
    out = []
    for m, _, o in shapes:
        if isinstance(m, nn.Conv2d):
            rows = o[2] * o[3]
            k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
            n = m.out_channels
            out.append((f"conv {m.in_channels}->{n} forward", batch * rows, k, n))
            out.append((f"conv {m.in_channels}->{n} input grad", batch * num_classes * rows, n, k))
        else:
            out.append(
                (
                    f"linear {m.in_features}->{m.out_features} forward",
                    batch,
                    m.in_features,
                    m.out_features,
                )
            )
            out.append(
                (
                    f"linear {m.in_features}->{m.out_features} input grad",
                    batch * num_classes,
                    m.out_features,
                    m.in_features,
                )
            )
    return out


def shape_floor(
    model: nn.Module, x: torch.Tensor, batch: int, device: str = "cpu", repeats: int = 5
) -> dict:
    """Time each GEMM of :func:`step_gemms` alone (median of repeats); sum per image-step."""
    rows = []
    total = 0.0
    for name, m, k, n in step_gemms(model, x, batch):
        a = torch.randn(m, k, device=device)
        b = torch.randn(k, n, device=device)
        a @ b
        ts = sorted(measure(lambda a=a, b=b: a @ b, device)[0] for _ in range(repeats))
        t = ts[len(ts) // 2]
        total += t
        rows.append(
            {"gemm": name, "m": m, "k": k, "n": n, "ms": t * 1e3, "gflops": 2 * m * k * n / t / 1e9}
        )
    return {"batch": batch, "gemms": rows, "ms_per_image_step": total * 1e3 / batch}
