"""Logging configuration: renderer choice, context binding, and that no secret gets out."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from synthesia_watchd.telemetry.logsetup import (
    Redactor,
    add_secret,
    configure_logging,
    get_logger,
    job_context,
    reset_logging,
)

SECRET = "sk-live-0123456789abcdef"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+abc/def=="


class TtyStream(io.StringIO):
    """A StringIO that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave stdlib logging and structlog as each test found them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    reset_logging()
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_when_not_a_terminal() -> None:
    """fmt=auto on a pipe writes one JSON object per line with timestamp, level, logger."""
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info("scan_finished", found=3)
    (line,) = _json_lines(out)
    assert line["event"] == "scan_finished"
    assert line["found"] == 3
    assert line["level"] == "info"
    assert line["logger"] == __name__
    assert line["timestamp"].endswith("Z")  # ISO 8601, UTC


def test_console_on_a_terminal() -> None:
    """fmt=auto on a tty renders readable coloured lines, not JSON."""
    out = TtyStream()
    configure_logging(stream=out)
    get_logger().warning("disk_nearly_full", free_gb=2)
    text = out.getvalue()
    assert "disk_nearly_full" in text
    assert "free_gb" in text
    assert "\x1b[" in text  # colours on a terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_forced_formats() -> None:
    """fmt=json wins on a terminal; fmt=console off a terminal has no colour codes."""
    tty = TtyStream()
    configure_logging(stream=tty, fmt="json")
    get_logger().info("a")
    assert _json_lines(tty)[0]["event"] == "a"

    pipe = io.StringIO()
    configure_logging(stream=pipe, fmt="console")
    get_logger().info("b")
    assert "b" in pipe.getvalue()
    assert "\x1b[" not in pipe.getvalue()
    assert not pipe.getvalue().lstrip().startswith("{")


def test_default_stream_is_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a stream, lines go to stdout (what journald and Docker collect)."""
    configure_logging()
    get_logger().info("to_stdout")
    captured = capsys.readouterr()
    assert json.loads(captured.out)["event"] == "to_stdout"
    assert captured.err == ""


def test_rejects_unknown_level_and_format() -> None:
    """A typo in level or format is an error, not silently 'info'."""
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="verbose", stream=io.StringIO())
    with pytest.raises(ValueError, match="log format"):
        configure_logging(fmt="xml", stream=io.StringIO())


def test_reconfiguring_replaces_the_handler() -> None:
    """Configuring twice sends each line once, to the newest stream only."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(stream=first)
    configure_logging(stream=second)
    get_logger().info("once")
    assert first.getvalue() == ""
    assert len(_json_lines(second)) == 1


def test_logger_made_before_configuration_follows_it() -> None:
    """A module-level logger created before configure_logging still uses the later config."""
    early = get_logger(component="watcher")
    out = io.StringIO()
    configure_logging(stream=out)
    early.info("late")
    (line,) = _json_lines(out)
    assert line["component"] == "watcher"


def test_levels_and_library_loggers() -> None:
    """debug is dropped at info; library records below WARNING are dropped, above are kept."""
    out = io.StringIO()
    configure_logging(stream=out, level="info")
    get_logger().debug("noise")
    logging.getLogger("botocore.endpoint").info("sending request")
    logging.getLogger("urllib3.connectionpool").warning("retrying connection")
    lines = _json_lines(out)
    assert [(ln["logger"], ln["level"]) for ln in lines] == [("urllib3.connectionpool", "warning")]
    assert lines[0]["event"] == "retrying connection"


def test_job_context_binds_and_restores() -> None:
    """job_context puts job_id, file and step on every line and restores the outer values."""
    out = io.StringIO()
    configure_logging(stream=out)
    log = get_logger()
    with job_context(7, "/drop/a.mp4", "upload"):
        log.info("outer")
        with job_context(7, "/drop/a.mp4", "submit"):
            log.info("inner")
        log.info("outer_again")
    log.info("outside")
    lines = {ln["event"]: ln for ln in _json_lines(out)}
    assert (lines["outer"]["job_id"], lines["outer"]["file"]) == ("7", "/drop/a.mp4")
    assert lines["outer"]["step"] == "upload"
    assert lines["inner"]["step"] == "submit"
    assert lines["outer_again"]["step"] == "upload"
    assert "job_id" not in lines["outside"]


def test_job_context_is_per_thread() -> None:
    """A job bound in one worker thread does not leak into another thread's lines."""
    out = io.StringIO()
    configure_logging(stream=out)
    log = get_logger()
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        with job_context("j1", "a.mp4", "poll"):
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    log.info("main_thread")
    release.set()
    t.join(5)
    assert "job_id" not in _json_lines(out)[0]


# --- redaction ---------------------------------------------------------------------------------


def test_secret_in_event_and_nested_fields() -> None:
    """A secret passed to configure_logging is masked in the event and in nested values."""
    out = io.StringIO()
    configure_logging(stream=out, secrets=[SECRET])
    get_logger().info(
        f"calling with {SECRET}",
        request={"headers": [f"X-Trace: {SECRET}"], "retries": (1, SECRET)},
    )
    text = out.getvalue()
    assert SECRET not in text
    (line,) = _json_lines(out)
    assert line["event"] == "calling with ***"
    assert line["request"]["headers"] == ["X-Trace: ***"]
    assert line["request"]["retries"] == [1, "***"]


