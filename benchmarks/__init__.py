"""Benchmarks of manifoldlib against the paper's reference algorithms (``python -m benchmarks``).

See ``benchmarks/README.md``. Kept out of the unit tests (pytest collects ``tests`` and
``book`` only).
"""
