"""Config checks of what a watch says: languages, names, title templates, schedules, post-actions.

Their messages point at the way out (``synthesia-watchd languages`` for a wrong code, the
placeholders a title may use, why failures cannot ``delete``). Each check follows checks.py's
protocol.
"""

from __future__ import annotations

import re
import string
from typing import Any

from synthesia_watchd.domain.control import BadWindow, parse_window

from . import languages
from .checks import Check, Context, Invalid, Reported, kind_of, nonempty_text, suggest
from .model import PostAction
from .yamlmarks import KeyPath

#: The placeholders a watch's ``title`` template may use.
TITLE_FIELDS = ("stem", "name", "watch", "lang_list")


def language(allowed: frozenset[str], what: str, extra: tuple[str, ...] = ()) -> Check:
    def run(value: Any, path: KeyPath, ctx: Context) -> str:
        text = ctx.text(value, path)
        if text is None:
            raise Invalid(f"expected a language code, got {kind_of(value)}")
        if text in allowed or text in extra:
            return text
        near = languages.hint(text, allowed | set(extra))
        raise Invalid(
            f"{text!r} is not a Synthesia {what} language{near}; "
            f"`synthesia-watchd languages{' --source' if what == 'source' else ''}` lists them"
        )

    return run


def post_action(*, allow_delete: bool) -> Check:
    words = ("keep", "delete") if allow_delete else ("keep",)

    def run(value: Any, path: KeyPath, ctx: Context) -> PostAction:
        shape = f"{' or '.join(words)} or {{move: /folder}}"
        if isinstance(value, dict):
            extra = [k for k in value if k != "move"]
            for k in extra:
                ctx.error((*path, k), f"unknown key; expected {shape}")
            if "move" not in value:
                if not extra:
                    ctx.error(path, f"expected {shape}")
                raise Reported
            try:
                target = ctx.path(nonempty_text(value["move"], (*path, "move"), ctx))
            except Invalid as exc:
                ctx.error((*path, "move"), str(exc))
                raise Reported from None
            if extra:
                raise Reported
            return PostAction("move", target)
        text = ctx.text(value, path)
        if text in words:
            return PostAction(text)  # type: ignore[arg-type]
        hint = (
            " (delete is not offered for failures: keep the file for a retry)"
            if (text == "delete")
            else suggest(text or "", (*words, "move"))
        )
        raise Invalid(f"expected {shape}; got {text!r}{hint}")

    return run


def watch_name(value: Any, path: KeyPath, ctx: Context) -> str:
    text = nonempty_text(value, path, ctx)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", text) or text in (".", ".."):
        raise Invalid(f"{text!r}: use only letters, digits, '_', '.' and '-'")
    return text


def title_template(value: Any, path: KeyPath, ctx: Context) -> str:
    text = nonempty_text(value, path, ctx)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise Invalid(f"bad template: {exc} (write {{{{ and }}}} for literal braces)") from None
    for f in fields:
        if f not in TITLE_FIELDS:
            raise Invalid(
                f"unknown placeholder {{{f}}}; use {', '.join('{' + t + '}' for t in TITLE_FIELDS)}"
            )
    return text


def schedule_window(value: Any, path: KeyPath, ctx: Context) -> str:
    """A schedule window such as ``"mon-fri 22:00-06:00"`` (see control.parse_window)."""
    text = nonempty_text(value, path, ctx)
    try:
        parse_window(text)
    except BadWindow as exc:
        raise Invalid(str(exc)) from None
    return text.strip()
