"""Signed download URLs as S3 serves them: HMAC-signed, expiring, reissued past half-life.

One output's URLs (video, captions, thumbnails) form a bundle; a URL past its expiry answers
S3's 403, and a request that also carries an Authorization header is refused as S3 refuses a
second auth mechanism.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

from .replies import Headers, Reply, ranged, s3_error_reply

SIGNED_KINDS = {
    "video": ("mp4", "video/mp4"),
    "vtt": ("vtt", "text/vtt"),
    "srt": ("srt", "application/x-subrip"),
    "image": ("jpg", "image/jpeg"),
    "gif": ("gif", "image/gif"),
}
#: The bytes of one output: (project id, language, kind) -> body.
OutputBytes = Callable[[str, str, str], bytes]


@dataclass
class SignedUrl:
    """A time-limited URL for one output of one dubbed language."""

    token: str
    project_id: str
    language: str
    kind: str
    issued_at: float
    expires_at: float
    url: str


class SignedUrls:
    """Every signed URL issued so far, by token, and the current bundle of each output."""

    def __init__(
        self, ttl: float, clock: Callable[[], float], epoch: Callable[[float], float]
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self.epoch = epoch
        self.base_url = ""
        self._lock = threading.Lock()
        self._secret = secrets.token_bytes(32)
        self._urls: dict[str, SignedUrl] = {}  # by token
        self._bundles: dict[tuple[str, str], dict[str, SignedUrl]] = {}

    def bundle(self, project_id: str, language: str, now: float) -> dict[str, SignedUrl]:
        """The current signed URLs of one output, reissued past half their lifetime."""
        ttl = self.ttl
        with self._lock:
            bundle = self._bundles.get((project_id, language))
            fresh = bundle and all(
                now < u.issued_at + ttl / 2 and now < u.expires_at for u in bundle.values()
            )
            if bundle and fresh:
                return bundle
            for token in [t for t, u in self._urls.items() if u.expires_at <= now]:
                del self._urls[token]
            bundle = {}
            for kind, (ext, _) in SIGNED_KINDS.items():
                token = secrets.token_urlsafe(18)
                expires_epoch = math.ceil(self.epoch(now + ttl))
                sig = self.sign(token, expires_epoch)
                url = (
                    f"{self.base_url}/_signed/{token}/{project_id}-{language}.{ext}"
                    f"?Expires={expires_epoch}&Signature={sig}"
                )
                signed = SignedUrl(token, project_id, language, kind, now, now + ttl, url)
                self._urls[token] = signed
                bundle[kind] = signed
            self._bundles[(project_id, language)] = bundle
            return bundle

    def sign(self, token: str, expires: int) -> str:
        return hmac.new(self._secret, f"{token}.{expires}".encode(), hashlib.sha256).hexdigest()

    def download(self, path: str, query: str, headers: Headers, output: OutputBytes) -> Reply:
        """A signed URL: check the signature and the expiry, answer the bytes (Range works)."""
        if headers.get("Authorization"):
            return s3_error_reply(
                400,
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                "Signature query string parameter or the Authorization header should be specified",
            )
        token = path.split("/")[2] if path.count("/") >= 2 else ""
        params = parse_qs(query)
        expires = params.get("Expires", [""])[0]
        signature = params.get("Signature", [""])[0]
        if not (
            expires.isdigit() and hmac.compare_digest(self.sign(token, int(expires)), signature)
        ):
            return s3_error_reply(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        with self._lock:
            signed = self._urls.get(token)
        # A URL we signed whose record is gone was pruned after it expired.
        if signed is None or self.clock() >= signed.expires_at:
            return self.expired_reply(expires)
        body = output(signed.project_id, signed.language, signed.kind)
        reply = Reply(200, body, SIGNED_KINDS[signed.kind][1])
        return ranged(reply, headers.get("Range"))

    def expired_reply(self, expires: str = "") -> Reply:
        """The 403 S3 gives for a presigned URL past its expiry."""
        return s3_error_reply(403, "AccessDenied", "Request has expired", Expires=expires)

    def expire_all(self) -> None:
        """Every signed URL issued so far expires now."""
        now = self.clock()
        with self._lock:
            for signed in self._urls.values():
                signed.expires_at = min(signed.expires_at, now)
            self._bundles.clear()
