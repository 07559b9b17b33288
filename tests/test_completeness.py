"""The structural completeness check on real files: mp4/mov box walks, Matroska segments."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import pytest

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.files.completeness import ISO_BMFF, MATROSKA, describe, inspect
from synthesia_watchd.files.sourcefile import NotRegularFile, can_read, open_regular


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return (len(payload) + 8).to_bytes(4, "big") + kind + payload


def write(tmp_path: Path, data: bytes, name: str = "v.mp4") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_sample_video_is_complete_with_its_duration(tmp_path: Path) -> None:
    """The demo's sample video is whole (ftyp, moov, mdat) and says how long it is."""
    s = inspect(write(tmp_path, sample_video("x", 8192, duration_s=42.5)))
    assert s.complete and s.kind == ISO_BMFF and s.size == 8192
    assert s.duration_s == pytest.approx(42.5)
    assert describe(s) == "complete"


def test_half_copied_mp4_is_incomplete_and_says_where_it_ends(tmp_path: Path) -> None:
    """A copy cut inside mdat: incomplete, naming the box and where the structure ends."""
    data = sample_video("x", 8192)
    s = inspect(write(tmp_path, data[:5000]))
    assert not s.complete
    assert "'mdat'" in (s.reason or "") and "file ends at 5000" in (s.reason or "")
    head_len = data.index(b"mdat") - 4
    assert s.structure_end == head_len
    assert f"structure ends at byte {head_len} of 5000" in describe(s)


def test_mp4_without_moov_is_incomplete(tmp_path: Path) -> None:
    """ftyp and mdat tile the file, but with no moov the movie is not written yet."""
    s = inspect(write(tmp_path, box(b"ftyp", b"isom" + bytes(4)) + box(b"mdat", b"x" * 100)))
    assert not s.complete and "moov" in (s.reason or "")


def test_cut_box_header_is_incomplete(tmp_path: Path) -> None:
    """Four bytes after the last whole box: a header that is not all there yet."""
    data = sample_video("x", 4096) + b"\x00\x00\x01\x00"
    s = inspect(write(tmp_path, data))
    assert not s.complete and s.structure_end == 4096 and "cut off" in (s.reason or "")


def test_largesize_box_and_size_zero_last_box(tmp_path: Path) -> None:
    """A 64-bit largesize mdat tiles exactly; a size-0 last box runs to the end of the file."""
    head = sample_video("x", 4096)
    head = head[: head.index(b"mdat") - 4]
    payload = b"y" * 300
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload)) + payload
    assert inspect(write(tmp_path, head + large, "a.mp4")).complete
    to_end = struct.pack(">I4s", 0, b"mdat") + payload
    assert inspect(write(tmp_path, head + to_end, "b.mp4")).complete
    short = struct.pack(">I4sQ", 1, b"mdat", 16 + len(payload) + 1) + payload
    assert not inspect(write(tmp_path, head + short, "c.mp4")).complete


def test_fragmented_mp4_is_complete_only_with_whole_fragments(tmp_path: Path) -> None:
    """moov then moof/mdat pairs: whole when the last fragment is whole."""
    head = sample_video("x", 4096)
    head = head[: head.index(b"mdat") - 4]
    frags = b"".join(box(b"moof", b"m" * 40) + box(b"mdat", b"d" * 500) for _ in range(3))
    assert inspect(write(tmp_path, head + frags, "f.mp4")).complete
    assert not inspect(write(tmp_path, head + frags[:-10], "g.mp4")).complete


def test_garbage_after_boxes_and_non_video(tmp_path: Path) -> None:
    """Bytes that are no box, or a file that is no known container: not complete, with why."""
    bad = inspect(write(tmp_path, sample_video("x", 4096) + b"\x00\x00\x00\x10\x01\x02\x03\x04"))
    assert not bad.complete and "no valid box at byte 4096" in (bad.reason or "")
    text = inspect(write(tmp_path, b"hello, this is text", "t.mp4"))
    assert not text.complete and text.kind is None


# --- Matroska ------------------------------------------------------------------------------------


def vsize(n: int) -> bytes:
    return (n | (1 << 56)).to_bytes(8, "big")


def element(ident: int, payload: bytes) -> bytes:
    return ident.to_bytes((ident.bit_length() + 7) // 8, "big") + vsize(len(payload)) + payload


def mkv(cluster: int = 2000, *, unknown: bool = False, duration_ms: float = 12_345.0) -> bytes:
    header = element(0x1A45DFA3, element(0x4282, b"webm"))
    info = element(
        0x1549A966,
        element(0x2AD7B1, (1_000_000).to_bytes(3, "big"))
        + element(0x4489, struct.pack(">d", duration_ms)),
    )
    body = info + element(0x1F43B675, b"c" * cluster)
    size = b"\x01\xff\xff\xff\xff\xff\xff\xff" if unknown else vsize(len(body))
    return header + bytes.fromhex("18538067") + size + body


def test_webm_whole_truncated_trailing_and_unknown_size(tmp_path: Path) -> None:
    """Segment ends at EOF: whole, with its duration; cut or padded: not; unknown size: a note."""
    data = mkv()
    whole = inspect(write(tmp_path, data, "w.webm"))
    assert whole.complete and whole.kind == MATROSKA
    assert whole.duration_s == pytest.approx(12.345)
    cut = inspect(write(tmp_path, data[:-500], "c.webm"))
    assert not cut.complete and "the file ends at" in (cut.reason or "")
    padded = inspect(write(tmp_path, data + b"\x00" * 7, "p.webm"))
    assert not padded.complete and "7 byte(s) follow" in (padded.reason or "")
    live = inspect(write(tmp_path, mkv(unknown=True)[:-100], "l.webm"))
    assert live.complete and live.note and "unknown size" in live.note


# --- never blocking on a FIFO ---------------------------------------------------------------


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A FIFO under a video's name is refused at once: no open() that waits for a writer."""
    fifo = tmp_path / "swap.mp4"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def probe() -> None:
        try:
            inspect(fifo)
        except NotRegularFile as exc:
            outcome.append(exc)
        outcome.append(can_read(fifo))

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(5)
    assert not t.is_alive(), "inspect() blocked on a FIFO"
    assert isinstance(outcome[0], NotRegularFile) and "a FIFO" in str(outcome[0])
    assert outcome[1] is False


def test_open_regular_reads_normally(tmp_path: Path) -> None:
    """A regular file opens in blocking mode and reads whole."""
    path = write(tmp_path, b"abc" * 1000)
    with open_regular(path) as fh:
        assert fh.read() == b"abc" * 1000
