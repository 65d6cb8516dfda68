"""Bit-identity of the path routines across a refactor: record, then compare with torch.equal.

Runs every public path function (``horizontal_path``, ``across_leaves_path``,
``leaf_projection``, ``algorithm1_paths`` with every projection, step rule, clamp mask, stall
and budget stop, ``leaf_geodesic``, ``off_leaf_fraction``) on fixed seeded inputs: a small
ReLU MLP and the book's MNIST CNN (the shipped checkpoint), a few steps each, in float32 and
float64, one torch thread, and saves every result field (and the ``on_finish`` /
``on_record`` call-backs) with ``torch.save``. ``compare`` reports every field that is not
bit-identical (``torch.equal``, same dtype, shape and device; NaN equal to NaN), mapping the
renamed fields ``steps -> steps_taken`` and ``reasons -> stop_reasons``.

Usage (from the repository root; run ``record`` on the old and the new code)::

    PYTHONPATH=$PWD python benchmarks/path_bits.py record /tmp/before.pt
    PYTHONPATH=$PWD python benchmarks/path_bits.py compare /tmp/before.pt /tmp/after.pt
"""

import dataclasses
import math
import sys
import time

import torch

import manifoldlib as ml
from manifoldlib.algorithm1 import algorithm1_paths


def asdict(r):
    d = {}
    for f in dataclasses.fields(r):
        d[f.name] = getattr(r, f.name)
    return d


def models():
    torch.manual_seed(0)
    mlp = ml.MLP(20, (16, 16), 5, "relu").eval()
    g = torch.Generator().manual_seed(1)
    xs = torch.rand(6, 20, generator=g)
    xt = torch.rand(6, 20, generator=g)
    yield "mlp32", mlp, xs, xt, (0.0, 1.0)
    yield "mlp64", mlp.double(), xs.double(), xt.double(), (0.0, 1.0)
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    cnn = ml.cached_train(P.mnist_config(), epoch=P.mnist_epoch, progress=False).model.eval()
    xs, xt = data.test_x[:4], data.test_x[10:14]
    yield "cnn32", cnn, xs, xt, data.pixel_range
    lo, hi = data.pixel_range
    yield "cnn64", cnn.double(), xs.double(), xt.double(), (lo, hi)


class _Log(list):
    """A list that on_finish / on_record call-backs append to."""

    def append_row(self, i, row):
        self.append((i, row))

    def append_record(self, steps, dist):
        self.append((steps.clone(), dist.clone()))


