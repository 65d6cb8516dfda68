"""Export the book's MNIST MLP for the live digit page, and build the page's HTML fragment.

The page "Draw a digit" (book/live_digit.md) computes the model's geometry in the reader's
browser, in float64 JavaScript, from weights inlined in the page. This tool loads chapter 3's
ReLU MLP 784-64-64-10 (``Profile.mnist_mlp_config("relu")`` pinned to the embedded MNIST,
so the model cache is shared; checkpoint of epoch 10) and writes:

- ``book/live_digit/weights.json``: the three layers' weights and biases as little-endian
  float32 bytes in base64 (the browser and the tests' float64 torch model use the very same
  numbers), 100 test digits of the embedded MNIST test split (the first 10 of each class, as
  uint8 in base64), the normalisation, the checkpoint's configuration key and epoch, the test
  accuracy of the exported weights (float64, on the 1,000 embedded test digits) and the
  SHA-256 of the weight bytes. Same checkpoint -> same bytes (fixed key order, no time stamp).
- ``book/live_digit/live.html``: one self-contained HTML fragment (no request at run time,
  works from ``file://``): ``live.css``, ``live_body.html``, the weights and ``live.js``,
  inlined. ``book/live_digit.md`` includes it with a ``{raw} html`` directive.

Usage (from the repository root)::

    MANIFOLDLIB_DATA=... PYTHONPATH=$PWD python tools/export_live_digit.py   # weights + page
    PYTHONPATH=$PWD python tools/export_live_digit.py --html                 # page only
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "live_digit"

#: The checkpoint exported (chapter 3 uses the same epoch).
EPOCH = 10
#: The model's normalisation (``manifoldlib.data``: MNIST mean and standard deviation).
MEAN, STD = 0.1307, 0.3081
#: Test digits shipped with the page: the first this many of each class of the test split.
DIGITS_PER_CLASS = 10


def config():
    """Chapter 3's ReLU MLP 784-64-64-10 on the embedded MNIST (the book profile's model)."""
    import manifoldlib as ml

    book = ml.Profile(name="book", mnist_source="embedded", threads=2, device="cpu")
    return book.mnist_mlp_config("relu")


def test_digits() -> tuple[np.ndarray, np.ndarray]:
    """The embedded MNIST test split as grey levels: ``(1000, 784)`` uint8 and labels ``(1000,)``.

    ``ml.load_mnist`` stores ``(k / 255 - mean) / std`` in float32; undoing that and rounding
    gives the original byte ``k`` back exactly (the float32 error is below 1e-4 grey levels).
    """
    import manifoldlib as ml

    data = ml.load_mnist("embedded")
    if data.mean != (MEAN,) or data.std != (STD,):
        raise SystemExit(f"manifoldlib's MNIST normalisation changed: {data.mean}, {data.std}")
    grey = (data.test_x.double() * STD + MEAN) * 255
    digits = grey.round().clamp(0, 255).to(torch.uint8).reshape(-1, 784).numpy()
    assert float((grey.reshape(-1, 784) - torch.from_numpy(digits).double()).abs().max()) < 1e-3
    return digits, data.test_y.numpy()


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(array.tobytes()).decode("ascii")


def weight_bytes(net: torch.nn.Module) -> list[tuple[np.ndarray, np.ndarray]]:
    """The MLP's layers as little-endian float32 arrays ``(W (out, in), b (out,))``."""
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    return [
        (
            lin.weight.detach().cpu().numpy().astype("<f4"),
            lin.bias.detach().cpu().numpy().astype("<f4"),
        )
        for lin in linears
    ]


