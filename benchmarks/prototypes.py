"""Scratch: candidate score-Jacobian kernels for one path step, timed side by side.

``python -m benchmarks.prototypes [B] [repeats]`` times, interleaved repeat by repeat, the
ways to get the rows needed by a path step (the C x n score Jacobian, or only the C - 1
differences ``H^T S`` that D_x, G's factor and the trace all need) for a batch of B MNIST
images, and checks each against the loop. Not part of the library; the winner moves into
``manifoldlib._jacobian``.
"""

from __future__ import annotations

import math
import sys
import time

import torch
import torch.nn.functional as F

from benchmarks.cases import load_mnist_model
from benchmarks.harness import load_average


def helmert(c: int, dtype=torch.float32) -> torch.Tensor:
    h = torch.zeros(c, c - 1, dtype=dtype)
    for k in range(1, c):
        h[:k, k - 1] = 1.0
        h[k, k - 1] = -float(k)
        h[:, k - 1] /= math.sqrt(k * (k + 1))
    return h


def loop_c(model, x):
    """Today's B > 1 path: C backward passes over the batch (retain_graph)."""
    xg = x.detach().requires_grad_(True)
    s = model(xg)
    c = s.shape[1]
    jac = torch.empty((x.shape[0], c, *x.shape[1:]))
    for i in range(c):
        jac[:, i] = torch.autograd.grad(s[:, i].sum(), xg, retain_graph=i < c - 1)[0]
    return jac, F.log_softmax(s.detach(), 1)


def batched_c(model, x, cot=None):
    """All cotangents in one vectorised backward (is_grads_batched): GEMM rows = k * B."""
    xg = x.detach().requires_grad_(True)
    s = model(xg)
    c = s.shape[1]
    if cot is None:
        cot = torch.eye(c)
    k = cot.shape[0]
    g = cot.unsqueeze(1).expand(k, x.shape[0], c)
    (j,) = torch.autograd.grad(s, xg, g, is_grads_batched=True)
    return j.transpose(0, 1), F.log_softmax(s.detach(), 1)


def batched_diff(model, x):
    """C - 1 Helmert cotangents: the rows H^T S directly, one vectorised backward."""
    c = 10
    return batched_c(model, x, helmert(c).T.contiguous())


def loop_diff(model, x):
    """C - 1 Helmert cotangents, one backward pass each."""
    xg = x.detach().requires_grad_(True)
    s = model(xg)
    h = helmert(s.shape[1])
    k = h.shape[1]
    jac = torch.empty((x.shape[0], k, *x.shape[1:]))
    for i in range(k):
        jac[:, i] = torch.autograd.grad(s, xg, h[:, i].expand_as(s), retain_graph=i < k - 1)[0]
    return jac, F.log_softmax(s.detach(), 1)


def replicated(model, x):
    """x repeated C - 1 times: one forward and one backward of B (C - 1) images."""
    c = 10
    h = helmert(c)
    k = c - 1
    xg = x.detach().unsqueeze(0).expand(k, *x.shape).reshape(-1, *x.shape[1:]).requires_grad_(True)
    s = model(xg)
    g = h.T.unsqueeze(1).expand(k, x.shape[0], c).reshape(-1, c)
    (j,) = torch.autograd.grad(s, xg, g)
    return j.view(k, *x.shape).transpose(0, 1), F.log_softmax(s[: x.shape[0]].detach(), 1)


def main() -> None:
    import manifoldlib as ml

    b = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
    P = ml.current_profile()
    model = load_mnist_model()[0]
    for p in model.parameters():
        p.requires_grad_(False)
    data = ml.load_mnist(P.mnist_source)
    x = data.test_x[:b].clone()
    model_cl = load_mnist_model()[0].to(memory_format=torch.channels_last)
    for p in model_cl.parameters():
        p.requires_grad_(False)
    cands = {
        "loop C (today)": lambda: loop_c(model, x),
        "loop C-1 diffs": lambda: loop_diff(model, x),
        "batched C": lambda: batched_c(model, x),
        "batched C-1 diffs": lambda: batched_diff(model, x),
        "replicated C-1": lambda: replicated(model, x),
        "batched C-1, channels-last": lambda: batched_diff(model_cl, x),
    }
    # Correctness: H^T S from each against the loop.
    ref = torch.einsum("ck,bc...->bk...", helmert(10), loop_c(model, x)[0])
    for name, fn in cands.items():
        j = fn()[0]
        if j.shape[1] == 10:
            j = torch.einsum("ck,bc...->bk...", helmert(10), j)
        err = float((j - ref).abs().max() / ref.abs().max())
        print(f"{name:28s} rel. error vs loop {err:.1e}", flush=True)
    times = {k: [] for k in cands}
    print(f"B = {b}, threads {torch.get_num_threads()}, load {load_average()}", flush=True)
    for _ in range(reps):
        for name, fn in cands.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.process_time() - c0, time.perf_counter() - t0))
    base = sorted(times["loop C (today)"])[reps // 2][0]
    print("CPU time (process_time: with one thread the quiet-machine wall time), median; wall")
    for name, ts in times.items():
        t, w = sorted(ts)[reps // 2]
        print(
            f"{name:28s} {t * 1e3 / b:7.3f} CPU-ms/image  {base / t:5.2f}x   wall {w * 1e3 / b:8.2f} ms"
        )
    print(f"load {load_average()}")


if __name__ == "__main__":
    main()
