"""Shared fixtures. Area fixtures live in their own plugin modules listed here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from synthesia_watchd.telemetry.logsetup import clear_secrets, reset_logging

pytest_plugins = [
    "simfixtures",
    "e2efixtures",
    "enginefixtures",
    "consolefixtures",
    "pgcluster",
    "ledgerbackends",
]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test starts and ends with the default logging setup and no registered secrets."""
    yield
    reset_logging()
    clear_secrets()


@pytest.fixture(autouse=True)
def _own_runtime_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test (and the daemons it starts) keeps its runtime and state files to itself.

    A config without `state_dir` puts the ledger under $XDG_STATE_HOME: never the real one.
    """
    monkeypatch.setenv("SYNTHESIA_WATCHD_RUNTIME_DIR", str(tmp_path_factory.mktemp("run")))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
