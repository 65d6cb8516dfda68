"""Vector fields, brackets and distributions with SymPy: the Frobenius theorem by computation.

A vector field ``X = sum_i a_i(x) d_i`` on an open set of ``R^n`` is given here by its list of
components ``[a_1, ..., a_n]`` (SymPy expressions in the coordinate symbols ``coords``); a
distribution by a list of such fields that span it. The helpers compute what the paper's
Appendix A uses:

- :func:`apply_field` and :func:`lie_bracket`: ``X(f)`` and ``[X, Y]`` with
  ``[X, Y]^j = sum_i (X^i d_i Y^j - Y^i d_i X^j)``;
- :func:`involutivity`: is every bracket of spanning fields back in their span (condition
  (10))? It returns the generic rank of the distribution, that of the distribution together
  with all brackets, and the part of each bracket outside the span (the *residual*);
- :func:`gauss_reduce`: the reduced row echelon form of the spanning fields, the "Gauss
  reduction" of Appendix A: for an involutive distribution the reduced fields commute;
- :func:`integral_curve`: the curve ``c`` with ``c(0) = p`` and ``c'(t) = X(c(t))``, solved
  with ``sympy.dsolve``.

Why component lists rather than ``sympy.diffgeom``: ranks, spans and row reduction need the
matrix of components, which ``diffgeom`` fields (expressions in ``e_x, e_y, ...``) do not
expose, and its integral-curve tools return the differential equations
(``intcurve_diffequ``) or a power series (``intcurve_series``), not a closed-form curve.
``diffgeom.Commutator`` computes the same brackets: the tests use it as the independent
reference for :func:`lie_bracket`, and the chapter shows both.

All ranks are *generic* ranks: ranks over the field of rational functions of the coordinates,
i.e. the rank at a generic point. The reduction divides by pivots (``z`` in the sphere
example), so its result holds where those pivots do not vanish.

Introduced in the chapter "Distributions, brackets and the Frobenius theorem" (book/02).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sympy as sp

__all__ = [
    "InvolutivityCheck",
    "apply_field",
    "gauss_reduce",
    "generic_rank",
    "integral_curve",
    "involutivity",
    "lie_bracket",
]

Field = list[sp.Expr]


def _is_zero(expr: sp.Expr) -> bool:
    """Exact zero test after simplification (the pivot test for symbolic row reduction)."""
    return sp.simplify(expr) == 0


def _check_coords(coords: Sequence[sp.Symbol]) -> tuple[sp.Symbol, ...]:
    if isinstance(coords, (str, sp.Basic)) or not isinstance(coords, Sequence):
        raise TypeError(f"coords must be a sequence of SymPy symbols, got {type(coords).__name__}")
    coords = tuple(coords)
    if not coords:
        raise ValueError("coords must name at least one coordinate")
    if not all(isinstance(c, sp.Symbol) for c in coords):
        raise TypeError(f"coords must be SymPy symbols, got {coords!r}")
    if len(set(coords)) != len(coords):
        raise ValueError(f"coords must be distinct, got {coords!r}")
    return coords


def _check_field(vec: Sequence[object], coords: tuple[sp.Symbol, ...], name: str) -> Field:
    if isinstance(vec, (str, sp.Basic)) or not isinstance(vec, (Sequence, sp.MatrixBase)):
        raise TypeError(f"{name} must be a list of components, got {type(vec).__name__}")
    comps = [sp.sympify(a) for a in vec]
    if len(comps) != len(coords):
        raise ValueError(
            f"{name} has {len(comps)} components but there are {len(coords)} coordinates"
        )
    return comps


def _check_fields(
    fields: Sequence[Sequence[object]], coords: tuple[sp.Symbol, ...], name: str = "fields"
) -> list[Field]:
    if isinstance(fields, (str, sp.Basic)) or not isinstance(fields, Sequence) or not fields:
        raise ValueError(f"{name} must be a non-empty list of vector fields")
    return [_check_field(v, coords, f"{name}[{k}]") for k, v in enumerate(fields)]


def apply_field(
    vec: Sequence[object], f: sp.Expr, coords: Sequence[sp.Symbol], *, simplify: bool = False
) -> sp.Expr:
    """The derivative ``X(f) = sum_i X^i d_i f`` of a function along a vector field.

    Args:
        vec: the components ``[X^1, ..., X^n]`` of ``X``.
        f: a SymPy expression in ``coords`` (may contain undefined functions).
        coords: the coordinate symbols ``(x_1, ..., x_n)``.
        simplify: simplify the result.

    Returns:
        The expression ``X(f)``.

    Introduced in the chapter "Distributions, brackets and the Frobenius theorem".
    """
    coords = _check_coords(coords)
    comps = _check_field(vec, coords, "vec")
    out = sum((a * sp.diff(f, c) for a, c in zip(comps, coords, strict=True)), sp.Integer(0))
    return sp.simplify(out) if simplify else out


def lie_bracket(
    x_field: Sequence[object],
    y_field: Sequence[object],
    coords: Sequence[sp.Symbol],
    *,
    simplify: bool = True,
) -> Field:
    """The bracket ``[X, Y]`` of two vector fields, as components.

    ``[X, Y](f) = X(Y(f)) - Y(X(f))``: the second derivatives of ``f`` cancel, leaving the
    field with components ``[X, Y]^j = sum_i (X^i d_i Y^j - Y^i d_i X^j)`` (the formula used in
    the proof of Theorem B.2).

    Args:
        x_field: components of ``X``.
        y_field: components of ``Y``.
        coords: the coordinate symbols.
        simplify: simplify each component (turn off for large expressions with undefined
            functions, and expand the result instead).

    Returns:
        The ``n`` components of ``[X, Y]``.

    Introduced in the chapter "Distributions, brackets and the Frobenius theorem".
    """
    coords = _check_coords(coords)
    xs = _check_field(x_field, coords, "x_field")
    ys = _check_field(y_field, coords, "y_field")
    out = [
        apply_field(xs, b, coords) - apply_field(ys, a, coords) for a, b in zip(xs, ys, strict=True)
    ]
    return [sp.simplify(c) for c in out] if simplify else out


def generic_rank(matrix: sp.MatrixBase | Sequence[Sequence[object]]) -> int:
    """Rank of a symbolic matrix at a generic point (over the rational functions).

    Pivots are tested for zero after ``simplify``, so an entry such as ``x/z - x/z`` is not
    taken for a pivot.

    Args:
        matrix: a SymPy matrix, or a list of rows.

    Returns:
        The generic rank.

    Introduced in the chapter "Distributions, brackets and the Frobenius theorem".
    """
    m = sp.Matrix(matrix)
    return int(m.rank(iszerofunc=_is_zero, simplify=True))


def _rref(fields: list[Field]) -> tuple[sp.Matrix, tuple[int, ...]]:
    m = sp.Matrix(fields)
    reduced, pivots = m.rref(iszerofunc=_is_zero, simplify=True)
    return reduced.applyfunc(sp.simplify), tuple(pivots)


@dataclass
class InvolutivityCheck:
    """The result of :func:`involutivity`.

    Attributes:
        rank: generic rank ``k`` of the spanning fields (the rank of the distribution).
        augmented_rank: generic rank of the spanning fields together with all their brackets;
            equal to ``rank`` exactly when the distribution is involutive.
        brackets: ``(i, j) -> [X_i, X_j]`` for ``i < j``.
        residuals: ``(i, j) ->`` the part of ``[X_i, X_j]`` outside the span, simplified:
            all components are 0 exactly when the bracket lies in the distribution.
        pivots: the pivot columns used to split off the residual.
    """

    rank: int
    augmented_rank: int
    brackets: dict[tuple[int, int], Field] = field(default_factory=dict)
    residuals: dict[tuple[int, int], Field] = field(default_factory=dict)
    pivots: tuple[int, ...] = ()

    @property
    def involutive(self) -> bool:
        """Whether every bracket lies in the span (condition (10) of the paper)."""
        zero = all(c == 0 for r in self.residuals.values() for c in r)
        return zero and self.augmented_rank == self.rank


def _reduced_basis(
    fields: Sequence[Sequence[object]], coords: Sequence[sp.Symbol]
) -> tuple[tuple[sp.Symbol, ...], list[Field], list[Field], tuple[int, ...]]:
    """Checked ``coords`` and ``fields``, the rows of their RREF and its pivots.

    Raises:
        ValueError: the fields are not linearly independent at a generic point.
    """
    coords = _check_coords(coords)
    vecs = _check_fields(fields, coords)
    reduced, pivots = _rref(vecs)
    if len(pivots) < len(vecs):
        k = len(pivots)
        raise ValueError(
            f"fields must be linearly independent (generic rank {k} < {len(vecs)} fields)"
        )
    return coords, vecs, [list(reduced.row(i)) for i in range(len(pivots))], pivots


def involutivity(
    fields: Sequence[Sequence[object]], coords: Sequence[sp.Symbol]
) -> InvolutivityCheck:
    """Check condition (10): every bracket of spanning fields lies in their span.

    The residual of a bracket ``b`` is ``b - sum_i b_{p_i} R_i``, with ``R`` the reduced row
    echelon form of the fields and ``p_i`` its pivot columns: the unique combination of the
    fields that matches ``b`` on the pivot columns, subtracted. It is zero exactly when ``b``
    is in the span (at generic points).

    Args:
        fields: ``k`` spanning vector fields, each a list of ``n`` components.
        coords: the coordinate symbols.

    Returns:
        An :class:`InvolutivityCheck` (``.involutive``, ranks, brackets, residuals).

    Raises:
        ValueError: the fields are not linearly independent at a generic point.

    Introduced in the chapter "Distributions, brackets and the Frobenius theorem".
    """
    coords, vecs, rows, pivots = _reduced_basis(fields, coords)
    brackets, residuals = {}, {}
    for i in range(len(vecs)):
        for j in range(i + 1, len(vecs)):
            b = lie_bracket(vecs[i], vecs[j], coords)
            brackets[(i, j)] = b
            residuals[(i, j)] = [
                sp.simplify(b[col] - sum(b[p] * r[col] for p, r in zip(pivots, rows, strict=True)))
                for col in range(len(coords))
            ]
    augmented = generic_rank(vecs + list(brackets.values()))
    return InvolutivityCheck(len(rows), augmented, brackets, residuals, pivots)


def gauss_reduce(fields: Sequence[Sequence[object]], coords: Sequence[sp.Symbol]) -> list[Field]:
    """Gauss reduction of a local basis of a distribution (Appendix A).

    Row-reduces the ``k x n`` matrix of components to reduced row echelon form
    ``X_i = d_{p_i} + sum_{a not a pivot} f_i^a d_a``. For an involutive distribution these
    fields commute: ``[X_i, X_j]`` has no component along the pivot directions (the
    ``d_{p_i}`` have constant coefficients), and it lies in the span, where the only such
    vector is 0.

    Args:
        fields: ``k`` linearly independent vector fields.
        coords: the coordinate symbols.

    Returns:
        The ``k`` reduced fields (valid where the pivots used do not vanish).

    Raises:
        ValueError: the fields are not linearly independent at a generic point.

    Introduced in the chapter "Distributions, brackets and the Frobenius theorem".
    """
    return _reduced_basis(fields, coords)[2]


def _pick(
    solutions: sp.Eq | list[sp.Eq], ok: Callable[[sp.Eq], bool]
) -> sp.Eq:  # dsolve may return all branches of a square root
    sols = solutions if isinstance(solutions, list) else [solutions]
    good = [s for s in sols if ok(s)]
    if not good:
        raise ValueError("dsolve found no solution through the initial point")
    return good[0]


def integral_curve(
    vec: Sequence[object],
    coords: Sequence[sp.Symbol],
    point: Sequence[object],
    t: sp.Symbol,
) -> Field:
    """The integral curve ``c`` of ``X`` with ``c(0) = point`` and ``c'(t) = X(c(t))``.

    Solved with ``sympy.dsolve``: first as one system (linear fields, such as the rotation
    ``-y d_x + x d_y`` of Figure 7), and if SymPy cannot, component by component, each time
    taking a component whose equation involves only itself and components already solved
    (triangular fields, such as ``d_x - (x/z) d_z``). The result is checked by substitution.

    Args:
        vec: components of ``X``.
        coords: the coordinate symbols.
        point: the initial point ``c(0)`` (numbers or symbols).
        t: the curve parameter.

    Returns:
        The ``n`` components of ``c(t)``.

    Raises:
        ValueError: SymPy cannot solve the equations in closed form, or the solution fails
            the check.

    Introduced in the chapter "Distributions, brackets and the Frobenius theorem".
    """
    coords = _check_coords(coords)
    comps = _check_field(vec, coords, "vec")
    start = _check_field(point, coords, "point")
    if not isinstance(t, sp.Symbol):
        raise TypeError(f"t must be a SymPy symbol, got {type(t).__name__}")
    funcs = [sp.Function(f"c_{i}")(t) for i in range(len(coords))]
    subs = dict(zip(coords, funcs, strict=True))
    rhs = [a.subs(subs, simultaneous=True) for a in comps]
    eqs = [sp.Eq(f.diff(t), r) for f, r in zip(funcs, rhs, strict=True)]
    ics = {f.subs(t, 0): p for f, p in zip(funcs, start, strict=True)}
    curve: dict[sp.Expr, sp.Expr] = {}
    linear = all(r.is_polynomial(*funcs) and sp.Poly(r, *funcs).total_degree() <= 1 for r in rhs)
    if linear:  # dsolve's systems solver handles linear systems; nonlinear ones can take minutes
        try:
            sol = sp.dsolve(eqs, funcs, ics=ics)
            sols = sol if isinstance(sol, list) else [sol]
            curve = {s.lhs: s.rhs for s in sols}
        except Exception:  # noqa: BLE001 - dsolve's systems solver fails in many ways
            # (NotImplementedError, NotAlgebraic, ...); the triangular route may still work.
            curve = {}
    if len(curve) != len(funcs):
        curve = _solve_triangular(funcs, rhs, ics, t)
    result = [sp.simplify(curve[f]) for f in funcs]
    back = dict(zip(funcs, result, strict=True))
    for f, r, p in zip(funcs, rhs, start, strict=True):
        ode = sp.simplify(back[f].diff(t) - r.subs(back))
        if ode != 0 or sp.simplify(back[f].subs(t, 0) - p) != 0:
            raise ValueError(f"the solution found for {f} fails the check: residual {ode}")
    return result


def _solve_triangular(
    funcs: list[sp.Expr], rhs: list[sp.Expr], ics: dict[sp.Expr, sp.Expr], t: sp.Symbol
) -> dict[sp.Expr, sp.Expr]:
    curve: dict[sp.Expr, sp.Expr] = {}
    todo = list(range(len(funcs)))
    while todo:
        for i in todo:
            r = rhs[i].subs(curve)
            if all(not r.has(funcs[j]) for j in todo if j != i):
                f0 = ics[funcs[i].subs(t, 0)]

                def ok(s: sp.Eq, f0: sp.Expr = f0) -> bool:
                    return sp.simplify(s.rhs.subs(t, 0) - f0) == 0

                try:
                    sol = sp.dsolve(
                        sp.Eq(funcs[i].diff(t), r), funcs[i], ics={funcs[i].subs(t, 0): f0}
                    )
                except (NotImplementedError, ValueError) as err:
                    raise ValueError(
                        f"SymPy cannot solve the equation of {funcs[i]}: {err}"
                    ) from err
                curve[funcs[i]] = _pick(sol, ok).rhs
                todo.remove(i)
                break
        else:
            raise ValueError(
                "SymPy cannot solve this system in closed form (it is neither linear nor "
                "triangular)"
            )
    return curve
