"""Bad input for every public function that takes a model: a clear exception, never garbage.

Property-based (hypothesis) where it fits: random shapes and dtypes must either compute
something that satisfies the paper's properties or raise ValueError/TypeError naming the
argument, never another exception or a silently wrong result.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import manifoldlib as ml


def _like(x):
    """A second argument shaped like x (x itself when x is not a tensor)."""
    return torch.ones_like(x) if isinstance(x, torch.Tensor) else x


def _labels(x):
    """Class labels for a batch like x (one label when x has no batch axis)."""
    n = x.shape[0] if isinstance(x, torch.Tensor) and x.dim() > 0 else 1
    return torch.zeros(n, dtype=torch.long)


def _probs(model, x):
    """A target distribution for each point of x (uniform; x itself when not a tensor)."""
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        return x
    return torch.full((x.shape[0], 3), 1 / 3, dtype=torch.float64)


def _path_points(x):
    """Two records (R = 2) of paths starting at x, the second a step to the next point."""
    return torch.stack([x, x.roll(1, 0)]) if isinstance(x, torch.Tensor) and x.dim() else x


#: Every public function that takes a model, called on a model and a batch x (the test
#: ``test_the_table_lists_every_public_function_that_takes_a_model`` keeps it complete).
TAKES_A_MODEL = {
    "logprob_jacobian": lambda m, x: ml.logprob_jacobian(m, x),
    "score_jacobian": lambda m, x: ml.score_jacobian(m, x),
    "local_data_matrix": lambda m, x: ml.local_data_matrix(m, x),
    "local_data_lowrank": lambda m, x: ml.local_data_lowrank(m, x),
    "local_fisher_lowrank": lambda m, x: ml.geometry.local_fisher_lowrank(m, x),
    "local_fisher_matrix": lambda m, x: ml.geometry.local_fisher_matrix(m, x),
    "trace_mc": lambda m, x: ml.trace_mc(m, x, generator=torch.Generator().manual_seed(0)),
    "mean_trace": lambda m, x: ml.mean_trace(m, x).mean,
    "log_probabilities": lambda m, x: ml.log_probabilities(m, x),
    "tangent_basis": lambda m, x: ml.tangent_basis(m, x),
    "tangent_projection": lambda m, x: ml.tangent_projection(m, x, _like(x)),
    "kernel_projection": lambda m, x: ml.kernel_projection(m, x, _like(x)),
    "horizontal_path": lambda m, x: ml.horizontal_path(m, x, _like(x), max_steps=2),
    "across_leaves_path": lambda m, x: ml.across_leaves_path(m, x, _like(x), steps=2),
    "off_leaf_fraction": lambda m, x: ml.off_leaf_fraction(m, x, _like(x)),
    "accuracy": lambda m, x: ml.accuracy(m, x, _labels(x)),
    "max_softmax_score": lambda m, x: ml.ood.max_softmax_score(m, x),
    "log_trace": lambda m, x: ml.ood.log_trace(m, x),
    "trace_score": lambda m, x: ml.ood.trace_score(m, x, torch.arange(5.0)),
    "across_leaves_noise": lambda m, x: ml.leaf.across_leaves_noise(
        m, x, 0.5, max_step=0.25, generator=torch.Generator().manual_seed(0)
    ),
    "tangent_residual": lambda m, x: ml.ood.tangent_residual(m, x, _like(x)),
    "noise_dx_share": lambda m, x: ml.leaf.noise_dx_share(m, x, _like(x)),
    "leaf_projection": lambda m, x: ml.leaf_projection(m, x, _like(x), max_steps=2).points,
    "fgsm_direction": lambda m, x: ml.adversarial.fgsm_direction(m, x, _labels(x)),
    "leaf_split": lambda m, x: ml.adversarial.leaf_split(m, x, _like(x))[0].tangent,
    "prediction_change": lambda m, x: ml.adversarial.prediction_change(m, x, _like(x))[0],
    "metric_lengths": lambda m, x: ml.metric_lengths(m, _path_points(x)),
    "logprob_brackets": lambda m, x: ml.foliation.logprob_brackets(m, x),
    "involutivity_residual": lambda m, x: ml.foliation.involutivity_residual(m, x),
    "parameter_gradient_fields": lambda m, x: ml.foliation.parameter_gradient_fields(m, x),
    "parameter_brackets": lambda m, x: ml.foliation.parameter_brackets(m, x, [((0, 0), (0, 1))]),
    "parameter_involutivity_residual": lambda m, x: ml.foliation.parameter_involutivity_residual(
        m, x, [((0, 0), (0, 1))]
    ),
    "ossa_direction": lambda m, x: ml.adversarial.ossa_direction(m, x, _labels(x)),
    "energy_score": lambda m, x: ml.ood.energy_score(m, x),
    "gradnorm_score": lambda m, x: ml.ood.gradnorm_score(m, x),
    "penultimate_features": lambda m, x: ml.ood.penultimate_features(m, x),
    "leaf_geodesic": lambda m, x: ml.riemannian.leaf_geodesic(m, x, _probs(m, x), steps=2).points,
    "algorithm1_paths": lambda m, x: (
        ml.algorithm1.algorithm1_paths(m, x, _like(x), clamp_on=False, max_steps=2).final
    ),
}
#: Public callables whose first parameter is a model but that take no batch x.
NO_BATCH = {
    "PathExplorer": "a widget: its compute() runs horizontal_path/across_leaves_path",
    "TrainResult": "a record of a training run",
    "precision": "a context manager that casts the model",
    "walk": "the one path loop: horizontal_path, across_leaves_path, algorithm1_paths check x",
}
#: Words one of which a message about a bad x must contain (the argument's name, or the cause).
NAMES = ("x", "source", "start", "anchors", "points", "dtype", "device")


def test_the_table_lists_every_public_function_that_takes_a_model():
    takes = set()
    names = [
        (name, getattr(getattr(ml, module), name))
        for module in ml.MODULES
        if module not in ("plot", "reference")  # figure helpers and the slow references
        for name in getattr(ml, module).__all__
    ]
    for name, obj in names:
        if not callable(obj) or isinstance(obj, type(ml)):
            continue
        try:
            params = list(inspect.signature(obj).parameters)
        except (TypeError, ValueError):
            continue
        if params and params[0] == "model":
            takes.add(name)
    assert takes - set(NO_BATCH) == set(TAKES_A_MODEL)


SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def small_mlp(n_in=5, c=3, dtype=torch.float64):
    torch.manual_seed(0)
    return ml.MLP(n_in, hidden=(8,), num_classes=c).to(dtype).eval()


BAD_X = {
    "1-D input (no batch axis)": (torch.zeros(5, dtype=torch.float64), ValueError),
    "empty batch": (torch.zeros(0, 5, dtype=torch.float64), ValueError),
    "NaN": (torch.full((2, 5), float("nan"), dtype=torch.float64), ValueError),
    "inf": (torch.full((2, 5), float("-inf"), dtype=torch.float64), ValueError),
    "integer dtype": (torch.zeros(2, 5, dtype=torch.int64), TypeError),
    "float32 x, float64 model": (torch.zeros(2, 5, dtype=torch.float32), TypeError),
    "a list": ([[0.0] * 5], TypeError),
    "meta device": (torch.zeros(2, 5, dtype=torch.float64, device="meta"), ValueError),
}


@pytest.mark.parametrize("fn", TAKES_A_MODEL, ids=str)
@pytest.mark.parametrize("case", BAD_X, ids=str)
def test_every_function_refuses_bad_x(fn, case):
    x, exc = BAD_X[case]
    with pytest.raises(exc) as err:
        TAKES_A_MODEL[fn](small_mlp(), x)
    msg = str(err.value)
    assert any(word in msg for word in NAMES), msg


@pytest.mark.parametrize("fn", TAKES_A_MODEL, ids=str)
def test_every_function_refuses_a_one_class_model(fn):
    model = ml.MLP(5, hidden=(4,), num_classes=1).double()
    with pytest.raises(ValueError, match="C = 2"):
        TAKES_A_MODEL[fn](model, torch.zeros(2, 5, dtype=torch.float64))


@pytest.mark.parametrize("fn", TAKES_A_MODEL, ids=str)
def test_every_function_refuses_a_model_with_wrong_output(fn):
    model = nn.Sequential(nn.Linear(5, 6), nn.Unflatten(1, (2, 3))).double()
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        TAKES_A_MODEL[fn](model, torch.zeros(2, 5, dtype=torch.float64))


@pytest.mark.parametrize("fn", TAKES_A_MODEL, ids=str)
def test_every_function_refuses_a_non_module(fn):
    with pytest.raises(TypeError, match="nn.Module"):
        TAKES_A_MODEL[fn](lambda z: z, torch.zeros(2, 5, dtype=torch.float64))


def _leaves(obj) -> tuple[list[torch.Tensor], list[str]]:
    """The tensors (numbers as 0-d tensors) and strings inside a result, in a fixed order."""
    if isinstance(obj, torch.Tensor):
        return [obj], []
    if isinstance(obj, bool | int | float):
        return [torch.tensor(float(obj), dtype=torch.float64)], []
    if isinstance(obj, str):
        return [], [obj]
    if dataclasses.is_dataclass(obj):
        obj = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
    if isinstance(obj, list | tuple):
        tensors, strings = [], []
        for item in obj:
            t, s = _leaves(item)
            tensors += t
            strings += s
        return tensors, strings
    if obj is None:
        return [], []
    raise TypeError(f"no comparison for a {type(obj).__name__}")


@pytest.mark.parametrize("fn", TAKES_A_MODEL, ids=str)
def test_training_mode_with_dropout_is_computed_in_eval_mode_and_restored(fn):
    """Every result (tensors, numbers, the tensors in records and tuples) is that of eval mode.

    Fails if ``eval_mode`` leaves the model in training mode: dropout (p = 0.5) then changes
    the numbers, and ``trace_mc`` with the same generator draws the same probes.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).double()
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    model.eval()
    ref_t, ref_s = _leaves(TAKES_A_MODEL[fn](model, x))
    model.train()
    torch.manual_seed(5)  # dropout, were it on, would draw other masks than a second eval run
    got_t, got_s = _leaves(TAKES_A_MODEL[fn](model, x))
    assert model.training and all(m.training for m in model.modules()), "mode not restored"
    assert ref_t, f"{fn}: nothing to compare"
    assert got_s == ref_s
    assert len(got_t) == len(ref_t)
    for g, r in zip(got_t, ref_t, strict=True):
        torch.testing.assert_close(g, r, equal_nan=True)  # dropout was off: deterministic


