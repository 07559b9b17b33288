"""The simulator's S3: moto's S3 in server mode, behind a gate that checks issued credentials.

moto alone accepts any credentials. Synthesia hands out temporary credentials scoped to one
object, so the middleware here reads the SigV4 ``Credential=AKID/...`` of every request and
answers the way S3 does: unknown key -> 403 InvalidAccessKeyId, wrong session token -> 400
InvalidToken, expired -> 400 ExpiredToken, another bucket or key -> 403 AccessDenied. It also
applies "S3" faults, records requests and tells the simulator when an object was written.

Request bodies are streamed through to moto untouched (or drained in chunks when refused), so
a 1 GiB upload costs no more memory here than moto itself uses.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import threading
from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote
from wsgiref.types import StartResponse, WSGIEnvironment

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import ThreadedWSGIServer

from .conns import ConnectionTracker
from .faults import PRE_KINDS, Fault, Recorded

if TYPE_CHECKING:
    from .sim import Simulator

REGION = "eu-west-1"

_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")
_DRAIN_CHUNK = 1 << 20

_moto_lock = threading.Lock()
_moto_app: DomainDispatcherApplication | None = None


def moto_app() -> DomainDispatcherApplication:
    """moto's WSGI app, built once per process (moto keeps its state per process anyway)."""
    global _moto_app
    with _moto_lock:
        if _moto_app is None:
            _moto_app = DomainDispatcherApplication(create_backend_app)
        return _moto_app


def error_xml(code: str, message: str, **extra: str) -> bytes:
    """An S3-style XML error document."""
    more = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{more}"
        f"<RequestId>{secrets.token_hex(8).upper()}</RequestId></Error>"
    ).encode()


def phrase(status: int) -> str:
    """The reason phrase of ``status`` ("Error" for codes the stdlib does not name)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class SimulatedDrop(ConnectionAbortedError):
    """Raised inside the WSGI app to make werkzeug drop the connection without an answer."""


def drop_connection(environ: WSGIEnvironment) -> None:
    """Shut the client socket and abort the request (werkzeug treats it as a dropped client)."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    raise SimulatedDrop("simulated connection drop")


class _QuietHandler(MotoRequestHandler):
    """moto's request handler, tracked by its server and without a log line per request."""

    server: _S3WSGIServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are in ``Simulator.requests``; stderr stays quiet."""

    def log(self, type: str, message: str, *args: Any) -> None:
        """See ``log_request``."""


class S3Gateway:
    """WSGI middleware in front of moto; one per simulator, with its own moto account."""

    def __init__(self, sim: Simulator, admin_key_id: str) -> None:
        self.sim = sim
        self.admin_key_id = admin_key_id
        self.account_id = str(100000000000 + secrets.randbelow(899999999999))
        self._app = moto_app()

    # -- WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = self.account_id
        akid = _access_key_id(environ)
        if akid == self.admin_key_id:
            body: Iterable[bytes] = self._app(environ, start_response)
            return body
        sim = self.sim
        query = environ.get("QUERY_STRING", "")
        rec = sim.record(
            environ["REQUEST_METHOD"],
            "S3",
            environ.get("PATH_INFO", ""),
            query,
            bool(environ.get("HTTP_AUTHORIZATION")),
        )
        sim.wait_gate("S3")
        slow = sim.faults.take("S3", ["slow"])
        fault = sim.faults.take("S3", [*PRE_KINDS, "expired_credentials"])
        if fault is not None:
            rec.fault = fault.kind
            return self._refuse(environ, start_response, rec, *_fault_refusal(fault, environ))
        refusal = self._check_credentials(environ, akid)
        if refusal is not None:
            return self._refuse(environ, start_response, rec, *refusal)

        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = int(status.split(None, 1)[0])
            return start_response(status, headers, exc_info)

        body = list(self._app(environ, capture))
        rec.status = captured.get("status")
        if rec.status is not None and 200 <= rec.status < 300:
            self._note_write(environ, query)
        if slow is not None:
            rec.fault = rec.fault or "slow"
            sim.stop_event.wait(float(slow.param("seconds", slow.param("delay", 1.0))))
        after = sim.faults.take("S3", ["drop_after"])
        if after is not None:
            rec.fault, rec.status = "drop_after", None
            drop_connection(environ)
        return body

    # -- helpers --------------------------------------------------------------------------------

    def _check_credentials(
        self, environ: WSGIEnvironment, akid: str | None
    ) -> tuple[int, str, str] | None:
        """None when the request may reach moto, else (status, S3 code, message)."""
        if akid is None:
            return 403, "AccessDenied", "Anonymous access is not allowed."
        creds = self.sim.credentials_for(akid)
        if creds is None:
            return (
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        token = environ.get("HTTP_X_AMZ_SECURITY_TOKEN")
        if token is None:
            token = parse_qs(environ.get("QUERY_STRING", "")).get("X-Amz-Security-Token", [None])[0]
        if token != creds.session_token:
            return 400, "InvalidToken", "The provided token is malformed or otherwise invalid."
        if self.sim.clock() >= creds.expires_at:
            return 400, "ExpiredToken", "The provided token has expired."
        bucket, key = _bucket_key(environ, self.sim.s3_host)
        if bucket != creds.bucket or key != creds.key:
            return 403, "AccessDenied", "Access Denied"
        return None

    def _refuse(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        rec: Recorded,
        status: int,
        code: str,
        message: str,
    ) -> list[bytes]:
        """Drain the request body (so the client reads our answer), then answer an S3 error."""
        _drain(environ)
        body = b"" if environ["REQUEST_METHOD"] == "HEAD" else error_xml(code, message)
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        if code == "SlowDown":
            headers.append(("Retry-After", "1"))
        start_response(f"{status} {phrase(status)}", headers)
        rec.status = status
        return [body]

    def _note_write(self, environ: WSGIEnvironment, query: str) -> None:
        """Tell the simulator when a whole object landed (PutObject or CompleteMultipartUpload)."""
        method = environ["REQUEST_METHOD"]
        params = parse_qs(query, keep_blank_values=True)
        whole_put = method == "PUT" and "partNumber" not in params and "uploadId" not in params
        completed = method == "POST" and "uploadId" in params
        if whole_put or completed:
            bucket, key = _bucket_key(environ, self.sim.s3_host)
            self.sim.object_written(bucket, key)


def _access_key_id(environ: WSGIEnvironment) -> str | None:
    """The access key id a request is signed with (header or presigned query)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if match:
        return match.group(1)
    query: str = environ.get("QUERY_STRING", "")
    cred = parse_qs(query).get("X-Amz-Credential")
    if cred:
        return cred[0].split("/", 1)[0]
    return None