def record(out: str) -> None:
    torch.set_num_threads(1)
    rec = {}
    for name, model, xs, xt, clamp in models():
        b = xs.shape[0]
        g = torch.Generator().manual_seed(2)
        direction = torch.randn(xs.shape, generator=g).to(xs.dtype)
        dist0 = float((xt - xs).flatten(1).norm(dim=1).median())
        thr = dist0 * 0.8
        rec[f"{name}/hp"] = asdict(
            ml.horizontal_path(
                model, xs, xt, step_size=0.1, max_steps=25, threshold=thr, record_every=3
            )
        )
        rec[f"{name}/hp_clamp"] = asdict(
            ml.horizontal_path(
                model, xs, xt, step_size=0.3, max_steps=15, threshold=thr, clamp=clamp
            )
        )
        rec[f"{name}/hp_reach0"] = asdict(
            ml.horizontal_path(model, xs, xt, step_size=0.5, max_steps=10, threshold=dist0 * 1.01)
        )
        rec[f"{name}/hp_rtol"] = asdict(
            ml.horizontal_path(model, xs, xt, step_size=0.2, max_steps=8, threshold=1e-3, rtol=1e-3)
        )
        # vanishing: target on the same point + move in ker direction -> v vanishes quickly
        rec[f"{name}/al"] = asdict(
            ml.across_leaves_path(model, xs, direction, step_size=0.05, steps=12, record_every=5)
        )
        rec[f"{name}/al_clamp"] = asdict(
            ml.across_leaves_path(model, xs, direction, step_size=0.05, steps=7, clamp=clamp)
        )
        rec[f"{name}/lp"] = asdict(ml.leaf_projection(model, xs, xt, step_size=0.5, max_steps=12))
        rec[f"{name}/lp_clamp"] = asdict(
            ml.leaf_projection(
                model, xs, xt, step_size=0.5, max_steps=12, clamp=clamp, threshold=dist0
            )
        )
        projs = ["exact", "gels", "gelsy", "dropcol", "rowspace"]
        for p in projs:
            rec[f"{name}/a1_{p}"] = asdict(
                algorithm1_paths(
                    model,
                    xs,
                    xt,
                    projection=p,
                    clamp=clamp,
                    step_size=0.2,
                    max_steps=20,
                    threshold=thr,
                    record_every=4,
                )
            )
        rows = _Log()
        recs = _Log()
        rec[f"{name}/a1_mixed"] = asdict(
            algorithm1_paths(
                model,
                xs.repeat(2, *[1] * (xs.dim() - 1)),
                xt.repeat(2, *[1] * (xs.dim() - 1)),
                projection=(projs * 4)[: 2 * b],
                rule=(["fixed", "shortened"] * b),
                clamp_on=[True, False, False] * (2 * b // 3) + [True] * (2 * b % 3),
                clamp=clamp,
                step_size=0.3,
                max_steps=30,
                threshold=thr,
                stall_window=3,
                stall_rel=0.05,
                record_every=7,
                on_finish=rows.append_row,
                on_record=recs.append_record,
            )
        )
        rec[f"{name}/a1_mixed_rows"] = list(rows)
        rec[f"{name}/a1_mixed_recs"] = list(recs)
        rec[f"{name}/a1_noclamp_short"] = asdict(
            algorithm1_paths(
                model,
                xs,
                xt,
                rule="shortened",
                clamp_on=False,
                step_size=0.5,
                max_steps=40,
                threshold=dist0 * 0.3,
                record_every=10,
                rtol=1e-4,
            )
        )
        rows2 = _Log()
        rec[f"{name}/a1_reach0"] = asdict(
            algorithm1_paths(
                model,
                xs,
                xt,
                clamp=clamp,
                threshold=dist0 * 1.01,
                max_steps=5,
                on_finish=rows2.append_row,
            )
        )
        rec[f"{name}/a1_reach0_rows"] = list(rows2)
        rows3 = _Log()
        rec[f"{name}/a1_budget"] = asdict(
            algorithm1_paths(
                model,
                xs,
                xt,
                clamp=clamp,
                max_steps=5,
                deadline=time.time() - 1,
                on_finish=rows3.append_row,
            )
        )
        rec[f"{name}/a1_budget_rows"] = list(rows3)
        q = torch.softmax(torch.randn(b, model(xs).shape[1], generator=g, dtype=torch.float64), 1)
        rec[f"{name}/geo"] = asdict(ml.riemannian.leaf_geodesic(model, xs, q, steps=6))
        rec[f"{name}/off"] = ml.off_leaf_fraction(model, xs, direction)
    torch.save(rec, out)
    print("saved", len(rec), "records to", out)


def compare(first: str, second: str) -> int:
    a, b = torch.load(first, weights_only=True), torch.load(second, weights_only=True)
    ren = {"steps": "steps_taken", "reasons": "stop_reasons"}
    bad = [0]

    def eq(x, y, where):
        if isinstance(x, torch.Tensor):
            ok = (
                isinstance(y, torch.Tensor)
                and x.dtype == y.dtype
                and x.shape == y.shape
                and (
                    torch.equal(x, y)
                    or torch.equal(torch.nan_to_num(x, nan=-7.25), torch.nan_to_num(y, nan=-7.25))
                )
            )
            ok = ok and x.device == y.device
        elif isinstance(x, float) and isinstance(y, float):
            ok = x == y or (math.isnan(x) and math.isnan(y))
        elif isinstance(x, dict):
            ok = isinstance(y, dict)
            for k in x:
                kk = k if k in y else ren.get(k, k)
                if kk not in y:
                    print("missing", where, k)
                    bad[0] += 1
                    continue
                eq(x[k], y[kk], f"{where}.{k}")
            return
        elif isinstance(x, (list, tuple)):
            ok = len(x) == len(y)
            if ok:
                for i, (u, v) in enumerate(zip(x, y, strict=True)):
                    eq(u, v, f"{where}[{i}]")
                return
        else:
            ok = x == y
        if not ok:
            bad[0] += 1
            print("DIFF", where, str(x)[:200], "|", str(y)[:200])

    n = 0
    for k in a:
        if k not in b:
            print("missing record", k)
            bad[0] += 1
            continue
        eq(a[k], b[k], k)
        n += 1
    print(f"{n} records compared; {bad[0]} differences")
    return 1 if bad[0] else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["record"]:
        record(sys.argv[2])
    elif sys.argv[1:2] == ["compare"]:
        raise SystemExit(compare(sys.argv[2], sys.argv[3]))
    else:
        raise SystemExit(__doc__)
