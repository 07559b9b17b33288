"""``Simulator``: the loopback Synthesia API plus its S3, started and stopped as one object."""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from .bucket import BucketAdmin
from .faults import ENDPOINTS, Faults, Gate, Recorded
from .limits import RateLimiter
from .model import Asset, Project
from .replies import Reply, error_reply
from .s3 import REGION, S3Gateway, S3Server
from .server import ApiServer, rate_limited_reply
from .service import Options, Service

RateLimits = str | Mapping[str, Sequence[tuple[int, float]]]


class Simulator:
    """A faithful stand-in for Synthesia on 127.0.0.1, with moto's S3 beside it.

    The defaults are the published document's reading: ``targetLanguages`` as repeated query
    keys (``filter_encoding="repeated"``), exact language matches, lowercase statuses; the
    lenient readings (``"comma"``/``"both"``, ``filter_base_match``, ``status_case="upper"``)
    stay options for testing a client's tolerance. Stricter readings are options too:
    ``require_upload_content_type`` fails an asset whose object lacks its contentType, and
    ``bare_language_codes`` answers with (and filters by) bare codes such as ``es``, as the
    document's filter example does, refusing a locale filter with a 400.

    Everything time-based (dubbing progress, credential and URL expiry, rate-limit windows)
    reads ``clock``, so tests move a fake clock instead of sleeping. See the package
    docstring for faults, gates and the request log.
    """

    def __init__(
        self,
        api_key: str = "sim-key",
        host: str = "127.0.0.1",
        port: int = 0,
        s3_port: int = 0,
        dub_seconds: float = 2.0,
        dub_rate: float | None = None,
        dub_jitter: float = 0.0,
        asset_processing_seconds: float = 0.0,
        credentials_ttl: float = 3600.0,
        download_ttl: float = 600.0,
        dub_size: int = 64 * 1024,
        detected_language: str = "en",
        status_case: str = "lower",
        download_field_aliases: bool = False,
        filter_encoding: str = "repeated",
        filter_base_match: bool = False,
        require_upload_content_type: bool = False,
        bare_language_codes: bool = False,
        missing_auth_status: int = 403,
        accept_bearer: bool = True,
        rate_limits: RateLimits | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if missing_auth_status not in (401, 403):
            raise ValueError("missing_auth_status must be 401 or 403")
        given = dict(locals())
        options = Options(**{f.name: given[f.name] for f in dataclasses.fields(Options)})
        self.api_key = api_key
        self.host = host
        self.region = REGION
        self.clock = clock
        self.faults = Faults(seed)
        self.stop_event = threading.Event()
        self._port, self._s3_port = port, s3_port
        self._clock0, self._epoch0 = clock(), time.time()
        self.bucket = f"synthesia-sim-uploads-{secrets.token_hex(6)}"
        self._admin_key = "AKIASIMADMIN" + secrets.token_hex(4).upper()
        self._accept_bearer = accept_bearer
        self._missing_auth_status = missing_auth_status
        self._limiter = RateLimiter(rate_limits) if rate_limits is not None else None
        self.service = Service(options, self.faults, clock, self.epoch, self.bucket)
        self._log: list[Recorded] = []
        self._log_lock = threading.Lock()
        self._gates: dict[str, Gate] = {}
        self._gates_lock = threading.Lock()
        self._api: ApiServer | None = None
        self._api_thread: threading.Thread | None = None
        self._s3: S3Server | None = None
        self._admin: BucketAdmin | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Bind both servers, create the upload bucket; returns self."""
        if self._api is not None:
            return self
        self.stop_event.clear()
        self._s3 = S3Server(S3Gateway(self, self._admin_key), self.host, self._s3_port)
        self._s3.start()
        self._admin = BucketAdmin(self.s3_url, self._admin_key, self.bucket)
        self.service.head_object = self._admin.head
        self.service.object_md5 = self._admin.md5
        self.service.object_head = self._admin.first_bytes
        self._api = ApiServer(self, self.host, self._port)
        self.service.urls.base_url = self.url
        self._api_thread = threading.Thread(
            target=self._api.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="sim-api",
            daemon=True,  # joined by stop(); daemon so a forgotten stop() cannot hang exit
        )
        self._api_thread.start()
        return self

    def stop(self) -> None:
        """Release gates, close connections, stop both servers, free the bucket's memory."""
        self.stop_event.set()
        with self._gates_lock:
            gates = list(self._gates.values())
            self._gates.clear()
        for gate in gates:
            gate.release()
        if self._api is not None:
            self._api.shutdown()
            self._api.close_connections()
            self._api.server_close()  # joins the handler threads
            if self._api_thread is not None:
                self._api_thread.join(5)
            self._api = None
        if self._s3 is not None:
            if self._admin is not None:
                self._admin.empty()
            self._s3.stop()
            self._s3 = None
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT``."""
        if self._api is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self._api.server_address[1]}"

    @property
    def s3_url(self) -> str:
        """The S3 endpoint (the value for ``AWS_ENDPOINT_URL_S3``)."""
        if self._s3 is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self._s3.port}"

    @property
    def s3_host(self) -> str:
        """``host:port`` of the S3 endpoint, as clients send it in ``Host``."""
        return f"{self.host}:{self._s3.port}" if self._s3 is not None else ""

    def env(self) -> dict[str, str]:
        """Environment for a daemon subprocess that should talk to this simulator."""
        return {"SYNTHESIA_API_KEY": self.api_key, "AWS_ENDPOINT_URL_S3": self.s3_url}

    def epoch(self, t: float) -> float:
        """UNIX time corresponding to clock reading ``t`` (for createdAt and Expires)."""
        return self._epoch0 + (t - self._clock0)

    # -- the request log ------------------------------------------------------------------------

    def record(
        self, method: str, endpoint: str, path: str, query: str, had_authorization: bool
    ) -> Recorded:
        """Log a request on arrival; its handler fills in ``status`` later."""
        rec = Recorded(method, endpoint, path, query, had_authorization, self.clock())
        with self._log_lock:
            self._log.append(rec)
        return rec

    @property
    def requests(self) -> list[Recorded]:
        """Every request so far, oldest first (a copy)."""
        with self._log_lock:
            return list(self._log)

    def count(self, endpoint: str) -> int:
        """How many requests reached ``endpoint`` (any outcome, drops included)."""
        with self._log_lock:
            return sum(1 for r in self._log if r.endpoint == endpoint)

    # -- gates ----------------------------------------------------------------------------------

    def pause(self, endpoint: str) -> Gate:
        """Hold every request to ``endpoint`` after it is recorded, until released."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._gates_lock:
            gate = self._gates.get(endpoint)
            if gate is None or gate.released:
                gate = self._gates[endpoint] = Gate(endpoint)
            return gate

    def unpause(self, endpoint: str) -> None:
        """Release the gate on ``endpoint``, if any."""
        with self._gates_lock:
            gate = self._gates.pop(endpoint, None)
        if gate is not None:
            gate.release()

    def wait_gate(self, endpoint: str) -> None:
        """Called by handlers: block here while ``endpoint`` is paused."""
        with self._gates_lock:
            gate = self._gates.get(endpoint)
        if gate is not None and not gate.released and not self.stop_event.is_set():
            gate.block()

    # -- checks the handlers call ---------------------------------------------------------------

    def check_auth(self, header: str | None) -> Reply | None:
        """None when the Authorization header carries our key, else the refusal."""
        if header is None or not header.strip():
            return error_reply(
                self._missing_auth_status,
                "Unauthorized" if self._missing_auth_status == 401 else "Forbidden",
                "missing Authorization header",
            )
        value = header.strip()
        if secrets.compare_digest(value, self.api_key):
            return None
        scheme, _, rest = value.partition(" ")
        if (
            self._accept_bearer
            and scheme.lower() == "bearer"
            and secrets.compare_digest(rest.strip(), self.api_key)
        ):
            return None
        return error_reply(403, "Forbidden - Wrong API key.")

    def check_rate(self, endpoint: str, method: str) -> Reply | None:
        """None when the request fits the rate limits, else the 429."""
        if self._limiter is None:
            return None
        breached = self._limiter.check(endpoint, method, self.clock())
        if breached is None:
            return None
        return rate_limited_reply(*breached)

    def credentials_for(self, access_key_id: str) -> Any:
        """The issued S3 credentials with this key id, or None (used by the S3 gateway)."""
        return self.service.credentials_for(access_key_id)

    def object_written(self, bucket: str, key: str) -> None:
        """The S3 gateway saw a whole object written."""
        self.service.object_written(bucket, key)

    # -- inspection for tests -------------------------------------------------------------------

    @property
    def projects(self) -> dict[str, Project]:
        """Dubbing projects by id (a snapshot; the records themselves are live)."""
        with self.service._lock:
            return dict(self.service.projects)

    @property
    def assets(self) -> dict[str, Asset]:
        """Assets by id (a snapshot; the records themselves are live)."""
        with self.service._lock:
            return dict(self.service.assets)

    def expected_output(self, project_id: str, language: str) -> bytes:
        """The exact bytes a download of ``language`` of ``project_id`` returns."""
        return self.service.output_bytes(project_id, language)

    def expire_credentials(self) -> None:
        """Every S3 credential issued so far expires now."""
        self.service.expire_credentials()

    def expire_download_urls(self) -> None:
        """Every signed URL issued so far expires now."""
        self.service.urls.expire_all()
