"""Downloading a dubbed video from its signed URL into an output sink, whole or not at all.

The URL comes from the API and is untrusted: it and every redirect hop pass ``urlpolicy``
before they are fetched, and the transport sends no API key with them. The body is written
through the sink's atomic writer (temp file, fsync, no-clobber link), so a short body, a
full disk or a stop leaves no partial file behind; 5xx answers and dropped connections are
retried inline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from synthesia_watchd.domain.apitypes import DownloadResult
from synthesia_watchd.domain.errors import (
    DownloadIncomplete,
    DownloadUrlExpired,
    NoSpaceLeft,
    PermanentError,
    ShutdownRequested,
)
from synthesia_watchd.domain.outputs import OutputSink
from synthesia_watchd.files.diskspace import is_no_space
from synthesia_watchd.synthesia.transport import BodyBroken, NoAnswer, Transport, describe
from synthesia_watchd.synthesia.urlpolicy import check_url

OP_DOWNLOAD = "DOWNLOAD"

_CHUNK = 1 << 16


class _RetryableDownload(Exception):
    """Internal: a download attempt failed in a way worth repeating inline."""

    def __init__(self, why: str, status: int | None) -> None:
        super().__init__(why)
        self.why = why
        self.status = status


class Downloader:
    """Fetches signed URLs through the client's transport, to allowed hosts only."""

    def __init__(self, http: Transport, allowed_hosts: Sequence[str]) -> None:
        self._http = http
        self._allowed_hosts = tuple(h.lower() for h in allowed_hosts)

    def download(
        self, url: str, sink: OutputSink, progress: Callable[[int], None] | None = None
    ) -> DownloadResult:
        """Fetch ``url`` into ``sink`` (``SynthesiaClient.download`` says what it promises)."""
        self._check(url)
        policy = self._http.retry
        while True:
            if self._http.stop.is_set():
                raise ShutdownRequested("stopping before a download")
            try:
                return self._download_once(url, sink, progress)
            except NoAnswer as exc:
                policy = self._http.retry_or_raise(policy, OP_DOWNLOAD, exc.why, None)
            except _RetryableDownload as exc:
                policy = self._http.retry_or_raise(policy, OP_DOWNLOAD, exc.why, exc.status)

    def _check(self, url: str) -> str:
        return check_url(url, allowed_hosts=self._allowed_hosts)

    def _download_once(
        self, url: str, sink: OutputSink, progress: Callable[[int], None] | None
    ) -> DownloadResult:
        op = OP_DOWNLOAD
        dest = sink.dest
        resp = self._http.open_signed(url, op, self._check)
        with resp:
            status = resp.status_code
            if status in (403, 404, 410):
                raise DownloadUrlExpired(
                    f"download of {dest.name} answered {status}: the signed URL expired or is "
                    "gone; refresh it with GET /v2/dubbing/{id}",
                    status=status,
                    operation=op,
                )
            if status == 429 or status >= 500 or status == 408:
                raise _RetryableDownload(f"answered {status}", status)
            if status != 200:
                raise PermanentError(
                    f"download of {dest.name} answered {status}", status=status, operation=op
                )
            expected = _content_length(resp.headers)
            return self._write(self._http.chunks(resp, _CHUNK), sink, expected, progress)

    def _write(
        self,
        chunks: Iterator[bytes],
        sink: OutputSink,
        expected: int | None,
        progress: Callable[[int], None] | None,
    ) -> DownloadResult:
        """The body through the sink's atomic writer: all of it, or no file and an error."""
        dest = sink.dest
        written = 0
        try:
            with sink.writer() as writer:
                try:
                    for chunk in chunks:
                        if self._http.stop.is_set():
                            raise ShutdownRequested("stopping during a download")
                        writer.write(chunk)
                        written = writer.bytes_written
                        if progress is not None:
                            progress(len(chunk))
                except BodyBroken as exc:
                    raise _short(dest.name, writer.bytes_written, expected, exc.why) from None
                except OSError as exc:
                    if is_no_space(exc):
                        raise
                    raise _short(dest.name, writer.bytes_written, expected, describe(exc)) from None
                if expected is not None and writer.bytes_written != expected:
                    raise _short(dest.name, writer.bytes_written, expected, "body length mismatch")
                sink.commit(writer)
                return DownloadResult(path=dest, bytes=writer.bytes_written, sha256=writer.sha256)
        except OSError as exc:
            if not is_no_space(exc):
                raise
            # The partial file is gone already (the writer discards it on the way out).
            raise NoSpaceLeft(
                f"download of {dest.name}: {exc.strerror or 'no space left on device'}",
                folder=str(dest.parent),
                needed=expected if expected is not None else written + _CHUNK,
            ) from None


def _short(name: str, got: int, expected: int | None, why: str) -> DownloadIncomplete:
    of = f" of {expected}" if expected is not None else ""
    return DownloadIncomplete(
        f"download of {name} stopped after {got}{of} bytes ({why}); partial file removed",
        operation=OP_DOWNLOAD,
    )


def _content_length(headers: Mapping[str, str]) -> int | None:
    """Expected body size; None when unknown or when an encoding makes it differ from ours."""
    if headers.get("Content-Encoding", "identity").lower() != "identity":
        return None
    raw = headers.get("Content-Length")
    try:
        value = int(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None
