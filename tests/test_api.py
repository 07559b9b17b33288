"""The Synthesia client against the loopback simulator: each fault -> its typed outcome."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import wait_until
from requests.adapters import HTTPAdapter

from synthesia_watchd.domain.apitypes import UploadCredentials
from synthesia_watchd.domain.errors import (
    AmbiguousSubmit,
    AuthError,
    DownloadIncomplete,
    DownloadUrlExpired,
    OutputConflict,
    PermanentError,
    RateLimited,
    ShutdownRequested,
    TransientError,
    UnsafeUrlError,
)
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.synthesia.upload import upload_file

FAST = RetryPolicy(base=0.01, cap=0.05)
TARGETS = ["es-ES", "fr-FR"]


def make_client(sim_or_url: Simulator | str, **kw: Any) -> SynthesiaClient:
    """A client for the simulator (or a URL) with no pacing and tiny retry pauses."""
    if isinstance(sim_or_url, Simulator):
        kw.setdefault("api_key", sim_or_url.api_key)
        url = sim_or_url.url
    else:
        kw.setdefault("api_key", "sim-key")
        url = sim_or_url
    kw.setdefault("limiter", RateLimiter.unlimited())
    kw.setdefault("retry", FAST)
    key = kw.pop("api_key")
    return SynthesiaClient(key, api_url=url, **kw)


@pytest.fixture
def client(sim: Simulator) -> Iterator[SynthesiaClient]:
    """A client bound to the default simulator."""
    c = make_client(sim)
    yield c
    c.close()


def uploaded_asset(sim: Simulator, client: SynthesiaClient, folder: Path) -> str:
    """An asset whose bytes are in the simulator's S3, ready to dub."""
    path = folder / "source.mp4"
    path.write_bytes(sample_video("source", 4096))
    asset = client.create_asset(content_type="video/mp4", content_length=4096, title="source")
    upload_file(path, asset.credentials, endpoint_url=sim.s3_url)
    return asset.id


def submit(client: SynthesiaClient, asset_id: str, targets: list[str] = TARGETS) -> str:
    """Start dubbing the asset into ``targets``."""
    return client.start_dubbing(
        asset_id=asset_id, title="source", source_language="en", target_languages=targets
    )


def dubbed_project(
    sim: Simulator, client: SynthesiaClient, folder: Path, targets: list[str] = TARGETS
) -> str:
    """A project whose languages have all finished."""
    project_id = submit(client, uploaded_asset(sim, client, folder), targets)
    wait_until(
        lambda: client.get_project(project_id).status in ("complete", "error"),
        what="project done",
    )
    return project_id


def api_requests(sim: Simulator, endpoint: str) -> list[Any]:
    """The simulator's log entries for one endpoint."""
    return [r for r in sim.requests if r.endpoint == endpoint]


# --- a scripted loopback server for shapes the simulator does not produce ----------------------


