"""The web console over HTTP: pages, security (Host, login, CSRF, XSS) and the push API."""

from __future__ import annotations

import html
import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from consolefixtures import LiveDaemon, add_job, token_file
from helpers import wait_until

from synthesia_watchd.config.load import build_config
from synthesia_watchd.domain.errors import ConfigError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.engine import lifecycle
from synthesia_watchd.service import cli
from synthesia_watchd.stores.ledger import Ledger

XSS = "<img src=x onerror=alert(1)>.mp4"


def _csrf(live: LiveDaemon) -> str:
    return live.daemon.web.app.csrf


# --- pages -----------------------------------------------------------------------------------


def test_every_page_loads_and_names_are_escaped(live: LiveDaemon) -> None:
    """Each page answers 200; a hostile file name appears only HTML-escaped."""
    job = add_job(live.engine, XSS, JobState.FAILED, last_error="bad <b>thing</b>")
    for path in ("/", "/jobs", f"/jobs/{job.id}", "/failures", "/attention", "/jobs?state=failed"):
        r = live.get(path)
        assert r.status_code == 200, path
        assert "<img src=x" not in r.text and "<b>thing" not in r.text, path
    page = live.get(f"/jobs/{job.id}").text
    assert "&lt;img src=x onerror=alert(1)&gt;.mp4" in page
    assert "script-src 'self'" in live.get("/").headers["content-security-policy"]


def test_live_fragment_is_the_table_only(live: LiveDaemon) -> None:
    """htmx's refresh gets the live part without the layout around it."""
    add_job(live.engine, "a.mp4")
    r = live.get("/jobs?live=1", headers={"HX-Request": "true"})
    assert r.status_code == 200 and 'id="jobs"' in r.text and "<html" not in r.text


def test_static_htmx_is_served_from_the_package(live: LiveDaemon) -> None:
    """htmx comes from the daemon itself (no CDN), and pages load nothing from elsewhere."""
    r = live.get("/static/htmx.min.js")
    assert r.status_code == 200 and "htmx" in r.text[:200]
    page = live.get("/").text
    assert "https://" not in page and "http://" not in page


def test_needs_attention_view_explains_and_warns(live: LiveDaemon) -> None:
    """An ambiguous submit is explained, with the may-pay-twice warning on resubmit."""
    job = add_job(live.engine, "amb.mp4", JobState.UPLOADED)
    with Ledger(live.engine.ledger_path) as ledger:
        ledger.transition(
            job.id, JobState.UPLOADED, JobState.NEEDS_ATTENTION, why="t", submit_started_at=5.0
        )
    page = live.get("/attention").text
    assert "may have started, and billed" in page and "you pay twice" in page
    assert f'data-action="resubmit-{job.id}"' in page
    assert f'data-action="retry-{job.id}"' not in page


@pytest.mark.parametrize(
    ("path", "state"), [("/failures", JobState.FAILED), ("/attention", JobState.NEEDS_ATTENTION)]
)
def test_long_lists_page_to_the_oldest_job(live: LiveDaemon, path: str, state: JobState) -> None:
    """More failed (or waiting) jobs than one page holds: "older" links reach every one."""
    engine = live.engine
    with Ledger(engine.ledger_path) as ledger:
        ids = {
            ledger.add_job(
                watch="elsewhere", source_path=str(engine.input / f"f{n}.mp4"), size=1,
                mtime_ns=1, sha256=None, source_language="en", targets=["fr-FR"],
                output_dir=str(engine.output), state=state, why="set up by the test",
            ).id
            for n in range(530)
        }  # fmt: skip
    seen: list[int] = []
    url: str | None = path
    for _ in range(50):
        assert url is not None
        page = live.get(url).text
        shown = [int(i) for i in re.findall(r'data-job="(\d+)"', page)]
        assert shown and not set(shown) & set(seen), url
        seen += shown
        older = re.search(r'<a href="([^"]+)"[^>]*>older</a>', page)
        url = html.unescape(older.group(1)) if older else None
        if url is None:
            break
    assert set(seen) == ids and len(seen) == len(ids)
    assert seen == sorted(seen, reverse=True)  # newest first, page after page


