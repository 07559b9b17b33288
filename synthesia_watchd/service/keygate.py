"""The API key gate: all API work is paused while the key is missing or refused.

At start one cheap call (one try) checks the key before any file is sent: only a refusal
pauses; no answer or an unclear one starts as usual, and the first real call decides, as it
always did. While paused, the key is checked again every ``AUTH_RECHECK_SECONDS`` on a
worker (never on the loop), and work resumes once it is accepted.
"""

from __future__ import annotations

from collections.abc import Callable

from synthesia_watchd.domain.errors import AuthError, WatchdError
from synthesia_watchd.domain.retry import RetryPolicy
from synthesia_watchd.synthesia.api import SynthesiaClient
from synthesia_watchd.telemetry.logsetup import get_logger

from .compose import Parts

log = get_logger(component="daemon")

NO_KEY = (
    "no API key: set SYNTHESIA_API_KEY, api_key_file or $CREDENTIALS_DIRECTORY/synthesia_api_key"
)
AUTH_RECHECK_SECONDS = 30.0
#: Longest wait for the key check's answer at start (systemd waits for READY meanwhile).
START_CHECK_TIMEOUT = 10.0


class KeyGate:
    """The ``auth`` pause: set at start or reload, lifted by a re-check that succeeds.

    The client is read from ``parts`` each time, so a reload's new key is the one checked;
    ``on_accepted`` runs (on the worker) when a paused key is accepted again.
    """

    def __init__(self, parts: Parts, *, on_accepted: Callable[[], None]) -> None:
        self.parts = parts
        self.on_accepted = on_accepted
        self._last_check = 0.0
        self._checking = False

    def at_start(self) -> None:
        """No key: pause; else check it once before the watchers offer any file."""
        client = self.parts.client
        if client is None:
            self.parts.pauses.set("auth", NO_KEY)
            log.error("no API key configured: jobs are recorded but nothing is sent")
        else:
            self._check_at_start(client)

    def reloaded(self) -> None:
        """After a reload: no key pauses; a key that was paused is checked again at once."""
        pauses = self.parts.pauses
        if self.parts.client is None:
            pauses.set("auth", NO_KEY)
        if pauses.get("auth"):
            self._last_check = 0.0  # re-check the (maybe new) key right away

    def _check_at_start(self, client: SynthesiaClient) -> None:
        """One cheap call (one try): a refused key pauses all API work before any file is sent.

        Only a refusal pauses; an unreachable API or an unclear answer is logged and work
        starts as usual (the first real call then decides, as it always did).
        """
        self._last_check = self.parts.now()
        try:
            result = client.check_key(
                retry=RetryPolicy(max_attempts=1), read_timeout=START_CHECK_TIMEOUT
            )
        except WatchdError as exc:
            log.warning("API key check at start: no answer; starting anyway", error=str(exc))
            return
        if result.verdict in ("rejected", "blocked"):
            reason = f"API key check at start failed: {result.summary}"
            self.parts.pauses.set("auth", reason)
            log.error(
                "API key refused at start: all API work paused; fix the key and send SIGHUP",
                reason=result.summary,
            )
        elif result.verdict != "accepted":
            log.warning(
                "API key check at start inconclusive; starting anyway", answer=result.summary
            )
        else:
            log.info("API key accepted", call=result.call, status=result.status)

    def maybe_recheck(self, now: float) -> None:
        """While paused for the key: check it again on a worker (every AUTH_RECHECK_SECONDS)."""
        pauses, client = self.parts.pauses, self.parts.client
        if not pauses.get("auth") or client is None or self._checking:
            return
        if now - self._last_check < AUTH_RECHECK_SECONDS:
            return
        self._last_check = now
        self._checking = True

        def check() -> None:
            try:
                client.check_auth()
            except AuthError:
                pass
            except WatchdError as exc:
                log.warning("auth re-check inconclusive", error=str(exc))
            else:
                if pauses.clear("auth"):
                    log.info("API key accepted again: resuming work")
                    self.on_accepted()
            finally:
                self._checking = False

        self.parts.scheduler.submit_task("poll", check)