def test_secret_added_at_run_time_in_traceback() -> None:
    """A secret registered after configuration is masked inside a rendered traceback."""
    out = io.StringIO()
    configure_logging(stream=out)
    add_secret(SESSION_TOKEN)
    log = get_logger()
    try:
        raise RuntimeError(f"S3 refused token {SESSION_TOKEN}")
    except RuntimeError:
        log.exception("upload_failed")
    text = out.getvalue()
    assert SESSION_TOKEN not in text
    (line,) = _json_lines(out)
    assert "RuntimeError: S3 refused token ***" in line["exception"]


def test_secret_in_console_traceback() -> None:
    """The console renderer prints the redacted traceback too."""
    out = TtyStream()
    configure_logging(stream=out, secrets=[SECRET])
    try:
        raise ValueError(SECRET)
    except ValueError:
        get_logger().exception("boom")
    assert SECRET not in out.getvalue()
    assert "ValueError: ***" in out.getvalue()


def test_secret_in_stdlib_record_from_a_library() -> None:
    """botocore's own logging (args and exc_info) passes through the same redaction."""
    out = io.StringIO()
    configure_logging(stream=out, secrets=[SESSION_TOKEN])
    boto = logging.getLogger("botocore")
    boto.warning("credentials: token=%s", SESSION_TOKEN)
    try:
        raise ConnectionError(f"reset while sending {SESSION_TOKEN}")
    except ConnectionError:
        boto.error("request failed", exc_info=True)
    text = out.getvalue()
    assert SESSION_TOKEN not in text
    first, second = _json_lines(out)
    assert first["event"] == "credentials: token=***"
    assert first["logger"] == "botocore"
    assert "ConnectionError: reset while sending ***" in second["exception"]


def test_percent_encoded_secret_is_masked() -> None:
    """A session token that appears URL-encoded in a query string is masked as well."""
    out = io.StringIO()
    configure_logging(stream=out, secrets=[SESSION_TOKEN])
    from urllib.parse import quote

    get_logger().info("fetch", url=f"https://x.example/o?tok={quote(SESSION_TOKEN, safe='')}")
    assert quote(SESSION_TOKEN, safe="") not in out.getvalue()
    assert _json_lines(out)[0]["url"] == "https://x.example/o?tok=***"


def test_secret_named_keys_are_masked_whatever_the_value() -> None:
    """Values under secret-looking keys are masked even when not registered; others kept."""
    out = io.StringIO()
    configure_logging(stream=out)
    get_logger().info(
        "creds",
        api_key="not-registered-1",
        session_token="not-registered-2",
        password="hunter2",
        headers={"Authorization": "Bearer abc", "X-Amz-Security-Token": "t", "Accept": "*/*"},
        secret_access_key="xyz",
        key="uploads/a.mp4",
        tokens_used=12,
    )
    line = _json_lines(out)[0]
    for k in ("api_key", "session_token", "password", "secret_access_key"):
        assert line[k] == "***", k
    assert line["headers"] == {
        "Authorization": "***",
        "X-Amz-Security-Token": "***",
        "Accept": "*/*",
    }
    assert line["key"] == "uploads/a.mp4"
    assert line["tokens_used"] == 12


def test_sigv4_material_in_urls_and_headers() -> None:
    """Presigned URL signatures, credentials and tokens, and SigV4 headers are masked."""
    url = (
        "https://bucket.s3.amazonaws.com/a.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=ASIAXYZXYZXYZXYZXYZ1%2F20250101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Security-Token=FwoGZXIvYXdzEBEaDE&X-Amz-Signature=0badc0ffee&partNumber=3"
    )
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027"
    )
    redact = Redactor(secrets=[])
    out = redact(None, "info", {"event": f"PUT {url}", "auth": header, "k": "AKIAIOSFODNN7EXAMPLE"})
    joined = json.dumps(out)
    for leaked in ("ASIAXYZXYZXYZXYZXYZ1", "FwoGZXIvYXdzEBEaDE", "0badc0ffee", "fe5f80f7"):
        assert leaked not in joined
    assert "AKIAIOSFODNN7EXAMPLE" not in joined
    assert "partNumber=3" in out["event"]  # the rest of the URL stays useful
    # "auth" is not a secret-looking key: its SigV4 values are masked, the shape is kept.
    assert out["auth"] == (
        "AWS4-HMAC-SHA256 Credential=***, SignedHeaders=host;x-amz-date, Signature=***"
    )


def test_short_secrets_are_ignored() -> None:
    """Registering a very short string does not mask it everywhere."""
    out = io.StringIO()
    configure_logging(stream=out, secrets=["abc"])
    add_secret("1234567")
    get_logger().info("abc 1234567")
    assert _json_lines(out)[0]["event"] == "abc 1234567"


def test_objects_are_stringified_then_redacted() -> None:
    """A non-JSON value (an exception object) is rendered as text and redacted."""
    redact = Redactor(secrets=[SECRET])
    out = redact(None, "info", {"event": "x", "error": OSError(5, f"io {SECRET}")})
    assert out["error"] == "[Errno 5] io ***"


def test_redactor_with_capture_logs() -> None:
    """As an ordinary structlog processor it masks what capture_logs records."""
    redact = Redactor(secrets=[SECRET])
    with structlog.testing.capture_logs(processors=[redact]) as logs:
        structlog.get_logger().info("hello", value=SECRET)
    assert logs == [{"event": "hello", "value": "***", "log_level": "info"}]
