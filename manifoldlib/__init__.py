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
    "geodesics",
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


def _declared_names(module: str) -> list[str]:
    """A module's ``__all__``, read from its source without importing it."""
    spec = importlib.util.find_spec(f"{__name__}.{module}")
    with open(spec.origin, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise ImportError(f"manifoldlib.{module} defines no literal __all__")


#: Where each top-level name lives: ``name -> module``.
_HOME: dict[str, str] = {}
for _module in _EAGER:
    _mod = importlib.import_module(f".{_module}", __name__)
    for _name in _mod.__all__:
        globals()[_name] = getattr(_mod, _name)
        _HOME[_name] = _module
for _module in _LAZY:
    for _name in _declared_names(_module):
        _HOME[_name] = _module
del _module, _mod, _name

__all__ = sorted({*_HOME, *_EAGER, *_LAZY, *_MODULE_ONLY})


def __getattr__(name: str) -> object:
    """Import a lazy module, or the module of a lazy name, on first use."""
    if name in _LAZY or name in _MODULE_ONLY:
        return importlib.import_module(f".{name}", __name__)
    if name in _HOME:
        value = getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
