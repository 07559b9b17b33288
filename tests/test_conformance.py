"""Conformance with the published API document: each request and answer the real service may
treat more strictly than a lenient simulator, tested against the simulator in its strict reading.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.noderecords import freshest, records


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session closed after the test."""
    with requests.Session() as session:
        yield session


#: Simulator options for the strict reading of the document and the guide.
STRICT: dict[str, Any] = {
    "filter_encoding": "repeated",
    "filter_base_match": False,
    "accept_bearer": False,
    "missing_auth_status": 403,
    "require_upload_content_type": True,
}


@pytest.fixture
def strict(sim_factory: Callable[..., Simulator]) -> Simulator:
    """The simulator in the strict reading: repeated-key filter, exact language match, bare
    key only, 403 for a missing header, an upload without the asset's Content-Type refused."""
    return sim_factory(**STRICT)


def _auth(sim: Simulator) -> dict[str, str]:
    return {"Authorization": sim.api_key}


# --- item 8: the simulator type-checks every field before using it -----------------------------


@pytest.mark.parametrize(
    ("path", "method", "body", "field"),
    [
        (
            "/v2/assets",
            "POST",
            {"contentType": {}, "configuration": {"name": "dubbing"}},
            "contentType",
        ),
        (
            "/v2/assets",
            "POST",
            {"contentType": "video/mp4", "configuration": {"name": {}}},
            "configuration.name",
        ),
        (
            "/v2/dubbing",
            "POST",
            {
                "title": "t",
                "targetLanguages": ["es-ES"],
                "sourceAssetId": "a",
                "sourceLanguage": {},
            },
            "sourceLanguage",
        ),
        (
            "/v2/dubbing",
            "POST",
            {"title": "t", "targetLanguages": [{}], "sourceAssetId": "a", "sourceLanguage": "en"},
            "targetLanguages",
        ),
        (
            "/v2/dubbing",
            "POST",
            {
                "title": "t",
                "targetLanguages": ["es-ES"],
                "sourceAssetId": "a",
                "sourceLanguage": "en",
                "videoDuration": [],
            },
            "videoDuration",
        ),
        (
            "/v2/dubbing",
            "POST",
            {
                "title": "t",
                "targetLanguages": ["es-ES"],
                "sourceAssetId": "a",
                "sourceLanguage": "en",
                "visibility": {},
            },
            "visibility",
        ),
        ("/v2/dubbing/{pid}", "PUT", {"targetLanguages": [{}]}, "targetLanguages"),
        ("/v2/dubbing/{pid}", "PUT", {"targetLanguages": [["es-ES"]]}, "targetLanguages"),
    ],
)
def test_unhashable_fields_are_400_not_a_dropped_connection(
    strict: Simulator,
    http: requests.Session,
    path: str,
    method: str,
    body: dict[str, Any],
    field: str,
) -> None:
    """Objects and arrays where a string belongs get a 400 naming the field (item 8)."""
    url = strict.url + path.format(pid="00000000-0000-4000-8000-000000000000")
    resp = http.request(method, url, json=body, headers=_auth(strict))
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/json"
    assert field in resp.json()["context"]


# --- item 9: the document's reading of the filter by default; 405 for wrong methods ------------