def test_reload_moves_the_console_to_a_new_listen_address(
    live_factory: Callable[..., LiveDaemon],
) -> None:
    """SIGHUP with a new web.listen: the console answers there, not on the old port; a port
    already taken leaves it where it was, with the reason in the log."""
    import socket

    import requests
    import structlog

    live = live_factory()
    old = live.daemon.web.port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        new = probe.getsockname()[1]
    live.engine.settings["web"] = {"listen": f"127.0.0.1:{new}"}
    live.engine.write_config()
    live.reload()
    wait_until(lambda: live.daemon.web.port == new, what="the console on its new port")
    assert live.get("/").status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{old}/", timeout=5)
    with socket.socket() as taken, structlog.testing.capture_logs() as logs:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        live.engine.settings["web"] = {"listen": f"127.0.0.1:{taken.getsockname()[1]}"}
        live.engine.write_config()
        live.reload()
        found = wait_until(
            lambda: [e for e in logs if e["event"].startswith("console not moved")],
            what="the refused move logged",
        )
    assert "cannot listen on" in found[0]["error"], found
    assert live.daemon.web.port == new and live.get("/").status_code == 200


def test_reload_applies_a_new_console_token_on_the_same_port(
    live_factory: Callable[..., LiveDaemon], tmp_path: Path
) -> None:
    """A new web.token_file on the same address: the console restarts there and asks for it;
    web.listen removed: the console stops."""
    import requests

    live = live_factory()
    port = live.daemon.web.port
    token = "a-long-enough-console-token"
    web = {"listen": f"127.0.0.1:{port}", "token_file": str(token_file(tmp_path, token))}
    live.engine.settings["web"] = web
    live.engine.write_config()
    live.reload()
    wait_until(lambda: live.daemon.web.token_file is not None, what="the token applied")
    assert live.daemon.web.port == port
    assert live.get("/").status_code == 401
    assert live.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    del live.engine.settings["web"]
    live.engine.write_config()
    live.reload()
    wait_until(lambda: live.daemon.web is None, what="the console stopped")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_reload_says_a_new_metrics_listen_needs_a_restart(
    live_factory: Callable[..., LiveDaemon],
) -> None:
    """metrics.listen is read at start: a reload that changes it says so in the log."""
    import structlog

    live = live_factory(settings={"metrics": {"listen": "127.0.0.1:0"}})
    live.engine.settings["metrics"] = {"listen": "127.0.0.1:1"}
    live.engine.write_config()
    with structlog.testing.capture_logs() as logs:
        live.reload()
        wait_until(lambda: any(e["event"] == "config reloaded" for e in logs), what="reload")
    said = [e for e in logs if e["event"].startswith("metrics.listen changed")]
    assert said and said[0]["listen"] == "127.0.0.1:1", [e["event"] for e in logs]


# --- changes go through lifecycle, with CSRF --------------------------------------------------


