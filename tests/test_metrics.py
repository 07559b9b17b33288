"""Metrics registry, the /metrics and /healthz listener on loopback, and the heartbeat file."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from synthesia_watchd.telemetry.metrics import Heartbeat, Metrics, MetricsServer, parse_listen


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from Prometheus text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(address: tuple[str, int], path: str) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


def test_render_has_names_and_labels() -> None:
    """Every metric appears with its labels in the text format Prometheus parses."""
    m = Metrics()
    m.set_job_counts({"queued": 4, "dubbing": 2})
    m.bytes_uploaded.inc(1000)
    m.bytes_downloaded.inc(250)
    m.observe_api("POST /v2/dubbing", 202)
    m.observe_api("POST /v2/dubbing", 202)
    m.observe_api("GET /v2/dubbing/{id}", None)
    m.oldest_queued_age.set(12.5)
    m.set_paused("auth", True)
    m.heartbeat_timestamp.set(1_700_000_000)
    s = _samples(m.render().decode())
    assert s[("synthesia_watchd_jobs", (("state", "queued"),))] == 4
    assert s[("synthesia_watchd_jobs", (("state", "dubbing"),))] == 2
    assert s[("synthesia_watchd_jobs", (("state", "done"),))] == 0  # every state exported
    assert s[("synthesia_watchd_uploaded_bytes_total", ())] == 1000
    assert s[("synthesia_watchd_downloaded_bytes_total", ())] == 250
    ok = (("operation", "POST /v2/dubbing"), ("status", "202"))
    assert s[("synthesia_watchd_api_responses_total", ok)] == 2
    none = (("operation", "GET /v2/dubbing/{id}"), ("status", "none"))
    assert s[("synthesia_watchd_api_responses_total", none)] == 1
    assert s[("synthesia_watchd_oldest_queued_age_seconds", ())] == 12.5
    assert s[("synthesia_watchd_paused", (("reason", "auth"),))] == 1
    assert s[("synthesia_watchd_heartbeat_timestamp_seconds", ())] == 1_700_000_000


def test_job_counts_reset_missing_states() -> None:
    """A state absent from the latest counts drops to 0 instead of keeping its old value."""
    m = Metrics()
    m.set_job_counts({"queued": 3})
    m.set_job_counts({"done": 1})
    s = _samples(m.render().decode())
    assert s[("synthesia_watchd_jobs", (("state", "queued"),))] == 0
    assert s[("synthesia_watchd_jobs", (("state", "done"),))] == 1


def test_instances_have_separate_registries() -> None:
    """Two Metrics objects neither collide nor share values (no global registry)."""
    a, b = Metrics(), Metrics()
    a.bytes_uploaded.inc(5)
    assert _samples(b.render().decode())[("synthesia_watchd_uploaded_bytes_total", ())] == 0
    m = Metrics()
    m.set_paused("budget", True)
    m.set_paused("budget", False)
    assert _samples(m.render().decode())[("synthesia_watchd_paused", (("reason", "budget"),))] == 0


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
    ],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    """HOST:PORT and [IPv6]:PORT are accepted."""
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["9464", "localhost", ":9464", "127.0.0.1:http", "h:70000"])
def test_parse_listen_rejects(listen: str) -> None:
    """Anything else is refused with an example of the right form."""
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(listen)


class Clock:
    """A settable clock for the heartbeat."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[MetricsServer, Heartbeat, Clock]]:
    """A MetricsServer on 127.0.0.1, port 0, whose health is a real heartbeat file."""
    clock = Clock(1_000_000.0)
    hb = Heartbeat(tmp_path / "heartbeat", now=clock)
    metrics = Metrics()
    server = MetricsServer(
        metrics,
        "127.0.0.1:0",
        health=lambda: Heartbeat.check(hb.path, max_age=90, now=clock()),
    )
    server.start()
    try:
        yield server, hb, clock
    finally:
        server.stop()


