"""The one structlog configuration, and the redaction every log line passes through.

Our own events and stdlib records from libraries (boto3, urllib3, watchdog) all end in one
``logging`` handler whose ``ProcessorFormatter`` formats exceptions, redacts, then renders:
JSON lines for journald and Docker, readable lines on a terminal. Redaction runs last before
rendering, after tracebacks have become text, so a secret cannot slip out through an
exception message, a nested field or a third-party record.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import urllib.parse
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from os import PathLike
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from synthesia_watchd.domain.names import printable

MASK = "***"
MIN_SECRET_LENGTH = 8
LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("auto", "json", "console")
# Chatty libraries: their records pass through our renderer, but only from WARNING up.
LIBRARY_LOGGERS = ("boto3", "botocore", "s3transfer", "urllib3", "requests", "watchdog")

# Key names whose values are masked whatever they hold (compared after lower-casing and
# turning "-" into "_"): any of these words as a part of the key, or one of the whole names.
_SECRET_KEY_PARTS = frozenset({"token", "password", "passwd", "secret", "authorization", "apikey"})
_SECRET_KEY_NAMES = frozenset({"api_key", "x_api_key", "cookie", "set_cookie"})
# SigV4 material in URLs, headers and botocore messages. AWS access key ids are not secret by
# themselves but identify the temporary credentials, so they go too.
_URL_PATTERNS = (
    re.compile(r"(?i)((?:X-Amz-)?Credential=)[^\s,&\"'<>]+"),
    re.compile(r"(?i)((?:X-Amz-)?Signature=)[^\s,&\"'<>]+"),
    re.compile(r"(?i)(X-Amz-Security-Token=)[^\s,&\"'<>]+"),
    re.compile(r"\b()(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
)


class _SecretRegistry:
    """The secrets known at run time, with one compiled pattern rebuilt only on change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
            return
        # Query strings carry session tokens percent-encoded ("/" -> %2F, "+" -> %2B).
        forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
        with self._lock:
            if forms <= self._values:
                return
            self._values |= forms
            ordered = sorted(self._values, key=len, reverse=True)  # longest form wins
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern


_REGISTRY = _SecretRegistry()


def add_secret(value: str) -> None:
    """Register a secret to redact from every later log line (the API key, S3 tokens).

    Strings shorter than 8 characters are ignored: masking "abc" would mangle every line.
    """
    _REGISTRY.add(value)


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    _REGISTRY.clear()


def _is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    norm = key.lower().replace("-", "_")
    if norm in _SECRET_KEY_NAMES or "api_key" in norm:
        return True
    return any(part in _SECRET_KEY_PARTS for part in re.split(r"[_.\s]+", norm))