@SETTINGS
@given(
    batch=st.integers(1, 4),
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    classes=st.integers(2, 5),
)
def test_random_shapes_satisfy_prop_2_1_and_projection_properties(batch, shape, classes):
    n = 1
    for s in shape:
        n *= s
    torch.manual_seed(n * 7 + classes)
    model = nn.Sequential(nn.Flatten(), nn.Linear(n, 8), nn.ReLU(), nn.Linear(8, classes))
    model = model.double().eval()
    x = torch.randn(batch, *shape, dtype=torch.float64)
    v = torch.randn_like(x)
    jac = ml.logprob_jacobian(model, x)
    assert jac.shape == (batch, classes, *shape)
    low = ml.local_data_lowrank(model, x)
    assert (low.rank() <= classes - 1).all()
    t, k = ml.tangent_projection(model, x, v), ml.kernel_projection(model, x, v)
    torch.testing.assert_close(t + k, v)
    assert float((t * k).sum()) == pytest.approx(0.0, abs=1e-9)
    torch.testing.assert_close(ml.tangent_projection(model, x, t), t, atol=1e-9, rtol=1e-7)


@SETTINGS
@given(
    shape_x=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    shape_v=st.lists(st.integers(1, 4), min_size=2, max_size=4),
)
def test_mismatched_shapes_raise_value_error_naming_the_argument(shape_x, shape_v):
    if shape_x == shape_v:
        return
    n = 1
    for s in shape_x[1:]:
        n *= s
    model = nn.Sequential(nn.Flatten(), nn.Linear(n, 3)).double()
    x = torch.zeros(*shape_x, dtype=torch.float64)
    v = torch.zeros(*shape_v, dtype=torch.float64)
    with pytest.raises(ValueError, match="v must have the same shape as x"):
        ml.tangent_projection(model, x, v)
    with pytest.raises(ValueError, match="target must have the same shape as source"):
        ml.horizontal_path(model, x, v, progress=False)


