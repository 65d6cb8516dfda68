"""The public namespace: a small core at the top level, every other name in its module, and
the tool that rewrites the old flat spellings (tools/rewrite_namespace.py)."""

# rewrite_namespace: skip
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import manifoldlib as ml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import rewrite_namespace as rw  # noqa: E402

sys.path.pop(0)


def test_the_core_is_small_and_every_module_is_reachable():
    assert len(ml.__all__) < 40
    assert set(ml.__all__) == {n for names in ml.CORE.values() for n in names}
    for module in ml.MODULES:
        mod = getattr(ml, module)
        assert mod.__name__ == f"manifoldlib.{module}"
        for name in mod.__all__:
            assert ml.home(name) == module
    for module, names in ml.CORE.items():
        for name in names:
            assert getattr(ml, name) is getattr(getattr(ml, module), name)
    with pytest.raises(AttributeError, match=r"manifoldlib\.ood\.energy_score"):
        ml.energy_score  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute"):
        ml.no_such_name  # noqa: B018


def test_the_0_1_0_aliases_are_gone():
    assert not hasattr(ml.leaf, "wilson_interval") and not hasattr(ml.leaf, "auroc")
    assert not hasattr(ml.geometry.MeanTrace, "__getitem__")


def test_rewrite_code_moves_names_and_is_idempotent():
    src = (
        "import manifoldlib as ml\n"
        "s = ml.energy_score(m, x) + ml.leaf.wilson_interval(1, 2)[0]\n"
        "p = ml.horizontal_path(m, a, b)  # core: stays\n"
        "q = ml.ood.energy_score(m, x)  # already at home\n"
        "from manifoldlib import MLP, auroc as au, ood  # note\n"
        "    from manifoldlib.algorithm1 import StallDetector, algorithm1_paths\n"
        "t = myml.energy_score\n"
    )
    out = rw.rewrite_code(src)
    assert out == (
        "import manifoldlib as ml\n"
        "s = ml.ood.energy_score(m, x) + ml.stats.wilson_interval(1, 2)[0]\n"
        "p = ml.horizontal_path(m, a, b)  # core: stays\n"
        "q = ml.ood.energy_score(m, x)  # already at home\n"
        "from manifoldlib import MLP, ood  # note\n"
        "from manifoldlib.stats import auroc as au\n"
        "    from manifoldlib.paths import StallDetector\n"
        "    from manifoldlib.algorithm1 import algorithm1_paths\n"
        "t = myml.energy_score\n"
    )
    assert rw.rewrite_code(out) == out
    assert rw.rewrite_file(Path(__file__)) is None  # the skip mark: old spellings on purpose
    ch18 = 'print(f"{exact[\'trace\']:.4f}", exact["trace"])'
    assert rw.rewrite_code(ch18, "book/18_computing_fast.ipynb") == (
        'print(f"{exact.mean:.4f}", exact.mean)'
    )
    assert rw.rewrite_code(ch18, "book/05_training_trace.ipynb") == ch18


def test_rewrite_notebook_touches_code_sources_only(tmp_path):
    nb = {
        "cells": [
            {"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["ml.energy_score\n"]},
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "b",
                "metadata": {"tags": []},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": ["ml.psnr\n"]}],
                "source": ["x = ml.psnr(a, b)\n", "y = ml.load_mnist()"],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "c.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    code = rw.main([str(path), "--no-format"])
    assert code == 0
    new = json.loads(path.read_text())
    assert new["cells"][1]["source"] == ["x = ml.images.psnr(a, b)\n", "y = ml.load_mnist()"]
    assert new["cells"][0] == nb["cells"][0]
    assert new["cells"][1]["outputs"] == nb["cells"][1]["outputs"]
    once = path.read_text()
    assert rw.main([str(path), "--check"]) == 0 and path.read_text() == once
    md = tmp_path / "R.md"
    md.write_text("ml.psnr in text\n```python\nml.psnr(a, b)\n```\n")
    rw.main([str(md)])
    assert md.read_text() == "ml.psnr in text\n```python\nml.images.psnr(a, b)\n```\n"
    rw.main([str(md), str(path), "--prose", "--no-format"])
    assert md.read_text().startswith("ml.images.psnr in text\n")
    assert json.loads(path.read_text())["cells"][0]["source"] == ["ml.ood.energy_score\n"]


def test_the_package_and_its_tests_use_the_new_spellings():
    """After the rewrite at merge, ``--check`` over the repository reports nothing."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "rewrite_namespace.py"), "--check", "manifoldlib"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stdout
