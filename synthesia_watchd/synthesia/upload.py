"""Upload a source video to Synthesia's S3 bucket with the temporary credentials of its asset.

The only module that imports boto3/botocore. boto3's transfer manager does the multipart work
(parallel parts, per-part retries, abort on failure). The boto3 session is built from the
asset's temporary credentials alone, so the machine's own AWS keys can never be used or leaked
to Synthesia's bucket. Endpoint resolution is left to botocore, which honours the standard
``AWS_ENDPOINT_URL_S3`` variable; ``endpoint_url`` overrides it.

Errors map onto the tree in errors.py: a refused credential means the asset's credentials are
spent (create a fresh asset), a network or 5xx failure that outlasted botocore's own retries is
transient. Messages name the file, the S3 error code and operation, never a secret.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions

# boto3.s3.transfer re-exports s3transfer's BaseSubscriber (its own ProgressCallbackInvoker
# subclasses it); the stubs import it there without marking it as exported.
from boto3.s3.transfer import (  # type: ignore[attr-defined]
    BaseSubscriber,
    TransferConfig,
    create_transfer_manager,
)

from synthesia_watchd.domain.apitypes import UploadCredentials
from synthesia_watchd.domain.errors import (
    PermanentError,
    ShutdownRequested,
    TransientError,
    UploadCredentialsExpired,
)
from synthesia_watchd.files.sourcefile import open_regular_fd

if TYPE_CHECKING:  # stub-only packages (boto3-stubs[s3], types-s3transfer): never imported
    from mypy_boto3_s3 import S3Client
    from s3transfer.futures import TransferFuture

REGION = "eu-west-1"

#: S3 error codes that mean "these temporary credentials no longer work".
CREDENTIAL_ERRORS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidAccessKeyId",
        "AccessDenied",
        "TokenRefreshRequired",
        "InvalidToken",
        "SignatureDoesNotMatch",
    }
)

_OPERATION = "S3 upload"
_STOP_POLL = 0.05  # seconds between checks of `stop` while parts are in flight


class _Watch(BaseSubscriber):
    """Forwards progress deltas, signals completion, and cancels as soon as ``stop`` is set.

    The progress hook runs in the worker threads for every chunk read, so a stop is noticed
    within one chunk; cancelling makes s3transfer's reader raise, aborting the part in flight.
    """

    def __init__(
        self, progress: Callable[[int], None] | None, stop: threading.Event | None
    ) -> None:
        self._progress = progress
        self._stop = stop
        self.future: TransferFuture | None = None
        self.cancelled = False
        self.done = threading.Event()

    def check_stop(self) -> bool:
        """Cancel the transfer if stop is set; True once cancelled."""
        stopping = self._stop is not None and self._stop.is_set()
        if stopping and not self.cancelled and self.future is not None:
            self.cancelled = True
            self.future.cancel()
        return self.cancelled

    def on_progress(self, future: TransferFuture, bytes_transferred: int, **kwargs: Any) -> None:
        if self._progress is not None and bytes_transferred:
            self._progress(bytes_transferred)
        self.check_stop()

    def on_done(self, future: TransferFuture, **kwargs: Any) -> None:
        self.done.set()


def _custom_endpoint(endpoint_url: str | None) -> bool:
    return bool(
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )


#: One boto3 session per upload thread: building a session loads botocore's models and costs
#: about 150 ms of CPU, building a client from a kept session a few ms. Sessions are not
#: thread-safe, hence one per thread. They hold no credentials: each client gets the job's.
_sessions = threading.local()


def _session() -> boto3.session.Session:
    session: boto3.session.Session | None = getattr(_sessions, "session", None)
    if session is None:
        session = boto3.session.Session(region_name=REGION)
        _sessions.session = session
    return session


def _client(
    credentials: UploadCredentials, endpoint_url: str | None, max_concurrency: int
) -> S3Client:
    """An S3 client that knows only the temporary credentials (never env or ~/.aws keys)."""
    config = botocore.config.Config(
        region_name=REGION,
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=max(10, max_concurrency),
        # S3-compatible stores on a custom endpoint (MinIO, moto) want path-style addressing.
        s3={"addressing_style": "path"} if _custom_endpoint(endpoint_url) else None,
    )
    return _session().client(
        "s3",
        endpoint_url=endpoint_url,
        config=config,
        region_name=REGION,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
    )


def _map_error(
    path: Path, exc: botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError
) -> Exception:
    """The errors.py leaf for a failed transfer; the message carries no secret."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "unknown"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = getattr(exc, "operation_name", "") or "request"
        if code in CREDENTIAL_ERRORS:
            return UploadCredentialsExpired(
                f"{_OPERATION} of {path.name}: S3 refused the temporary credentials ({code} on "
                f"{operation}); create a fresh asset and upload again",
                status=status,
                error=code,
                operation=_OPERATION,
            )
        if isinstance(status, int) and (status >= 500 or status in (408, 429)):
            return TransientError(
                f"{_OPERATION} of {path.name}: S3 answered {status} {code} on {operation}",
                status=status,
                error=code,
                operation=_OPERATION,
            )
        return PermanentError(
            f"{_OPERATION} of {path.name}: S3 answered {status} {code} on {operation}",
            status=status,
            error=code,
            operation=_OPERATION,
        )
    if isinstance(
        exc,
        botocore.exceptions.ConnectionError
        | botocore.exceptions.HTTPClientError
        | botocore.exceptions.ReadTimeoutError,
    ):
        return TransientError(
            f"{_OPERATION} of {path.name}: network failure ({type(exc).__name__})",
            operation=_OPERATION,
        )
    return PermanentError(
        f"{_OPERATION} of {path.name}: {type(exc).__name__}", operation=_OPERATION
    )


