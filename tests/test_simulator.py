"""The loopback Synthesia simulator, exercised with plain requests and boto3 over real sockets."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from simfixtures import FakeClock

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.simulator import Simulator

MiB = 1024 * 1024
SOURCE = sample_video("source", 64 * 1024)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A requests session closed after the test."""
    with requests.Session() as session:
        yield session


def auth(sim: Simulator) -> dict[str, str]:
    """The header the real API wants: the bare key."""
    return {"Authorization": sim.api_key}


def create_asset(
    http: requests.Session, sim: Simulator, length: int | None = None, **extra: Any
) -> dict[str, Any]:
    """POST /v2/assets for an mp4; returns the 201 body."""
    body = {"contentType": "video/mp4", "configuration": {"name": "dubbing"}, "title": "clip"}
    if length is not None:
        body["contentLength"] = length
    body.update(extra)
    resp = http.post(f"{sim.url}/v2/assets", json=body, headers=auth(sim))
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def s3_client(sim: Simulator, creds: dict[str, str], retries: int = 1) -> Any:
    """A boto3 client with an asset's temporary credentials (no retries: faults stay visible)."""
    return boto3.client(
        "s3",
        endpoint_url=sim.s3_url,
        region_name="eu-west-1",
        aws_access_key_id=creds["accessKeyId"],
        aws_secret_access_key=creds["secretAccessKey"],
        aws_session_token=creds["sessionToken"],
        config=Config(retries={"total_max_attempts": retries, "mode": "standard"}),
    )


def upload(sim: Simulator, asset: dict[str, Any], data: bytes, part: int = 5 * MiB) -> None:
    """Multipart upload (when big enough) with the asset's own credentials."""
    creds = asset["uploadCredentials"]
    client = s3_client(sim, creds)
    try:
        client.upload_fileobj(
            io.BytesIO(data),
            creds["bucket"],
            creds["key"],
            Config=TransferConfig(multipart_threshold=part, multipart_chunksize=part),
        )
    finally:
        client.close()


def submit(
    http: requests.Session, sim: Simulator, asset_id: str, targets: list[str], **extra: Any
) -> requests.Response:
    """POST /v2/dubbing from an asset."""
    body = {
        "title": "clip",
        "targetLanguages": targets,
        "sourceAssetId": asset_id,
        "sourceLanguage": "en",
        **extra,
    }
    return http.post(f"{sim.url}/v2/dubbing", json=body, headers=auth(sim))


def ready_project(
    http: requests.Session, sim: Simulator, targets: list[str], data: bytes = SOURCE
) -> str:
    """Asset + upload + submit; returns the project id."""
    asset = create_asset(http, sim, len(data))
    upload(sim, asset, data)
    resp = submit(http, sim, asset["id"], targets)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["createdImportedAsset"]["id"])


def project(http: requests.Session, sim: Simulator, pid: str, query: str = "") -> requests.Response:
    """GET /v2/dubbing/{id} with an optional raw query string."""
    return http.get(f"{sim.url}/v2/dubbing/{pid}{query}", headers=auth(sim))


@pytest.fixture
def clocked(
    sim_factory: Callable[..., Simulator], fake_clock: FakeClock
) -> tuple[Simulator, FakeClock]:
    """A simulator on a fake clock: dubbing takes 10 s, URLs live 60 s, credentials 300 s."""
    sim = sim_factory(clock=fake_clock, dub_seconds=10.0, download_ttl=60.0, credentials_ttl=300.0)
    return sim, fake_clock


# -- the happy path --------------------------------------------------------------------------------


def first_download(http: requests.Session, sim: Simulator, pid: str) -> str:
    """The signed download URL of a project's first dubbed language, fetched fresh."""
    return str(project(http, sim, pid).json()["dubbedAssets"][0]["download"])


