"""Ship the trained checkpoints the chapters use: ``data/models/`` and their SHA-256 table.

Usage::

    python tools/ship_models.py CACHE_MODELS_DIR            # copy, strip, hash, write the table
    python tools/ship_models.py CACHE_MODELS_DIR FOLDER --add --kernels "..." --command "..."
        # add one model to the table, keeping the others (with its own training record)

``CACHE_MODELS_DIR`` is ``$MANIFOLDLIB_DATA/models`` of a run of every chapter from an empty
cache (each model trained by ``manifoldlib.cached_train`` on this machine). For every model
folder and epoch listed in :data:`SHIP` the checkpoint is rewritten without its optimizer
state (plain SGD keeps none that matters for reloading; the chapters never resume training)
as ``data/models/<arch>-<key>/epoch-NNN.pt``, loadable with ``torch.load(weights_only=True)``,
and ``manifoldlib/shipped_models.json`` records each file's SHA-256, the configuration, the
command and the kernels it was trained with. ``cached_train`` then loads these files before
its cache, so every reader computes on the same weights whatever the CPU.

Which epochs: the last one of each configuration (it holds the whole training history) and
the ones a chapter loads (``cached_train(config, epoch=e)``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "data" / "models"
TABLE = ROOT / "manifoldlib" / "shipped_models.json"

#: Epochs shipped besides the last one: the book's MNIST CNN's checkpoint (epoch 10, every
#: MNIST chapter) and the epochs chapter 5 loads; the other models ship their last epoch only.
EXTRA_EPOCHS = {"mnist_cnn-d3bdaf8e53119581": (1, 3, 10, 20, 34)}


def _strip(ckpt: dict) -> dict:
    """The checkpoint without optimizer state, with plain containers only (weights_only)."""
    return {
        "config": ckpt["config"],
        "epoch": int(ckpt["epoch"]),
        "model": {k: v.detach().cpu().contiguous() for k, v in ckpt["model"].items()},
        "history": ckpt["history"],
    }


def _bytes(obj: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def ship(cache: Path, folders: list[str], kernels: str) -> dict:
    """Write the stripped checkpoints and return the table."""
    table: dict = {
        "made_by": "python tools/ship_models.py " + " ".join(folders),
        "trained_with": {
            "torch": torch.__version__,
            "kernels": kernels,
            "command": "every chapter run from an empty cache (pytest book), book profile",
        },
        "models": {},
    }
    for name in folders:
        src = cache / name
        files = sorted(src.glob("epoch-*.pt"))
        if not files:
            sys.exit(f"{src}: no checkpoints")
        last = max(int(f.stem.split("-")[1]) for f in files)
        extra = [e for e in EXTRA_EPOCHS.get(name, ()) if e < last]
        epochs = sorted({last, *extra})
        entry = {"epochs": {}}
        for e in epochs:
            ckpt = torch.load(src / f"epoch-{e:03d}.pt", map_location="cpu", weights_only=True)
            blob = _bytes(_strip(ckpt))
            dest = OUT / name / f"epoch-{e:03d}.pt"
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(blob)
            entry["epochs"][str(e)] = hashlib.sha256(blob).hexdigest()
            entry["config"] = ckpt["config"]
        table["models"][name] = entry
        size = sum(f.stat().st_size for f in (OUT / name).glob("*.pt"))
        print(f"{name}: epochs {epochs}, {size / 1e6:.2f} MB")
    return table


def main() -> None:
    """Ship the checkpoints named on the command line (default: every folder of the cache)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="$MANIFOLDLIB_DATA/models of the run")
    parser.add_argument("folders", nargs="*", help="model folders (default: all in the cache)")
    parser.add_argument("--kernels", default="torch default on the machine that ran it")
    parser.add_argument(
        "--add",
        action="store_true",
        help="add the named folders to the existing table (each with its own trained_with)",
    )
    parser.add_argument("--command", default=None, help="with --add: the command that trained it")
    args = parser.parse_args()
    folders = args.folders or sorted(p.name for p in args.cache.iterdir() if p.is_dir())
    if args.add and not args.folders:
        sys.exit("--add needs the model folders to add")
    table = ship(args.cache, folders, args.kernels)
    if args.add:
        new = table
        table = json.loads(TABLE.read_text())
        for name, entry in new["models"].items():
            entry["trained_with"] = {
                "torch": torch.__version__,
                "kernels": args.kernels,
                "command": args.command or "manifoldlib.cached_train(config)",
            }
            table["models"][name] = entry
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*.pt"))
    print(f"{len(table['models'])} models, {total / 1e6:.1f} MB in {OUT}")


if __name__ == "__main__":
    main()