def _finish(future: TransferFuture, watch: _Watch, path: Path) -> None:
    """Wait for the transfer (cancelling it once ``stop`` is set); map how it ended."""
    while not watch.done.wait(_STOP_POLL):
        if watch.check_stop():
            break
    try:
        future.result()
    except CancelledError:
        raise ShutdownRequested(f"stopping during the upload of {path.name}") from None
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        if watch.cancelled:
            raise ShutdownRequested(f"stopping during the upload of {path.name}") from None
        raise _map_error(path, exc) from None
    # A cancel that came too late leaves a finished upload: report success, it is stored.


def upload_file(
    path: Path,
    credentials: UploadCredentials,
    *,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
    endpoint_url: str | None = None,
    multipart_threshold: int = 8 * 1024 * 1024,
    multipart_chunksize: int = 16 * 1024 * 1024,
    max_concurrency: int = 4,
    content_type: str | None = None,
    max_bandwidth: int | None = None,
) -> None:
    """Upload ``path`` to ``credentials.bucket``/``credentials.key``; return when it is stored.

    ``progress`` receives byte deltas (negative when a part is retried, so the sum is always
    what S3 holds). ``content_type`` is stored as the object's Content-Type (the asset's
    contentType, as the official guide sets it). ``max_bandwidth`` (bytes per second; None: no
    cap) is handed to the transfer manager, which throttles its reads of the file. Setting
    ``stop`` cancels the transfer (an unfinished multipart upload is aborted) and raises
    ShutdownRequested once in-flight parts have returned.

    Raises UploadCredentialsExpired, TransientError or PermanentError; OSError if the local
    file cannot be read.
    """
    client = _client(credentials, endpoint_url, max_concurrency)
    config = TransferConfig(
        multipart_threshold=multipart_threshold,
        multipart_chunksize=multipart_chunksize,
        max_concurrency=max_concurrency,
        max_bandwidth=max_bandwidth,  # the transfer manager throttles (a leaky bucket)
        preferred_transfer_client="classic",
    )
    if stop is not None and stop.is_set():
        raise ShutdownRequested(f"stopping before the upload of {path.name}")
    watch = _Watch(progress, stop)
    # The file is opened once here, refusing a FIFO or device that took its name (open() on a
    # FIFO would block this worker for good); the transfer then reads that very file through
    # /proc/self/fd, so a rename swapping something else in mid-upload changes nothing.
    fd = open_regular_fd(path)
    source = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else str(path)
    manager = create_transfer_manager(client, config)
    try:
        extra = {"ContentType": content_type} if content_type else None
        watch.future = manager.upload(
            source, credentials.bucket, credentials.key, extra_args=extra, subscribers=[watch]
        )
        _finish(watch.future, watch, path)
    finally:
        manager.shutdown(cancel=watch.cancelled)
        client.close()
        os.close(fd)
