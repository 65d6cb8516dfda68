"""manifoldlib: the model-centric data manifold of Grementieri & Fioresi, computed fast.

A classifier ``model`` maps inputs ``(B, *input_shape)`` to class scores ``(B, C)``; the
library takes ``log_softmax`` itself. From the gradients ``grad_x log p_i(y|x, w)`` it builds
the local data matrix G(x, w) (in factored form, never ``n x n`` unless asked), the
distribution ``D_x = (ker G)^perp`` and its projections, and the paths of the paper: along
the leaves (Algorithm 1) and across them (section 4.2). Every routine is batched.

Quick start::

    import manifoldlib as ml
    data = ml.load_mnist()                      # 5,000 embedded digits, no download
    model = ml.cached_train(ml.TrainConfig(epochs=3)).model
    G = ml.local_data_lowrank(model, data.test_x[:8])
    G.rank(), G.trace()                          # rank <= C - 1 = 9
    path = ml.horizontal_path(model, data.test_x[:4], data.test_x[4:8], clamp=data.pixel_range)
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util

__version__ = "0.1.0"

#: Public modules whose ``__all__`` is exported at the top level (``ml.<name>``), imported
#: with the package. Adding a module's names is one line here.
_EAGER = (
    "data",
    "models",
    "geometry",
    "paths",
    "profiles",
    "training",
    "toy",
    "foliation",
    "stats",
    "images",
    "leaf",
    "adversarial",
    "riemannian",
    "ood",
    "denoise",
    "algorithm1",
)
#: Public modules with a heavy optional dependency, imported on first use of the module or of
#: one of its names, so that ``import manifoldlib`` stays fast.
_LAZY = (
    "frobenius",  # SymPy
    "widgets",  # ipywidgets
)
#: Public modules reachable as ``ml.<module>`` whose names stay in the module.
_MODULE_ONLY = (
    "plot",  # matplotlib; imported on first use
    "reference",
)


@functools.cache
def _declared_names(module: str) -> tuple[str, ...]:
    """A module's ``__all__``, read from its source without importing it."""
    spec = importlib.util.find_spec(f"{__name__}.{module}")
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise ImportError(f"manifoldlib.{module} defines no literal __all__")


#: The core that the README teaches, ``ml.<name>``: load data and models, the local data
#: matrix and its distribution, the paths and their lengths. Every other public name lives in
#: its module only (``ml.ood.energy_score``, ``ml.stats.auroc``); ``tools/rewrite_namespace.py``
#: rewrites the older ``ml.<name>`` spellings.
CORE: dict[str, tuple[str, ...]] = {
    "data": ("ImageData", "load_cifar10", "load_mnist"),
    "models": ("MLP", "MnistCNN", "VGG"),
    "training": ("TrainConfig", "accuracy", "cached_train", "train"),
    "profiles": ("Profile", "current_profile"),
    "toy": ("load_toy",),
    "geometry": (
        "LowRankPSD",
        "kernel_projection",
        "local_data_lowrank",
        "local_data_matrix",
        "log_probabilities",
        "logprob_jacobian",
        "mean_trace",
        "score_jacobian",
        "tangent_basis",
        "tangent_projection",
        "tangent_projection_from_jacobian",
        "trace_mc",
    ),
    "paths": (
        "PathResult",
        "across_leaves_path",
        "horizontal_path",
        "linear_interpolation",
        "off_leaf_fraction",
    ),
    "riemannian": ("fisher_rao_distance", "metric_lengths"),
    "leaf": ("leaf_projection",),
}

for _module in _EAGER:
    globals()[_module] = importlib.import_module(f".{_module}", __name__)
for _module, _names in CORE.items():
    for _name in _names:
        globals()[_name] = getattr(globals()[_module], _name)
del _module, _names, _name

__all__ = sorted(name for names in CORE.values() for name in names)
#: The public modules, ``ml.<module>`` (every one reachable after ``import manifoldlib``).
MODULES = tuple(sorted({*_EAGER, *_LAZY, *_MODULE_ONLY}))


def home(name: str) -> str:
    """The public module that defines ``name`` (read from the modules' ``__all__``).

    Args:
        name: a public name, e.g. ``"energy_score"``.

    Returns:
        The module's name, e.g. ``"ood"``.

    Raises:
        KeyError: no public module defines ``name``.

    Introduced in the chapter "The pipeline end to end" (book/00).
    """
    for module in MODULES:
        if name in _declared_names(module):
            return module
    raise KeyError(name)


def __getattr__(name: str) -> object:
    """Import a lazy module on first use; say where a name that left the top level lives."""
    if name in _LAZY or name in _MODULE_ONLY:
        return importlib.import_module(f".{name}", __name__)
    try:
        module = home(name)
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    raise AttributeError(
        f"manifoldlib.{name} is manifoldlib.{module}.{name} (only the core is at the top "
        "level; see manifoldlib.CORE)"
    )


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *MODULES})