def test_default_filter_reading_is_repeated_keys(
    sim_factory: Callable[..., Simulator], http: requests.Session
) -> None:
    """A default simulator reads targetLanguages as repeated keys only; 'both' stays an option."""
    from test_simulator import ready_project

    sim = sim_factory()
    pid = ready_project(http, sim, ["es-ES", "fr-FR"])
    url = f"{sim.url}/v2/dubbing/{pid}"
    repeated = http.get(url, params={"targetLanguages": ["es-ES", "fr-FR"]}, headers=_auth(sim))
    assert repeated.status_code == 200
    assert sorted(a["language"] for a in repeated.json()["dubbedAssets"]) == ["es-ES", "fr-FR"]
    comma = http.get(url, params={"targetLanguages": "es-ES,fr-FR"}, headers=_auth(sim))
    assert comma.status_code == 404
    lenient = sim_factory(filter_encoding="both")
    pid = ready_project(http, lenient, ["es-ES", "fr-FR"])
    url = f"{lenient.url}/v2/dubbing/{pid}"
    both = http.get(url, params={"targetLanguages": "es-ES,fr-FR"}, headers=_auth(lenient))
    assert both.status_code == 200 and len(both.json()["dubbedAssets"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v2/assets", "POST"),
        ("DELETE", "/v2/assets/00000000-0000-4000-8000-000000000000", "GET"),
        ("PUT", "/v2/assets/00000000-0000-4000-8000-000000000000", "GET"),
        ("GET", "/v2/dubbing", "POST"),
        ("DELETE", "/v2/dubbing/00000000-0000-4000-8000-000000000000", "GET, PUT"),
        ("POST", "/v2/dubbing/00000000-0000-4000-8000-000000000000", "GET, PUT"),
    ],
)
def test_wrong_method_on_known_path_is_405(
    strict: Simulator, http: requests.Session, method: str, path: str, allow: str
) -> None:
    """A known path with a method it does not serve answers 405 with an Allow header."""
    resp = http.request(method, strict.url + path, headers=_auth(strict))
    assert resp.status_code == 405
    assert resp.headers["Allow"] == allow
    assert resp.json()["error"] == "Method Not Allowed"
    unknown = http.get(strict.url + "/v2/nothing", headers=_auth(strict))
    assert unknown.status_code == 404


# --- item 1: contentMD5 is opt-in; the simulator verifies it when present ----------------------