def test_full_flow_multipart_upload_poll_and_download(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """Asset, 11 MiB multipart upload, dubbing, polling to complete, downloads match."""
    sim, clock = clocked
    data = sample_video("big source", 11 * MiB)
    asset = create_asset(http, sim, len(data), configuration={"name": "dubbing"})
    creds = asset["uploadCredentials"]
    assert asset["uploadUrl"] is None
    assert set(creds) == {"accessKeyId", "secretAccessKey", "sessionToken", "bucket", "key"}
    status = http.get(f"{sim.url}/v2/assets/{asset['id']}", headers=auth(sim)).json()
    assert status["status"] == "awaiting_upload"

    upload(sim, asset, data)
    s3_ops = [(r.method, r.query.split("=")[0]) for r in sim.requests if r.endpoint == "S3"]
    assert ("POST", "uploads") in s3_ops and s3_ops.count(("PUT", "uploadId")) == 3
    asset_now = http.get(f"{sim.url}/v2/assets/{asset['id']}", headers=auth(sim)).json()
    assert asset_now["status"] == "ready"
    assert asset_now["metadata"] == {"detectedLanguage": "en"}

    resp = submit(http, sim, asset["id"], ["es-ES", "fr-FR"])
    assert resp.status_code == 202
    pid = resp.json()["createdImportedAsset"]["id"]
    running = project(http, sim, pid).json()
    assert running["status"] == "in_progress"
    assert {i["status"] for i in running["dubbedAssets"]} == {"in_progress"}

    clock.advance(10.0)
    done = project(http, sim, pid).json()
    assert done["status"] == "complete"
    for item in done["dubbedAssets"]:
        assert item["status"] == "complete"
        assert set(item["thumbnail"]) == {"image", "gif"}
        assert set(item["captions"]) == {"srt", "vtt"}
        got = requests.get(item["download"], timeout=10)
        assert got.status_code == 200
        assert got.content == sim.expected_output(pid, item["language"])
        assert int(got.headers["Content-Length"]) == len(got.content)
        vtt = requests.get(item["captions"]["vtt"], timeout=10)
        assert vtt.text.startswith("WEBVTT")
    assert sim.expected_output(pid, "es-ES") != sim.expected_output(pid, "fr-FR")


# -- auth ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "header", "status"),
    [
        ({}, "sim-key", 201),
        ({}, "Bearer sim-key", 201),
        ({"accept_bearer": False}, "Bearer sim-key", 403),
        ({}, "wrong-key", 403),
        ({}, None, 403),
        ({"missing_auth_status": 401}, None, 401),
    ],
)
def test_auth_variants(
    sim_factory: Callable[..., Simulator],
    http: requests.Session,
    options: dict[str, Any],
    header: str | None,
    status: int,
) -> None:
    """Bare key and (optionally) Bearer pass; wrong key 403; missing header as configured."""
    sim = sim_factory(**options)
    headers = {} if header is None else {"Authorization": header}
    body = {"contentType": "video/mp4", "configuration": {"name": "dubbing"}}
    resp = http.post(f"{sim.url}/v2/assets", json=body, headers=headers)
    assert resp.status_code == status
    if status == 403 and header is not None:
        assert resp.json() == {"error": "Forbidden - Wrong API key."}
    if status in (401, 403):
        assert "sim-key" not in resp.text
    assert sim.requests[-1].had_authorization is (header is not None)


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"contentType": "video/avi"}, "Unsupported Media Type.", "contentType"),
        ({"configuration": {"name": "avatar"}}, "Bad Request", "configuration.name"),
        ({"configuration": {"name": "dubbing", "detectLanguage": "yes"}}, "Bad Request", "detect"),
        ({"title": "x" * 257}, "Bad Request", "title"),
        ({"contentLength": -1}, "Bad Request", "contentLength"),
        ({"contentMD5": 5}, "Bad Request", "contentMD5"),
    ],
)
def test_asset_validation(
    sim: Simulator, http: requests.Session, change: dict[str, Any], error: str, field: str
) -> None:
    """POST /v2/assets answers 400 with an Error body naming what is wrong."""
    body = {"contentType": "video/mp4", "configuration": {"name": "dubbing"}, **change}
    resp = http.post(f"{sim.url}/v2/assets", json=body, headers=auth(sim))
    assert resp.status_code == 400
    assert resp.json()["error"] == error
    assert field in resp.json()["context"]
    assert sim.assets == {}


def test_invalid_json_is_400(sim: Simulator, http: requests.Session) -> None:
    """A body that is not JSON is a 400 with an Error body."""
    resp = http.post(f"{sim.url}/v2/assets", data=b"{nope", headers=auth(sim))
    assert resp.status_code == 400
    assert resp.json()["context"] == "request body is not valid JSON"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": None}, "title"),
        ({"targetLanguages": []}, "targetLanguages"),
        ({"targetLanguages": ["xx-XX"]}, "xx-XX"),
        ({"sourceLanguage": "ceb"}, "sourceLanguage"),
        ({"sourceAssetId": None}, "sourceAssetId"),
        ({"videoDuration": "short"}, "videoDuration"),
        ({"visibility": "team"}, "visibility"),
        ({"lipsyncEnabled": "no"}, "lipsyncEnabled"),
    ],
)
def test_dubbing_validation(
    sim: Simulator, http: requests.Session, change: dict[str, Any], field: str
) -> None:
    """POST /v2/dubbing answers 400 whose context names the bad field."""
    body = {
        "title": "t",
        "targetLanguages": ["es-ES"],
        "sourceAssetId": "a",
        "sourceLanguage": "en",
        **change,
    }
    resp = http.post(f"{sim.url}/v2/dubbing", json=body, headers=auth(sim))
    assert resp.status_code == 400
    assert field in resp.json()["context"]
    assert sim.projects == {}