def _bucket_key(environ: WSGIEnvironment, s3_host: str) -> tuple[str, str]:
    """(bucket, key) from a path-style or virtual-host-style request."""
    path = unquote(environ.get("PATH_INFO", ""))
    host = environ.get("HTTP_HOST", "")
    if host != s3_host and host.endswith("." + s3_host):
        return host[: -len(s3_host) - 1], path.lstrip("/")
    bucket, _, key = path.lstrip("/").partition("/")
    return bucket, key


def _drain(environ: WSGIEnvironment) -> None:
    """Read and discard the declared request body, one chunk at a time."""
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    stream = environ["wsgi.input"]
    while remaining > 0:
        chunk = stream.read(min(remaining, _DRAIN_CHUNK))
        if not chunk:
            break
        remaining -= len(chunk)


class _S3WSGIServer(ConnectionTracker, ThreadedWSGIServer):
    """werkzeug's threaded server whose handler threads ``server_close`` joins."""

    daemon_threads = False

    def __init__(self, app: S3Gateway, sock: socket.socket) -> None:
        self.init_tracking()
        host, port = sock.getsockname()[:2]
        super().__init__(host, port, app, _QuietHandler, fd=sock.fileno())


class S3Server:
    """The gateway served by werkzeug's threaded server on its own port."""

    def __init__(self, gateway: S3Gateway, host: str, port: int) -> None:
        # Bind here: werkzeug answers a busy port with sys.exit(1), we want an OSError.
        sock = socket.create_server((host, port))
        try:
            self._server = _S3WSGIServer(gateway, sock)
        finally:
            sock.close()  # werkzeug serves a duplicate of it
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="sim-s3",
            daemon=True,  # joined by stop(); daemon so a forgotten stop() cannot hang exit
        )

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, cut open connections, wait for every handler thread."""
        self._server.shutdown()
        self._server.close_connections()
        self._thread.join(timeout)  # serve_forever ends with server_close, which joins


def make_admin_client(url: str, admin_key_id: str) -> Any:
    """A boto3 client the simulator uses on its own S3 (bypasses checks, faults, the log)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=admin_key_id,
        aws_secret_access_key=secrets.token_hex(20),
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"}
        ),
    )


def _fault_refusal(fault: Fault, environ: WSGIEnvironment) -> tuple[int, str, str]:
    """The S3 error a pre-request fault answers (a ``drop_before`` drops the connection
    first; what follows never reaches the client)."""
    if fault.kind == "drop_before":
        drop_connection(environ)
    if fault.kind == "429":
        return 503, "SlowDown", "Please reduce your request rate."
    if fault.kind == "5xx":
        status = int(fault.param("status", 503))
        code = "ServiceUnavailable" if status == 503 else "InternalError"
        return status, code, "We encountered an internal error. Please try again."
    return 400, "ExpiredToken", "The provided token has expired."
