"""upload.max_bandwidth: parsed with units, refused with key and line, and throttling real S3.

The throttle is boto3's (its transfer manager reads the file through a leaky bucket); these
tests check that the setting reaches it and that an upload against the simulator's moto S3
then takes at least as long as the cap allows.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from test_config import MINIMAL
from test_config import parse as parse_with_watch
from test_upload import make_video, new_credentials, stored_bytes

from synthesia_watchd.config.load import Config, effective_config
from synthesia_watchd.domain.errors import ConfigError
from synthesia_watchd.service.compose import node_uploader
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.synthesia.upload import upload_file

KIB = 1024
#: Bytes s3transfer reads before its first throttled read (BandwidthLimitedStream's
#: threshold); the bucket lets that first chunk through at once, so a lower bound on the
#: upload's time leaves out this much, twice over for the rate tracker's averaging.
UNTHROTTLED = 2 * 256 * KIB


def parse(text: str, tmp_path: Path) -> Config:
    """The config of ``text`` plus a minimal watch."""
    return parse_with_watch(text + MINIMAL, tmp_path)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("20MB/s", 20_000_000),
        ("2MiB/s", 2 * 1024 * 1024),
        ("512 KiB/S", 512 * KIB),
        ("1.5MB", 1_500_000),
        ("250000", 250_000),
        ("null", None),
    ],
)
def test_bandwidth_takes_sizes_per_second(tmp_path: Path, written: str, expected: int) -> None:
    """Bytes per second as a number or a size with an optional /s; null is no cap."""
    cfg = parse(f"upload: {{max_bandwidth: {written}}}\n", tmp_path)
    assert cfg.upload_max_bandwidth == expected
    assert effective_config(cfg)["upload"] == {"max_bandwidth": expected}


def test_bandwidth_defaults_to_no_cap(tmp_path: Path) -> None:
    """Without the key, uploads are not throttled."""
    assert parse("", tmp_path).upload_max_bandwidth is None


@pytest.mark.parametrize("written", ["fast", "20 Mbit/s", "0", "-5MB/s", "[1]", "true"])
def test_bad_bandwidth_names_key_and_line(tmp_path: Path, written: str) -> None:
    """A value that is no byte rate is one error naming upload.max_bandwidth and its line."""
    with pytest.raises(ConfigError) as info:
        parse(f"log: {{level: info}}\nupload:\n  max_bandwidth: {written}\n", tmp_path)
    [issue] = info.value.issues
    assert (issue.key, issue.line) == ("upload.max_bandwidth", 3)
    assert "bytes per second" in issue.message and "20MB/s" in issue.message
    assert "upload.max_bandwidth" in str(info.value) and ":3" in str(info.value)


def test_capped_upload_takes_at_least_size_over_cap(sim: Simulator, tmp_path: Path) -> None:
    """A 1 MiB upload at 256 KiB/s lasts at least (size - first chunk) / cap on real S3, and
    stores the file intact."""
    size, cap = 1024 * KIB, 256 * KIB
    path = make_video(tmp_path, size)
    _, creds = new_credentials(sim, path)
    started = time.monotonic()
    upload_file(path, creds, endpoint_url=sim.s3_url, max_bandwidth=cap)
    elapsed = time.monotonic() - started
    assert elapsed >= (size - UNTHROTTLED) / cap, elapsed
    assert stored_bytes(sim, creds) == path.read_bytes()


def test_node_cap_is_split_among_upload_slots(
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The daemon's uploader hands each transfer its share of the node's cap (cap divided by
    workers.max_uploads), as boto3's transfer manager reports setting it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", sim.s3_url)
    cfg = parse("workers: {max_uploads: 4}\nupload: {max_bandwidth: 2MiB/s}\n", tmp_path)
    path = make_video(tmp_path, 4 * KIB)
    _, creds = new_credentials(sim, path)
    with caplog.at_level(logging.DEBUG, logger="s3transfer.manager"):
        node_uploader(cfg)(path, creds)
    assert f"Setting max_bandwidth to {512 * KIB}" in caplog.messages
    assert stored_bytes(sim, creds) == path.read_bytes()


def test_uncapped_node_sets_no_bandwidth(
    sim: Simulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without upload.max_bandwidth the transfer manager gets no limit at all."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", sim.s3_url)
    path = make_video(tmp_path, 4 * KIB)
    _, creds = new_credentials(sim, path)
    with caplog.at_level(logging.DEBUG, logger="s3transfer.manager"):
        node_uploader(parse("", tmp_path))(path, creds)
    assert not [m for m in caplog.messages if "max_bandwidth" in m]
    assert stored_bytes(sim, creds) == path.read_bytes()
