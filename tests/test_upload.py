"""S3 uploads with temporary credentials, against the simulator's moto S3."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import boto3
import botocore.config
import pytest

from synthesia_watchd.domain.apitypes import UploadCredentials
from synthesia_watchd.domain.errors import (
    ShutdownRequested,
    TransientError,
    UploadCredentialsExpired,
)
from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.synthesia.upload import upload_file

MIB = 1024 * 1024


def make_video(folder: Path, size: int, name: str = "clip.mp4") -> Path:
    """A real-looking mp4 of ``size`` bytes."""
    path = folder / name
    path.write_bytes(sample_video(name, size))
    return path


def new_credentials(sim: Simulator, path: Path) -> tuple[str, UploadCredentials]:
    """A fresh asset for ``path``: its id and temporary credentials."""
    client = SynthesiaClient(
        sim.api_key,
        api_url=sim.url,
        limiter=RateLimiter.unlimited(),
        retry=RetryPolicy(base=0.01, cap=0.05),
    )
    try:
        asset = client.create_asset(
            content_type="video/mp4", content_length=path.stat().st_size, title=path.name
        )
    finally:
        client.close()
    return asset.id, asset.credentials


def stored_bytes(sim: Simulator, creds: UploadCredentials) -> bytes:
    """Read the object back with the same scoped credentials."""
    s3 = boto3.session.Session(
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        aws_session_token=creds.session_token,
        region_name="eu-west-1",
    ).client(
        "s3",
        endpoint_url=sim.s3_url,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    try:
        return s3.get_object(Bucket=creds.bucket, Key=creds.key)["Body"].read()
    finally:
        s3.close()


@pytest.fixture(autouse=True)
def no_ambient_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Machine AWS settings must not matter: point them at nothing useful."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAMACHINEKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "machine-secret-must-not-be-used")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


def test_multipart_upload_is_byte_identical(sim: Simulator, tmp_path: Path) -> None:
    """A file above the threshold goes up in parts and lands byte for byte; progress sums up."""
    path = make_video(tmp_path, 11 * MIB + 123)
    _, creds = new_credentials(sim, path)
    seen: list[int] = []
    lock = threading.Lock()

    def progress(delta: int) -> None:
        with lock:
            seen.append(delta)

    upload_file(
        path,
        creds,
        progress=progress,
        endpoint_url=sim.s3_url,
        multipart_threshold=5 * MIB,
        multipart_chunksize=5 * MIB,
    )
    data = stored_bytes(sim, creds)
    assert hashlib.sha256(data).digest() == hashlib.sha256(path.read_bytes()).digest()
    assert sum(seen) == path.stat().st_size
    part_uploads = [r for r in sim.requests if r.endpoint == "S3" and "partNumber=" in r.query]
    assert len(part_uploads) == 3


def test_small_file_single_put(sim: Simulator, tmp_path: Path) -> None:
    """Below the threshold one PUT carries the whole file."""
    path = make_video(tmp_path, 4096)
    _, creds = new_credentials(sim, path)
    upload_file(path, creds, endpoint_url=sim.s3_url)
    assert stored_bytes(sim, creds) == path.read_bytes()
    assert not [r for r in sim.requests if r.endpoint == "S3" and "uploadId=" in r.query]


def test_env_endpoint_is_honoured(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without endpoint_url, botocore's AWS_ENDPOINT_URL_S3 decides where bytes go."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", sim.s3_url)
    upload_file(path, creds)
    assert stored_bytes(sim, creds) == path.read_bytes()


def test_endpoint_url_overrides_env(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit endpoint_url wins over a (here unusable) AWS_ENDPOINT_URL_S3."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    upload_file(path, creds, endpoint_url=sim.s3_url)
    assert stored_bytes(sim, creds) == path.read_bytes()


def test_expired_credentials(sim: Simulator, tmp_path: Path) -> None:
    """Expired temporary credentials raise UploadCredentialsExpired without leaking secrets."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    sim.expire_credentials()
    with pytest.raises(UploadCredentialsExpired) as info:
        upload_file(path, creds, endpoint_url=sim.s3_url)
    text = str(info.value) + repr(info.value)
    assert "ExpiredToken" in text
    assert "fresh asset" in text
    assert creds.secret_access_key not in text
    assert creds.session_token not in text


