"""Heavy experiments behind the book's chapters: ``python -m experiments.<name>``, results in ``results/``."""
