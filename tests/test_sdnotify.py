"""sd_notify over a real unix datagram socket standing in for systemd."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthesia_watchd.telemetry.sdnotify import Notifier


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket, as systemd's notify socket; yields (socket, $NOTIFY_SOCKET)."""
    path = tmp_path / "notify.sock"
    short_dir: Path | None = None
    if len(str(path)) > 100:  # sun_path holds 108 bytes; deep tmp paths can exceed it
        short_dir = Path(tempfile.mkdtemp(prefix="sdn"))
        path = short_dir / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield sock, str(path)
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        if short_dir is not None:
            short_dir.rmdir()


def _recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_disabled_without_notify_socket() -> None:
    """Without $NOTIFY_SOCKET the notifier is disabled and every call is a silent no-op."""
    n = Notifier({})
    assert n.enabled is False
    n.ready("up")
    n.status("x")
    n.watchdog()
    n.stopping()
    n.reloading()
    assert n._sock is None


def test_ready_with_status(notify_socket: tuple[socket.socket, str]) -> None:
    """ready() sends READY=1 and the STATUS= line in one datagram."""
    sock, addr = notify_socket
    n = Notifier({"NOTIFY_SOCKET": addr})
    assert n.enabled
    n.ready("catch-up scan done: 3 queued")
    assert _recv(sock) == "READY=1\nSTATUS=catch-up scan done: 3 queued"
    n.close()


def test_status_watchdog_stopping(notify_socket: tuple[socket.socket, str]) -> None:
    """status, watchdog and stopping send their own assignments, in order."""
    sock, addr = notify_socket
    n = Notifier({"NOTIFY_SOCKET": addr})
    n.status("queued=1 dubbing=2")
    n.watchdog()
    n.stopping()
    assert [_recv(sock) for _ in range(3)] == [
        "STATUS=queued=1 dubbing=2",
        "WATCHDOG=1",
        "STOPPING=1",
    ]
    n.close()


def test_status_cannot_forge_assignments(notify_socket: tuple[socket.socket, str]) -> None:
    """A newline in status text (e.g. from a file name) cannot smuggle in READY=1."""
    sock, addr = notify_socket
    n = Notifier({"NOTIFY_SOCKET": addr})
    n.status("evil.mp4\nREADY=1")
    message = _recv(sock)
    assert message.count("\n") == 0
    assert message == "STATUS=evil.mp4 READY=1"
    n.close()


def test_reloading_carries_monotonic_usec(notify_socket: tuple[socket.socket, str]) -> None:
    """reloading() sends RELOADING=1 with MONOTONIC_USEC on CLOCK_MONOTONIC, as systemd wants."""
    sock, addr = notify_socket
    n = Notifier({"NOTIFY_SOCKET": addr})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    first, second = _recv(sock).split("\n")
    assert first == "RELOADING=1"
    key, value = second.split("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after
    n.close()


def test_abstract_socket() -> None:
    """An address starting with "@" is a Linux abstract socket."""
    name = f"synthesia-watchd-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name})
        n.watchdog()
        assert _recv(sock) == "WATCHDOG=1"
        n.close()
    finally:
        sock.close()


def test_unsupported_address_disables() -> None:
    """A relative path or a vsock address leaves the notifier disabled rather than failing."""
    assert Notifier({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled is False
    assert Notifier({"NOTIFY_SOCKET": "relative.sock"}).enabled is False


def test_send_failure_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A socket that went away costs one warning, never an exception."""
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level(logging.WARNING, logger="synthesia_watchd.telemetry.sdnotify"):
        n.watchdog()
        n.watchdog()
    warnings = [r for r in caplog.records if r.name == "synthesia_watchd.telemetry.sdnotify"]
    assert len(warnings) == 1
    assert "sd_notify" in warnings[0].getMessage()
    n.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "60000000"}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "nope"}, None),
        ({"WATCHDOG_USEC": "sixty"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    """The ping period is half of $WATCHDOG_USEC, and only for the process it names."""
    assert Notifier(env).watchdog_interval() == expected
