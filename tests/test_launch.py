"""What the launch buttons need: the Colab/Binder set-up cell and Binder's pins."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import setup_cell  # noqa: E402


def pins(path: Path) -> dict[str, str]:
    """Package name (normalised) -> the exact version pinned with ==."""
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)", line)
        if m:
            found[m.group(1).lower().replace("_", "-")] = m.group(2)
    return found


def names(path: Path) -> set[str]:
    """Every package named in a requirements file (pinned or not)."""
    out = set()
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z][A-Za-z0-9_.\-]*)", line)
        if m and not line.lstrip().startswith(("-", "#")):
            out.add(m.group(1).lower().replace("_", "-"))
    return out


def test_every_chapter_starts_with_the_current_setup_cell():
    assert setup_cell.main(["--check"]) == 0


def test_setup_cell_pins_the_books_version_from_the_configured_repository():
    src = setup_cell.cell_source()
    version = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert f"@v{version.group(1)}" in src
    assert "url: " + src.split("git+")[1].split("@v")[0] in (ROOT / "_config.yml").read_text()


def test_setup_cell_is_silent_where_everything_is_installed(capsys):
    assert importlib.util.find_spec("manifoldlib") is not None
    namespace: dict = {}
    exec(compile(setup_cell.cell_source(), "setup", "exec"), namespace)  # noqa: S102
    assert capsys.readouterr().out == ""
    assert namespace["missing"] == []


def test_binder_pins_agree_with_requirements():
    top, binder = pins(ROOT / "requirements.txt"), pins(ROOT / "binder" / "requirements.txt")
    for name, version in binder.items():
        if name in top:
            assert top[name] == version, f"binder pins {name}=={version}, requirements {top[name]}"
    # Every runtime package the chapters need is in Binder's image (tests and linters aside).
    runtime = names(ROOT / "requirements.txt") - {
        "pytest",
        "nbval",
        "hypothesis",
        "ruff",
        "playwright",
        "jupyter-book",
        "sphinx-proof",
        "sphinx-exercise",
        "sphinx-book-theme",  # the book build's theme pair (tools/build_book.py), not a runtime
        "pydata-sphinx-theme",
    }
    missing = runtime - names(ROOT / "binder" / "requirements.txt")
    assert not missing, f"binder/requirements.txt lacks {sorted(missing)}"


def test_binder_runtime_is_the_python_ci_uses():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"


def test_progress_variable_turns_on_the_training_bar(monkeypatch, tmp_path, capsys):
    import manifoldlib as ml

    config = ml.TrainConfig(
        arch="mlp",
        arch_kwargs=(("in_features", 2), ("hidden", (8,)), ("num_classes", 2)),
        dataset="toy",
        source="moons",
        train_per_class=20,
        epochs=1,
        batch_size=10,
    )
    monkeypatch.setenv("MANIFOLDLIB_PROGRESS", "1")
    ml.cached_train(config, cache_dir=tmp_path, progress=False)
    err = capsys.readouterr().err
    assert "it/s" in err or "s/it" in err, err[-300:]
    monkeypatch.delenv("MANIFOLDLIB_PROGRESS")
    ml.cached_train(config, cache_dir=tmp_path / "again", progress=False)
    assert capsys.readouterr().err == ""


def test_package_declares_what_it_imports():
    # A pip install (Colab) gets only what pyproject.toml declares: every third-party module
    # manifoldlib imports, at the top or lazily, must be a declared dependency.
    import ast
    import sys

    declared = re.findall(r'^\s*"([A-Za-z0-9_.-]+)', _dependencies(), flags=re.M)
    declared = {re.split(r"[<>=!~\[]", d)[0].lower() for d in declared}
    distribution = {"PIL": "pillow", "sklearn": "scikit-learn"}
    imported = set()
    for path in (ROOT / "manifoldlib").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "manifoldlib"}
    missing = {m for m in third_party if distribution.get(m, m).lower() not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {sorted(missing)}"


def _dependencies() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.M | re.S).group(1)
