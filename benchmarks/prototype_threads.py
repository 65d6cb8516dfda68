"""Scratch: cutting a batch across threads instead of splitting each operation across them.

``python -m benchmarks.prototype_threads [repeats]`` measures, on the MNIST CNN at B = 32 with
2 threads, the C - 1 difference rows of a path step (``manifoldlib._jacobian.difference_jacobian``)
computed two ways:

- **ops**: as the library does, every operation split across the 2 intra-op threads;
- **cut**: the batch cut in two, the main thread and one worker thread each computing a half
  with one intra-op thread (the thread count is set to 1 meanwhile and restored).

Each way is timed in **separate processes**, alternated ``repeats`` times, because the second
experiment shows that the cut changes the process's threading state: a one-image Jacobian on
2 threads is timed before and after the cut has run once, in one process. Writes
``benchmarks/results/thread-split.json``. Run it on a quiet machine: about 2 minutes.

Not used by the library (chapter "Computing it fast" reports the result).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "thread-split.json"


def _setup():
    import manifoldlib as ml
    from benchmarks.cases import load_mnist_model

    torch.set_num_threads(2)
    model = load_mnist_model()[0].eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = ml.load_mnist(ml.current_profile().mnist_source).test_x[:32].clone()
    return model, x


def _median_ms(fn, n: int = 15) -> float:
    fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return sorted(ts)[n // 2] * 1e3


def _cut(model, x):
    from manifoldlib import _jacobian as _jac

    a, b = x.tensor_split(2)
    out = {}

    def work():
        out["b"] = _jac.difference_jacobian(model, b)[0]

    torch.set_num_threads(1)
    t = threading.Thread(target=work)
    t.start()
    ra = _jac.difference_jacobian(model, a)[0]
    t.join()
    torch.set_num_threads(2)
    return torch.cat([ra, out["b"]])


def child(way: str) -> None:
    """One process: the per-image time of one way (``ops``, ``cut``) or the state experiment."""
    from manifoldlib import _jacobian as _jac

    model, x = _setup()
    if way == "ops":
        print(
            json.dumps(
                {"ms_per_image": _median_ms(lambda: _jac.difference_jacobian(model, x)) / 32}
            )
        )
    elif way == "cut":
        ref = _jac.difference_jacobian(model, x)[0]
        diff = float((_cut(model, x) - ref).abs().max() / ref.abs().max())
        print(json.dumps({"ms_per_image": _median_ms(lambda: _cut(model, x)) / 32, "diff": diff}))
    else:  # state: a one-image Jacobian on 2 threads, before and after one cut
        one = x[:1]
        before = _median_ms(lambda: _jac.jacobian_of_scores(model, one))
        _cut(model, x)
        after = _median_ms(lambda: _jac.jacobian_of_scores(model, one))
        print(json.dumps({"b1_jacobian_ms_before": before, "b1_jacobian_ms_after": after}))


def main(repeats: int = 4) -> None:
    """Alternate the two ways in fresh processes; then the state experiment; write the JSON."""
    from benchmarks.harness import load_average

    def run(way: str) -> dict:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.prototype_threads", "--child", way],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    t0 = time.perf_counter()
    load_start = load_average()
    ops, cut, state, diffs = [], [], [], []
    for r in range(repeats):
        ops.append(run("ops")["ms_per_image"])
        c = run("cut")
        cut.append(c["ms_per_image"])
        diffs.append(c["diff"])
        state.append(run("state"))
        print(
            f"repeat {r + 1}: ops {ops[-1]:.2f}, cut {cut[-1]:.2f} ms/image; {state[-1]}",
            flush=True,
        )
    res = {
        "what": "C - 1 difference rows, MNIST CNN, B = 32, 2 threads: operations split across "
        "threads (ops) vs the batch cut in two halves on one thread each (cut), each in a fresh "
        "process, alternated; then a one-image Jacobian on 2 threads before and after one cut",
        "machine": {"load_average_start": load_start, "load_average_end": load_average()},
        "ops_ms_per_image": ops,
        "cut_ms_per_image": cut,
        "cut_vs_ops_max_relative_difference": max(diffs),
        "state": state,
        "run_time_s": round(time.perf_counter() - t0, 1),
    }
    RESULTS.write_text(json.dumps(res, indent=1) + "\n")
    print(f"written {RESULTS} in {res['run_time_s']} s")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
