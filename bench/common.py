"""What every benchmark needs: a daemon subprocess, its config, /proc readings, ledger reads.

The daemon always runs as a real process (``python -m synthesia_watchd run -c CONFIG``), so
what is measured is what an operator runs; the bench only reads its ledger (SQLite in WAL
mode lets a second connection read alongside the daemon) and its /proc entries.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from synthesia_watchd.domain.media import sample_video

T = TypeVar("T")

#: Every request limit off: the daemon's own pacing is measured separately, if at all.
NO_RATE_LIMITS: dict[str, Any] = {
    "writes": {"per_minute": None, "per_hour": None, "per_day": None},
    "reads": {"per_minute": None, "per_hour": None, "per_day": None},
}
TARGETS = ["fr-FR", "es-ES", "de-DE"]
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def write_config(
    folder: Path,
    *,
    api_url: str,
    watch: Mapping[str, Any],
    workers: Mapping[str, int] | None = None,
    rate_limits: Mapping[str, Any] | None = NO_RATE_LIMITS,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a daemon config under ``folder`` (state beside it) and return its path.

    ``rate_limits`` None leaves the daemon's own default pacing (the Creator tier).
    """
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "synthesia": {"api_url": api_url},
        "state_dir": str(folder / "state"),
        "workers": dict(workers or {}),
        "api": {"rate_limits": dict(rate_limits)} if rate_limits is not None else {},
        "log": {"level": "info", "format": "json"},
        "shutdown_timeout": 10,
        "watches": [{"name": "bench", "source_language": "en", "targets": TARGETS, **watch}],
    }
    data.update(extra or {})
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def ledger_path(config: Path) -> Path:
    """Where ``write_config`` puts the ledger."""
    return config.parent / "state" / "ledger.sqlite3"


class DaemonProcess:
    """``synthesia-watchd run -c CONFIG`` as a subprocess, its log in a file beside the config."""

    def __init__(self, config: Path, env: Mapping[str, str], *, once: bool = False) -> None:
        self.config = config
        self.env = {**os.environ, **env}
        self.once = once
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config.parent / "daemon.log"
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> DaemonProcess:
        argv = [sys.executable, "-m", "synthesia_watchd", "run", "-c", str(self.config)]
        if self.once:
            argv.append("--once")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.config.parent
            )
        self.starts += 1
        return self

    def wait_started(self, timeout: float = 60.0) -> None:
        """Until the daemon wrote its first heartbeat of this start (catch-up scan done)."""
        beat = self.config.parent / "state" / "heartbeat"
        before = beat.stat().st_mtime_ns if beat.exists() else 0
        wait_for(
            lambda: self.alive() and beat.exists() and beat.stat().st_mtime_ns != before,
            timeout,
            "daemon heartbeat",
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """Warm stop (SIGTERM); SIGKILL after ``timeout``. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def cpu_seconds(self) -> float:
        """utime + stime of the daemon process (all its threads), from /proc/<pid>/stat."""
        raw = Path(f"/proc/{self.pid}/stat").read_text()
        fields = raw[raw.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK

    def status_kib(self, key: str) -> int:
        """A ``kB`` line of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: current)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``predicate`` until truthy; RuntimeError after ``timeout`` (benchmarks stop by
    themselves, bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class LedgerReader:
    """Read-only queries on a daemon's ledger (a second SQLite connection, WAL)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, timeout=30)
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        try:
            return list(self._c().execute(sql, params))
        except sqlite3.OperationalError:
            return []  # the schema is not there yet

    def count(self, states: Sequence[str] | None = None) -> int:
        if states is None:
            rows = self.query("SELECT count(*) FROM jobs")
        else:
            marks = ",".join("?" * len(states))
            rows = self.query(f"SELECT count(*) FROM jobs WHERE state IN ({marks})", states)  # noqa: S608
        return int(rows[0][0]) if rows else 0

    def counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.query("SELECT state, count(*) FROM jobs GROUP BY state")}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def ledger_bytes(path: Path) -> int:
    """Size of the ledger with its WAL and shared-memory files."""
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            total += path.with_name(path.name + suffix).stat().st_size
    return total


def make_videos(
    folder: Path,
    count: int,
    *,
    size: int,
    seed: str,
    per_dir: int = 0,
    durations: Sequence[float] | None = None,
) -> list[Path]:
    """``count`` distinct small mp4 files (distinct bytes, so no job reuses another's dub);
    ``durations``: the length each one declares (seconds), else sample_video's default."""
    paths = []
    for i in range(count):
        sub = folder / f"d{i // per_dir:03d}" if per_dir else folder
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"clip-{i:05d}.mp4"
        if durations is None:
            path.write_bytes(sample_video(f"{seed}-{i}", size))
        else:
            path.write_bytes(sample_video(f"{seed}-{i}", size, duration_s=durations[i]))
        paths.append(path)
    return paths


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
