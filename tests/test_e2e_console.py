"""The console and holds in a real daemon process: CLI pause across SIGKILL, web resume, SIGTERM."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable

import pytest
import requests
from e2efixtures import DaemonProcess
from helpers import wait_until

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator

pytestmark = pytest.mark.slow


def _port(daemon: DaemonProcess) -> int:
    found = wait_until(
        lambda: [e["port"] for e in daemon.log() if e.get("event") == "console listening"],
        what="the console's port in the log",
    )
    return int(found[-1])


def test_pause_survives_sigkill_and_the_web_resumes_it(
    e2e_sim: Callable[..., Simulator], daemon_factory: Callable[..., DaemonProcess]
) -> None:
    """`pause` via the CLI holds a dropped file across a SIGKILL and restart; the console's
    Resume button lets it be dubbed; SIGTERM still stops the daemon (uvicorn took no signal)."""
    daemon = daemon_factory(e2e_sim(), settings={"web": {"listen": "127.0.0.1:0"}})
    daemon.start()
    daemon.wait_started()
    assert daemon.cli("pause").returncode == 0
    daemon.drop("held.mp4")
    daemon.wait_state(lambda jobs: [j.state for j in jobs] == [JobState.QUEUED], what="queued")
    daemon.kill()
    daemon.restart()
    daemon.wait_started()
    url = f"http://127.0.0.1:{_port(daemon)}"
    status = requests.get(url + "/api/v1/status", timeout=10).json()
    assert status["holds"]["all"]["mode"] == "pause"
    assert daemon.job("held.mp4").state is JobState.QUEUED
    assert daemon.sim.count("POST /v2/assets") == 0
    page = requests.get(url + "/", timeout=10).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    r = requests.post(
        url + "/control/resume", data={"csrf": csrf.group(1)}, timeout=10, allow_redirects=False
    )
    assert r.status_code == 303
    daemon.wait_state(lambda jobs: [j.state for j in jobs] == [JobState.DONE], what="dubbed")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(30) == 0