class Redactor:
    """structlog processor: mask registered secrets, secret-named keys and SigV4 material.

    Walks nested dicts, lists and tuples. Values of other types are turned into text first,
    since the renderer would print their repr anyway and a repr can carry a secret.
    """

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        # None means the process-wide registry, read live so later add_secret() calls count.
        self._own: _SecretRegistry | None = None
        if secrets is not None:
            self._own = _SecretRegistry()
            for s in secrets:
                self._own.add(s)

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        return {k: self._value(k, v) for k, v in event_dict.items()}

    def redact_text(self, text: str) -> str:
        """``text`` with every registered secret and SigV4 value replaced by ``***``."""
        pattern = (self._own or _REGISTRY).pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        for url_pattern in _URL_PATTERNS:
            text = url_pattern.sub(rf"\g<1>{MASK}", text)
        return text

    def _value(self, key: object, value: Any) -> Any:
        if _is_secret_key(key):
            return MASK
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.redact_text(printable(value))
        if isinstance(value, dict):
            return {self._walk(k): self._value(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._walk(v) for v in value]
        if isinstance(value, PathLike):
            return self.redact_text(printable(str(value)))
        return self.redact_text(repr(value) if isinstance(value, bytes) else str(value))


_HANDLER: logging.Handler | None = None


def _shared_processors() -> list[Processor]:
    """Steps every event takes before formatting, ours and stdlib records alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


_FIRST_KEYS = ("timestamp", "level", "event", "logger", "job_id", "file", "step")


def _order_keys(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Put timestamp, level, event and the job fields first: JSON lines read left to right."""
    ordered = {k: event_dict.pop(k) for k in _FIRST_KEYS if k in event_dict}
    ordered.update(event_dict)
    return ordered


#: Left out of console lines: the component is in the event, the step in the job's own lines.
_CONSOLE_SKIP = frozenset({"logger", "component", "step"})
_LEVEL_COLOURS = {"debug": "2", "info": "32", "warning": "33", "error": "31", "critical": "1;31"}


class ShortConsoleRenderer:
    """Terminal lines that read left to right: ``time LEVEL event #job file key=value ...``.

    Time is local HH:MM:SS (the JSON keeps full UTC); a traceback follows on its own lines.
    """

    def __init__(self, colors: bool) -> None:
        self.colors = colors

    def _paint(self, code: str, text: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colors else text

    @staticmethod
    def _clock(stamp: Any) -> str:
        try:
            when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            return str(stamp)
        return when.astimezone().strftime("%H:%M:%S")

    @staticmethod
    def _value(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return json.dumps(text) if (" " in text or not text) and text[:1] not in "[{" else text

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> str:
        ed = dict(event_dict)
        level = str(ed.pop("level", method_name)).lower()
        parts = [
            self._clock(ed.pop("timestamp", "")),
            self._paint(_LEVEL_COLOURS.get(level, "0"), f"{level.upper()[:5]:<5}"),
            self._paint("1", str(ed.pop("event", ""))),
        ]
        if "job_id" in ed:
            parts.append(f"#{ed.pop('job_id')}")
        if "file" in ed:
            parts.append(str(ed.pop("file")))
        trace = ed.pop("exception", None)
        parts += [
            f"{k}={self._value(v)}"
            for k, v in ed.items()
            if k not in _CONSOLE_SKIP and v is not None
        ]
        line = " ".join(p for p in parts if p)
        return f"{line}\n{trace}" if trace else line


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False


def configure_logging(
    *,
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Route structlog and stdlib logging to ``stream`` (stdout by default), redacted.

    ``fmt`` "auto" writes JSON lines unless the stream is a terminal. Calling it again
    replaces the previous configuration rather than adding a second handler.
    """
    level = level.lower()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    for secret in secrets:
        add_secret(secret)
    out = stream if stream is not None else sys.stdout
    _install_handler(out, _renderer(fmt, _is_tty(out)), level)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: loggers made at import time follow a later (re)configuration.
        cache_logger_on_first_use=False,
    )


def _renderer(fmt: str, tty: bool) -> Processor:
    """JSON lines for journald and Docker; short, coloured lines on a terminal."""
    if fmt == "json" or (fmt == "auto" and not tty):
        return structlog.processors.JSONRenderer()
    return ShortConsoleRenderer(colors=tty)


def _install_handler(out: TextIO, renderer: Processor, level: str) -> None:
    """The one root handler (replacing ours from an earlier call): every record, ours and the
    libraries', is formatted, redacted and rendered there."""
    global _HANDLER
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,  # traceback -> text, then redact it
                Redactor(),
                _order_keys,
                renderer,
            ],
        )
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
    _HANDLER = handler
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def reset_logging() -> None:
    """Undo configure_logging: remove our handler, structlog defaults, no secrets (tests)."""
    global _HANDLER
    root = logging.getLogger()
    if _HANDLER is not None:
        root.removeHandler(_HANDLER)
        _HANDLER = None
    root.setLevel(logging.WARNING)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    clear_secrets()


def get_logger(**bind: Any) -> structlog.stdlib.BoundLogger:
    """A logger named after the calling module, with ``bind`` as its initial context.

    Lazy: safe to create at import time, before configure_logging runs.
    """
    name = sys._getframe(1).f_globals.get("__name__", "synthesia_watchd")
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **bind)
    return logger


@contextmanager
def job_context(job_id: str | int, file: str | PathLike[str], step: str) -> Iterator[None]:
    """Bind job_id, file and step to every line logged inside the block (this thread/task).

    Nested blocks (a later step of the same job) restore the outer values on exit.
    """
    tokens = structlog.contextvars.bind_contextvars(
        job_id=str(job_id), file=str(file), step=str(step)
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
