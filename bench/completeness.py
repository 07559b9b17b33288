"""Benchmark 7: the structural completeness check on 4 GiB files (goal: <= 5 ms each).

``python -m bench.completeness [--repeat N]``. The files are sparse: a 4 GiB ``mdat`` box is
one header followed by a hole, which is exactly what the check is meant to exploit (it reads
box headers with ``pread`` and never a payload), so the figure is the cost of the walk, not
of the disk. Variants:

- ``mp4``: ftyp, moov (mvhd), one 4 GiB mdat with a 64-bit largesize;
- ``fragmented``: ftyp, moov, then 1,000 moof/mdat pairs filling 4 GiB (2,002 boxes to walk);
- ``webm``: EBML header, a 4 GiB Segment with Info (duration) then one Cluster.

Each figure is the whole ``completeness.inspect(path)`` call: open (O_NONBLOCK, fstat),
header reads, close; the page cache is warm after the first call, as it is for a file the
watcher just saw settle. Median and p95 over ``--repeat`` calls.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.files.completeness import inspect

GIB = 1 << 30
SIZE = 4 * GIB
GOAL_MS = 5.0


def _head() -> bytes:
    """ftyp + moov of the sample video (everything before its mdat)."""
    data = sample_video("bench", 4096, duration_s=3600)
    return data[: data.index(b"mdat") - 4]


def make_mp4(path: Path) -> None:
    head = _head()
    with open(path, "wb") as fh:
        fh.write(head + struct.pack(">I4sQ", 1, b"mdat", SIZE - len(head)))
        fh.truncate(SIZE)


def make_fragmented(path: Path, fragments: int = 1000) -> None:
    head = _head()
    moof = struct.pack(">I4s", 64, b"moof") + bytes(56)
    each = (SIZE - len(head)) // fragments
    with open(path, "wb") as fh:
        fh.write(head)
        offset = len(head)
        for i in range(fragments):
            mdat_size = each - len(moof) if i < fragments - 1 else SIZE - offset - len(moof)
            fh.seek(offset)
            fh.write(moof + struct.pack(">I4s", mdat_size, b"mdat"))
            offset += len(moof) + mdat_size
        fh.truncate(SIZE)


def _vint8(n: int) -> bytes:
    return (n | (1 << 56)).to_bytes(8, "big")


def make_webm(path: Path) -> None:
    def el(ident: bytes, payload: bytes) -> bytes:
        return ident + _vint8(len(payload)) + payload

    header = el(b"\x1a\x45\xdf\xa3", el(b"\x42\x82", b"webm"))
    info = el(
        b"\x15\x49\xa9\x66",
        el(b"\x2a\xd7\xb1", (1_000_000).to_bytes(3, "big"))
        + el(b"\x44\x89", struct.pack(">d", 3_600_000.0)),
    )
    seg_head_len = 4 + 8
    body = SIZE - len(header) - seg_head_len
    cluster_len = body - len(info) - 4 - 8
    with open(path, "wb") as fh:
        fh.write(header + b"\x18\x53\x80\x67" + _vint8(body) + info)
        fh.write(b"\x1f\x43\xb6\x75" + _vint8(cluster_len))
        fh.truncate(SIZE)


def measure(path: Path, repeat: int) -> dict[str, Any]:
    s = inspect(path)
    assert s.complete and s.size == SIZE, s
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        inspect(path)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 4),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 4),
        "max_ms": round(times[-1], 4),
        "duration_s": s.duration_s,
        "repeat": repeat,
    }


def bench(repeat: int = 1000) -> dict[str, Any]:
    out: dict[str, Any] = {
        "goal_ms": GOAL_MS,
        "file_bytes": SIZE,
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="bench-completeness-") as tmp:
        for name, make in (("mp4", make_mp4), ("fragmented", make_fragmented), ("webm", make_webm)):
            path = Path(tmp) / f"big.{'webm' if name == 'webm' else 'mp4'}"
            make(path)
            out[name] = measure(path, repeat)
            path.unlink()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1000)
    args = parser.parse_args()
    r = bench(args.repeat)
    print("| variant | median | p95 | max | goal |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("mp4", "fragmented", "webm"):
        v = r[name]
        print(f"| {name} (4 GiB) | {v['median_ms']:.3f} ms | {v['p95_ms']:.3f} ms | "
              f"{v['max_ms']:.3f} ms | <= {GOAL_MS:g} ms |")  # fmt: skip
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "completeness.json").write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
