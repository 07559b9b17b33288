"""synthesia-watchd: a drop-folder dubbing daemon for the Synthesia API."""

__version__ = "0.1.0"