def test_dubbing_before_upload_is_400(sim: Simulator, http: requests.Session) -> None:
    """Submitting an asset whose object is not in S3 yet is refused (nothing billed)."""
    asset = create_asset(http, sim, len(SOURCE))
    resp = submit(http, sim, asset["id"], ["es-ES"])
    assert resp.status_code == 400
    assert "upload" in resp.json()["context"]
    assert sim.projects == {}


def test_size_mismatch_is_400_and_asset_error(sim: Simulator, http: requests.Session) -> None:
    """An object shorter than contentLength: asset error asset_upload, dubbing 400."""
    asset = create_asset(http, sim, len(SOURCE) + 1)
    upload(sim, asset, SOURCE)
    got = http.get(f"{sim.url}/v2/assets/{asset['id']}", headers=auth(sim)).json()
    assert (got["status"], got["errorCode"]) == ("error", "asset_upload")
    resp = submit(http, sim, asset["id"], ["es-ES"])
    assert resp.status_code == 400
    assert str(len(SOURCE)) in resp.json()["context"]


def test_unknown_ids_are_404(sim: Simulator, http: requests.Session) -> None:
    """Unknown asset and project ids answer 404 with the documented messages."""
    missing = "00000000-0000-4000-8000-000000000000"
    got = http.get(f"{sim.url}/v2/assets/{missing}", headers=auth(sim))
    assert got.status_code == 404
    assert got.json()["error"] == "Asset does not exist or user does not have access"
    resp = submit(http, sim, missing, ["es-ES"])
    assert (resp.status_code, resp.json()["error"]) == (404, "Asset ID was not found.")
    assert project(http, sim, missing).status_code == 404
    put = http.put(
        f"{sim.url}/v2/dubbing/{missing}", json={"targetLanguages": ["de"]}, headers=auth(sim)
    )
    assert (put.status_code, put.json()["error"]) == (404, "Imported video not found")
    assert project(http, sim, "not-a-uuid").status_code == 400


def test_source_video_url_needs_beta(sim: Simulator, http: requests.Session) -> None:
    """The sourceVideoUrl variant answers 403 (no beta access)."""
    body = {"title": "t", "targetLanguages": ["es"], "sourceVideoUrl": "https://s3/x.mp4"}
    resp = http.post(f"{sim.url}/v2/dubbing", json=body, headers=auth(sim))
    assert resp.status_code == 403


# -- GET /v2/dubbing shapes and filters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "query", "expected"),
    [
        ("both", "?targetLanguages=es-ES&targetLanguages=de", {"es-ES", "de"}),
        ("both", "?targetLanguages=es-ES,de", {"es-ES", "de"}),
        ("repeated", "?targetLanguages=es-ES&targetLanguages=de", {"es-ES", "de"}),
        ("repeated", "?targetLanguages=es-ES,de", None),
        ("comma", "?targetLanguages=es-ES,de", {"es-ES", "de"}),
        ("both", "?targetLanguages=it", None),
        ("both", "", {"es-ES", "de", "fr-FR"}),
    ],
)
def test_target_language_filter(
    sim_factory: Callable[..., Simulator],
    http: requests.Session,
    encoding: str,
    query: str,
    expected: set[str] | None,
) -> None:
    """targetLanguages filters in the configured encodings; no match is a 404."""
    sim = sim_factory(filter_encoding=encoding)
    pid = ready_project(http, sim, ["es-ES", "de", "fr-FR"])
    resp = project(http, sim, pid, query)
    if expected is None:
        assert resp.status_code == 404
        assert resp.json()["error"] == "Feature disabled or target languages not found"
    else:
        assert {i["language"] for i in resp.json()["dubbedAssets"]} == expected


@pytest.mark.parametrize(("base_match", "status"), [(True, 200), (False, 404)])
def test_filter_base_match(
    sim_factory: Callable[..., Simulator], http: requests.Session, base_match: bool, status: int
) -> None:
    """Whether filter "es" finds item "es-ES" is a switch."""
    sim = sim_factory(filter_base_match=base_match)
    pid = ready_project(http, sim, ["es-ES"])
    assert project(http, sim, pid, "?targetLanguages=es").status_code == status


