"""In-process engine fixtures: the daemon's `run --once` in the test thread, against the sim.

A test builds one ``Engine`` over folders in ``tmp_path``, drops files into its input folder
and calls ``engine.run()``: the daemon scans, processes until nothing is left, and returns.
The ledger, the folders and the simulator's request log are then there to be checked. The
signal handlers the daemon installs and the process umask are restored after each test.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from synthesia_watchd.config.load import Config, build_config
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine.dryrun import discover
from synthesia_watchd.engine.scheduler import inline
from synthesia_watchd.service import compose
from synthesia_watchd.service.daemon import Daemon, RunResult
from synthesia_watchd.simulator import Recorded, Simulator
from synthesia_watchd.stores.ledger import Job, Ledger, LedgerStore, Output, open_ledger

#: Bytes of each generated source video: small, so uploads take milliseconds.
SOURCE_SIZE = 16 * 1024
#: The languages every engine watch dubs into unless a test says otherwise.
TARGETS = ("fr-FR", "es-ES")
#: The name of the one watch an engine has.
WATCH = "drop"
#: How much faster than real time the daemon's clock runs in tests (1: real time).
SPEED = 5.0
#: Longest a `run --once` may take before the test fails instead of hanging.
RUN_TIMEOUT = 30.0
#: Most loop passes a stepped run may take before the test fails instead of looping.
MAX_STEPS = 10_000


class ScaledClock:
    """Wall-clock time that runs ``speed`` times faster from the moment it is made.

    Handed to the daemon as ``now``, it lets the engine's own waits (poll cadence, a twin's
    wait) pass quickly without patching anything; file stability still uses real time.
    """

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self._wall, self._mono = time.time(), time.monotonic()

    def __call__(self) -> float:
        return self._wall + (time.monotonic() - self._mono) * self.speed


class ManualClock:
    """A clock that moves only when told: shared by a stepped daemon and its simulator, so
    Synthesia's dub time and the engine's waits pass in one step, deterministically."""

    def __init__(self, t: float = 1_750_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Engine:
    """The daemon's engine over folders in ``tmp_path``, run in-process with ``--once``.

    ``watch`` and ``settings`` are merged into the watch entry and the top level of the config
    for every run; ``run(**watch)`` overrides watch keys for that run only.
    """

    def __init__(self, tmp_path: Path, sim: Simulator) -> None:
        self.sim = sim
        self.base = tmp_path
        self.input = tmp_path / "in"
        self.output = tmp_path / "out"
        self.state_dir = tmp_path / "state"
        for folder in (self.input, self.output):
            folder.mkdir(parents=True, exist_ok=True)
        self.watch: dict[str, Any] = {}
        self.settings: dict[str, Any] = {}
        self.environ: dict[str, str] = {"SYNTHESIA_API_KEY": sim.api_key}
        self.last: RunResult | None = None
        self.shared: tuple[str, str] | None = None

    # --- config and runs ---------------------------------------------------------------------

    def data(self, **watch: Any) -> dict[str, Any]:
        """The config as data (what a YAML file would hold), for build_config or a file."""
        entry: dict[str, Any] = {
            "name": WATCH,
            "input": str(self.input),
            "output": str(self.output),
            "targets": list(TARGETS),
            "source_language": "en",
            "stable_seconds": 0.5,
            "poll_interval": 1,
            "scan_interval": 1,
        }
        entry.update(self.watch)
        entry.update(watch)
        data: dict[str, Any] = {
            "synthesia": {"api_url": self.sim.url},
            "state_dir": str(self.state_dir),
            "shutdown_timeout": 10,
            "log": {"level": "warning"},
            "watches": [entry],
        }
        data.update(self.settings)
        return data

    def config(self, **watch: Any) -> Config:
        """A validated Config for this engine (the key comes from ``environ``)."""
        return build_config(self.data(**watch), filename="<test>", environ=self.environ)

    def write_config(self, **watch: Any) -> Path:
        """The config as a YAML file for CLI commands; the key stays in the environment."""
        import yaml

        path = self.base / "config.yaml"
        path.write_text(yaml.safe_dump(self.data(**watch)), encoding="utf-8")
        return path

    def daemon(self, *, speed: float = SPEED, **watch: Any) -> Daemon:
        """A `--once` daemon over this engine's config (not started), on a ScaledClock."""
        return Daemon(compose.build(self.config(**watch), now=ScaledClock(speed)), once=True)

    def step(self, **watch: Any) -> dict[str, int]:
        """A run stepped by hand on the simulator's ManualClock: the input's files (found
        as the watcher finds them) are taken in directly, then ``loop_once(now)`` carries
        every job through its stages on an inline executor until nothing is active; the
        clock jumps to the next due time in between. No threads, no waiting; returns the
        ledger's counts."""
        clock = self.sim.clock
        assert isinstance(clock, ManualClock), "step() needs the stepped_engine fixture"
        config = self.config(**watch)
        daemon = Daemon(compose.build(config, watch=False, now=clock, executor=inline), once=True)
        try:
            daemon.start()
            for w in config.watches:
                for path in discover(w):
                    st = path.stat()
                    daemon.pipeline.intake(w, path, st.st_size, st.st_mtime_ns)
            for _ in range(MAX_STEPS):
                daemon.loop_once(clock())
                if daemon.drained():
                    break
                due = daemon.scheduler.next_due(after=clock())
                clock.advance(max((due or clock()) - clock(), 0.0) + 0.5)
            else:
                raise AssertionError(f"stepped run did not drain: {self.states()}")
        finally:
            daemon.shutdown()
            counts = dict(daemon.ledger.counts())
            daemon.ledger.close()
            daemon.lock.release()
        return counts

    def run(
        self,
        *,
        timeout: float = RUN_TIMEOUT,
        speed: float = SPEED,
        on_tick: Callable[[Daemon], None] | None = None,
        **watch: Any,
    ) -> RunResult:
        """One `run --once`: scan, process until drained, stop; returns the result.

        A run that has not drained after ``timeout`` seconds is stopped warm and fails the
        test, so an engine that never settles shows up as a failure, not a hung suite.
        """
        daemon = self.daemon(speed=speed, **watch)
        deadline = time.monotonic() + timeout
        timed_out: list[bool] = []

        def tick(d: Daemon) -> None:
            if on_tick is not None:
                on_tick(d)
            if time.monotonic() > deadline and not timed_out:
                timed_out.append(True)
                d.request_stop()

        daemon.on_tick = tick
        self.last = daemon.run()
        assert not timed_out, f"run --once did not drain within {timeout}s: {self.states()}"
        return self.last

    # --- files -------------------------------------------------------------------------------

    def put(self, name: str, seed: str | None = None, size: int = SOURCE_SIZE) -> Path:
        """Write a sample video (bytes decided by ``seed``, default the name) into the input."""
        path = self.input / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample_video(seed or name, size))
        return path

    # --- the ledger --------------------------------------------------------------------------

    @property
    def ledger_path(self) -> Path:
        return self.state_dir / "ledger.sqlite3"

    def work_requests(self) -> list[Recorded]:
        """The simulator's request log without the daemon's start-up key checks
        (GET /v2/videos): what "nothing was sent again" is about."""
        return [r for r in self.sim.requests if r.endpoint != "GET /v2/videos"]

    def use_shared_ledger(self, url: str, password: str) -> None:
        """Run on a PostgreSQL ledger (the password in a file, as ledger_password_file)."""
        secret = self.base / "ledger_password"
        secret.write_text(password + "\n")
        self.settings.update({"ledger": url, "ledger_password_file": str(secret)})
        self.shared = (url, password)

    def ledger(self) -> LedgerStore:
        """The ledger (use as a context manager); fine to open while no daemon runs."""
        if self.shared is not None:
            return open_ledger(self.shared[0], password=self.shared[1])
        return Ledger(self.ledger_path)

    def jobs(self) -> list[Job]:
        """Every job, oldest first."""
        with self.ledger() as ledger:
            return sorted(ledger.list_jobs(limit=1_000_000), key=lambda j: j.id)

    def job_for(self, path: Path) -> Job:
        """The newest job of a source path."""
        found = [j for j in self.jobs() if j.source_path == str(path)]
        assert found, f"no job for {path.name}: {[j.source_path for j in self.jobs()]}"
        return found[-1]

    def outputs(self, job: Job | int) -> list[Output]:
        """A job's output rows."""
        job_id = job if isinstance(job, int) else job.id
        with self.ledger() as ledger:
            return ledger.outputs(job_id)

    def states(self) -> dict[str, str]:
        """Source file name -> state of its newest job."""
        return {Path(j.source_path).name: j.state.value for j in self.jobs()}

    def assert_all_done(self) -> None:
        """Every job ended done (with its last_error in the message if not)."""
        bad = [
            (j.id, j.state.value, j.last_error) for j in self.jobs() if j.state is not JobState.DONE
        ]
        assert not bad, bad

    def dub_posts(self) -> int:
        """How many POST /v2/dubbing requests reached the simulator."""
        return self.sim.count("POST /v2/dubbing")


@pytest.fixture
def engine_factory(
    tmp_path: Path, sim_factory: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Engine]]:
    """Build the test's Engine over a simulator with custom options (at most one per test).

    boto3 is pointed at that simulator's S3; signal handlers and the umask are restored after.
    """
    monkeypatch.delenv("SYNTHESIA_API_KEY", raising=False)
    monkeypatch.delenv("SYNTHESIA_WATCHD_CONFIG", raising=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    umask = os.umask(0o022)
    os.umask(umask)

    def build(**sim_options: Any) -> Engine:
        sim = sim_factory(**sim_options)
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", sim.s3_url)
        return Engine(tmp_path, sim)

    try:
        yield build
    finally:
        os.umask(umask)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


@pytest.fixture
def engine(engine_factory: Callable[..., Engine]) -> Engine:
    """An Engine over a simulator that dubs in 0.2 s."""
    return engine_factory()


@pytest.fixture
def stepped_engine(engine_factory: Callable[..., Engine]) -> Engine:
    """An Engine whose simulator runs on a ManualClock, for ``step()`` runs (its simulator
    dubs in 20 s of that clock: one jump)."""
    return engine_factory(clock=ManualClock(), dub_seconds=20.0)