class Canned:
    """A stdlib HTTP server answering scripted (status, headers, body) per path."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canned.seen.append((self.path, dict(self.headers)))
                path = self.path.split("?", 1)[0]
                status, headers, body = canned.routes.get(path, (404, {}, b'{"error":"nope"}'))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET
            do_PUT = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}
        )

    def json(self, path: str, status: int, payload: Any) -> None:
        """Answer ``path`` with JSON."""
        self.routes[path] = (
            status,
            {"Content-Type": "application/json"},
            json.dumps(payload).encode(),
        )


@pytest.fixture
def canned() -> Iterator[Canned]:
    """A started scripted server, shut down after the test."""
    c = Canned()
    c.thread.start()
    yield c
    c.server.shutdown()
    c.server.server_close()
    c.thread.join(5)


# --- construction and secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://api.synthesia.io", "http://127.0.0.1:8000", "http://localhost:1", "http://[::1]:80"],
)
def test_allowed_base_urls(url: str) -> None:
    """https anywhere, plain http only for loopback hosts."""
    assert url in repr(SynthesiaClient("k" * 8, api_url=url))


@pytest.mark.parametrize(
    "url",
    ["http://api.synthesia.io", "ftp://127.0.0.1", "api.synthesia.io", "https://u:p@h.example"],
)
def test_refused_base_urls(url: str) -> None:
    """Plain http to a remote host, other schemes and embedded credentials are refused."""
    with pytest.raises(ValueError, match="api_url"):
        SynthesiaClient("k" * 8, api_url=url)


def test_repr_hides_secrets() -> None:
    """Neither the client nor the upload credentials show secrets in repr."""
    key = "super-secret-api-key"
    client = SynthesiaClient(key, api_url="https://api.synthesia.io")
    creds = UploadCredentials("ASIAKEY", "the-secret", "the-token", "bucket", "key")
    assert key not in repr(client)
    assert "the-secret" not in repr(creds)
    assert "the-token" not in repr(creds)


def test_check_auth_accepts_good_key(client: SynthesiaClient, sim: Simulator) -> None:
    """check_auth succeeds on the 200 of one GET /v2/videos?limit=1."""
    client.check_auth()
    assert [(r.status, r.query) for r in api_requests(sim, "GET /v2/videos")] == [(200, "limit=1")]


def test_key_sent_bare(sim_factory: Callable[..., Simulator]) -> None:
    """The key goes as a bare Authorization value (a server refusing Bearer still accepts it)."""
    sim = sim_factory(accept_bearer=False)
    client = make_client(sim)
    client.check_auth()
    assert all(r.had_authorization for r in sim.requests)


def test_wrong_key_is_auth_error_without_the_key(sim: Simulator) -> None:
    """403 raises AuthError at once; the key is in neither message nor repr."""
    key = "wrong-key-0123456789"
    client = make_client(sim, api_key=key)
    with pytest.raises(AuthError) as info:
        client.get_asset("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 403
    assert key not in str(info.value)
    assert key not in repr(info.value)
    assert sim.count("GET /v2/assets/{id}") == 1
    with pytest.raises(AuthError):
        client.check_auth()


# --- assets ------------------------------------------------------------------------------------


def test_create_and_get_asset(client: SynthesiaClient) -> None:
    """POST /v2/assets returns credentials; GET reports awaiting_upload until bytes arrive."""
    asset = client.create_asset(content_type="video/mp4", content_length=10, title="x" * 300)
    assert asset.credentials.bucket
    assert asset.credentials.key.endswith(".mp4")
    info = client.get_asset(asset.id)
    assert info.status == "awaiting_upload"
    assert info.title == "x" * 256  # title cut to the documented maximum


def test_bad_content_is_permanent_with_api_reason(client: SynthesiaClient) -> None:
    """400 carries the API's error and context into PermanentError."""
    with pytest.raises(PermanentError) as info:
        client.create_asset(content_type="video/avi", content_length=10, title="x")
    assert info.value.status == 400
    assert info.value.error == "Unsupported Media Type."
    assert info.value.context is not None and "contentType" in info.value.context
    assert "Unsupported Media Type." in str(info.value)


