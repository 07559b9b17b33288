"""The loopback Synthesia simulator, exercised with plain requests and boto3 over real sockets."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from simfixtures import FakeClock

from synthesia_watchd.media import sample_video
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
        config=Config(retries={"max_attempts": retries, "mode": "standard"}),
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
