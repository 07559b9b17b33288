"""What kind of video a file really is, from its name and its first bytes (pure).

The extension says what the operator dropped; the magic bytes say what the file is. Both must
agree before anything is spent: an ``.mp4`` that is really a text file, or a ``.webm`` with an
ISO-BMFF header, is a clear ``ContentError``, not an upload that Synthesia rejects later.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from synthesia_watchd.files.sourcefile import NotRegularFile, open_regular

from .errors import ContentError

#: Extension -> the contentType POST /v2/assets expects.
EXTENSION_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
}

VIDEO_EXTENSIONS: frozenset[str] = frozenset(EXTENSION_TYPES)

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
# ftyp major brands of QuickTime files; every other ftyp brand is ISO-BMFF (mp4 family).
_QUICKTIME_BRANDS = {b"qt  "}
HEADER_BYTES = 64


def sniff(header: bytes) -> str | None:
    """Content type from a file's first bytes, or None when it is no video we know.

    ISO-BMFF (mp4/mov): a box whose type at offset 4 is ``ftyp``; the major brand tells
    QuickTime from mp4. Some QuickTime files start with ``moov``/``mdat``/``wide``/``free``
    atoms instead of ``ftyp``. WebM/Matroska: the EBML magic.
    """
    if header.startswith(_EBML_MAGIC):
        return "video/webm"
    if len(header) >= 12 and header[4:8] == b"ftyp":
        return "video/quicktime" if header[8:12] in _QUICKTIME_BRANDS else "video/mp4"
    if len(header) >= 8 and header[4:8] in {b"moov", b"mdat", b"wide", b"free", b"skip"}:
        return "video/quicktime"
    return None


def content_type_for(path: Path, header: bytes | None = None) -> str:
    """The contentType for ``path``, checked against its magic bytes.

    Raises ContentError naming the file, what its name claims and what its bytes are.
    """
    ext = path.suffix.lower()
    claimed = EXTENSION_TYPES.get(ext)
    if claimed is None:
        raise ContentError(f"{path.name}: unsupported extension {ext or '(none)'!r}")
    if header is None:
        try:
            with open_regular(path) as fh:  # a FIFO under a video's name is refused, not waited on
                header = fh.read(HEADER_BYTES)
        except NotRegularFile:
            raise
        except OSError as exc:
            raise ContentError(f"{path.name}: cannot read: {exc.strerror or exc}") from exc
    if not header:
        raise ContentError(f"{path.name}: file is empty")
    actual = sniff(header)
    if actual is None:
        raise ContentError(
            f"{path.name}: not a video: the name says {claimed} but the first bytes match no "
            "mp4/mov (ftyp) or webm (EBML) header"
        )
    # mp4 and QuickTime share ISO-BMFF; Synthesia takes either type for either container, so
    # only a family mismatch (ISO-BMFF vs EBML) is an error. Report what the bytes say.
    if (actual == "video/webm") != (claimed == "video/webm"):
        raise ContentError(
            f"{path.name}: the name says {claimed} but the content is {actual}; "
            "rename the file to match its format"
        )
    return claimed if claimed != "video/webm" else actual


def is_video_name(name: str) -> bool:
    """Whether a file name has one of the video extensions we dub."""
    return PurePath(name).suffix.lower() in VIDEO_EXTENSIONS


def _box(kind: bytes, payload: bytes) -> bytes:
    return (len(payload) + 8).to_bytes(4, "big") + kind + payload


def sample_video(seed: str = "sample", size: int = 4096, duration_s: float = 10.0) -> bytes:
    """A small, structurally valid mp4 (ftyp, moov with mvhd, mdat) for demos, tests, benchmarks.

    Valid so that the completeness check accepts it: the boxes tile the file exactly and the
    ``moov`` box says how long the video is (``duration_s``, at a 1000 Hz timescale).
    """
    ftyp = _box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2")
    mvhd = _box(
        b"mvhd",
        bytes(4)  # version 0, flags
        + bytes(8)  # creation and modification time
        + (1000).to_bytes(4, "big")
        + round(duration_s * 1000).to_bytes(4, "big")
        + b"\x00\x01\x00\x00\x01\x00"  # rate 1.0, volume 1.0
        + bytes(10)
        + b"".join(v.to_bytes(4, "big") for v in (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000))
        + bytes(24)
        + (2).to_bytes(4, "big"),
    )
    head = ftyp + _box(b"moov", mvhd)
    body_len = max(size - len(head) - 8, 0)
    pattern = (seed.encode() + b"\x00") * (body_len // (len(seed) + 1) + 1)
    return head + _box(b"mdat", pattern[:body_len])