def test_unknown_asset_is_404(client: SynthesiaClient) -> None:
    """A missing asset is a PermanentError with status 404."""
    with pytest.raises(PermanentError) as info:
        client.get_asset("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404
    assert info.value.operation == "GET /v2/assets/{id}"


# --- rate limits, 5xx, drops, slowness ---------------------------------------------------------


def test_429_waits_for_retry_after(client: SynthesiaClient, sim: Simulator) -> None:
    """After a 429 with Retry-After: 1 nothing is sent before the reset, then the call works."""
    sim.faults.add("POST /v2/assets", "429", count=1, retry_after=1)
    client.create_asset(content_type="video/mp4", content_length=1, title="x")
    first, second = api_requests(sim, "POST /v2/assets")
    assert first.status == 429
    assert second.status == 201
    assert second.time - first.time >= 1.0


def test_429_gate_is_shared(sim: Simulator) -> None:
    """A 429 on one endpoint makes the shared limiter hold every other endpoint too."""
    limiter = RateLimiter.unlimited()
    client = make_client(sim, limiter=limiter, retry=RetryPolicy(max_attempts=1))
    sim.faults.add("POST /v2/assets", "429", count=1, retry_after=1)
    with pytest.raises(RateLimited):
        client.create_asset(content_type="video/mp4", content_length=1, title="x")
    assert limiter.blocked_for() > 0.5
    client.check_auth()
    rejected = api_requests(sim, "POST /v2/assets")[0]
    probe = api_requests(sim, "GET /v2/videos")[0]
    assert probe.time - rejected.time >= 1.0


def test_429_exhausted_is_rate_limited(client: SynthesiaClient, sim: Simulator) -> None:
    """429 on every try raises RateLimited carrying the server's wait."""
    sim.faults.add("GET /v2/assets/{id}", "429", retry_after=1)
    client = make_client(sim, retry=RetryPolicy(max_attempts=2, base=0.01, cap=0.05))
    with pytest.raises(RateLimited) as info:
        client.get_asset("00000000-0000-0000-0000-000000000000")
    assert info.value.retry_after == 1.0
    assert sim.count("GET /v2/assets/{id}") == 2


def test_5xx_then_success(client: SynthesiaClient, sim: Simulator) -> None:
    """Two 503s are retried inline; the third try succeeds."""
    sim.faults.add("POST /v2/assets", "5xx", count=2, status=503)
    asset = client.create_asset(content_type="video/mp4", content_length=1, title="x")
    assert asset.id
    assert [r.status for r in api_requests(sim, "POST /v2/assets")] == [503, 503, 201]


def test_5xx_exhausted_is_transient(sim: Simulator) -> None:
    """5xx on every try raises TransientError after max_attempts tries."""
    client = make_client(sim, retry=RetryPolicy(max_attempts=3, base=0.01, cap=0.05))
    sim.faults.add("GET /v2/assets/{id}", "5xx", status=500)
    with pytest.raises(TransientError) as info:
        client.get_asset("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 500
    assert sim.count("GET /v2/assets/{id}") == 3


def test_drop_on_reads_and_asset_creation_is_retried(
    client: SynthesiaClient, sim: Simulator
) -> None:
    """Dropped connections on idempotent calls (GET, POST /v2/assets) are simply retried."""
    sim.faults.add("POST /v2/assets", "drop_after", count=1)
    sim.faults.add("GET /v2/assets/{id}", "drop_before", count=1)
    asset = client.create_asset(content_type="video/mp4", content_length=1, title="x")
    assert client.get_asset(asset.id).status == "awaiting_upload"
    assert sim.count("POST /v2/assets") == 2
    assert sim.count("GET /v2/assets/{id}") == 2


def test_drop_after_submit_is_ambiguous(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path
) -> None:
    """Submit processed but unanswered: AmbiguousSubmit, sent exactly once."""
    asset_id = uploaded_asset(sim, client, tmp_path)
    sim.faults.add("POST /v2/dubbing", "drop_after", count=1)
    with pytest.raises(AmbiguousSubmit) as info:
        submit(client, asset_id)
    assert sim.count("POST /v2/dubbing") == 1
    assert len(sim.projects) == 1  # the server did act: exactly why it must not be resent
    assert "not resent" in str(info.value)


def test_drop_before_submit_is_also_ambiguous(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path
) -> None:
    """A connection closed after the request was sent looks the same whether or not the
    server acted, so it is never resent either."""
    asset_id = uploaded_asset(sim, client, tmp_path)
    sim.faults.add("POST /v2/dubbing", "drop_before", count=1)
    with pytest.raises(AmbiguousSubmit):
        submit(client, asset_id)
    assert sim.count("POST /v2/dubbing") == 1


class RefuseFirstConnect(HTTPAdapter):
    """Sends the first POST /v2/dubbing to a closed port: a real refused connection."""

    def __init__(self, closed_port: int) -> None:
        super().__init__()
        self.closed_port = closed_port
        self.refused = 0

    def send(self, request: requests.PreparedRequest, **kw: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        if request.method == "POST" and "/v2/dubbing" in url and not self.refused:
            self.refused += 1
            host_port = url.split("/")[2]
            request.url = url.replace(host_port, f"127.0.0.1:{self.closed_port}", 1)
        return super().send(request, **kw)


def closed_port() -> int:
    """A loopback port with nothing listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_refused_connection_submit_is_retried_once(sim: Simulator, tmp_path: Path) -> None:
    """The server surely never saw a refused connection: resend, exactly one project."""
    session = requests.Session()
    adapter = RefuseFirstConnect(closed_port())
    session.mount("http://", adapter)
    client = make_client(sim, session=session)
    asset_id = uploaded_asset(sim, client, tmp_path)
    project_id = submit(client, asset_id)
    assert adapter.refused == 1
    assert sim.count("POST /v2/dubbing") == 1
    assert list(sim.projects) == [project_id]


def test_refused_connections_exhausted_are_transient() -> None:
    """Nobody listening at all: TransientError, not AmbiguousSubmit, even for a submit."""
    client = make_client(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(TransientError, match=r"NewConnectionError|ConnectionRefused"):
        submit(client, "00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize(
    ("kind", "params"), [("5xx", {"status": 503}), ("429", {"retry_after": 1})]
)
def test_submit_answered_refusal_is_retried(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path, kind: str, params: dict[str, Any]
) -> None:
    """503 and 429 mean the server did not act: resent, and exactly one project results."""
    asset_id = uploaded_asset(sim, client, tmp_path)
    sim.faults.add("POST /v2/dubbing", kind, count=1, **params)
    project_id = submit(client, asset_id)
    assert sim.count("POST /v2/dubbing") == 2
    assert list(sim.projects) == [project_id]


@pytest.mark.parametrize(
    ("kind", "params", "calls"),
    [
        ("429", {"retry_after": 1}, ["send", "refused", "send"]),
        ("5xx", {"status": 400}, ["send", "refused"]),
        ("drop_after", {}, ["send"]),
    ],
)
def test_submit_marker_brackets_each_attempt(
    client: SynthesiaClient,
    sim: Simulator,
    tmp_path: Path,
    kind: str,
    params: dict[str, Any],
    calls: list[str],
) -> None:
    """on_send before every attempt; on_refused only when the server said it did not act."""
    asset_id = uploaded_asset(sim, client, tmp_path)
    sim.faults.add("POST /v2/dubbing", kind, count=1, **params)
    seen: list[str] = []
    with contextlib.suppress(AmbiguousSubmit, PermanentError):
        client.start_dubbing(
            asset_id=asset_id,
            title="t",
            source_language="en",
            target_languages=["fr-FR"],
            on_send=lambda: seen.append("send"),
            on_refused=lambda: seen.append("refused"),
        )
    assert seen == calls


def test_slow_read_is_retried(sim: Simulator) -> None:
    """An answer slower than the read timeout is retried for a GET."""
    client = make_client(sim, timeout=(2.0, 0.3))
    sim.faults.add("GET /v2/assets/{id}", "slow", count=1, seconds=1.0)
    with pytest.raises(PermanentError) as info:  # the second try answers: 404
        client.get_asset("00000000-0000-0000-0000-000000000000")
    assert info.value.status == 404
    assert sim.count("GET /v2/assets/{id}") == 2


def test_slow_submit_is_ambiguous(sim: Simulator, tmp_path: Path) -> None:
    """A submit whose answer outlasts the read timeout is ambiguous, never resent."""
    client = make_client(sim, timeout=(2.0, 0.3))
    asset_id = uploaded_asset(sim, client, tmp_path)
    sim.faults.add("POST /v2/dubbing", "slow", count=1, seconds=1.0)
    with pytest.raises(AmbiguousSubmit, match="read timeout"):
        submit(client, asset_id)
    assert sim.count("POST /v2/dubbing") == 1


def test_stop_set_sends_nothing(sim: Simulator) -> None:
    """With stop set, a call raises ShutdownRequested before any request."""
    stop = threading.Event()
    stop.set()
    client = make_client(sim, stop=stop)
    with pytest.raises(ShutdownRequested):
        client.check_auth()
    assert sim.requests == []


def test_on_response_hook(sim: Simulator) -> None:
    """The metrics hook sees every try with its operation and status (None for a drop)."""
    seen: list[tuple[str, int | None]] = []
    client = make_client(sim, on_response=lambda op, status: seen.append((op, status)))
    sim.faults.add("POST /v2/assets", "drop_before", count=1)
    client.create_asset(content_type="video/mp4", content_length=1, title="x")
    assert seen == [("POST /v2/assets", None), ("POST /v2/assets", 201)]


def test_every_call_goes_through_the_limiter(sim: Simulator) -> None:
    """A tight limiter paces calls: the second GET waits for its window."""
    from synthesia_watchd.domain.ratelimit import Window

    limiter = RateLimiter({"read": (Window(1, 0.5),), "write": ()}, margin=0.0)
    client = make_client(sim, limiter=limiter)
    client.check_auth()
    client.check_auth()
    first, second = api_requests(sim, "GET /v2/videos")
    assert second.time - first.time >= 0.45


# --- dubbing projects --------------------------------------------------------------------------


def test_submit_poll_and_add_locales(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path
) -> None:
    """A project completes; PUT adds a locale once and then reports nothing added."""
    project_id = dubbed_project(sim, client, tmp_path)
    project = client.get_project(project_id)
    assert project.status == "complete"
    assert sorted(a.language for a in project.assets) == TARGETS
    assert all(a.status == "complete" and a.download for a in project.assets)
    assert all(a.captions.get("vtt") for a in project.assets)
    added = client.add_locales(project_id, ["de-DE"])
    assert [a.language for a in added.created] == ["de-DE"]
    assert not added.nothing_added
    again = client.add_locales(project_id, ["de-DE"])
    assert again.nothing_added and again.created == ()


def test_unknown_project_is_404(client: SynthesiaClient, sim: Simulator) -> None:
    """A filtered GET of a missing project falls back once, then raises the 404."""
    with pytest.raises(PermanentError) as info:
        client.get_project("00000000-0000-0000-0000-000000000000", ["es-ES"])
    assert info.value.status == 404
    assert sim.count("GET /v2/dubbing/{id}") == 2


def test_project_error(client: SynthesiaClient, sim: Simulator, tmp_path: Path) -> None:
    """A project that fails reports status error and its code."""
    sim.faults.add("POST /v2/dubbing", "project_error", count=1, error_code="moderation")
    project_id = dubbed_project(sim, client, tmp_path)
    project = client.get_project(project_id, TARGETS)
    assert project.status == "error"
    assert project.error_code == "moderation"
    assert project.assets == ()


def test_language_error(client: SynthesiaClient, sim: Simulator, tmp_path: Path) -> None:
    """One failed language carries its own error code; the others complete."""
    sim.faults.add("POST /v2/dubbing", "language_error", count=1, language="fr-FR")
    project_id = dubbed_project(sim, client, tmp_path)
    by_lang = {a.language: a for a in client.get_project(project_id, TARGETS).assets}
    assert by_lang["fr-FR"].status == "error"
    assert by_lang["fr-FR"].error_code == "processing_error"
    assert by_lang["es-ES"].status == "complete"


def test_upper_case_statuses(sim_factory: Callable[..., Simulator], tmp_path: Path) -> None:
    """COMPLETE/IN_PROGRESS are read case-insensitively and stored lowercase."""
    sim = sim_factory(status_case="upper")
    client = make_client(sim)
    project_id = dubbed_project(sim, client, tmp_path)
    project = client.get_project(project_id)
    assert project.status == "complete"
    assert {a.status for a in project.assets} == {"complete"}


@pytest.mark.parametrize(("encoding", "gets"), [("repeated", 1), ("both", 1), ("comma", 2)])
def test_filter_encodings(
    sim_factory: Callable[..., Simulator], tmp_path: Path, encoding: str, gets: int
) -> None:
    """Every server reading of targetLanguages yields all requested languages."""
    sim = sim_factory(filter_encoding=encoding)
    client = make_client(sim)
    project_id = dubbed_project(sim, client, tmp_path, ["es-ES", "fr-FR", "de-DE"])
    before = sim.count("GET /v2/dubbing/{id}")
    project = client.get_project(project_id, ["es-ES", "fr-FR"])
    assert sorted(a.language for a in project.assets) == ["es-ES", "fr-FR"]
    assert sim.count("GET /v2/dubbing/{id}") - before == gets
    query = api_requests(sim, "GET /v2/dubbing/{id}")[before].query
    assert query == "targetLanguages=es-ES&targetLanguages=fr-FR"


def test_download_field_aliases(sim_factory: Callable[..., Simulator], tmp_path: Path) -> None:
    """With download aliases on, the URL is still found and works."""
    sim = sim_factory(download_field_aliases=True)
    client = make_client(sim)
    project_id = dubbed_project(sim, client, tmp_path, ["es-ES"])
    asset = client.get_project(project_id).assets[0]
    assert asset.download
    result = client.download(asset.download, tmp_path / "es.mp4")
    assert (tmp_path / "es.mp4").read_bytes() == sim.expected_output(project_id, "es-ES")
    assert result.bytes == len(sim.expected_output(project_id, "es-ES"))


def test_lenient_shapes(canned: Canned) -> None:
    """dubbedVideos/locale/downloadUrl and a missing item status are read as the guide does."""
    canned.json(
        "/v2/dubbing/p1",
        200,
        {
            "id": "p1",
            "status": "IN_PROGRESS",
            "dubbedVideos": [
                {"id": "a1", "locale": "es-ES", "downloadUrl": "https://cdn.example/a1.mp4"},
                {"id": "a2", "language": "fr-FR", "status": "in_progress"},
                {"id": "a3", "language": "de-DE", "url": None, "errorCode": "moderation"},
            ],
        },
    )
    project = make_client(canned.url).get_project("p1")
    assert project.status == "in_progress"
    es, fr, de = project.assets
    assert (es.language, es.status, es.download) == (
        "es-ES",
        "complete",
        "https://cdn.example/a1.mp4",
    )
    assert fr.status == "in_progress" and fr.download is None
    assert (de.status, de.error_code) == ("error", "moderation")


def test_malformed_answers_are_permanent(canned: Canned) -> None:
    """A body that is not JSON, or lacks required fields, raises PermanentError."""
    canned.routes["/v2/assets/x"] = (200, {}, b"<html>oops</html>")
    canned.json("/v2/dubbing/p2", 200, {"status": "complete"})
    client = make_client(canned.url)
    with pytest.raises(PermanentError, match="not JSON"):
        client.get_asset("x")
    with pytest.raises(PermanentError, match="'id'"):
        client.get_project("p2")


def test_dubbed_errors_variant(canned: Canned) -> None:
    """A 400 with dubbedErrors names each failed language in the error context."""
    canned.json(
        "/v2/dubbing",
        400,
        {"dubbedErrors": [{"language": "es-ES", "error": "bad voice"}, {"language": None}]},
    )
    with pytest.raises(PermanentError) as info:
        submit(make_client(canned.url), "asset")
    assert info.value.error == "dubbedErrors"
    assert info.value.context == "es-ES: bad voice; ?: error"


def test_key_echoed_by_server_is_redacted(canned: Canned) -> None:
    """Even if an error body repeats the key, it never reaches the exception text."""
    key = "echoed-key-123456"
    canned.json("/v2/assets/x", 400, {"error": "bad", "context": f"key {key} is odd"})
    with pytest.raises(PermanentError) as info:
        make_client(canned.url, api_key=key).get_asset("x")
    assert key not in str(info.value)
    assert key not in (info.value.context or "")


# --- downloads ---------------------------------------------------------------------------------


def test_download_is_exact_and_unauthenticated(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path
) -> None:
    """Bytes match, progress adds up, and no Authorization header goes to the signed URL."""
    project_id = dubbed_project(sim, client, tmp_path, ["es-ES"])
    url = client.get_project(project_id).assets[0].download
    assert url
    deltas: list[int] = []
    dest = tmp_path / "out" / "es.mp4"
    dest.parent.mkdir()
    result = client.download(url, dest, progress=deltas.append)
    expected = sim.expected_output(project_id, "es-ES")
    assert dest.read_bytes() == expected
    assert sum(deltas) == result.bytes == len(expected)
    downloads = api_requests(sim, "DOWNLOAD")
    assert downloads and not any(r.had_authorization for r in downloads)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["es.mp4"]


def test_expired_url_then_refreshed(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path
) -> None:
    """An expired signed URL raises DownloadUrlExpired; a refreshed one works."""
    project_id = dubbed_project(sim, client, tmp_path, ["es-ES"])
    old = client.get_project(project_id).assets[0].download
    assert old
    sim.expire_download_urls()
    with pytest.raises(DownloadUrlExpired) as info:
        client.download(old, tmp_path / "es.mp4")
    assert info.value.status == 403
    assert "Signature" not in str(info.value)  # no signed query string in messages
    fresh = client.get_project(project_id, ["es-ES"]).assets[0].download
    assert fresh and fresh != old
    sim.faults.add("DOWNLOAD", "expired_url", count=1)  # the simulator's own expiry fault
    with pytest.raises(DownloadUrlExpired):
        client.download(fresh, tmp_path / "es.mp4")
    client.download(fresh, tmp_path / "es.mp4")
    assert (tmp_path / "es.mp4").read_bytes() == sim.expected_output(project_id, "es-ES")


def test_truncated_download_leaves_nothing(
    client: SynthesiaClient, sim: Simulator, tmp_path: Path
) -> None:
    """A cut body raises DownloadIncomplete leaving no file; a later 503 is retried inline."""
    project_id = dubbed_project(sim, client, tmp_path, ["es-ES"])
    url = client.get_project(project_id).assets[0].download
    assert url
    out = tmp_path / "out"
    out.mkdir()
    sim.faults.add("DOWNLOAD", "truncate", count=1)
    with pytest.raises(DownloadIncomplete, match="partial file removed"):
        client.download(url, out / "es.mp4")
    assert list(out.iterdir()) == []
    sim.faults.add("DOWNLOAD", "5xx", count=1, status=503)  # a 503 is retried inline
    client.download(url, out / "es.mp4")
    assert [r.status for r in api_requests(sim, "DOWNLOAD")] == [200, 503, 200]
    assert (out / "es.mp4").read_bytes() == sim.expected_output(project_id, "es-ES")


def test_existing_outputs(client: SynthesiaClient, sim: Simulator, tmp_path: Path) -> None:
    """An identical file at the name is success; a different one is OutputConflict."""
    project_id = dubbed_project(sim, client, tmp_path, ["es-ES"])
    url = client.get_project(project_id).assets[0].download
    assert url
    out = tmp_path / "out"
    out.mkdir()
    (out / "same.mp4").write_bytes(sim.expected_output(project_id, "es-ES"))
    client.download(url, out / "same.mp4")
    (out / "other.mp4").write_bytes(b"someone else's file")
    with pytest.raises(OutputConflict):
        client.download(url, out / "other.mp4")
    assert (out / "other.mp4").read_bytes() == b"someone else's file"
    assert sorted(p.name for p in out.iterdir()) == ["other.mp4", "same.mp4"]


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/x.mp4", "http://example.com/x.mp4", "file:///etc/passwd", "https:///x"],
)
def test_unsafe_download_urls(
    client: SynthesiaClient, sim: Simulator, url: str, tmp_path: Path
) -> None:
    """Other schemes, plain http to a remote host and host-less URLs are refused unsent."""
    with pytest.raises(UnsafeUrlError):
        client.download(url, tmp_path / "x.mp4")
    assert sim.requests == []


def test_download_host_allow_list(sim: Simulator, tmp_path: Path) -> None:
    """With allowed_download_hosts set, other hosts are refused; listed ones work."""
    strict = make_client(sim, allowed_download_hosts=["cdn.example.com"])
    with pytest.raises(UnsafeUrlError, match="allowed_download_hosts"):
        strict.download(f"{sim.url}/_signed/x/y.mp4", tmp_path / "x.mp4")
    loose = make_client(sim, allowed_download_hosts=["127.0.0.1"])
    with pytest.raises(DownloadUrlExpired):  # reached the host: bad signature is a 403
        loose.download(f"{sim.url}/_signed/x/y.mp4", tmp_path / "x.mp4")


def test_redirect_to_other_host_is_refused(canned: Canned, tmp_path: Path) -> None:
    """A redirect to a host we would not fetch from directly is refused."""
    canned.routes["/a.mp4"] = (302, {"Location": "http://example.com/a.mp4"}, b"")
    with pytest.raises(UnsafeUrlError):
        make_client(canned.url).download(f"{canned.url}/a.mp4", tmp_path / "a.mp4")
    assert not (tmp_path / "a.mp4").exists()


def test_redirect_within_allowed_hosts_is_followed(canned: Canned, tmp_path: Path) -> None:
    """A same-host redirect is followed, still without Authorization."""
    canned.routes["/a.mp4"] = (302, {"Location": "/b.mp4"}, b"")
    canned.routes["/b.mp4"] = (200, {"Content-Type": "video/mp4"}, b"\x00" * 100)
    result = make_client(canned.url).download(f"{canned.url}/a.mp4", tmp_path / "a.mp4")
    assert result.bytes == 100
    assert [path for path, _ in canned.seen] == ["/a.mp4", "/b.mp4"]
    assert not any("Authorization" in headers for _, headers in canned.seen)


def test_stop_interrupts_retry_pause(sim: Simulator) -> None:
    """Setting stop while a call waits between retries raises ShutdownRequested at once."""
    stop = threading.Event()
    client = make_client(sim, stop=stop, retry=RetryPolicy(max_attempts=50, base=30, cap=30))
    sim.faults.add("GET /v2/videos", "5xx", status=503)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            client.check_auth()
        except BaseException as exc:  # collected for the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_until(lambda: sim.count("GET /v2/videos") >= 1, what="first try")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ShutdownRequested)