def load_exported(payload: dict) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The exported weights as a float64 pixel-space model, and the shipped test digits.

    Returns:
        ``model`` (scores of pixel images ``(B, 784)`` in [0, 1]: the normalisation
        ``(p - mean) / std`` is its first layer, then the MLP, all float64), the digits
        ``(N, 784)`` float64 in [0, 1] and their labels ``(N,)``.
    """
    from manifoldlib.models import MLP

    layers = payload["layers"]
    hidden = tuple(layer["out"] for layer in layers[:-1])
    mlp = MLP(layers[0]["in"], hidden, layers[-1]["out"], "relu").double().eval()
    linears = [m for m in mlp.net if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for lin, layer in zip(linears, layers, strict=True):
            w = np.frombuffer(base64.b64decode(layer["W"]), "<f4").reshape(
                layer["out"], layer["in"]
            )
            b = np.frombuffer(base64.b64decode(layer["b"]), "<f4")
            lin.weight.copy_(torch.from_numpy(w.astype(np.float64)))
            lin.bias.copy_(torch.from_numpy(b.astype(np.float64)))
    mean, std = payload["normalisation"]["mean"], payload["normalisation"]["std"]

    class Normalise(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x - mean) / std

    model = torch.nn.Sequential(Normalise(), mlp).double().eval()
    d = payload["digits"]
    raw = np.frombuffer(base64.b64decode(d["pixels"]), np.uint8).reshape(-1, 784)
    pixels = torch.from_numpy(raw.astype(np.float64) / 255.0)
    return model, pixels, torch.tensor(d["labels"])


def export() -> dict:
    """The payload of ``weights.json`` (see the module docstring)."""
    import manifoldlib as ml

    cfg = config()
    net = ml.cached_train(cfg, progress=False, epoch=EPOCH).model.eval()
    layers, digest = [], hashlib.sha256()
    for w, b in weight_bytes(net):
        digest.update(w.tobytes())
        digest.update(b.tobytes())
        layers.append({"in": w.shape[1], "out": w.shape[0], "W": _b64(w), "b": _b64(b)})
    test_x, test_y = test_digits()
    keep = np.concatenate([np.flatnonzero(test_y == c)[:DIGITS_PER_CLASS] for c in range(10)])
    payload = {
        "source": "tools/export_live_digit.py (chapter 3's ReLU MLP 784-64-64-10)",
        "checkpoint": {
            "config_key": f"{cfg.arch}-{cfg.key()}",
            "epoch": EPOCH,
            "config": cfg.to_dict(),
        },
        "normalisation": {"mean": MEAN, "std": STD},
        "layers": layers,
        "weights_sha256": digest.hexdigest(),
        "digits": {
            "pixels": _b64(test_x[keep].astype(np.uint8)),
            "labels": [int(v) for v in test_y[keep]],
            "test_index": [int(v) for v in keep],
        },
    }
    # Test accuracy of the exported (float32-rounded) weights, evaluated in float64.
    model, _, _ = load_exported(payload)
    with torch.no_grad():
        pixels = torch.from_numpy(test_x.astype(np.float64) / 255.0)
        pred = model(pixels).argmax(1).numpy()
    payload["test_accuracy"] = {
        "correct": int((pred == test_y).sum()),
        "total": len(test_y),
        "accuracy": round(float((pred == test_y).mean()), 4),
    }
    return payload


def write_weights() -> dict:
    """Write ``weights.json``; same checkpoint -> same bytes."""
    payload = export()
    (OUT / "weights.json").write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    return payload


def render_html() -> str:
    """The page fragment: live.css, live_body.html, weights.json and live.js inlined."""
    css = (OUT / "live.css").read_text()
    js = (OUT / "live.js").read_text()
    weights = (OUT / "weights.json").read_text().strip()
    body = (OUT / "live_body.html").read_text()
    for text, what in ((js, "live.js"), (weights, "weights.json")):
        if "</script" in text.lower():
            raise SystemExit(f"{what} must not contain '</script'")
    return (
        "<!-- Generated by tools/export_live_digit.py from book/live_digit/"
        "{live.css, live_body.html, weights.json, live.js}: edit those. -->\n"
        f"<style>\n{css}</style>\n{body}"
        f'<script type="application/json" id="ld-weights">{weights}</script>\n'
        f"<script>\n{js}</script>\n"
    )


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--html", action="store_true", help="only rebuild live.html")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.html:
        torch.set_num_threads(1)
        payload = write_weights()
        acc = payload["test_accuracy"]
        print(
            f"weights: {payload['checkpoint']['config_key']} epoch {EPOCH}, "
            f"test accuracy {acc['correct']}/{acc['total']}, sha256 {payload['weights_sha256']}"
        )
    path = OUT / "live.html"
    path.write_text(render_html())
    print(f"wrote {path.relative_to(ROOT)}: {path.stat().st_size / 1024:.1f} KB")


if __name__ == "__main__":
    main()
