"""The daemon's signal handlers: real signals, noted as flags and taken by the loop."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from synthesia_watchd.service.signals import SignalFlags

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@pytest.fixture
def flags() -> Iterator[SignalFlags]:
    """Installed flags; the previous handlers come back after the test."""
    before = {sig: signal.getsignal(sig) for sig in HANDLED}
    flags = SignalFlags()
    flags.install()
    try:
        yield flags
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def test_signals_are_noted_in_order_and_taken_once(flags: SignalFlags) -> None:
    """A reload and a stop signal are noted in arrival order; taking them empties the notes."""
    signal.raise_signal(signal.SIGHUP)
    signal.raise_signal(signal.SIGTERM)
    assert list(flags.taken()) == [signal.SIGHUP, signal.SIGTERM]
    assert list(flags.taken()) == []


def test_a_stop_asked_from_another_thread_reads_as_sigterm(flags: SignalFlags) -> None:
    """request_stop leaves the note SIGTERM leaves (the loop treats both alike)."""
    flags.request_stop()
    assert list(flags.taken()) == [signal.SIGTERM]


def test_a_second_stop_signal_is_a_cold_stop() -> None:
    """The first SIGTERM only notes a warm stop; a second stop signal exits at once with 130."""
    script = (
        "import signal, sys\n"
        "from synthesia_watchd.service.signals import SignalFlags\n"
        "flags = SignalFlags(); flags.install()\n"
        "signal.raise_signal(signal.SIGTERM)\n"
        "print('warm', list(flags.taken()) == [signal.SIGTERM], flush=True)\n"
        "signal.raise_signal(signal.SIGINT)\n"
        "print('still running', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (130, "warm True\n"), done.stderr
