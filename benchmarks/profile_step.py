"""Scratch: where a path step's time goes, per operation, on one thread and on two.

``python -m benchmarks.profile_step`` profiles the C - 1 difference rows of a path step
(``manifoldlib._jacobian.difference_jacobian``, the MNIST CNN, B = 32) with torch's profiler,
5 steps after 3 warm-up steps, at 1 and then 2 intra-op threads, and prints each operation's
time per step at both thread counts and the speed-up the second thread gives it. Writes
``benchmarks/results/step-profile-threads.txt``. Run it on a quiet machine: under a minute.

Not used by the library (chapter "Computing it fast" reports the result).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

RESULTS = Path(__file__).resolve().parent / "results" / "step-profile-threads.txt"
STEPS = 5


def main() -> None:
    """Profile at 1 and 2 threads; print and write the per-operation table."""
    import manifoldlib as ml
    from benchmarks.cases import load_mnist_model
    from benchmarks.harness import load_average
    from manifoldlib import _jacobian as _jac

    model = load_mnist_model()[0].eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = ml.load_mnist(ml.current_profile().mnist_source).test_x[:32].clone()
    per_op: dict[tuple[str, str], dict[int, float]] = {}
    load = load_average()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for _ in range(3):
            _jac.difference_jacobian(model, x)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for _ in range(STEPS):
                _jac.difference_jacobian(model, x)
        for e in prof.key_averages(group_by_input_shape=True):
            key = (e.key, str(e.input_shapes)[:44])
            per_op.setdefault(key, {})[threads] = e.self_cpu_time_total / STEPS / 1000
    lines = [
        "# python -m benchmarks.profile_step: C - 1 difference rows of one path step, MNIST CNN, "
        f"B = 32; torch profiler self time per step (ms) at 1 and 2 threads; load at start {load}",
        f"{'operation':34s} {'input shapes':44s} {'1 thr':>8s} {'2 thr':>8s} {'speed-up':>8s}",
    ]
    total = {1: 0.0, 2: 0.0}
    for (name, shapes), t in sorted(per_op.items(), key=lambda kv: -kv[1].get(1, 0.0)):
        for k in total:
            total[k] += t.get(k, 0.0)
        if t.get(1, 0.0) < 0.3:
            continue
        speedup = t.get(1, 0.0) / t[2] if t.get(2) else float("nan")
        lines.append(
            f"{name[:34]:34s} {shapes:44s} {t.get(1, 0):8.2f} {t.get(2, 0):8.2f} {speedup:8.2f}"
        )
    lines.append(
        f"{'all operations':79s} {total[1]:8.2f} {total[2]:8.2f} {total[1] / total[2]:8.2f}"
    )
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
