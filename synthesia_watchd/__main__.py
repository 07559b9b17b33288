"""``python -m synthesia_watchd``: the same as the ``synthesia-watchd`` command."""

from .service.cli import entrypoint

entrypoint()