def test_http_metrics(served: tuple[MetricsServer, Heartbeat, Clock]) -> None:
    """GET /metrics answers 200 with the exposition content type and parseable text."""
    server, _, _ = served
    assert server.address[1] != 0
    server.metrics.observe_api("POST /v2/assets", 201)
    status, headers, body = _get(server.address, "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    ok = (("operation", "POST /v2/assets"), ("status", "201"))
    assert _samples(body)[("synthesia_watchd_api_responses_total", ok)] == 1


def test_http_healthz_fresh_stale_missing(served: tuple[MetricsServer, Heartbeat, Clock]) -> None:
    """/healthz is 503 before the first beat, 200 while fresh, 503 with the reason when stale."""
    server, hb, clock = served
    status, _, body = _get(server.address, "/healthz")
    assert (status, "no heartbeat" in body) == (503, True)
    hb.beat({"queued": 1})
    clock.t += 30
    assert _get(server.address, "/healthz")[::2] == (200, "ok\n")
    clock.t += 100
    status, _, body = _get(server.address, "/healthz")
    assert status == 503
    assert "stale" in body
    assert "130s" in body


def test_http_healthz_when_check_raises(tmp_path: Path) -> None:
    """A health callable that raises yields 503 with its reason, not a dropped connection."""

    def broken() -> tuple[bool, str]:
        raise RuntimeError("ledger locked")

    server = MetricsServer(Metrics(), "127.0.0.1:0", health=broken)
    server.start()
    try:
        status, _, body = _get(server.address, "/healthz")
    finally:
        server.stop()
    assert status == 503
    assert "ledger locked" in body


def test_http_not_found(served: tuple[MetricsServer, Heartbeat, Clock]) -> None:
    """Other paths answer 404."""
    server, _, _ = served
    assert _get(server.address, "/")[0] == 404
    assert _get(server.address, "/metrics/extra")[0] == 404


def test_stop_closes_socket_and_thread(tmp_path: Path) -> None:
    """After stop() the port is closed and the serving thread is gone; stop() twice is fine."""
    server = MetricsServer(Metrics(), "127.0.0.1:0", health=lambda: (True, "ok"))
    server.start()
    address = server.address
    assert _get(address, "/healthz")[0] == 200
    server.stop()
    server.stop()
    assert not [t for t in threading.enumerate() if t.name == "metrics-http"]
    with pytest.raises(ConnectionRefusedError):
        _get(address, "/healthz")


def test_start_on_taken_port_raises() -> None:
    """A second listener on the same port fails loudly at start."""
    first = MetricsServer(Metrics(), "127.0.0.1:0", health=lambda: (True, "ok"))
    first.start()
    try:
        second = MetricsServer(
            Metrics(), f"127.0.0.1:{first.address[1]}", health=lambda: (True, "ok")
        )
        with pytest.raises(OSError):
            second.start()
    finally:
        first.stop()


# --- heartbeat ---------------------------------------------------------------------------------


def test_heartbeat_writes_json_atomically(tmp_path: Path) -> None:
    """beat() leaves exactly one file holding time, pid and the status, and no temp file."""
    hb = Heartbeat(tmp_path / "heartbeat", now=lambda: 1234.5)
    assert hb.beat({"queued": 2, "paused": "auth"}) == 1234.5
    hb.beat({"queued": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["heartbeat"]
    doc = json.loads((tmp_path / "heartbeat").read_text())
    assert doc == {"time": 1234.5, "pid": os.getpid(), "status": {"queued": 1}}


def test_check_fresh(tmp_path: Path) -> None:
    """A beat within max_age is fresh and the reason says how old it is."""
    hb = Heartbeat(tmp_path / "hb", now=lambda: 100.0)
    hb.beat()
    ok, reason = Heartbeat.check(hb.path, max_age=60, now=159.0)
    assert ok
    assert reason.startswith("ok: last heartbeat 59s ago")


def test_check_stale(tmp_path: Path) -> None:
    """A beat older than max_age is stale, with the age and the limit in the reason."""
    hb = Heartbeat(tmp_path / "hb", now=lambda: 100.0)
    hb.beat()
    ok, reason = Heartbeat.check(hb.path, max_age=60, now=161.0)
    assert not ok
    assert "61s ago" in reason
    assert "limit 60s" in reason


def test_check_missing(tmp_path: Path) -> None:
    """No file means not healthy: the daemon never started its loop."""
    ok, reason = Heartbeat.check(tmp_path / "absent", max_age=60, now=0)
    assert not ok
    assert "no heartbeat file" in reason


@pytest.mark.parametrize(
    "content", [b"", b"not json", b"[1, 2]", b'{"pid": 1}', b'{"time": "soon"}', b"\xff\xfe"]
)
def test_check_garbage(tmp_path: Path, content: bytes) -> None:
    """A truncated or foreign file is reported as invalid, never as fresh or as a crash."""
    path = tmp_path / "hb"
    path.write_bytes(content)
    ok, reason = Heartbeat.check(path, max_age=60, now=0)
    assert not ok
    assert "not valid heartbeat JSON" in reason