def test_pause_button_needs_the_csrf_token_and_same_origin(live: LiveDaemon) -> None:
    """A POST without the token, or from another origin, changes nothing; the real one pauses."""
    assert live.post("/control/pause", data={}).status_code == 403
    r = live.post(
        "/control/pause", data={"csrf": _csrf(live)}, headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 403
    assert lifecycle.read_control(live.daemon.ledger).global_hold is None
    r = live.post("/control/pause", data={"csrf": _csrf(live), "back": "/jobs"})
    assert r.status_code == 303 and r.headers["location"] == "/jobs"
    assert lifecycle.read_control(live.daemon.ledger).global_hold is not None
    wait_until(lambda: live.daemon.scheduler.gate.all_new, what="the daemon saw the pause")
    r = live.post("/control/resume", data={"csrf": _csrf(live), "back": "//evil.example/"})
    assert r.headers["location"] == "/"  # never an open redirect
    assert lifecycle.read_control(live.daemon.ledger).global_hold is None


def test_state_changes_are_post_only(live: LiveDaemon) -> None:
    """GET on an action URL changes nothing."""
    job = add_job(live.engine, "a.mp4")
    assert live.get(f"/jobs/{job.id}/cancel").status_code == 405
    assert live.daemon.ledger.get(job.id).state is JobState.QUEUED


def test_retry_then_confirmed_resubmit(live: LiveDaemon) -> None:
    """Retry of an ambiguous submit is refused (409, may pay twice); resubmit re-queues it."""
    job = add_job(live.engine, "amb.mp4", JobState.ASSET_CREATED)
    with Ledger(live.engine.ledger_path) as ledger:
        ledger.transition(job.id, JobState.ASSET_CREATED, JobState.UPLOADED, why="t")
        ledger.transition(
            job.id, JobState.UPLOADED, JobState.NEEDS_ATTENTION, why="t", submit_started_at=5.0
        )
    r = live.post(f"/jobs/{job.id}/retry", data={"csrf": _csrf(live)})
    assert r.status_code == 409 and "retry --resubmit" in r.text
    r = live.post(f"/jobs/{job.id}/resubmit", data={"csrf": _csrf(live)})
    assert r.status_code == 303
    assert live.daemon.ledger.get(job.id).state is JobState.UPLOADED
    assert "resubmit confirmed by operator" in [e.why for e in live.daemon.ledger.events(job.id)]


# --- Host, login, secrets --------------------------------------------------------------------


def test_unknown_host_header_is_refused(live_factory: Callable[..., LiveDaemon]) -> None:
    """A Host not on the allow-list (DNS rebinding) gets 400; a listed one is served."""
    live = live_factory(web={"allowed_hosts": ["nas.local"]})
    assert live.get("/", headers={"Host": "evil.example"}).status_code == 400
    assert live.get("/", headers={"Host": "nas.local:8080"}).status_code == 200
    assert live.get("/", headers={"Host": "localhost"}).status_code == 200


def test_token_login_and_no_secret_in_pages(
    live_factory: Callable[..., LiveDaemon], tmp_path: Path
) -> None:
    """With web.token_file: 401 (basic-auth prompt) without it; Bearer and basic work; the
    token and the API key appear in no page."""
    token = "a-long-enough-console-token"
    live = live_factory(web={"token_file": str(token_file(tmp_path, token))})
    r = live.get("/")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert live.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert live.get("/api/v1/status", auth=("x", "wrong")).status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    for path in ("/", "/jobs", "/failures", "/attention", "/api/v1/status", "/api/v1/jobs"):
        r = live.get(path, headers=bearer)
        assert r.status_code == 200, path
        assert token not in r.text and live.engine.sim.api_key not in r.text, path
    assert live.get("/", auth=("operator", token)).status_code == 200


def test_non_loopback_listen_without_token_is_refused(tmp_path: Path) -> None:
    """web.listen on a network address without web.token_file is a config error."""
    data = {
        "state_dir": str(tmp_path),
        "web": {"listen": "0.0.0.0:8080"},
        "watches": [{"name": "w", "input": str(tmp_path), "targets": ["fr-FR"]}],
    }
    with pytest.raises(ConfigError, match=r"web\.token_file"):
        build_config(data, filename="c.yaml", environ={})
    data["web"] = {"listen": "0.0.0.0:8080", "token_file": str(tmp_path / "t")}
    assert build_config(data, filename="c.yaml", environ={}).web_listen == "0.0.0.0:8080"


def test_short_token_file_stops_the_daemon(
    live_factory: Callable[..., LiveDaemon], tmp_path: Path
) -> None:
    """An unusable token file stops the daemon at start instead of serving without login."""
    with pytest.raises(ConfigError, match="16"):
        live_factory(web={"token_file": str(token_file(tmp_path, "short"))})


# --- the JSON API ----------------------------------------------------------------------------


def _cli_json(capsys: pytest.CaptureFixture[str], live: LiveDaemon, *argv: str) -> object:
    capsys.readouterr()
    assert cli.main([*argv, "--json", "--ledger", str(live.engine.ledger_path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_get_endpoints_mirror_the_cli_json(
    live: LiveDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    """/api/v1/jobs and /api/v1/jobs/ID answer what `jobs --json` and `show --json` print."""
    job = add_job(live.engine, XSS, JobState.FAILED, last_error="boom")
    assert live.get("/api/v1/jobs").json() == _cli_json(capsys, live, "jobs")
    assert live.get(f"/api/v1/jobs/{job.id}").json() == _cli_json(capsys, live, "show", str(job.id))
    api = live.get("/api/v1/status").json()
    cli_status = _cli_json(capsys, live, "status")
    assert isinstance(cli_status, dict)
    assert api.keys() == cli_status.keys() and api["counts"] == cli_status["counts"]
    assert live.get("/api/v1/jobs/999").status_code == 404
    assert live.get("/api/v1/jobs?state=nope").status_code == 400


def test_push_api_takes_a_file_the_watcher_has_not_seen(live: LiveDaemon) -> None:
    """POST /api/v1/jobs hands over a file: it becomes a job (the polling watch would not
    have looked for an hour) and is dubbed."""
    src = live.engine.put("sub/pushed.mp4")
    r = live.post("/api/v1/jobs", json={"watch": "drop", "path": "sub/pushed.mp4"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] is True
    wait_until(lambda: live.engine.states().get("pushed.mp4") == "done", timeout=30, what="dubbed")
    assert live.engine.job_for(src).watch == "drop"


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"watch": "drop", "path": "../outside.mp4"}, 422, "outside"),
        ({"watch": "drop", "path": "missing.mp4"}, 422, "no such file"),
        ({"watch": "drop", "path": "clip.mp4.part"}, 422, "ignored"),
        ({"watch": "nope", "path": "a.mp4"}, 404, "no watch"),
        ({"watch": "drop"}, 400, "expected"),
        ({"watch": "drop", "path": "/etc/passwd"}, 400, "relative"),
    ],
)
def test_push_api_applies_the_dropped_file_checks(
    live: LiveDaemon, body: dict[str, str], status: int, says: str
) -> None:
    """Files outside the root, missing, ignored, or of an unknown watch are refused."""
    (live.engine.input / "clip.mp4.part").write_bytes(b"x")
    (live.engine.base / "outside.mp4").write_bytes(b"x")
    r = live.post("/api/v1/jobs", json=body)
    assert r.status_code == status and says in r.json()["error"]
    assert live.engine.jobs() == []


def test_push_api_needs_json_and_same_origin(live: LiveDaemon) -> None:
    """A form POST (what a hostile page can send) or another Origin is refused."""
    live.engine.put("a.mp4")
    r = live.post("/api/v1/jobs", data={"watch": "drop", "path": "a.mp4"})
    assert r.status_code == 415
    r = live.post(
        "/api/v1/jobs",
        json={"watch": "drop", "path": "a.mp4"},
        headers={"Origin": "http://evil.example"},
    )
    assert r.status_code == 403


def test_push_api_with_a_token(live_factory: Callable[..., LiveDaemon], tmp_path: Path) -> None:
    """With a token the API needs it too."""
    token = "a-long-enough-console-token"
    live = live_factory(web={"token_file": str(token_file(tmp_path, token))})
    live.engine.put("a.mp4")
    body = {"watch": "drop", "path": "a.mp4"}
    assert live.post("/api/v1/jobs", json=body).status_code == 401
    r = live.post("/api/v1/jobs", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 202


def test_console_off_by_default(engine_factory: Callable[..., object]) -> None:
    """Without web.listen no console is started."""
    engine = engine_factory()
    daemon = engine.daemon()  # type: ignore[attr-defined]
    try:
        daemon.start()
        assert daemon.web is None
        assert not any(t.name == "web" for t in threading.enumerate())
    finally:
        daemon.shutdown()
        daemon.ledger.close()
        daemon.lock.release()


# --- live progress ---------------------------------------------------------------------------


def test_dubbing_estimate_from_recent_projects(tmp_path: Path) -> None:
    """A job dubbing for 30 s, when projects lately took 100 s, shows about 70 s left
    (the estimate of estimate.py over the ledger's dub history)."""
    from synthesia_watchd.web.data import Console, jobs_page

    clock = [1000.0]
    ledger = Ledger(tmp_path / "l.sqlite3", now=lambda: clock[0])
    config = build_config(
        {
            "state_dir": str(tmp_path),
            "watches": [{"name": "w", "input": "/x", "targets": ["fr-FR"]}],
        },
        filename="c",
        environ={},
    )

    def to_dubbing(name: str) -> int:
        job = ledger.add_job(
            watch="w",
            source_path=f"/x/{name}",
            size=1,
            mtime_ns=1,
            sha256=None,
            source_language="en",
            targets=["fr-FR"],
            output_dir="/o",
        )
        for a, b in (
            (JobState.QUEUED, JobState.ASSET_CREATED),
            (JobState.ASSET_CREATED, JobState.UPLOADED),
            (JobState.UPLOADED, JobState.DUBBING),
        ):
            ledger.transition(job.id, a, b, why="t")
        return job.id

    done = to_dubbing("old.mp4")
    clock[0] += 100
    ledger.transition(done, JobState.DUBBING, JobState.DOWNLOADING, why="complete")
    to_dubbing("new.mp4")
    clock[0] += 30
    console = Console(ledger=ledger, config=lambda: config, now=lambda: clock[0])
    rows = {r["file"]: r for r in jobs_page(console)["rows"]}
    assert rows["new.mp4"]["estimate_left"] == pytest.approx(70.0)
    ledger.close()


def test_upload_progress_reaches_the_jobs_page(live: LiveDaemon) -> None:
    """An upload under way (the pipeline's progress board) shows as a bar with its share."""
    job = add_job(live.engine, "big.mp4", JobState.ASSET_CREATED, size=1000)
    transfer = live.daemon.pipeline.progress.upload(job)
    transfer(420)  # bytes sent, as s3transfer reports them
    page = live.get("/jobs").text
    assert '<progress max="1" value="0.42">' in page and "42%" in page


def test_rate_budget_usage_on_the_overview(live: LiveDaemon) -> None:
    """After a dub, the overview shows the requests counted per endpoint and window."""
    from synthesia_watchd.domain.ratelimit import RateLimiter

    limiter = RateLimiter.from_rate_limits({"writes": {"per_minute": 5, "per_day": 9}})
    limiter.reserve("write", "POST /v2/dubbing", now=100.0)
    assert {(r["seconds"], r["used"], r["limit"]) for r in limiter.usage(now=130.0)} == {
        (60.0, 1, 5),
        (86400.0, 1, 9),
    }
    assert all(r["used"] == 0 for r in limiter.usage(now=100.0 + 86400.0))
    live.engine.put("a.mp4")
    live.post("/api/v1/jobs", json={"watch": "drop", "path": "a.mp4"})
    wait_until(lambda: live.engine.states().get("a.mp4") == "done", timeout=30, what="dubbed")
    page = live.get("/").text
    assert "POST /v2/dubbing</td><td>minute</td><td>1 / 60" in page


def test_overview_lists_the_nodes_sharing_the_ledger(live: LiveDaemon) -> None:
    """With several nodes on the ledger, the overview names each with its heartbeat and claims."""
    assert 'id="nodes"' not in live.get("/").text  # one node: nothing to list
    live.daemon.ledger.beat("nas-west", time.time(), pid=4242, version="0.1.0")
    page = live.get("/").text
    assert 'id="nodes"' in page and "nas-west" in page


def test_overview_shows_each_node_s_own_status_record(live: LiveDaemon) -> None:
    """Each node's row says whether it runs and what it has paused, from its own record."""
    record = {"pid": 4242, "time": time.time(), "paused": {"space": "disk full on nas-west"}}
    live.daemon.ledger.beat("nas-west", time.time(), pid=4242, version="0.1.0")
    live.daemon.ledger.set_node_status("nas-west", time.time(), json.dumps(record))
    live.daemon.beat(force=True)
    page = live.get("/").text
    row = page.split('id="nodes"', 1)[1].split("</table>", 1)[0]
    assert "nas-west</td><td>running" in row
    assert "disk full on nas-west" in row
    assert row.count("running") == 2  # this daemon's node too