def test_expired_credentials_mid_multipart(sim: Simulator, tmp_path: Path) -> None:
    """Credentials expiring after the multipart upload started are mapped the same way."""
    path = make_video(tmp_path, 11 * MIB)
    _, creds = new_credentials(sim, path)

    def expire_on_first_bytes(delta: int) -> None:
        sim.expire_credentials()

    with pytest.raises(UploadCredentialsExpired):
        upload_file(
            path,
            creds,
            progress=expire_on_first_bytes,
            endpoint_url=sim.s3_url,
            multipart_threshold=5 * MIB,
            multipart_chunksize=5 * MIB,
            max_concurrency=1,
        )
    started = [r for r in sim.requests if r.method == "POST" and r.query.startswith("uploads")]
    assert [r.status for r in started] == [200]


def test_expired_credentials_fault(sim: Simulator, tmp_path: Path) -> None:
    """The simulator's expired_credentials fault (400 ExpiredToken) maps the same way."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    sim.faults.add("S3", "expired_credentials", count=1)
    with pytest.raises(UploadCredentialsExpired, match="ExpiredToken"):
        upload_file(path, creds, endpoint_url=sim.s3_url)


def test_wrong_credentials_are_expired_credentials(sim: Simulator, tmp_path: Path) -> None:
    """An unknown access key (InvalidAccessKeyId) also means: get a fresh asset."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    bogus = UploadCredentials(
        access_key_id="ASIAUNKNOWN000000000",
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
        bucket=creds.bucket,
        key=creds.key,
    )
    with pytest.raises(UploadCredentialsExpired, match="InvalidAccessKeyId"):
        upload_file(path, bogus, endpoint_url=sim.s3_url)


def test_transient_s3_fault_is_retried_by_botocore(sim: Simulator, tmp_path: Path) -> None:
    """One 503 from S3 is absorbed by botocore's own retries."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    sim.faults.add("S3", "5xx", count=1, status=503)
    upload_file(path, creds, endpoint_url=sim.s3_url)
    assert stored_bytes(sim, creds) == path.read_bytes()
    assert sim.count("S3") >= 2


def test_persistent_s3_fault_is_transient_error(sim: Simulator, tmp_path: Path) -> None:
    """S3 answering 500 beyond botocore's retries raises TransientError."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    sim.faults.add("S3", "5xx", status=500)
    with pytest.raises(TransientError, match="InternalError"):
        upload_file(path, creds, endpoint_url=sim.s3_url)


def test_unreachable_endpoint_is_transient(tmp_path: Path) -> None:
    """No S3 listening at all is a network failure, retried later by the pipeline."""
    path = make_video(tmp_path, 2048)
    creds = UploadCredentials("ASIAX", "secret", "token", "bucket", "key")
    with pytest.raises(TransientError, match="network failure"):
        upload_file(path, creds, endpoint_url="http://127.0.0.1:9")


def test_stop_cancels_upload(sim: Simulator, tmp_path: Path) -> None:
    """Setting stop during an upload raises ShutdownRequested and stores nothing."""
    path = make_video(tmp_path, 11 * MIB)
    asset_id, creds = new_credentials(sim, path)
    gate = sim.pause("S3")
    stop = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            upload_file(
                path,
                creds,
                stop=stop,
                endpoint_url=sim.s3_url,
                multipart_threshold=5 * MIB,
                multipart_chunksize=5 * MIB,
            )
        except BaseException as exc:  # collected for the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert gate.wait_arrived(10)
    stop.set()
    sim.unpause("S3")
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ShutdownRequested)
    assert sim.assets[asset_id].uploaded_at is None
    assert not [r for r in sim.requests if r.method == "POST" and "uploadId=" in r.query]


def test_stop_already_set_sends_nothing(sim: Simulator, tmp_path: Path) -> None:
    """A stopping worker does not start an upload at all."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    stop = threading.Event()
    stop.set()
    with pytest.raises(ShutdownRequested):
        upload_file(path, creds, stop=stop, endpoint_url=sim.s3_url)
    assert sim.count("S3") == 0


def test_machine_credentials_never_used(sim: Simulator, tmp_path: Path) -> None:
    """Only the temporary key id ever reaches S3, never the machine's AWS_ACCESS_KEY_ID."""
    path = make_video(tmp_path, 2048)
    _, creds = new_credentials(sim, path)
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAMACHINEKEY000000"
    upload_file(path, creds, endpoint_url=sim.s3_url)
    assert stored_bytes(sim, creds) == path.read_bytes()
    assert creds.access_key_id.startswith("ASIA")
