"""End-to-end fixtures: the daemon as a real subprocess against a simulator in this process.

The simulator runs in the test process so a test can script faults, hold an endpoint at a gate
and read the request log; the daemon runs as ``python -m synthesia_watchd run`` exactly as an
operator starts it, so SIGKILL and SIGTERM hit a real process with a real ledger on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import wait_until

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Job, Ledger, Output

#: Bytes of each generated source video: small, so uploads take milliseconds.
SOURCE_SIZE = 24 * 1024
#: How long a test waits for the daemon to drive jobs to an end state.
SETTLE_TIMEOUT = 30.0
#: The languages every e2e watch dubs into unless a test says otherwise.
TARGETS = ("fr-FR", "es-ES")


def e2e_key() -> str:
    """A distinctive API key, so a leak into the log cannot hide behind a common word."""
    return "sk-e2e-" + secrets.token_hex(12)


def python_command(memory_limit: int | None = None) -> list[str]:
    """``python -m synthesia_watchd``, optionally under an address-space limit (RLIMIT_AS)."""
    if memory_limit is None:
        return [sys.executable, "-m", "synthesia_watchd"]
    code = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_AS, ({memory_limit}, {memory_limit})); "
        "sys.argv[0] = 'synthesia-watchd'; "
        "runpy.run_module('synthesia_watchd', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code]


class DaemonProcess:
    """One daemon subprocess over folders in ``tmp_path``, with its ledger and log at hand.

    ``start`` writes the YAML config and launches ``python -m synthesia_watchd run -c cfg``;
    the ledger is read through ``synthesia_watchd.stores.ledger.Ledger`` (WAL readers never
    block the daemon); stdout and stderr (JSON log lines) go to one file per run.
    """

    def __init__(
        self,
        tmp_path: Path,
        sim: Simulator,
        *,
        targets: Iterable[str] = TARGETS,
        settings: dict[str, Any] | None = None,
        watch: dict[str, Any] | None = None,
    ) -> None:
        self.sim = sim
        self.base = tmp_path
        self.input = tmp_path / "in"
        self.output = tmp_path / "out"
        self.state_dir = tmp_path / "state"
        self.staging = tmp_path / "staging"
        self.config_path = tmp_path / "config.yaml"
        self.ledger_path = self.state_dir / "ledger.sqlite3"
        for folder in (self.input, self.output, self.staging):
            folder.mkdir(parents=True, exist_ok=True)
        self.targets = tuple(targets)
        self.settings = dict(settings or {})
        self.watch = dict(watch or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.env_overrides: dict[str, str] = {}
        #: Address-space limit (bytes) for the daemon process, so a runaway allocation ends in
        #: MemoryError instead of swapping the machine; None: no limit.
        self.memory_limit: int | None = None
        self._ledger: Ledger | None = None

    # --- config and process ------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The config as a mapping: sim URL, local folders, fast stability and polling."""
        watch = {
            "name": "drop",
            "input": str(self.input),
            "output": str(self.output),
            "targets": list(self.targets),
            "source_language": "en",
            "stable_seconds": 0.5,
            "poll_interval": 1,
            "mode": "native",
            **self.watch,
        }
        return {
            "synthesia": {"api_url": self.sim.url},
            "state_dir": str(self.state_dir),
            "shutdown_timeout": 10,
            "log": {"level": "info", "format": "json"},
            "watches": [watch],
            **self.settings,
        }

    @property
    def log_path(self) -> Path:
        """The log file of the current (or last) run."""
        return self.base / f"daemon-{self.runs}.log"

    def start(self, *args: str, **env: str) -> DaemonProcess:
        """Write the config and start a daemon run with extra ``run`` arguments (``--new-ledger``);
        ``env`` overrides the simulator's env."""
        if self.running:
            raise RuntimeError("the daemon is already running")
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.env_overrides = dict(env)
        base = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET")
        }
        full_env = {**base, **self.sim.env(), **env}
        self.runs += 1
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    *python_command(self.memory_limit),
                    "run",
                    "-c",
                    str(self.config_path),
                    *args,
                ],
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base,
            )
        return self

    @property
    def running(self) -> bool:
        """Whether the current run's process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int:
        """SIGKILL: the crash the ledger must survive; returns the exit code (-9)."""
        assert self.proc is not None, "the daemon was never started"
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: a graceful stop; returns the exit code."""
        assert self.proc is not None, "the daemon was never started"
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def restart(self, **env: str) -> DaemonProcess:
        """Start a new run on the same folders and ledger (after ``kill`` or ``terminate``)."""
        if self.running:
            self.kill()
        return self.start(**env)

    def wait_exit(self, timeout: float = 20.0) -> int:
        """Until the current run exits by itself (a refused start); returns its exit code."""
        assert self.proc is not None, "the daemon was never started"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the daemon still runs after {timeout}s:\n{self.log_text()[-3000:]}"
            ) from None

    def wait_started(self, timeout: float = 15.0) -> None:
        """Until this run has logged ``started`` (catch-up scan done, watchers armed)."""
        run = self.runs
        wait_until(
            lambda: self._check_alive() and any(e.get("event") == "started" for e in self.log()),
            timeout,
            interval=0.05,
            what=f"daemon run {run} to log 'started'",
        )

    def _check_alive(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"the daemon exited with {self.proc.returncode}:\n{self.log_text()[-4000:]}"
            )
        return True

    def close(self) -> None:
        """Teardown: kill a live process, close the ledger."""
        if self.running:
            self.kill()
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    # --- source files ------------------------------------------------------------------------

    def drop(self, name: str, data: bytes | None = None) -> Path:
        """Place a source in the input folder in one rename (as a finished copy would land)."""
        body = (
            sample_video(f"e2e:{name}:{secrets.token_hex(4)}", SOURCE_SIZE)
            if data is None
            else data
        )
        staged = self.staging / name
        staged.write_bytes(body)
        dest = self.input / name
        os.replace(staged, dest)
        return dest

    def drop_many(self, count: int, prefix: str = "clip") -> list[Path]:
        """``count`` distinct sources (distinct bytes, so none is deduplicated)."""
        return [self.drop(f"{prefix}{i}.mp4") for i in range(count)]

    # --- ledger ------------------------------------------------------------------------------

    def ledger(self) -> Ledger:
        """The ledger, opened once from the test process (reads only)."""
        if self._ledger is None:
            self._ledger = Ledger(self.ledger_path)
        return self._ledger

    def release_ledger(self) -> None:
        """Close the test's own connection (before the ledger file is damaged or replaced)."""
        if self._ledger is not None:
            self._ledger.close()
            self._ledger = None

    def jobs(self) -> list[Job]:
        """Every job, oldest first."""
        jobs: list[Job] = self.ledger().list_jobs(limit=10_000)
        return sorted(jobs, key=lambda j: j.id)

    def job(self, name: str) -> Job:
        """The job of the source called ``name``."""
        hits = [j for j in self.jobs() if Path(j.source_path).name == name]
        assert len(hits) == 1, f"expected one job for {name}, found {hits}"
        return hits[0]

    def outputs(self, job: Job) -> list[Output]:
        """The per-language output rows of ``job``."""
        return self.ledger().outputs(job.id)

    def wait_state(
        self,
        predicate: Callable[[list[Job]], bool],
        timeout: float = SETTLE_TIMEOUT,
        what: str = "",
    ) -> list[Job]:
        """Poll the ledger until ``predicate(jobs)`` holds; fails with the log tail if not."""

        def check() -> list[Job] | None:
            self._check_alive()
            jobs = self.jobs()
            return jobs if predicate(jobs) else None

        try:
            jobs = wait_until(check, timeout, interval=0.05, what=what or "ledger state")
        except AssertionError as exc:
            states = {Path(j.source_path).name: j.state.value for j in self.jobs()}
            raise AssertionError(f"{exc}; jobs: {states}\n{self.log_text()[-3000:]}") from None
        assert jobs is not None
        return jobs

    def wait_all(
        self, count: int, states: Iterable[JobState], timeout: float = SETTLE_TIMEOUT
    ) -> list[Job]:
        """Until exactly ``count`` jobs exist and each is in one of ``states``."""
        wanted = frozenset(states)
        return self.wait_state(
            lambda jobs: len(jobs) == count and all(j.state in wanted for j in jobs),
            timeout,
            what=f"{count} jobs in {sorted(s.value for s in wanted)}",
        )

    def wait_any(self, state: JobState, timeout: float = SETTLE_TIMEOUT) -> list[Job]:
        """Until at least one job is in ``state``."""
        return self.wait_state(
            lambda jobs: any(j.state is state for j in jobs), timeout, what=f"a job {state}"
        )

    # --- outputs -----------------------------------------------------------------------------

    def output_path(self, job: Job, language: str) -> Path:
        """The final name of the dubbed video of ``job`` in ``language``."""
        return self.output / f"{Path(job.source_path).stem}.dubbed-{language}.mp4"

    def temp_files(self) -> list[Path]:
        """Download temp files anywhere under the output folder."""
        return sorted(p for p in self.output.rglob("*") if p.name.endswith(".part"))

    def final_files(self) -> list[Path]:
        """Visible files under the output folder (what a user would pick up)."""
        return sorted(
            p for p in self.output.rglob("*") if p.is_file() and not p.name.startswith(".")
        )

    def assert_outputs_exact(self, job: Job, languages: Iterable[str] | None = None) -> None:
        """Each language's output is on disk and byte-identical to what Synthesia served."""
        assert job.project_id, f"job {job.id} has no project id"
        for lang in languages if languages is not None else job.targets:
            path = self.output_path(job, lang)
            assert path.is_file(), f"missing output {path.name}"
            assert path.read_bytes() == self.sim.expected_output(job.project_id, lang), path.name

    def assert_no_partial_outputs(self) -> None:
        """Every visible file under the output folder is a complete, exact dubbed file."""
        by_stem = {Path(j.source_path).stem: j for j in self.jobs()}
        for path in self.final_files():
            stem, _, rest = path.name.partition(".dubbed-")
            lang = rest.removesuffix(".mp4")
            job = by_stem.get(stem)
            assert job is not None and job.project_id, f"unexpected output {path.name}"
            expected = self.sim.expected_output(job.project_id, lang)
            assert path.read_bytes() == expected, f"{path.name} is not the complete dub"

    # --- log and CLI -------------------------------------------------------------------------

    def log_text(self, run: int | None = None) -> str:
        """The raw log of one run (default: the current one)."""
        path = self.base / f"daemon-{run or self.runs}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log(self, run: int | None = None) -> list[dict[str, Any]]:
        """The JSON log lines of one run (other lines, e.g. a traceback, are skipped)."""
        events = []
        for line in self.log_text(run).splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    events.append(item)
        return events

    def all_logs(self) -> str:
        """Every run's log, concatenated."""
        return "".join(self.log_text(run) for run in range(1, self.runs + 1))

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``python -m synthesia_watchd ARGS -c cfg`` (status, show, ...) to completion."""
        return subprocess.run(
            [sys.executable, "-m", "synthesia_watchd", *args, "-c", str(self.config_path)],
            env={**os.environ, **self.sim.env(), **self.env_overrides},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def secrets_seen(self) -> list[str]:
        """The API key and every S3 secret the simulator issued (must never be logged)."""
        found = [self.sim.api_key]
        for asset in self.sim.assets.values():
            found += [asset.credentials.secret_access_key, asset.credentials.session_token]
        return found


@pytest.fixture
def e2e_sim(sim_factory: Callable[..., Simulator]) -> Callable[..., Simulator]:
    """Build a simulator for an e2e test: distinctive key, fast dubbing, unless overridden."""

    def build(**options: Any) -> Simulator:
        options.setdefault("api_key", e2e_key())
        options.setdefault("dub_seconds", 0.3)
        options.setdefault("dub_size", 8 * 1024)
        return sim_factory(**options)

    return build


@pytest.fixture
def daemon_factory(
    tmp_path: Path, sim_factory: Callable[..., Simulator]
) -> Iterator[Callable[..., DaemonProcess]]:
    """Build DaemonProcess helpers; each is killed and checked for leaked secrets afterwards."""
    made: list[DaemonProcess] = []

    def build(sim: Simulator, **kw: Any) -> DaemonProcess:
        folder = tmp_path / f"d{len(made)}"
        folder.mkdir()
        daemon = DaemonProcess(folder, sim, **kw)
        made.append(daemon)
        return daemon

    yield build
    leaks = []
    for daemon in made:
        daemon.close()
        text = daemon.all_logs()
        leaks += [s[:6] + "..." for s in daemon.secrets_seen() if s and s in text]
    assert not leaks, f"secrets reached the daemon log: {leaks}"