def test_upper_case_statuses_and_download_aliases(
    sim_factory: Callable[..., Simulator], fake_clock: FakeClock, http: requests.Session
) -> None:
    """status_case="upper" and download_field_aliases change the GET shape as configured."""
    sim = sim_factory(clock=fake_clock, status_case="upper", download_field_aliases=True)
    pid = ready_project(http, sim, ["es-ES"])
    assert project(http, sim, pid).json()["status"] == "IN_PROGRESS"
    fake_clock.advance(1.0)
    body = project(http, sim, pid).json()
    item = body["dubbedAssets"][0]
    assert (body["status"], item["status"]) == ("COMPLETE", "COMPLETE")
    assert item["download"] == item["downloadUrl"] == item["url"]


def test_languages_finish_apart_within_dub_seconds(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """Languages complete one after another; all are done at dub_seconds."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["es-ES", "de", "fr-FR"])
    clock.advance(9.5)
    statuses = [i["status"] for i in project(http, sim, pid).json()["dubbedAssets"]]
    assert statuses == ["complete", "complete", "in_progress"]
    clock.advance(0.5)
    assert project(http, sim, pid).json()["status"] == "complete"


def test_put_adds_locales_then_204(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """PUT adds new locales (202, they progress), repeats are 204, bad locales 400."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["es-ES"])
    clock.advance(10.0)
    url = f"{sim.url}/v2/dubbing/{pid}"
    added = http.put(url, json={"targetLanguages": ["es-ES", "de"]}, headers=auth(sim))
    assert added.status_code == 202
    created = added.json()["createdDubbedAssets"]
    assert [(i["language"], i["status"]) for i in created] == [("de", "in_progress")]
    assert added.json()["dubbedErrors"] == []
    assert project(http, sim, pid).json()["status"] == "in_progress"
    again = http.put(url, json={"targetLanguages": ["de"]}, headers=auth(sim))
    assert (again.status_code, again.content) == (204, b"")
    bad = http.put(url, json={"targetLanguages": ["xx"]}, headers=auth(sim))
    assert bad.status_code == 400
    clock.advance(10.0)
    body = project(http, sim, pid).json()
    assert body["status"] == "complete"
    assert [i["language"] for i in body["dubbedAssets"]] == ["es-ES", "de"]


def test_asset_processing_phase(
    sim_factory: Callable[..., Simulator], fake_clock: FakeClock, http: requests.Session
) -> None:
    """awaiting_upload -> processing -> ready; detectLanguage false gives a null language."""
    sim = sim_factory(clock=fake_clock, asset_processing_seconds=5.0, detected_language="und")
    asset = create_asset(http, sim, configuration={"name": "dubbing", "detectLanguage": True})
    quiet = create_asset(http, sim, configuration={"name": "dubbing", "detectLanguage": False})
    upload(sim, asset, SOURCE)
    upload(sim, quiet, SOURCE)

    def get(a: dict[str, Any]) -> dict[str, Any]:
        resp = http.get(f"{sim.url}/v2/assets/{a['id']}", headers=auth(sim))
        return resp.json()  # type: ignore[no-any-return]

    assert get(asset)["status"] == "processing"
    fake_clock.advance(5.0)
    assert (get(asset)["status"], get(asset)["metadata"]["detectedLanguage"]) == ("ready", "und")
    assert get(quiet)["metadata"]["detectedLanguage"] is None


def test_range_request(clocked: tuple[Simulator, FakeClock], http: requests.Session) -> None:
    """Signed URLs honour a byte range the way S3 does (206 + Content-Range)."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["de"])
    clock.advance(10.0)
    url = first_download(http, sim, pid)
    part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=10)
    assert part.status_code == 206
    assert part.content == sim.expected_output(pid, "de")[10:20]
    assert part.headers["Content-Range"].startswith("bytes 10-19/")


# -- faults ----------------------------------------------------------------------------------------


def test_fault_429_has_rate_limit_headers(sim: Simulator, http: requests.Session) -> None:
    """A 429 fault answers with RateLimit-Limit/-Reset, Retry-After and an Error body, then ends."""
    sim.faults.add("POST /v2/assets", "429", count=2, retry_after=2)
    for _ in range(2):
        resp = http.post(f"{sim.url}/v2/assets", json={}, headers=auth(sim))
        assert resp.status_code == 429
        assert resp.headers["RateLimit-Reset"] == resp.headers["Retry-After"] == "2"
        assert resp.headers["RateLimit-Limit"].isdigit()
        assert "error" in resp.json()
    assert create_asset(http, sim)["id"]
    assert [r.status for r in sim.requests] == [429, 429, 201]
    assert sim.requests[0].fault == "429"


def test_fault_5xx_on_every_endpoint_by_wildcard(sim: Simulator, http: requests.Session) -> None:
    """A "*" 5xx fault hits API calls, signed URLs and S3 alike."""
    asset = create_asset(http, sim, len(SOURCE))
    sim.faults.add("*", "5xx", count=2, status=502)
    assert http.get(f"{sim.url}/v2/assets/{asset['id']}", headers=auth(sim)).status_code == 502
    with pytest.raises(ClientError) as info:
        upload(sim, asset, SOURCE)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 502
    upload(sim, asset, SOURCE)  # the fault is used up
    assert sim.assets[asset["id"]].uploaded_at is not None


def test_fault_probability_is_seeded(sim_factory: Callable[..., Simulator]) -> None:
    """The same seed gives the same sequence of probabilistic faults."""
    outcomes = []
    for _ in range(2):
        sim = sim_factory(seed=7)
        sim.faults.add("GET /v2/assets/{id}", "5xx", probability=0.5)
        with requests.Session() as http:
            codes = [
                http.get(f"{sim.url}/v2/assets/{i}", headers=auth(sim)).status_code
                for i in range(20)
            ]
        outcomes.append(codes)
    assert outcomes[0] == outcomes[1]
    assert {503, 404} == set(outcomes[0])


def test_drop_before_does_not_process(sim: Simulator, http: requests.Session) -> None:
    """drop_before closes the socket unanswered and creates nothing."""
    sim.faults.add("POST /v2/assets", "drop_before", count=1)
    body = {"contentType": "video/mp4", "configuration": {"name": "dubbing"}}
    with pytest.raises(requests.ConnectionError):
        http.post(f"{sim.url}/v2/assets", json=body, headers=auth(sim))
    assert sim.assets == {}
    assert sim.requests[-1].status is None and sim.requests[-1].fault == "drop_before"


def test_drop_after_processes_then_drops(sim: Simulator, http: requests.Session) -> None:
    """drop_after creates the project (billed!) but the client never hears the id."""
    asset = create_asset(http, sim, len(SOURCE))
    upload(sim, asset, SOURCE)
    sim.faults.add("POST /v2/dubbing", "drop_after", count=1)
    with pytest.raises(requests.ConnectionError):
        submit(http, sim, asset["id"], ["es-ES"])
    assert len(sim.projects) == 1
    assert sim.count("POST /v2/dubbing") == 1
    assert sim.requests[-1].status is None


def test_slow_answers_late_but_processes(sim: Simulator, http: requests.Session) -> None:
    """slow processes the request, then holds the answer past the client's read timeout."""
    sim.faults.add("POST /v2/assets", "slow", count=1, seconds=30)
    body = {"contentType": "video/mp4", "configuration": {"name": "dubbing"}}
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(f"{sim.url}/v2/assets", json=body, headers=auth(sim), timeout=(5, 0.2))
    assert len(sim.assets) == 1  # stop() cuts the 30 s wait short


def test_expired_credentials_fault_and_scoping(sim: Simulator, http: requests.Session) -> None:
    """S3 refuses like AWS: ExpiredToken fault, foreign keys, unknown key ids."""
    first = create_asset(http, sim)
    second = create_asset(http, sim)
    sim.faults.add("S3", "expired_credentials", count=1)
    with pytest.raises(ClientError) as info:
        upload(sim, first, SOURCE)
    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    # first's credentials do not open second's key
    client = s3_client(sim, first["uploadCredentials"])
    try:
        with pytest.raises(ClientError) as denied:
            client.put_object(
                Bucket=second["uploadCredentials"]["bucket"],
                Key=second["uploadCredentials"]["key"],
                Body=SOURCE,
            )
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        client.close()
    forged = {**first["uploadCredentials"], "accessKeyId": "ASIAFORGEDFORGED0000"}
    with pytest.raises(ClientError) as unknown:
        upload(sim, {"uploadCredentials": forged}, SOURCE)
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert sim.assets[second["id"]].uploaded_at is None


def test_credentials_expire_by_ttl_and_on_demand(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """Credentials die after credentials_ttl, and all at once with expire_credentials()."""
    sim, clock = clocked
    old = create_asset(http, sim)
    clock.advance(300.0)
    with pytest.raises(ClientError) as info:
        upload(sim, old, SOURCE)
    assert info.value.response["Error"]["Code"] == "ExpiredToken"
    fresh = create_asset(http, sim)
    sim.expire_credentials()
    with pytest.raises(ClientError):
        upload(sim, fresh, SOURCE)
    newest = create_asset(http, sim)
    upload(sim, newest, SOURCE)


def test_download_url_expiry_and_refresh(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """Signed URLs die after download_ttl (403 AccessDenied XML); a new GET hands out live ones."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["de"])
    clock.advance(10.0)
    url = first_download(http, sim, pid)
    clock.advance(60.0)
    dead = requests.get(url, timeout=10)
    assert dead.status_code == 403
    assert b"<Code>AccessDenied</Code>" in dead.content
    fresh = first_download(http, sim, pid)
    assert fresh != url
    assert requests.get(fresh, timeout=10).status_code == 200
    pruned = requests.get(url, timeout=10)  # its record was dropped when fresh ones were made
    assert b"<Code>AccessDenied</Code>" in pruned.content
    sim.expire_download_urls()
    assert requests.get(fresh, timeout=10).status_code == 403
    tampered = requests.get(fresh.replace("Signature=", "Signature=0"), timeout=10)
    assert tampered.status_code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in tampered.content


def test_download_faults_expired_url_and_truncate(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """expired_url answers 403; truncate sends a full Content-Length and half the body."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["de"])
    clock.advance(10.0)
    url = first_download(http, sim, pid)
    sim.faults.add("DOWNLOAD", "expired_url", count=1)
    assert requests.get(url, timeout=10).status_code == 403
    sim.faults.add("DOWNLOAD", "truncate", count=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10)
    assert sim.requests[-1].fault == "truncate"
    assert requests.get(url, timeout=10).content == sim.expected_output(pid, "de")


def test_authorization_on_signed_url_is_400(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """Sending the API key to a signed URL is refused as S3 does (two auth mechanisms)."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["de"])
    clock.advance(10.0)
    url = first_download(http, sim, pid)
    resp = requests.get(url, headers=auth(sim), timeout=10)
    assert resp.status_code == 400
    assert b"Only one auth mechanism allowed" in resp.content


def test_project_and_language_errors(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """project_error ends the project in error; language_error fails one item only."""
    sim, clock = clocked
    sim.faults.add("POST /v2/dubbing", "project_error", count=1, error_code="moderation")
    sim.faults.add("POST /v2/dubbing", "language_error", count=1, language="de")
    failed = ready_project(http, sim, ["es-ES"])
    mixed = ready_project(http, sim, ["es-ES", "de"])
    assert project(http, sim, failed).json()["status"] == "in_progress"
    clock.advance(10.0)
    assert project(http, sim, failed).json() == {
        "id": failed,
        "status": "error",
        "errorCode": "moderation",
    }
    body = project(http, sim, mixed).json()
    assert body["status"] == "complete"
    by_lang = {i["language"]: i for i in body["dubbedAssets"]}
    assert by_lang["es-ES"]["status"] == "complete"
    assert by_lang["de"] == {
        "id": by_lang["de"]["id"],
        "language": "de",
        "status": "error",
        "errorCode": "processing_error",
    }


def test_asset_error_fault(sim: Simulator, http: requests.Session) -> None:
    """asset_error: the asset ends in error with the given code, and dubbing it is refused."""
    sim.faults.add("POST /v2/assets", "asset_error", count=1, error_code="language_detect")
    asset = create_asset(http, sim)
    upload(sim, asset, SOURCE)
    got = http.get(f"{sim.url}/v2/assets/{asset['id']}", headers=auth(sim)).json()
    assert (got["status"], got["errorCode"]) == ("error", "language_detect")
    assert submit(http, sim, asset["id"], ["de"]).status_code == 400


def test_s3_drop_is_a_connection_error(sim: Simulator, http: requests.Session) -> None:
    """An S3 drop_before reaches boto3 as a connection error; nothing was written."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    asset = create_asset(http, sim)
    sim.faults.add("S3", "drop_before", count=1)
    creds = asset["uploadCredentials"]
    client = s3_client(sim, creds)
    try:
        with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
            client.put_object(Bucket=creds["bucket"], Key=creds["key"], Body=SOURCE)
    finally:
        client.close()
    assert sim.assets[asset["id"]].uploaded_at is None
    assert sim.requests[-1].status is None


def test_s3_slowdown_and_drop_after(sim: Simulator, http: requests.Session) -> None:
    """S3 "429" is S3's 503 SlowDown; drop_after writes the object but the client never hears."""
    from botocore.exceptions import ConnectionClosedError

    asset = create_asset(http, sim, len(SOURCE))
    creds = asset["uploadCredentials"]
    client = s3_client(sim, creds)
    try:
        sim.faults.add("S3", "429", count=1)
        with pytest.raises(ClientError) as info:
            client.put_object(Bucket=creds["bucket"], Key=creds["key"], Body=SOURCE)
        assert info.value.response["Error"]["Code"] == "SlowDown"
        sim.faults.add("S3", "drop_after", count=1)
        with pytest.raises(ConnectionClosedError):
            client.put_object(Bucket=creds["bucket"], Key=creds["key"], Body=SOURCE)
    finally:
        client.close()
    assert sim.assets[asset["id"]].size == len(SOURCE)
    assert submit(http, sim, asset["id"], ["de"]).status_code == 202


def test_download_5xx_and_slowdown_are_s3_xml(
    clocked: tuple[Simulator, FakeClock], http: requests.Session
) -> None:
    """Faults on signed URLs answer the way S3 does: XML errors, 503 SlowDown for "429"."""
    sim, clock = clocked
    pid = ready_project(http, sim, ["de"])
    clock.advance(10.0)
    url = first_download(http, sim, pid)
    sim.faults.add("DOWNLOAD", "5xx", count=1, status=500)
    sim.faults.add("DOWNLOAD", "429", count=1, retry_after=3)
    first = requests.get(url, timeout=10)
    assert (first.status_code, b"<Code>InternalError</Code>" in first.content) == (500, True)
    second = requests.get(url, timeout=10)
    assert (second.status_code, second.headers["Retry-After"]) == (503, "3")
    assert requests.get(url, timeout=10).status_code == 200


def test_pause_s3(sim: Simulator, http: requests.Session) -> None:
    """Gates work on S3 too: the upload waits until released."""
    asset = create_asset(http, sim, len(SOURCE))
    gate = sim.pause("S3")
    worker = threading.Thread(target=upload, args=(sim, asset, SOURCE))
    worker.start()
    assert gate.wait_arrived(timeout=10)
    assert sim.assets[asset["id"]].uploaded_at is None
    sim.unpause("S3")
    worker.join(10)
    assert sim.assets[asset["id"]].uploaded_at is not None


def test_fault_validation() -> None:
    """Faults refuse unknown endpoints, kinds, parameters and misplaced kinds."""
    sim = Simulator()  # never started: faults need no server
    with pytest.raises(ValueError, match="endpoint"):
        sim.faults.add("GET /v2/templates", "5xx")
    with pytest.raises(ValueError, match="kind"):
        sim.faults.add("S3", "explode")
    with pytest.raises(ValueError, match="applies only"):
        sim.faults.add("S3", "truncate")
    with pytest.raises(ValueError, match="parameters"):
        sim.faults.add("S3", "5xx", colour="red")
    with pytest.raises(ValueError, match="error_code"):
        sim.faults.add("POST /v2/assets", "asset_error", error_code="moderation")
    sim.faults.add("S3", "5xx", count=1)
    sim.faults.clear()
    assert len(sim.faults) == 0


# -- gates -----------------------------------------------------------------------------------------


def test_pause_holds_request_until_release(sim: Simulator, http: requests.Session) -> None:
    """A paused endpoint records the arrival and processes nothing until released."""
    asset = create_asset(http, sim, len(SOURCE))
    upload(sim, asset, SOURCE)
    gate = sim.pause("POST /v2/dubbing")
    result: dict[str, int] = {}

    def client() -> None:
        with requests.Session() as own:
            result["status"] = submit(own, sim, asset["id"], ["de"]).status_code

    worker = threading.Thread(target=client)
    worker.start()
    assert gate.wait_arrived(timeout=10)
    assert sim.count("POST /v2/dubbing") == 1
    assert sim.projects == {}
    gate.release()
    worker.join(10)
    assert result == {"status": 202}
    assert len(sim.projects) == 1
    assert submit(http, sim, asset["id"], ["de"]).status_code == 202  # later ones pass too


def test_stop_releases_a_paused_request(sim_factory: Callable[..., Simulator]) -> None:
    """stop() never hangs on a request held at a gate."""
    sim = sim_factory()
    gate = sim.pause("GET /v2/assets/{id}")
    errors: list[BaseException] = []

    def client() -> None:
        try:
            requests.get(f"{sim.url}/v2/assets/x", headers=auth(sim), timeout=10)
        except requests.RequestException as exc:
            errors.append(exc)

    worker = threading.Thread(target=client)
    worker.start()
    assert gate.wait_arrived(timeout=10)
    sim.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert gate.released


# -- rate limits -----------------------------------------------------------------------------------


def test_rate_limit_sliding_windows(
    sim_factory: Callable[..., Simulator], fake_clock: FakeClock, http: requests.Session
) -> None:
    """Over a write window: 429 with the breached limit and the wait; reads count apart."""
    sim = sim_factory(clock=fake_clock, rate_limits={"write": [(2, 60), (3, 3600)], "read": []})
    create_asset(http, sim)
    fake_clock.advance(10.0)
    create_asset(http, sim)
    over = http.post(f"{sim.url}/v2/assets", json={}, headers=auth(sim))
    assert over.status_code == 429
    assert over.headers["RateLimit-Limit"] == "2"
    assert over.headers["RateLimit-Reset"] == over.headers["Retry-After"] == "50"
    assert over.json()["error"] == "Too Many Requests"
    assert http.get(f"{sim.url}/v2/assets/x", headers=auth(sim)).status_code == 404
    fake_clock.advance(50.0)
    create_asset(http, sim)
    fake_clock.advance(60.0)
    hourly = http.post(f"{sim.url}/v2/assets", json={}, headers=auth(sim))
    assert hourly.headers["RateLimit-Limit"] == "3"
    assert int(hourly.headers["RateLimit-Reset"]) == 3600 - 120
    assert sim.requests[-1].status == 429


def test_rate_limit_tier_name(
    sim_factory: Callable[..., Simulator], fake_clock: FakeClock, http: requests.Session
) -> None:
    """rate_limits="creator" enforces 60 writes a minute per endpoint."""
    sim = sim_factory(clock=fake_clock, rate_limits="creator")
    codes = [
        http.post(f"{sim.url}/v2/dubbing", json={}, headers=auth(sim)).status_code
        for _ in range(61)
    ]
    assert codes[:60] == [400] * 60 and codes[60] == 429
    assert http.post(f"{sim.url}/v2/assets", json={}, headers=auth(sim)).status_code == 400


# -- the log, isolation, concurrency, CLI ----------------------------------------------------------


def test_request_log(sim: Simulator, http: requests.Session) -> None:
    """Every request is recorded with endpoint template, path, query, status and auth flag."""
    http.get(f"{sim.url}/v2/dubbing/{'1' * 32}?targetLanguages=de", headers=auth(sim))
    http.get(f"{sim.url}/v2/nothing")
    first, second = sim.requests
    assert (first.method, first.endpoint, first.status) == ("GET", "GET /v2/dubbing/{id}", 404)
    assert first.query == "targetLanguages=de" and first.had_authorization
    assert (second.endpoint, second.status, second.had_authorization) == ("UNKNOWN", 404, False)
    assert sim.count("GET /v2/dubbing/{id}") == 1


def test_two_simulators_are_isolated(
    sim_factory: Callable[..., Simulator], http: requests.Session
) -> None:
    """Credentials from one simulator mean nothing to another's S3."""
    first, second = sim_factory(), sim_factory()
    asset = create_asset(http, first)
    creds = asset["uploadCredentials"]
    client = s3_client(second, creds)
    try:
        with pytest.raises(ClientError) as info:
            client.put_object(Bucket=creds["bucket"], Key=creds["key"], Body=b"x")
    finally:
        client.close()
    assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert first.bucket != second.bucket


def test_concurrent_clients(sim: Simulator) -> None:
    """Many clients at once each get their own asset."""
    ids: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as own:
            for _ in range(5):
                asset = create_asset(own, sim)
                with lock:
                    ids.append(asset["id"])

    workers = [threading.Thread(target=client) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert len(set(ids)) == 40 == len(sim.assets)


def test_secrets_stay_out_of_reprs(sim: Simulator, http: requests.Session) -> None:
    """Asset and credential reprs never show the S3 secret or session token."""
    asset = create_asset(http, sim)
    record = sim.assets[asset["id"]]
    creds = asset["uploadCredentials"]
    text = repr(record) + repr(record.credentials)
    assert creds["secretAccessKey"] not in text
    assert creds["sessionToken"] not in text


def test_env_and_context_manager() -> None:
    """env() points a subprocess at the simulator; the context manager stops it."""
    with Simulator(api_key="k1") as sim:
        env = sim.env()
        assert env == {"SYNTHESIA_API_KEY": "k1", "AWS_ENDPOINT_URL_S3": sim.s3_url}
        assert sim.url.startswith("http://127.0.0.1:")
        url = sim.url
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/v2/assets/x", timeout=5)


def test_cli_serves_until_sigterm() -> None:
    """python -m synthesia_watchd.simulator prints URLs and exports, and exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "synthesia_watchd.simulator", "--port", "0", "--api-key", "k2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        api_url = lines[0].rsplit(" ", 1)[1].strip()
        assert "export SYNTHESIA_API_KEY=k2\n" in lines
        assert any(
            line.startswith("export AWS_ENDPOINT_URL_S3=http://127.0.0.1:") for line in lines
        )
        resp = requests.get(f"{api_url}/v2/assets/x", headers={"Authorization": "k2"}, timeout=5)
        assert resp.status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
