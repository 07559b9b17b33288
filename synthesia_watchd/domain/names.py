"""File names that are not valid UTF-8, as text people and APIs can take (pure).

On Linux a name is bytes. Python hands a name that is not UTF-8 (a Latin-1 share, an old
archive) over with *surrogate escapes*: the path round-trips through ``os`` calls, but any
attempt to encode it as UTF-8 (a log line, a JSON body, SQLite, the terminal) fails. Each
place that shows or sends a name picks one of the forms below; the path itself is kept as is.
"""

from __future__ import annotations

import os


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (False when it carries surrogate escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    r"""``text`` with each undecodable byte shown as ``\xNN``: readable, unambiguous enough."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def clean(text: str) -> str:
    """``text`` with each undecodable byte replaced by U+FFFD (for titles sent to an API)."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def to_db(path: str) -> str | bytes:
    """A path as SQLite can store it: text when it is UTF-8, else its raw bytes (a BLOB)."""
    return path if is_utf8(path) else os.fsencode(path)


def from_db(value: str | bytes) -> str:
    """The inverse of ``to_db``: the same ``str`` path Python gave us, surrogates and all."""
    return os.fsdecode(value) if isinstance(value, bytes) else value
