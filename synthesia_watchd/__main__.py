"""``python -m synthesia_watchd``: the same as the ``synthesia-watchd`` command."""

from .cli import entrypoint

entrypoint()