@SETTINGS
@given(
    step=st.one_of(
        st.floats(max_value=0.0), st.just(float("nan")), st.just(float("inf")), st.booleans()
    )
)
def test_bad_step_sizes(step):
    m, x = small_mlp(), torch.zeros(2, 5, dtype=torch.float64)
    with pytest.raises((ValueError, TypeError), match="step_size"):
        ml.horizontal_path(m, x, x + 1, step_size=step, progress=False)
    with pytest.raises((ValueError, TypeError), match="step_size"):
        ml.across_leaves_path(m, x, x + 1, step_size=step, progress=False)


def test_overshooting_step_size_does_not_diverge():
    m = small_mlp()
    x = torch.randn(3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    res = ml.horizontal_path(m, x, x.roll(1, 0), step_size=1e6, max_steps=20, progress=False)
    assert torch.isfinite(res.points).all()
    assert (res.distances[-1] <= res.distances[0] + 1e-9).all()


def test_smooth_models_warn_only_where_theorem_3_1_is_relied_on():
    gelu = ml.MLP(5, hidden=(8,), num_classes=3, activation="gelu").double()
    x = torch.randn(2, 5, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ml.local_data_lowrank(gelu, x)  # G is defined for any model: no warning
    for fn in ("horizontal_path", "across_leaves_path"):
        with pytest.warns(UserWarning, match="Theorem 3.1"):
            TAKES_A_MODEL[fn](gelu, x)


def test_precision_context_restores_float32():
    model = ml.VGG(width=1 / 16).eval()
    before = [t.clone() for t in model.state_dict().values()]
    with ml.geometry.precision(model):
        low = ml.local_data_lowrank(model, torch.zeros(1, 3, 32, 32, dtype=torch.float64))
        assert low.factor.dtype == torch.float64
    after = list(model.state_dict().values())
    assert all(a.dtype == b.dtype and torch.equal(a, b) for a, b in zip(after, before, strict=True))
    with pytest.raises(TypeError, match="floating"):
        with ml.geometry.precision(model, torch.int32):
            pass


def test_same_seed_gives_bit_identical_paths():
    m = small_mlp(dtype=torch.float32)
    x = torch.randn(3, 5, generator=torch.Generator().manual_seed(3))
    a = ml.horizontal_path(m, x, x.roll(1, 0), max_steps=30, progress=False)
    b = ml.horizontal_path(m, x, x.roll(1, 0), max_steps=30, progress=False)
    assert torch.equal(a.points, b.points)


def test_download_without_network_is_a_clear_error(monkeypatch):
    import torchvision.datasets

    class Offline:
        def __init__(self, *args, **kwargs):
            raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    with pytest.raises(ConnectionError, match="embedded"):
        ml.load_mnist("torchvision", download=True)
