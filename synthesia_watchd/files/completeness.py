"""Whether a video file is structurally whole, read from its box/element headers only (pure).

Time alone cannot tell a finished copy from one that paused: a writer that stalls longer than
``stable_seconds`` leaves a half file that looks settled. The container can tell: an ISO BMFF
file (mp4/mov/m4v) is a run of top-level boxes that must tile the file exactly, with a
``moov`` box somewhere; a Matroska/WebM file is an EBML header and a Segment whose declared
size ends exactly at the end of the file. Only headers are read, with ``pread`` at seeked
offsets, never a payload: a 4 GiB file costs a handful of small reads.

The parsed duration (``mvhd``; Matroska ``Info/Duration`` scaled by ``TimestampScale``) comes
along, so a job can say how many video minutes it will bill.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .sourcefile import open_regular_fd

ISO_BMFF = "iso-bmff"
MATROSKA = "matroska"

#: Top-level boxes walked at most (a real file has a handful; fragmented ones a few thousand).
MAX_BOXES = 1_000_000
#: Matroska Segment children looked at for Info before giving up on the duration.
MAX_SEGMENT_CHILDREN = 64
#: The longest Info element read whole (it is a few dozen bytes in practice).
MAX_INFO_BYTES = 64 * 1024

#: Boxes an ISO BMFF file starts with (old QuickTime files may lack ``ftyp``).
_FIRST_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_EBML_ID = 0x1A45DFA3
_SEGMENT_ID = 0x18538067
_INFO_ID = 0x1549A966
_CLUSTER_ID = 0x1F43B675
_TIMESTAMP_SCALE_ID = 0x2AD7B1
_DURATION_ID = 0x4489


@dataclass(frozen=True)
class Structure:
    """What the headers say about a file.

    ``complete`` is False when the structure does not (yet) account for the whole file;
    ``reason`` says why and ``structure_end`` where the valid structure ends (bytes from the
    start). ``note`` is set when the check could not decide and stability alone must do
    (a Matroska Segment of unknown size).
    """

    complete: bool
    kind: str | None
    size: int
    reason: str | None = None
    structure_end: int | None = None
    duration_s: float | None = None
    note: str | None = None


def inspect(path: Path | str) -> Structure:
    """Check the file at ``path`` (opened safely: a FIFO or device raises, never blocks)."""
    fd = open_regular_fd(path)
    try:
        return inspect_fd(fd)
    finally:
        os.close(fd)


def inspect_fd(fd: int) -> Structure:
    """Check an open regular file by its headers; the file size is taken from ``fstat``."""
    size = os.fstat(fd).st_size
    head = os.pread(fd, 16, 0)
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _matroska(fd, size)
    if len(head) >= 8 and head[4:8] in _FIRST_BOXES:
        return _iso_bmff(fd, size)
    return Structure(
        False, None, size, reason="neither ISO BMFF (mp4/mov) nor Matroska/WebM", structure_end=0
    )


# --- ISO BMFF ------------------------------------------------------------------------------------


def _is_box_type(kind: bytes) -> bool:
    return len(kind) == 4 and all(0x20 <= b <= 0x7E or b == 0xA9 for b in kind)


def _iso_bmff(fd: int, size: int) -> Structure:
    offset = 0
    moov: tuple[int, int] | None = None  # (payload offset, payload size)
    boxes = 0

    def short(reason: str) -> Structure:
        return Structure(False, ISO_BMFF, size, reason=reason, structure_end=offset)

    while offset < size:
        boxes += 1
        if boxes > MAX_BOXES:
            return short(f"more than {MAX_BOXES} top-level boxes")
        head = os.pread(fd, 16, offset)
        if len(head) < 8:
            return short(f"a box header is cut off at byte {offset} (file ends at {size})")
        box_size, kind = struct.unpack(">I4s", head[:8])
        name = kind.decode("latin-1")
        if not _is_box_type(kind):
            return short(f"no valid box at byte {offset}")
        header = 8
        if box_size == 1:
            if len(head) < 16:
                return short(f"the 64-bit size of box '{name}' at byte {offset} is cut off")
            (box_size,) = struct.unpack(">Q", head[8:16])
            header = 16
        elif box_size == 0:
            box_size = size - offset  # "to the end of the file": only ever the last box
        if box_size < header:
            return short(f"box '{name}' at byte {offset} declares an impossible size {box_size}")
        end = offset + box_size
        if end > size:
            return short(
                f"box '{name}' at byte {offset} declares {box_size} bytes, ending at {end}, "
                f"but the file ends at {size}"
            )
        if kind == b"moov" and moov is None:
            moov = (offset + header, box_size - header)
        offset = end
    if moov is None:
        return Structure(
            False, ISO_BMFF, size, reason="no 'moov' box (the movie header is not written yet)",
            structure_end=size,
        )  # fmt: skip
    return Structure(True, ISO_BMFF, size, structure_end=size, duration_s=_mvhd_duration(fd, *moov))


def _mvhd_duration(fd: int, start: int, length: int) -> float | None:
    """Seconds from the ``mvhd`` box inside ``moov`` (walked by headers), or None."""
    offset, end = start, start + length
    while offset + 8 <= end:
        box_size, kind = struct.unpack(">I4s", os.pread(fd, 8, offset))
        if box_size < 8:
            return None
        if kind == b"mvhd":
            body = os.pread(fd, min(box_size - 8, 36), offset + 8)
            if len(body) >= 20 and body[0] == 0:
                timescale, duration = struct.unpack(">II", body[12:20])
                unknown = duration == 0xFFFFFFFF
            elif len(body) >= 32 and body[0] == 1:
                timescale, duration = struct.unpack(">IQ", body[20:32])
                unknown = duration == 0xFFFFFFFFFFFFFFFF
            else:
                return None
            if unknown or timescale == 0 or duration == 0:
                return None
            return float(duration) / float(timescale)
        offset += box_size
    return None


# --- Matroska / WebM ------------------------------------------------------------------------------


def _vint(data: bytes, pos: int, *, keep_marker: bool) -> tuple[int, int, bool] | None:
    """(value, length, all value bits set) of an EBML variable-length integer at ``pos``."""
    if pos >= len(data) or data[pos] == 0:
        return None
    first = data[pos]
    length = 1
    while not first & (0x80 >> (length - 1)):
        length += 1
    if pos + length > len(data):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    all_ones = (first & (0xFF >> length)) == (0xFF >> length) and all(
        b == 0xFF for b in data[pos + 1 : pos + length]
    )
    return value, length, all_ones


def _element(fd: int, offset: int) -> tuple[int, int, int | None] | None:
    """(id, data offset, data size or None when unknown) of the element at ``offset``."""
    head = os.pread(fd, 12, offset)
    ident = _vint(head, 0, keep_marker=True)
    if ident is None:
        return None
    size = _vint(head, ident[1], keep_marker=False)
    if size is None:
        return None
    data_offset = offset + ident[1] + size[1]
    return ident[0], data_offset, None if size[2] else size[0]


def _matroska(fd: int, size: int) -> Structure:
    def short(reason: str, end: int) -> Structure:
        return Structure(False, MATROSKA, size, reason=reason, structure_end=end)

    ebml = _element(fd, 0)
    if ebml is None or ebml[0] != _EBML_ID or ebml[2] is None:
        return short("the EBML header is cut off or damaged", 0)
    seg_at = ebml[1] + ebml[2]
    if seg_at >= size:
        return short(f"no Segment after the EBML header (file ends at {size})", min(seg_at, size))
    seg = _element(fd, seg_at)
    if seg is None or seg[0] != _SEGMENT_ID:
        return short(f"no Segment element at byte {seg_at}", seg_at)
    _, data_at, declared = seg
    if declared is None:
        return Structure(
            True, MATROSKA, size, structure_end=None, duration_s=_mkv_duration(fd, data_at, size),
            note="Segment of unknown size (a live recording): judged by stability alone",
        )  # fmt: skip
    end = data_at + declared
    if end > size:
        return short(
            f"the Segment declares {declared} bytes, ending at {end}, but the file ends at {size}",
            data_at,
        )
    if end < size:
        return short(f"{size - end} byte(s) follow the end of the Segment at {end}", end)
    return Structure(
        True, MATROSKA, size, structure_end=size, duration_s=_mkv_duration(fd, data_at, end)
    )


def _mkv_duration(fd: int, start: int, end: int) -> float | None:
    """Seconds from Segment/Info (Duration x TimestampScale), walking children by headers."""
    offset = start
    for _ in range(MAX_SEGMENT_CHILDREN):
        if offset >= end:
            return None
        el = _element(fd, offset)
        if el is None or el[0] == _CLUSTER_ID:
            return None
        ident, data_at, length = el
        if length is None:
            return None
        if ident == _INFO_ID:
            if length > MAX_INFO_BYTES:
                return None
            return _info_duration(os.pread(fd, length, data_at))
        offset = data_at + length
    return None


def _info_duration(info: bytes) -> float | None:
    scale = 1_000_000
    duration: float | None = None
    pos = 0
    while pos < len(info):
        ident = _vint(info, pos, keep_marker=True)
        if ident is None:
            return None
        size = _vint(info, pos + ident[1], keep_marker=False)
        if size is None:
            return None
        data_at = pos + ident[1] + size[1]
        data = info[data_at : data_at + size[0]]
        if ident[0] == _TIMESTAMP_SCALE_ID and 0 < len(data) <= 8:
            scale = int.from_bytes(data, "big")
        elif ident[0] == _DURATION_ID and len(data) in (4, 8):
            (duration,) = struct.unpack(">f" if len(data) == 4 else ">d", data)
        pos = data_at + size[0]
    if duration is None or not duration > 0 or scale <= 0:
        return None
    return duration * scale / 1e9


def describe(s: Structure) -> str:
    """One line for logs and ``status``: what is wrong and where the structure ends."""
    if s.complete:
        return "complete"
    where = ""
    if s.structure_end is not None:
        where = f" (structure ends at byte {s.structure_end} of {s.size})"
    return f"incomplete: {s.reason}{where}"
