"""Export chapter 4's toy classifiers for the live foliation explorer, and build its page.

The chapter "Foliations you can see" (book/04) trains small MLPs on 2-D toy data: two
interleaving moons (C = 2) and three blobs (C = 3), each with ReLU and with tanh. This tool
trains (or loads from the cache) the same networks, with the chapter's ``TrainConfig``, and
writes:

- ``book/foliation_explorer/weights.json``: their weights (rounded to float32, so that the
  browser and ``manifoldlib`` compute with the very same numbers), a few test points, and the
  settings of the explorer's paths;
- ``book/foliation_explorer/explorer.html``: one self-contained HTML fragment (no request at
  run time, works from ``file://``) made of ``explorer.css``, the weights and ``explorer.js``,
  inlined. Chapter 4 includes it with a ``{raw} html`` directive.

Usage (from the repository root)::

    PYTHONPATH=$PWD python tools/export_toy_explorer.py          # weights + page
    PYTHONPATH=$PWD python tools/export_toy_explorer.py --html   # page only (after editing JS)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "foliation_explorer"

#: The explorer's models: data set name and activation, as in chapter 4.
MODELS = (("moons", "relu"), ("moons", "tanh"), ("blobs2d", "relu"), ("blobs2d", "tanh"))

#: Algorithm 1 in the explorer (the plane is [-3, 3]^2), as in chapter 4's paths.
PATH_SETTINGS = {"step_size": 0.02, "max_steps": 600, "threshold": 0.05, "box": 3.0}


def toy_config(name: str, activation: str):
    """Chapter 4's training configuration (kept identical, so the cache is shared)."""
    import manifoldlib as ml

    n_in, n_classes = ml.toy.TOY_DATASETS[name]
    return ml.TrainConfig(
        arch="mlp",
        arch_kwargs=(
            ("in_features", n_in),
            ("hidden", (16, 16)),
            ("num_classes", n_classes),
            ("activation", activation),
        ),
        dataset="toy",
        source=name,
        epochs=40,
        batch_size=25,
        lr=0.05,
        momentum=0.9,
        threads=1,
    )


def _f32(v: float) -> float:
    """The shortest decimal that reads back as the same float32 (JSON stays small)."""
    return float(str(np.float32(v)))


def export_model(name: str, activation: str) -> dict:
    """One trained toy MLP as plain lists (weights in float32 precision) plus test points."""
    import manifoldlib as ml

    net = ml.cached_train(toy_config(name, activation), progress=False).model.eval()
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    layers = []
    for lin in linears:
        w = lin.weight.detach().float().numpy()
        b = lin.bias.detach().float().numpy()
        layers.append({"W": [[_f32(v) for v in row] for row in w], "b": [_f32(v) for v in b]})
    data = ml.load_toy(name)
    keep = np.arange(0, len(data.test_y), 4)
    points = [
        [
            round(float(data.test_x[i, 0]), 3),
            round(float(data.test_x[i, 1]), 3),
            int(data.test_y[i]),
        ]
        for i in keep
    ]
    n_in, n_classes = ml.toy.TOY_DATASETS[name]
    return {
        "dataset": name,
        "activation": activation,
        "classes": n_classes,
        "layers": layers,
        "points": points,
    }


def load_exported(entry: dict) -> torch.nn.Module:
    """The exported weights as a float64 ``manifoldlib`` MLP (for tests and checks)."""
    from manifoldlib.models import MLP

    hidden = tuple(len(layer["b"]) for layer in entry["layers"][:-1])
    net = MLP(2, hidden, entry["classes"], entry["activation"]).double().eval()
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, layer in zip(linears, entry["layers"], strict=True):
            lin.weight.copy_(torch.tensor(layer["W"], dtype=torch.float64))
            lin.bias.copy_(torch.tensor(layer["b"], dtype=torch.float64))
    return net


def write_weights() -> dict:
    """Export every model of :data:`MODELS` into ``weights.json``."""
    payload = {
        "source": "tools/export_toy_explorer.py (chapter 4's TrainConfigs)",
        "paths": PATH_SETTINGS,
        "models": {f"{n}-{a}": export_model(n, a) for n, a in MODELS},
    }
    text = json.dumps(payload, separators=(",", ":"))
    (OUT / "weights.json").write_text(text + "\n")
    return payload


def write_html() -> Path:
    """Inline explorer.css, weights.json and explorer.js into one HTML fragment."""
    css = (OUT / "explorer.css").read_text()
    js = (OUT / "explorer.js").read_text()
    weights = (OUT / "weights.json").read_text().strip()
    body = (OUT / "explorer_body.html").read_text()
    for text, what in ((js, "explorer.js"), (weights, "weights.json")):
        if "</script" in text.lower():
            raise SystemExit(f"{what} must not contain '</script'")
    html = (
        "<!-- Generated by tools/export_toy_explorer.py from book/foliation_explorer/"
        "{explorer.css, explorer_body.html, weights.json, explorer.js}: edit those. -->\n"
        f"<style>\n{css}</style>\n{body}"
        f'<script type="application/json" id="fx-weights">{weights}</script>\n'
        f"<script>\n{js}</script>\n"
    )
    path = OUT / "explorer.html"
    path.write_text(html)
    return path


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--html", action="store_true", help="only rebuild explorer.html")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.html:
        torch.set_num_threads(1)
        write_weights()
    path = write_html()
    print(f"wrote {path.relative_to(ROOT)}: {path.stat().st_size / 1024:.1f} KB")


if __name__ == "__main__":
    main()
