"""Language codes as an operator meets them: near-miss hints and the `languages` listing.

Synthesia's dubbing codes mix bare languages (``it``) and regional ones (``fr-FR``), so a
spelling-distance hint alone points ``it-IT`` at ``ta-IN``. A hint first looks for codes of the
same language (the part before ``-``), and only then for similar spellings. Names come from
``langcodes`` (with its ``language_data`` tables): the CLDR names, kept up to date upstream,
instead of a hand-written table; it is imported only when names are asked for.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from synthesia_watchd.domain import contract

#: Shown for the source language ``auto``.
AUTO_NAME = "detect automatically"


def _primary(code: str) -> str:
    return code.split("-", 1)[0].lower()


def close_codes(code: str, allowed: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` allowed codes an operator most likely meant by ``code``.

    Same language first (``it-IT`` -> ``it``; ``pt`` -> ``pt-BR``, ``pt-PT``), preferring the
    bare language code, then a code with the same region; else the closest spellings.
    """
    choices = sorted(set(allowed))
    by_lower = {c.lower(): c for c in choices}
    if code.lower() in by_lower:
        return [by_lower[code.lower()]]
    primary = _primary(code)
    region = code.split("-", 1)[1].lower() if "-" in code else ""
    same = [c for c in choices if _primary(c) == primary]
    if same:
        same.sort(key=lambda c: (c.lower() != primary, region not in c.lower(), c))
        return same[:n]
    return difflib.get_close_matches(code, choices, n=1, cutoff=0.6)


def hint(code: str, allowed: Iterable[str]) -> str:
    """A " (did you mean ...?)" hint for ``code``, or empty when nothing is close."""
    close = close_codes(code, allowed)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


def name_of(code: str) -> str:
    """English name of a language code (the code itself when no name is known)."""
    if code == "auto":
        return AUTO_NAME
    try:
        import langcodes
    except ImportError:  # names are a nicety; codes alone still work
        return code
    try:
        return str(langcodes.Language.get(code).display_name())
    except (ValueError, LookupError):
        return code


def listing(source: bool = False) -> list[dict[str, str]]:
    """Every accepted code with its name, sorted by code: targets, or with ``source`` the
    spoken languages a source may be in (plus ``auto``)."""
    codes = sorted(contract.INPUT_LANGUAGES if source else contract.OUTPUT_LANGUAGES)
    if source:
        codes = ["auto", *codes]
    return [{"code": c, "name": name_of(c)} for c in codes]
