"""The one exception tree.

Every error the daemon can act on is a leaf here; `pipeline.classify` is the single place that
turns them into outcomes (retry later, wait, fail the job, pause everything). Messages never
carry the API key or S3 secrets: they are built from status codes, the API's own error/context
fields and ids.
"""

from __future__ import annotations


class WatchdError(Exception):
    """Root of every error raised by synthesia-watchd."""


# --- configuration -----------------------------------------------------------------------------


class ConfigIssue:
    """One problem in a config file: where it is and what is wrong."""

    __slots__ = ("file", "key", "line", "message")

    def __init__(self, file: str, key: str, line: int | None, message: str) -> None:
        self.file, self.key, self.line, self.message = file, key, line, message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"ConfigIssue({self!s})"


class ConfigError(WatchdError):
    """Raised when a config file is unreadable or invalid; carries every issue at once."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


# --- ledger ------------------------------------------------------------------------------------


class LedgerError(WatchdError):
    """Raised when the job ledger cannot be opened or used safely."""


class LedgerUnreachable(LedgerError):
    """Raised when the ledger's server cannot be reached (down, restarting, a lost connection):
    nothing is wrong with the work, which waits for the ledger to come back."""


class NetworkFilesystemError(LedgerError):
    """Raised when the ledger would live on NFS/SMB/CIFS, where SQLite locking is unsafe."""


class StaleTransition(LedgerError):
    """Raised when a compare-and-set transition finds the job in another state than expected."""


class DuplicateJob(LedgerError):
    """Raised when the same content at the same path already has an active job (another
    node, or another worker, recorded it first): one job per file, never two payments."""

    def __init__(self, message: str, existing_id: int) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class DuplicateKey(LedgerError):
    """Raised by a backend when an insert hits a unique constraint."""


# --- files -------------------------------------------------------------------------------------


class ContentError(WatchdError):
    """Raised when a file is not the video its name claims (magic bytes, size, readability).

    The file goes to on_failure with this message as the reason; nothing is spent on it.
    """


class OutputConflict(WatchdError):
    """Raised when a different file already sits at an output name; never overwritten."""


class UnsafePathError(WatchdError):
    """Raised when a name from the API would place a file outside the output folder."""


class EscapingPath(UnsafePathError):
    """Raised when a write would leave its root: a symlinked or non-folder component, ``..``."""


class NoSpaceLeft(WatchdError):
    """Raised when a download finds its filesystem (or quota) full; the job is held, not failed.

    ``folder`` is where the write failed, ``needed`` the size it wanted when known.
    """

    def __init__(self, message: str, *, folder: str, needed: int | None) -> None:
        super().__init__(message)
        self.folder = folder
        self.needed = needed


# --- the API -----------------------------------------------------------------------------------


class ApiError(WatchdError):
    """Base of errors from the Synthesia API or the transfers it hands out.

    ``status`` is the HTTP status (None when there was no answer), ``error``/``context`` are the
    API's own fields, ``operation`` names the call (e.g. ``POST /v2/dubbing``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        context: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.context = context
        self.operation = operation


class AuthError(ApiError):
    """Raised on 401/403 from the API host: the key is wrong or revoked; pause all API work."""


class RateLimited(ApiError):
    """Raised on 429; ``retry_after`` is the seconds the server asked us to wait."""

    def __init__(self, message: str, *, retry_after: float, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class TransientError(ApiError):
    """Raised on 5xx, timeouts and connection errors where repeating the call is safe."""


class PermanentError(ApiError):
    """Raised on 400/404/415/501 and malformed answers: this job fails with the API's reason."""


class ProjectFailed(PermanentError):
    """Raised when Synthesia reports that the dubbing project itself failed."""


class AmbiguousSubmit(ApiError):
    """Raised when POST /v2/dubbing was sent but no answer came back.

    Synthesia may have created (and billed) the project. Never repeated blindly: the job goes
    to needs_attention unless the operator opted into ``on_ambiguous_submit: retry``.
    """


class UnsafeUrlError(PermanentError):
    """Raised when the API hands out a URL whose scheme or host we do not allow."""


class UploadCredentialsExpired(ApiError):
    """Raised when S3 rejects the temporary credentials (ExpiredToken, AccessDenied).

    There is no refresh call: create a fresh asset and upload again.
    """


class DownloadUrlExpired(ApiError):
    """Raised when a signed download URL answers 403/404: refresh it via GET /v2/dubbing/{id}."""


class DownloadIncomplete(TransientError):
    """Raised when a download ends short of its Content-Length; the partial file is removed."""


# --- control flow ------------------------------------------------------------------------------


class ShutdownRequested(BaseException):
    """Raised inside a worker when the daemon is stopping; not an Exception on purpose."""


class UsageError(WatchdError):
    """Raised when a command cannot tell what to act on (no config, no such path or watch)."""
