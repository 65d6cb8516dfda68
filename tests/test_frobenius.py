"""Brackets, involutivity, Gauss reduction and integral curves, against sympy.diffgeom."""

from __future__ import annotations

import pytest
import sympy as sp
from sympy.diffgeom import Commutator
from sympy.diffgeom.rn import R3_r

from manifoldlib import frobenius as fr

x, y, z, t = sp.symbols("x y z t", real=True)
XYZ = [x, y, z]


def _diffgeom_bracket(u: list, v: list) -> list:
    """Reference: sympy.diffgeom's Commutator, evaluated on the coordinate functions."""
    cx, cy, cz = R3_r.coord_functions()
    ex, ey, ez = R3_r.base_vectors()
    to_dg = {x: cx, y: cy, z: cz}

    def field(w: list):
        return sum(
            (sp.sympify(a).xreplace(to_dg) * e for a, e in zip(w, (ex, ey, ez), strict=True)), 0
        )

    # xreplace, not subs: R3_r's own coordinate symbols are real x, y, z too, and a sequential
    # subs would rewrite them inside the coordinate functions already substituted.
    com = Commutator(field(u), field(v))
    back = {cx: x, cy: y, cz: z}
    return [sp.simplify(com.rcall(c).xreplace(back)) for c in (cx, cy, cz)]


@pytest.mark.parametrize(
    "u, v",
    [
        ([y, -x, 0], [z, 0, -x]),
        ([x * y, sp.sin(z), x**2], [sp.exp(y), z * x, y - z]),
        ([1, 0, y], [0, 1, 0]),
    ],
)
def test_bracket_matches_diffgeom_commutator(u, v):
    ours = fr.lie_bracket(u, v, XYZ)
    ref = _diffgeom_bracket(u, v)
    assert all(sp.simplify(a - b) == 0 for a, b in zip(ours, ref, strict=True))


def test_bracket_is_the_commutator_of_derivations_and_is_antisymmetric():
    a = [sp.Function(f"a{i}")(x, y) for i in range(2)]
    b = [sp.Function(f"b{i}")(x, y) for i in range(2)]
    f = sp.Function("f")(x, y)
    xy = [x, y]
    br = fr.lie_bracket(a, b, xy, simplify=False)
    lhs = fr.apply_field(a, fr.apply_field(b, f, xy), xy) - fr.apply_field(
        b, fr.apply_field(a, f, xy), xy
    )
    assert sp.expand(lhs - fr.apply_field(br, f, xy)) == 0
    back = fr.lie_bracket(b, a, xy, simplify=False)
    assert all(sp.expand(p + q) == 0 for p, q in zip(br, back, strict=True))


def test_jacobi_identity_for_general_fields():
    xy = [x, y]
    a, b, c = ([sp.Function(f"{n}{i}")(x, y) for i in range(2)] for n in "abc")

    def br(u, v):
        return fr.lie_bracket(u, v, xy, simplify=False)

    total = [
        sp.expand(p + q + r)
        for p, q, r in zip(br(a, br(b, c)), br(b, br(c, a)), br(c, br(a, b)), strict=True)
    ]
    assert total == [0, 0]


def test_sphere_distribution_is_involutive_and_reduces_to_commuting_fields():
    check = fr.involutivity([[y, -x, 0], [z, 0, -x]], XYZ)
    assert check.involutive and check.rank == 2 and check.augmented_rank == 2
    assert [sp.simplify(c) for c in check.brackets[(0, 1)]] == [0, z, -y]
    reduced = fr.gauss_reduce([[y, -x, 0], [z, 0, -x]], XYZ)
    expected = [[1, 0, -x / z], [0, 1, -y / z]]
    assert all(
        sp.simplify(a - b) == 0
        for r, e in zip(reduced, expected, strict=True)
        for a, b in zip(r, e, strict=True)
    )
    assert fr.lie_bracket(*reduced, XYZ) == [0, 0, 0]


def test_contact_distribution_is_not_involutive():
    check = fr.involutivity([[1, 0, y], [0, 1, 0]], XYZ)
    assert not check.involutive
    assert check.rank == 2 and check.augmented_rank == 3
    assert check.residuals[(0, 1)] == [0, 0, -1]


def test_generic_rank_ignores_entries_that_simplify_to_zero():
    assert fr.generic_rank([[x / z - x / z, 0], [0, 0]]) == 0
    assert fr.generic_rank([[x, y], [2 * x, 2 * y]]) == 1


def test_integral_curve_of_the_rotation_is_a_circle():
    x0, y0 = sp.symbols("x_0 y_0", real=True)
    cx, cy = fr.integral_curve([-y, x], [x, y], [x0, y0], t)
    assert sp.simplify(cx - (x0 * sp.cos(t) - y0 * sp.sin(t))) == 0
    assert sp.simplify(cx**2 + cy**2 - x0**2 - y0**2) == 0


def test_integral_curve_of_a_triangular_field_stays_on_the_sphere():
    x0, y0 = sp.symbols("x_0 y_0", real=True)
    z0 = sp.Symbol("z_0", positive=True)
    c = fr.integral_curve([1, 0, -x / z], XYZ, [x0, y0, z0], t)
    assert c[0] == x0 + t and c[1] == y0
    assert sp.simplify(sum(ci**2 for ci in c) - (x0**2 + y0**2 + z0**2)) == 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="components"):
        fr.lie_bracket([x, y], [x, y, z], XYZ)
    with pytest.raises(TypeError, match="coords"):
        fr.lie_bracket([x], [y], ["x"])
    with pytest.raises(ValueError, match="independent"):
        fr.gauss_reduce([[x, y, z], [2 * x, 2 * y, 2 * z]], XYZ)
    with pytest.raises(ValueError, match="non-empty"):
        fr.involutivity([], XYZ)
    with pytest.raises(TypeError, match="symbol"):
        fr.integral_curve([-y, x], [x, y], [1, 0], "t")