def _md5_b64(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


def _upload_and_settle(
    sim: Simulator, client: Any, data: bytes, md5: str | None, folder: Any
) -> Any:
    """Create an asset (passing ``md5``), upload ``data`` multipart, return its settled info."""
    from helpers import wait_until

    from synthesia_watchd.synthesia.upload import upload_file

    path = folder / "source.mp4"
    path.write_bytes(data)
    asset = client.create_asset(
        content_type="video/mp4", content_length=len(data), title="s", content_md5=md5
    )
    upload_file(
        path,
        asset.credentials,
        endpoint_url=sim.s3_url,
        content_type="video/mp4",
        multipart_threshold=5 * 1024 * 1024,
        multipart_chunksize=5 * 1024 * 1024,
    )
    wait_until(lambda: client.get_asset(asset.id).status in ("ready", "error"), what="settled")
    return asset, client.get_asset(asset.id)


def test_content_md5_is_not_sent_unless_opted_in(strict: Simulator, tmp_path: Any) -> None:
    """By default POST /v2/assets carries no contentMD5, even when the caller computed one."""
    from test_api import make_client

    from synthesia_watchd.domain.media import sample_video

    data = sample_video("md5-default", 64 * 1024)
    client = make_client(strict)
    asset, info = _upload_and_settle(strict, client, data, _md5_b64(data), tmp_path)
    assert strict.assets[asset.id].content_md5 is None
    assert info.status == "ready"


def test_content_md5_opt_in_is_verified_over_a_multipart_upload(
    strict: Simulator, tmp_path: Any
) -> None:
    """Opted in, a right MD5 (base64 of the digest) gives a ready asset, a wrong one an error."""
    from test_api import make_client

    from synthesia_watchd.domain.media import sample_video

    data = sample_video("md5-opt-in", 11 * 1024 * 1024)  # three parts: ETag is not an MD5
    client = make_client(strict, send_content_md5=True)
    asset, info = _upload_and_settle(strict, client, data, _md5_b64(data), tmp_path)
    assert strict.assets[asset.id].content_md5 == _md5_b64(data)
    assert (info.status, info.error_code) == ("ready", None)
    _, bad = _upload_and_settle(strict, client, data, _md5_b64(b"other bytes"), tmp_path)
    assert (bad.status, bad.error_code) == ("error", "asset_upload")


def test_content_md5_config_key_reaches_the_client(tmp_path: Any) -> None:
    """api.send_content_md5 defaults to false and, when true, turns the client's opt-in on."""
    import threading

    from test_config import parse

    from synthesia_watchd.domain.ratelimit import RateLimiter
    from synthesia_watchd.service.compose import build_client

    base = "synthesia: {api_key: k-123456}\nwatches: [{name: w, input: in, targets: [fr-FR]}]\n"
    off = parse(base, tmp_path)
    on = parse(base + "api: {send_content_md5: true}\n", tmp_path)
    assert (off.send_content_md5, on.send_content_md5) == (False, True)
    for cfg, expected in ((off, False), (on, True)):
        client = build_client(cfg, RateLimiter.unlimited(), threading.Event(), None)
        assert client is not None and client.sends_content_md5 is expected


# --- item 2: the S3 upload carries the asset's content type ------------------------------------


@pytest.mark.parametrize("size", [64 * 1024, 11 * 1024 * 1024], ids=["single", "multipart"])
def test_upload_sets_the_asset_content_type(strict: Simulator, tmp_path: Any, size: int) -> None:
    """upload_file stores the object with the Content-Type given (single PUT and multipart)."""
    from test_api import make_client

    from synthesia_watchd.domain.media import sample_video
    from synthesia_watchd.synthesia.upload import upload_file

    path = tmp_path / "clip.mov"
    path.write_bytes(sample_video("ct", size))
    client = make_client(strict)
    asset = client.create_asset(content_type="video/quicktime", content_length=size, title="c")
    upload_file(
        path,
        asset.credentials,
        endpoint_url=strict.s3_url,
        content_type="video/quicktime",
        multipart_threshold=5 * 1024 * 1024,
        multipart_chunksize=5 * 1024 * 1024,
    )
    assert strict.assets[asset.id].upload_content_type == "video/quicktime"
    assert client.get_asset(asset.id).status == "ready"


def test_upload_without_content_type_is_an_asset_error_in_strict_mode(
    strict: Simulator, tmp_path: Any
) -> None:
    """The strict simulator fails an asset whose object lacks the asset's content type."""
    from test_api import make_client

    from synthesia_watchd.domain.media import sample_video
    from synthesia_watchd.synthesia.upload import upload_file

    path = tmp_path / "clip.mp4"
    path.write_bytes(sample_video("ct", 4096))
    client = make_client(strict)
    asset = client.create_asset(content_type="video/mp4", content_length=4096, title="c")
    upload_file(path, asset.credentials, endpoint_url=strict.s3_url)
    info = client.get_asset(asset.id)
    assert (info.status, info.error_code) == ("error", "asset_upload")


def test_daemon_uploads_with_the_content_type(engine_factory: Callable[..., Any]) -> None:
    """A daemon run against the strict simulator dubs a .mov: its upload says video/quicktime."""
    engine = engine_factory(**STRICT)
    source = engine.put("clip.mov")
    engine.run()
    engine.assert_all_done()
    job = engine.job_for(source)
    assert engine.sim.assets[job.asset_id].upload_content_type == "video/quicktime"


# --- item 3: a 400 on the filtered poll falls back to one unfiltered GET; bare codes match ------


def _dubbed(sim: Simulator, client: Any, folder: Any, targets: list[str]) -> str:
    """A submitted project of a freshly uploaded mp4 (with its Content-Type, as strict wants)."""
    from test_api import submit

    from synthesia_watchd.domain.media import sample_video
    from synthesia_watchd.synthesia.upload import upload_file

    path = folder / "source.mp4"
    path.write_bytes(sample_video("source", 4096))
    asset = client.create_asset(content_type="video/mp4", content_length=4096, title="source")
    upload_file(path, asset.credentials, endpoint_url=sim.s3_url, content_type="video/mp4")
    return str(submit(client, asset.id, targets))


def test_filtered_poll_400_falls_back_to_one_unfiltered_get(
    strict: Simulator, tmp_path: Any
) -> None:
    """A 400 to the filtered GET is retried once without the filter (and the filter dropped
    for later polls); a second 400 is final."""
    from test_api import make_client

    from synthesia_watchd.domain.errors import PermanentError

    client = make_client(strict)
    pid = _dubbed(strict, client, tmp_path, ["es-ES", "fr-FR"])
    before = strict.count("GET /v2/dubbing/{id}")
    strict.faults.add("GET /v2/dubbing/{id}", "5xx", count=1, status=400)
    project = client.get_project(pid, ["es-ES"])
    assert [a.language for a in project.assets] == ["es-ES"]
    gets = [r for r in strict.requests if r.endpoint == "GET /v2/dubbing/{id}"][before:]
    assert [(r.status, bool(r.query)) for r in gets] == [(400, True), (200, False)]
    # Refused once, the filter is not sent again by this client: one GET per poll.
    assert [a.language for a in client.get_project(pid, ["es-ES"]).assets] == ["es-ES"]
    last = [r for r in strict.requests if r.endpoint == "GET /v2/dubbing/{id}"][-1]
    assert (last.status, last.query) == (200, "")
    strict.faults.add("GET /v2/dubbing/{id}", "5xx", count=2, status=400)
    with pytest.raises(PermanentError) as info:
        make_client(strict).get_project(pid, ["es-ES"])
    assert info.value.status == 400
    assert strict.count("GET /v2/dubbing/{id}") == before + 5


def test_bare_language_answers_match_requested_locales(
    sim_factory: Callable[..., Simulator], tmp_path: Any
) -> None:
    """A server that speaks bare codes (400 on a locale filter, items 'es') still yields them."""
    from helpers import wait_until
    from test_api import make_client

    sim = sim_factory(**STRICT, bare_language_codes=True)
    client = make_client(sim)
    pid = _dubbed(sim, client, tmp_path, ["es-ES", "fr-FR"])
    wait_until(lambda: client.get_project(pid).status == "complete", what="dubbed")
    project = client.get_project(pid, ["es-ES", "fr-FR"])
    assert sorted(a.language for a in project.assets) == ["es", "fr"]
    assert all(a.download for a in project.assets)


def test_daemon_dubs_against_a_bare_code_server(engine_factory: Callable[..., Any]) -> None:
    """End to end, outputs are named by the requested locales when the API answers bare codes."""
    engine = engine_factory(**STRICT, bare_language_codes=True)
    source = engine.put("talk.mp4")
    engine.run()
    engine.assert_all_done()
    job = engine.job_for(source)
    for lang in ("fr-FR", "es-ES"):
        out = engine.output / f"talk.dubbed-{lang}.mp4"
        assert out.read_bytes() == engine.sim.expected_output(job.project_id, lang)


def test_bare_codes_shared_by_two_targets_need_attention(
    engine_factory: Callable[..., Any],
) -> None:
    """Bare "es" items cannot tell es-ES from es-MX: nothing written for them, no new charge."""
    from enginefixtures import ManualClock

    from synthesia_watchd.domain.reasons import Reason
    from synthesia_watchd.domain.states import JobState, OutputState
    from synthesia_watchd.engine import lifecycle

    engine = engine_factory(
        **STRICT, bare_language_codes=True, clock=ManualClock(), dub_seconds=20.0
    )
    source = engine.put("talk.mp4")
    targets = ["es-ES", "es-MX", "fr-FR"]
    engine.step(targets=targets)
    job = engine.job_for(source)
    assert job.state is JobState.NEEDS_ATTENTION, (job.state, job.last_error)
    assert job.reason_code == Reason.AMBIGUOUS_LANGUAGE.value
    said = f"{job.last_error} {job.last_error_context}"
    for words in ("es-ES", "es-MX", "bare", "'es'", f"retry {job.id}"):
        assert words in said, said
    # Only the language the answer names without doubt is written.
    assert sorted(p.name for p in engine.output.iterdir()) == ["talk.dubbed-fr-FR.mp4"]
    outs = {o.language: o for o in engine.outputs(job)}
    assert outs["fr-FR"].state is OutputState.DONE
    for lang in ("es-ES", "es-MX"):
        assert (outs[lang].state, outs[lang].error_code) == (
            OutputState.FAILED,
            "ambiguous_language",
        )
    # `retry` polls the paid project again: still ambiguous, still not paid twice.
    with engine.ledger() as ledger:
        said = lifecycle.retry(ledger, job)
    assert "no new charge" in said
    engine.step(targets=targets)
    again = engine.job_for(source)
    assert (again.id, again.state) == (job.id, JobState.NEEDS_ATTENTION)
    assert sorted(p.name for p in engine.output.iterdir()) == ["talk.dubbed-fr-FR.mp4"]
    assert engine.dub_posts() == 1


def test_bare_codes_seen_stop_a_shared_locale_job_before_it_pays(
    engine_factory: Callable[..., Any],
) -> None:
    """Once the API has answered bare codes, the next job dubbing es-ES and es-MX is not
    submitted (its dubs could not be told apart): it waits for a person, nothing paid."""
    from enginefixtures import ManualClock

    from synthesia_watchd.domain.reasons import Reason
    from synthesia_watchd.domain.states import JobState

    engine = engine_factory(
        **STRICT, bare_language_codes=True, clock=ManualClock(), dub_seconds=20.0
    )
    engine.settings["workers"] = {"max_active_jobs": 1}  # the second submit waits for the first
    engine.put("a.mp4")
    engine.put("b.mp4")
    engine.step(targets=["es-ES", "es-MX"])
    jobs = engine.jobs()
    assert [j.state for j in jobs] == [JobState.NEEDS_ATTENTION] * 2, engine.states()
    assert all(j.reason_code == Reason.AMBIGUOUS_LANGUAGE.value for j in jobs)
    assert engine.dub_posts() == 1
    (unpaid,) = [j for j in jobs if j.project_id is None]
    said = f"{unpaid.last_error} {unpaid.last_error_context}"
    for words in ("not sent", "es-ES", "es-MX", "bare", "own watch"):
        assert words in said, said


# --- item 4: error bodies in other shapes keep their reason -------------------------------------


@pytest.fixture
def canned() -> Iterator[Any]:
    """test_api's scripted loopback server, for bodies no Synthesia endpoint sends."""
    from test_api import Canned

    c = Canned()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()
    c.thread.join(5)


def test_422_detail_body_keeps_its_reason(canned: Any) -> None:
    """A FastAPI-style 422 {"detail": [...]} keeps a short excerpt of the body in the reason."""
    from test_api import make_client

    from synthesia_watchd.domain.errors import PermanentError

    detail = {"detail": [{"loc": ["body", "title"], "msg": "field required", "type": "missing"}]}
    canned.json("/v2/assets/x", 422, detail)
    with pytest.raises(PermanentError) as info:
        make_client(canned.url, api_key="key-4-secret").get_asset("x")
    assert info.value.status == 422
    assert "field required" in str(info.value)
    assert "title" in str(info.value)


def test_proxy_html_403_is_not_blamed_on_the_key(canned: Any) -> None:
    """An HTML 403 (a proxy or firewall) says so, with a redacted excerpt, not 'key rejected'."""
    from test_api import make_client

    from synthesia_watchd.domain.errors import AuthError

    key = "proxy-key-123456"
    page = (
        "<html><head><title>403 Forbidden</title></head><body><h1>Access denied by "
        f"corporate proxy</h1><p>request had {key}</p>" + "x" * 2000 + "</body></html>"
    )
    canned.routes["/v2/assets/x"] = (403, {"Content-Type": "text/html"}, page.encode())
    with pytest.raises(AuthError) as info:
        make_client(canned.url, api_key=key).get_asset("x")
    message = str(info.value)
    assert "without the API's JSON error" in message
    assert "proxy or firewall" in message
    assert "Access denied by corporate proxy" in message
    assert key not in message
    assert len(message) < 600


def test_api_403_still_reads_as_a_rejected_key(strict: Simulator) -> None:
    """The API's own 403 (JSON Error body) keeps saying the key was rejected, with its error."""
    from test_api import make_client

    from synthesia_watchd.domain.errors import AuthError

    with pytest.raises(AuthError) as info:
        make_client(strict, api_key="wrong-key-000").get_asset("00000000-0000-4000-8000-0000000000")
    assert "the API key was rejected" in str(info.value)
    assert "Forbidden - Wrong API key." in str(info.value)
    assert "proxy" not in str(info.value)


# --- item 5: RateLimit-Reset as a UNIX time; no wait beyond its window; the wait is logged ------


def test_rate_limit_reset_above_1e9_is_a_unix_time() -> None:
    """RateLimit-Reset 1e9+ is read as a timestamp, not as days of seconds; source is named."""
    from synthesia_watchd.domain.retry import server_wait

    now = 1_800_000_000.0
    wait = server_wait({"RateLimit-Reset": str(int(now) + 42)}, now=now)
    assert wait is not None and (wait.seconds, wait.source) == (42.0, "RateLimit-Reset")
    plain = server_wait({"RateLimit-Reset": "7", "Retry-After": "3"}, now=now)
    assert plain is not None and (plain.seconds, plain.source) == (7.0, "RateLimit-Reset")
    date = server_wait({"Retry-After": "Fri, 15 Jan 2027 08:00:10 GMT"}, now=1_799_913_600.0)
    assert date is not None and date.source == "Retry-After"


def test_no_wait_is_longer_than_its_window() -> None:
    """A wait is capped by the window of the breached limit (RateLimit-Limit), else a day."""
    from synthesia_watchd.domain.ratelimit import DAY, HOUR, MINUTE, READ, WRITE, RateLimiter
    from synthesia_watchd.domain.retry import server_wait

    limiter = RateLimiter()  # Creator tier: writes 60/min, 300/h, 1000/day
    assert limiter.window_for(WRITE, 60) == MINUTE
    assert limiter.window_for(WRITE, 300) == HOUR
    assert limiter.window_for(READ, 20_000) == DAY
    assert limiter.window_for(READ, 120) == MINUTE  # a documented tier's per-minute limit
    assert limiter.window_for(READ, None) == DAY
    wait = server_wait({"RateLimit-Reset": "5000"}, now=0.0, cap=MINUTE)
    assert wait is not None and wait.seconds == MINUTE and wait.capped


def test_epoch_reset_from_the_server_waits_seconds_and_is_logged(
    sim_factory: Callable[..., Simulator],
) -> None:
    """A 429 whose RateLimit-Reset is a timestamp waits seconds, logged with its header."""
    import structlog
    from test_api import make_client

    from synthesia_watchd.domain.errors import RateLimited
    from synthesia_watchd.domain.retry import RetryPolicy

    sim = sim_factory(**STRICT)
    sim.faults.add("GET /v2/assets/{id}", "429", count=1, retry_after=3, reset="epoch", limit=60)
    client = make_client(sim, retry=RetryPolicy(max_attempts=1))
    with structlog.testing.capture_logs() as logs, pytest.raises(RateLimited) as info:
        client.get_asset("00000000-0000-4000-8000-000000000000")
    assert 1.0 <= info.value.retry_after <= 4.0
    waits = [e for e in logs if e["event"] == "rate limited by the API: waiting"]
    assert len(waits) == 1
    assert waits[0]["source"] == "RateLimit-Reset"
    assert waits[0]["window_seconds"] == 60.0
    assert 1.0 <= waits[0]["wait_seconds"] <= 4.0
    assert float(waits[0]["header_value"]) > 1e9


# --- item 6: the key check uses a call whose answers tell a good key from a bad one -------------


def test_key_check_verdicts(sim_factory: Callable[..., Simulator], canned: Any) -> None:
    """GET /v2/videos?limit=1: 200 accepted, the API's 403 rejected, a 404 inconclusive."""
    from test_api import make_client

    sim = sim_factory(**STRICT)
    good = make_client(sim).check_key()
    assert (good.call, good.status, good.verdict) == ("GET /v2/videos?limit=1", 200, "accepted")
    assert [(r.endpoint, r.query) for r in sim.requests] == [("GET /v2/videos", "limit=1")]
    bad = make_client(sim, api_key="wrong-key-000").check_key()
    assert (bad.status, bad.verdict) == (403, "rejected")
    assert "wrong-key-000" not in bad.detail
    sim.faults.add("GET /v2/videos", "5xx", count=1, status=404)
    unsure = make_client(sim).check_key()
    assert (unsure.status, unsure.verdict) == (404, "inconclusive")
    canned.routes["/v2/videos"] = (403, {"Content-Type": "text/html"}, b"<h1>Blocked</h1>")
    proxy = make_client(canned.url).check_key()
    assert (proxy.status, proxy.verdict) == (403, "blocked")
    assert "proxy or firewall" in proxy.detail


def test_check_config_names_the_call_and_its_answer(
    engine_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """check-config prints the call made and its answer; a 404 is inconclusive, not 'works'."""
    from test_cli import run_cli

    engine = engine_factory(**STRICT)
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    cfg = str(engine.write_config())
    code, out, _ = run_cli(capsys, "check-config", "-c", cfg)
    assert code == 0
    assert "GET /v2/videos?limit=1 answered 200" in out
    assert f"accepted by {engine.sim.url}" in out
    engine.sim.faults.add("GET /v2/videos", "5xx", count=1, status=404)
    code, out, err = run_cli(capsys, "check-config", "-c", cfg)
    assert "GET /v2/videos?limit=1 answered 404" in out + err
    assert "inconclusive" in out + err
    assert "accepted" not in out
    assert engine.sim.count("GET /v2/assets/{id}") == 0


# --- item 7: the key is checked at daemon start -------------------------------------------------


def test_wrong_key_pauses_at_start_before_any_file(engine_factory: Callable[..., Any]) -> None:
    """A rejected key pauses all API work at start, with a clear reason; no asset is created."""
    import json

    import structlog

    engine = engine_factory(**STRICT)
    engine.environ["SYNTHESIA_API_KEY"] = "sk-wrong-key-7777777"
    engine.put("a.mp4")
    with structlog.testing.capture_logs() as logs:
        engine.run()
    assert engine.sim.count("POST /v2/assets") == 0
    checks = [r for r in engine.sim.requests if r.endpoint == "GET /v2/videos"]
    assert [r.status for r in checks] == [403]
    with engine.ledger() as ledger:
        record = freshest(records(ledger))
    assert "API key" in record["paused"]["auth"]
    assert "GET /v2/videos?limit=1 answered 403" in record["paused"]["auth"]
    errors = [e for e in logs if e["log_level"] == "error" and "API key" in e["event"]]
    assert errors and "sk-wrong-key-7777777" not in json.dumps(logs, default=str)


def test_good_key_is_checked_once_at_start(engine_factory: Callable[..., Any]) -> None:
    """With a working key, one GET /v2/videos at start, then the job runs as usual."""
    engine = engine_factory(**STRICT)
    engine.put("b.mp4")
    engine.run()
    engine.assert_all_done()
    checks = [r for r in engine.sim.requests if r.endpoint == "GET /v2/videos"]
    assert [r.status for r in checks] == [200]
    assert engine.sim.requests[0].endpoint == "GET /v2/videos"


# --- README's "What it sends" names every field each request carries ----------------------------


def _sends_section() -> list[str]:
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## What it sends\n", 1)[1].split("\n## ", 1)[0]
    return ["- " + b for b in section.split("\n- ")[1:]]


def _bullet(label: str) -> str:
    hits = [b for b in _sends_section() if f"`{label}`" in b.split(":", 1)[0] or label in b[:40]]
    assert len(hits) == 1, f"README's 'What it sends' has no single bullet for {label}"
    return hits[0]


def _keys(body: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(body, dict):
        for key, value in body.items():
            out.add(key)
            out |= _keys(value)
    return out


def test_readme_names_every_field_sent(strict: Simulator, tmp_path: Any) -> None:
    """Each field and query key the client sends, with every option on, is in README's bullet."""
    from urllib.parse import parse_qs

    from helpers import wait_until
    from test_api import make_client

    from synthesia_watchd.domain.media import sample_video
    from synthesia_watchd.synthesia.upload import upload_file

    client = make_client(strict, send_content_md5=True)
    data = sample_video("readme", 4096)
    data_md5 = _md5_b64(data)
    path = tmp_path / "s.mp4"
    path.write_bytes(data)
    asset = client.create_asset(
        content_type="video/mp4", content_length=4096, title="s", content_md5=data_md5
    )
    upload_file(path, asset.credentials, endpoint_url=strict.s3_url, content_type="video/mp4")
    pid = client.start_dubbing(
        asset_id=asset.id,
        title="s",
        source_language="en",
        target_languages=["fr-FR"],
        lipsync=True,
        video_duration="original",
        visibility="public",
    )
    wait_until(lambda: client.get_project(pid, ["fr-FR"]).status == "complete", what="dubbed")
    client.add_locales(pid, ["de-DE"], lipsync=True, video_duration="original", visibility="public")
    client.check_key()
    labels = {
        "POST /v2/assets": "POST /v2/assets",
        "POST /v2/dubbing": "POST /v2/dubbing",
        "PUT /v2/dubbing/{id}": "PUT /v2/dubbing/{id}",
        "GET /v2/dubbing/{id}": "GET /v2/dubbing/{id}",
        "GET /v2/videos": "Key check",
    }
    seen: set[str] = set()
    for rec in strict.requests:
        if rec.endpoint not in labels:
            continue
        seen.add(rec.endpoint)
        bullet = _bullet(labels[rec.endpoint])
        for key in _keys(rec.body) | set(parse_qs(rec.query)):
            assert f"`{key}`" in bullet or f'"{key}"' in bullet or f"{key}=" in bullet, (
                f"{rec.endpoint} sends {key!r}, README does not say so"
            )
    assert seen == set(labels)
    asset_bodies = [r.body for r in strict.requests if r.endpoint == "POST /v2/assets"]
    assert [sorted(_keys(b)) for b in asset_bodies] == [
        [
            "configuration",
            "contentLength",
            "contentMD5",
            "contentType",
            "detectLanguage",
            "name",
            "title",
        ]
    ]


def test_unanswered_key_check_at_start_does_not_pause(engine_factory: Callable[..., Any]) -> None:
    """A 503 to the start-up check (one try) is logged and work proceeds as usual."""
    import structlog

    engine = engine_factory(**STRICT)
    engine.sim.faults.add("GET /v2/videos", "5xx", count=1, status=503)
    engine.put("c.mp4")
    with structlog.testing.capture_logs() as logs:
        engine.run()
    engine.assert_all_done()
    assert [r.status for r in engine.sim.requests if r.endpoint == "GET /v2/videos"] == [503]
    assert any(e["event"].startswith("API key check at start: no answer") for e in logs)
