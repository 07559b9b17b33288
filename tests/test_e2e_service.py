"""The daemon as a service: systemd notify, SIGHUP reload, metrics and health, for real."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from e2efixtures import DaemonProcess
from helpers import wait_until

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service.cli import main
from synthesia_watchd.simulator import Simulator

pytestmark = pytest.mark.slow


@pytest.fixture
def unused_tcp_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, Callable[[], list[str]]]]:
    """A unix datagram socket standing in for systemd's $NOTIFY_SOCKET; collects messages."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    seen: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                seen.append(sock.recv(4096).decode())
            except TimeoutError:
                return seen

    yield str(path), drain
    sock.close()


def test_notify_ready_status_watchdog_and_stopping(
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    notify_socket: tuple[str, Callable[[], list[str]]],
) -> None:
    """READY=1 comes after the catch-up scan, then STATUS and WATCHDOG; SIGTERM says STOPPING."""
    path, drain = notify_socket
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    daemon.drop("before.mp4")  # present at start: the catch-up scan must have seen it
    daemon.start(NOTIFY_SOCKET=path, WATCHDOG_USEC="2000000")
    daemon.wait_started()
    messages = wait_until(
        lambda: (m := drain()) and any("READY=1" in x for x in m) and m, 10, what="READY=1"
    )
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=" in ready
    started = [e for e in daemon.log() if e.get("event") == "started"]
    assert started, "READY must follow the catch-up scan and the 'started' line"
    wait_until(lambda: any("WATCHDOG=1" in m for m in drain()), 15, what="WATCHDOG=1")
    daemon.wait_all(1, {JobState.DONE})
    wait_until(lambda: any("1 done" in m for m in drain()), 15, what="STATUS with counts")
    assert daemon.terminate() == 0
    assert any("STOPPING=1" in m for m in drain())


def test_sighup_reload_adds_a_watch_and_keeps_in_flight_settings(
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """A new watch added by SIGHUP is picked up; a job already dubbing keeps its targets."""
    sim = e2e_sim(dub_seconds=1.5)
    daemon = daemon_factory(sim)
    daemon.start()
    daemon.wait_started()
    daemon.drop("first.mp4")
    job = daemon.wait_state(
        lambda jobs: [j for j in jobs if j.state is JobState.DUBBING], what="first dubbing"
    )[0]
    extra = tmp_path / "extra-in"
    extra.mkdir()
    config = yaml.safe_load(daemon.config_path.read_text())
    config["watches"][0]["targets"] = ["de-DE"]
    config["watches"].append(
        {
            "name": "extra",
            "input": str(extra),
            "targets": ["it"],
            "source_language": "en",
            "stable_seconds": 0.5,
            "poll_interval": 1,
            "mode": "native",
        }
    )
    daemon.config_path.write_text(yaml.safe_dump(config))
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: any(e.get("event") == "config reloaded" for e in daemon.log()),
        10,
        what="reload logged",
    )
    (extra / "second.mp4").write_bytes(sample_video("second", 16 * 1024))
    jobs = daemon.wait_all(2, {JobState.DONE})
    first = next(j for j in jobs if j.id == job.id)
    second = next(j for j in jobs if j.id != job.id)
    assert first.targets == ("fr-FR", "es-ES")  # started before the reload: unchanged
    assert second.watch == "extra" and second.targets == ("it",)
    assert (extra / "second.dubbed-it.mp4").is_file()
    assert daemon.terminate() == 0


def test_metrics_health_and_status_of_a_running_daemon(
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    unused_tcp_port: int,
) -> None:
    """/metrics and /healthz answer on loopback; `health` and `status` see the live daemon."""
    sim = e2e_sim()
    daemon = daemon_factory(sim, settings={"metrics": {"listen": f"127.0.0.1:{unused_tcp_port}"}})
    daemon.start()
    daemon.wait_started()
    daemon.drop("a.mp4")
    daemon.wait_all(1, {JobState.DONE})
    base = f"http://127.0.0.1:{unused_tcp_port}"
    with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
    text = wait_until(
        lambda: (
            (t := urllib.request.urlopen(base + "/metrics", timeout=5).read().decode())  # noqa: S310
            and 'state="done"} 1.0' in t
            and t
        ),
        15,
        what="metrics with the done job",
    )
    assert "uploaded_bytes_total" in text and "api_responses_total" in text
    ok = daemon.cli("health", "-c", str(daemon.config_path))
    assert ok.returncode == 0, ok.stderr
    status = json.loads(daemon.cli("status", "--json", "-c", str(daemon.config_path)).stdout)
    assert status["daemon"]["running"] is True
    assert status["counts"]["done"] == 1
    assert daemon.terminate() == 0
    assert main(["health", "-c", str(daemon.config_path), "--max-age", "0.001"]) == 1


def test_sighup_with_a_fixed_key_resumes_paused_work(
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    tmp_path: Path,
) -> None:
    """A rejected key pauses everything; a corrected key file plus SIGHUP finishes the jobs."""
    sim = e2e_sim()
    key_file = tmp_path / "api_key"
    key_file.write_text("sk-wrong-key-0123456789\n")
    daemon = daemon_factory(
        sim, settings={"synthesia": {"api_url": sim.url, "api_key_file": str(key_file)}}
    )
    daemon.start(SYNTHESIA_API_KEY="")
    daemon.wait_started()
    daemon.drop("a.mp4")

    def paused() -> bool:
        data = json.loads(daemon.cli("status", "--json", "-c", str(daemon.config_path)).stdout)
        return "auth" in data["paused"]

    wait_until(paused, 20, interval=0.2, what="auth pause in status")
    assert sim.count("POST /v2/dubbing") == 0
    key_file.write_text(sim.api_key + "\n")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_all(1, {JobState.DONE})
    assert sim.count("POST /v2/dubbing") == 1
    assert daemon.terminate() == 0
    assert "sk-wrong-key-0123456789" not in daemon.all_logs()
