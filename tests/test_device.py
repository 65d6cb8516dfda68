"""Every public path function keeps its bookkeeping on the data's device (GPU where lent).

Runs each on CUDA (skipped without one; run on a lent GPU) and compares with the CPU run:
the same results up to round-off (a device mismatch raises a RuntimeError).
Before the fix, ``steps_taken``, the clamp mask, the stall detector and the OOD noise were
created on the CPU and indexed with CUDA tensors (a RuntimeError on a GPU).
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import manifoldlib as ml
from manifoldlib import ood
from manifoldlib.algorithm1 import algorithm1_paths

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def _calls():
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731 - a CPU generator everywhere
    return {
        "horizontal_path": lambda m, x, d: ml.horizontal_path(
            m, x, d, max_steps=5, clamp=(-1.0, 1.0), progress=False
        ),
        "across_leaves_path": lambda m, x, d: ml.across_leaves_path(
            m, x, d, steps=5, clamp=(-1.0, 1.0), progress=False
        ),
        "leaf_projection": lambda m, x, d: ml.leaf_projection(m, x, d, max_steps=5),
        "leaf_geodesic": lambda m, x, d: ml.riemannian.leaf_geodesic(
            m, x, torch.softmax(m(d), 1).detach(), steps=5
        ),
        "algorithm1_paths": lambda m, x, d: algorithm1_paths(
            m,
            x,
            d,
            projection=["exact", "gels", "exact"],
            clamp_on=[True, False, True],
            clamp=(-1.0, 1.0),
            max_steps=5,
            stall_window=2,
        ),
        "across_leaves_noise": lambda m, x, d: ml.leaf.across_leaves_noise(
            m, x, 0.5, max_step=0.2, generator=g()
        ),
        "matched_isotropic_noise": lambda m, x, d: ood.matched_isotropic_noise(
            x, torch.ones(x.shape[0]), clamp=(-1.0, 1.0), generator=g()
        ),
    }


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    if dataclasses.is_dataclass(obj):
        return [t for f in dataclasses.fields(obj) for t in _tensors(getattr(obj, f.name))]
    return []


@cuda
@pytest.mark.parametrize("name", list(_calls()))
def test_path_functions_run_on_the_data_device(name):
    torch.manual_seed(0)
    model = ml.MLP(6, hidden=(16,), num_classes=3).double().eval()
    x = torch.rand(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    d = torch.rand(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fn = _calls()[name]
    ref = _tensors(fn(model, x, d))
    dev = torch.device("cuda")
    got = _tensors(fn(model.to(dev), x.to(dev), d.to(dev)))
    assert len(got) == len(ref) > 0
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-6, atol=1e-8, equal_nan=True)
