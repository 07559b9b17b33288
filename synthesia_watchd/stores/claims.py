"""Whose drop folder is it? A claim file in each input root, so two ledgers never pay twice.

Two daemons with different ledgers (one config, two state folders; two hosts on one NAS
share) would each dub every file. The instance lock only guards one ledger, so the folder
itself says who works in it: ``.synthesia-watchd.claim`` holds the claiming ledger's id, host,
pid and a heartbeat refreshed every REFRESH_SECONDS. A daemon on another ledger that finds a
fresh claim pauses that watch, with the claim's owner in the reason; a claim whose heartbeat
stopped STALE_SECONDS ago (a crash, a host gone) is taken over. Daemons sharing one ledger
share the claim. The folder may be on NFS or SMB, where locks cannot be trusted: a claim is
created with link() (atomic there; exclusive create where links are not supported) and
rewritten with rename(), so a reader never sees half a file. Hidden names keep the claim and
its temp files out of the watcher's way.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from synthesia_watchd.files.atomic import replace_file, temp_name_for

CLAIM_NAME = ".synthesia-watchd.claim"
#: How often a held claim's heartbeat is rewritten.
REFRESH_SECONDS = 30.0
#: A claim not refreshed for this long belongs to a daemon that is gone: by its heartbeat's
#: time, or by how long this daemon has seen it unchanged (clocks that disagree).
STALE_SECONDS = 120.0
_NO_LINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV)
#: What an attempt returns when another daemon moved first: read the claim again.
_RETRY = "retry"


class LogLike(Protocol):
    """The structlog methods used here."""

    def info(self, event: str, **kw: Any) -> Any: ...
    def warning(self, event: str, **kw: Any) -> Any: ...


@dataclass(frozen=True)
class Claim:
    """What a claim file says."""

    ledger_id: str
    host: str
    pid: int
    heartbeat: float

    def encode(self) -> bytes:
        return (json.dumps(asdict(self)) + "\n").encode()

    @classmethod
    def decode(cls, data: bytes) -> Claim | None:
        """The claim, or None for a file that is not one (half-written, damaged)."""
        try:
            raw = json.loads(data)
            return cls(str(raw["ledger_id"]), str(raw["host"]), int(raw["pid"]),
                       float(raw["heartbeat"]))  # fmt: skip
        except (ValueError, TypeError, KeyError):
            return None


def claim_path(root: Path) -> Path:
    """Where a watch folder's claim lives."""
    return Path(root) / CLAIM_NAME


