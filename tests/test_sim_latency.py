"""The simulator's dub time proportional to the video's length (dub_rate, dub_jitter)."""

from __future__ import annotations

from pathlib import Path

import pytest
from simfixtures import FakeClock

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.ratelimit import RateLimiter
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.simulator.model import mp4_duration
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.synthesia.upload import upload_file


def test_mp4_duration_reads_the_mvhd_box() -> None:
    """The declared length comes from moov/mvhd; bytes without one give None."""
    assert mp4_duration(sample_video("a", 4096, duration_s=90.5)) == pytest.approx(90.5)
    assert mp4_duration(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00") is None


@pytest.mark.parametrize(("seconds", "jitter"), [(40.0, 0.0), (40.0, 0.3)])
def test_dub_time_follows_the_video_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seconds: float, jitter: float
) -> None:
    """dub_rate 0.5: a 40 s video dubs in 20 s (within +-30 % with jitter 0.3)."""
    clock = FakeClock()
    with Simulator(dub_rate=0.5, dub_jitter=jitter, clock=clock).start() as sim:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", sim.s3_url)
        client = SynthesiaClient(sim.api_key, api_url=sim.url, limiter=RateLimiter.unlimited())
        src = tmp_path / "talk.mp4"
        src.write_bytes(sample_video("talk", 4096, duration_s=seconds))
        asset = client.create_asset(content_type="video/mp4", content_length=4096, title="talk")
        upload_file(src, asset.credentials)
        pid = client.start_dubbing(
            asset_id=asset.id, title="talk", source_language="en", target_languages=["de-DE"]
        )
        lo, hi = seconds * 0.5 * (1 - jitter), seconds * 0.5 * (1 + jitter)
        clock.advance(lo - 0.01)
        assert client.get_project(pid).status == "in_progress"
        clock.advance(hi - lo + 0.02)
        assert client.get_project(pid).status == "complete"
        client.close()