class Claims:
    """This daemon's claims on its watch folders; safe to call from any thread."""

    def __init__(
        self,
        ledger_id: str,
        *,
        now: Callable[[], float] = time.time,
        host: str | None = None,
        pid: int | None = None,
        log: LogLike | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger_id = ledger_id
        self._now = now
        self._monotonic = monotonic
        #: Foreign claims as last read -> since when (our monotonic clock) they read so: a
        #: claim that does not change for STALE_SECONDS is stale whatever its clock says.
        self._seen: dict[Path, tuple[bytes, float]] = {}
        self._host = host or socket.gethostname()
        self._pid = os.getpid() if pid is None else pid
        self._log = log
        self._lock = threading.Lock()
        #: Roots we hold -> when we last wrote their claim (our clock).
        self._held: dict[Path, float] = {}
        #: Roots where no claim can be written (read-only share): warned about once.
        self._unwritable: set[Path] = set()

    # --- the watcher's question ----------------------------------------------------------------

    def problem(self, root: Path) -> str | None:
        """None when this daemon may work in ``root`` (claimed now if need be), else why not."""
        root = Path(os.path.abspath(root))
        with self._lock:
            for _ in range(3):  # a lost race is re-read once or twice, never looped on
                outcome = self._try(root)
                if outcome != _RETRY:
                    return outcome
            return self._reason(root, None)

    def _try(self, root: Path) -> str | None:
        path = claim_path(root)
        now = self._now()
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return self._write(root, now, create=True)
        except OSError as exc:
            return self._unclaimable(root, exc)
        claim = Claim.decode(data)
        if claim is not None and claim.ledger_id == self.ledger_id:
            if root not in self._held or now - self._held[root] >= REFRESH_SECONDS:
                return self._write(root, now, create=False)
            return None
        if self._fresh(path, claim, now) and not self._unchanged_too_long(root, data):
            self._held.pop(root, None)
            return self._reason(root, claim)
        self._seen.pop(root, None)
        if self._log is not None:
            self._log.warning(
                "stale claim taken over",
                root=str(root),
                ledger=claim.ledger_id[:8] if claim else "?",
                host=claim.host if claim else "?",
            )
        return self._write(root, now, create=False)

    def _unchanged_too_long(self, root: Path, data: bytes) -> bool:
        """Whether this exact claim has been read for STALE_SECONDS: its owner stopped
        refreshing it, even if its heartbeat looks fresh to us (a clock ahead of ours)."""
        mono = self._monotonic()
        seen = self._seen.get(root)
        if seen is None or seen[0] != data:
            self._seen[root] = (data, mono)
            return False
        return mono - seen[1] >= STALE_SECONDS

    @staticmethod
    def _fresh(path: Path, claim: Claim | None, now: float) -> bool:
        if claim is not None:
            return now - claim.heartbeat < STALE_SECONDS
        try:  # unreadable: being written right now (no links here), or junk left behind
            return now - path.stat().st_mtime < STALE_SECONDS
        except OSError:
            return False

    def _reason(self, root: Path, claim: Claim | None) -> str:
        who = (
            f"ledger {claim.ledger_id[:8]} on host {claim.host}, pid {claim.pid}, "
            f"heartbeat {max(self._now() - claim.heartbeat, 0):.0f}s ago"
            if claim is not None
            else "a claim file being written or unreadable"
        )
        return (
            f"claimed by another synthesia-watchd with another ledger ({who}): two ledgers "
            "on one folder would pay twice. Stop the other daemon, or give both the same "
            f"state_dir/ledger; this watch resumes when its claim ({CLAIM_NAME}) is released "
            f"or {STALE_SECONDS:.0f}s stale"
        )

    # --- writing -------------------------------------------------------------------------------

    def _write(self, root: Path, now: float, *, create: bool) -> str | None:
        path = claim_path(root)
        data = Claim(self.ledger_id, self._host, self._pid, now).encode()
        try:
            if create:
                if not self._create(path, data):
                    return _RETRY  # someone else created it first: look at theirs
            else:
                replace_file(path, data, 0o644)
        except OSError as exc:
            return self._unclaimable(root, exc)
        try:
            # Read back: of two daemons racing for a free or stale folder, one wins here.
            back = Claim.decode(path.read_bytes())
        except FileNotFoundError:
            return _RETRY
        except OSError as exc:
            return self._unclaimable(root, exc)
        if back is None or back.ledger_id != self.ledger_id:
            return _RETRY
        if root not in self._held and self._log is not None:
            self._log.info("watch folder claimed", root=str(root), ledger=self.ledger_id[:8])
        self._held[root] = now
        self._unwritable.discard(root)
        return None

    @staticmethod
    def _create(path: Path, data: bytes) -> bool:
        """Create the claim only if there is none: link() a complete temp file into place."""
        tmp = temp_name_for(path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                try:  # no hard links on this share: exclusive create, then write
                    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                with os.fdopen(out, "wb") as fh:
                    fh.write(data)
            return True
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _unclaimable(self, root: Path, exc: OSError) -> str | None:
        """A folder where no claim can be written (read-only share) is still watched: None."""
        if root not in self._unwritable and self._log is not None:
            self._log.warning(
                "cannot claim the watch folder; another ledger on it would not be noticed",
                root=str(root),
                error=exc.strerror or str(exc),
            )
        self._unwritable.add(root)
        self._held.pop(root, None)
        return None

    # --- the heartbeat and shutdown ------------------------------------------------------------

    def refresh(self) -> None:
        """Rewrite the heartbeat of every claim held (cheap when none is due)."""
        with self._lock:
            due = [r for r, at in self._held.items() if self._now() - at >= REFRESH_SECONDS]
            for root in due:
                outcome = self._try(root)
                if outcome is not None and outcome != _RETRY and self._log is not None:
                    self._log.warning("watch folder claim lost", root=str(root), reason=outcome)

    def release(self, root: Path) -> None:
        """Remove our claim on ``root`` (a watch removed, a clean stop): another daemon may
        take the folder over at once. A claim another ledger holds by now is left alone."""
        root = Path(os.path.abspath(root))
        with self._lock:
            if self._held.pop(root, None) is None:
                return
            path = claim_path(root)
            with contextlib.suppress(OSError):
                claim = Claim.decode(path.read_bytes())
                if claim is not None and claim.ledger_id == self.ledger_id:
                    path.unlink()

    def release_all(self) -> None:
        """Remove every claim we hold (clean shutdown)."""
        with self._lock:
            held = list(self._held)
        for root in held:
            self.release(root)
