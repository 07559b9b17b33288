"""Notifications: done, partial, failed, needs_attention, paused and resumed, sent off the engine.

Job events come from the ledger's own history (state changes after the last event id handled,
kept in the meta table), so no stage has to remember to notify and a restart neither loses
nor repeats what was already queued. Pauses are the daemon's pause reasons and the operator's
holds, compared pass to pass. Each destination (an Apprise URL list, a webhook) has its own
thread and bounded queue with retries and backoff: a dead receiver delays only its own
messages, never a dubbing step, and a full queue drops the oldest message with a warning.

Nothing secret goes out: a message names the job, its watch, the file's name and the reason,
and every registered secret (the API key, S3 tokens) is masked before it leaves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import json
import queue
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.errors import ConfigError, ConfigIssue
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.stores.ledger import LedgerStore
from synthesia_watchd.telemetry.logsetup import Redactor, get_logger

log = get_logger(component="notify")

CURSOR_KEY = "notify_cursor"
SIGNATURE_HEADER = "X-Synthesia-Watchd-Signature"
JOB_EVENTS: Mapping[JobState, str] = {
    JobState.DONE: "done",
    JobState.PARTIAL: "partial",
    JobState.FAILED: "failed",
    JobState.NEEDS_ATTENTION: "needs_attention",
}
#: What each pause reason is called in a message.
PAUSE_TITLES: Mapping[str, str] = {
    "auth": "the API key was rejected",
    "budget": "the daily limit is reached",
    "space": "an output disk is full (downloads wait)",
    "operator": "paused by the operator",
}
QUEUE_SIZE = 500


@dataclass(frozen=True)
class Message:
    """One notification, the same for every destination."""

    event: str
    title: str
    body: str
    at: float
    job: Mapping[str, Any] | None = None
    reason: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "event": self.event,
                "title": self.title,
                "message": self.body,
                "at": self.at,
                "job": dict(self.job) if self.job is not None else None,
                "reason": self.reason,
                "host": socket.gethostname(),
            },
            sort_keys=True,
        ).encode()


class Sender(Protocol):
    """A destination; ``send`` raises on failure (then the message is retried)."""

    name: str

    def send(self, message: Message) -> None: ...


class DeliveryFailed(Exception):
    """Raised when a destination did not accept a message."""


class WebhookSender:
    """POST the message as JSON; with a key, sign the body (HMAC-SHA256, hex, 'sha256=')."""

    name = "webhook"

    def __init__(self, url: str, key: bytes | None, timeout: float = 10.0) -> None:
        self.url = url
        self.key = key
        self.timeout = timeout

    def send(self, message: Message) -> None:
        body = message.to_json()
        headers = {"Content-Type": "application/json", "User-Agent": "synthesia-watchd"}
        if self.key is not None:
            digest = hmac.new(self.key, body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310 - the URL was checked (https, or http to loopback)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - as above
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"webhook answered {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryFailed(f"webhook unreachable: {exc}") from None


class AppriseSender:
    """Send through Apprise to every configured URL (the `notify` extra)."""

    name = "apprise"

    def __init__(self, urls: Sequence[str]) -> None:
        try:
            import apprise
        except ImportError:
            raise ConfigError(
                [
                    ConfigIssue(
                        "<config>",
                        "notify.apprise",
                        None,
                        "needs the apprise library: pip install 'synthesia-watchd[notify]'",
                    )
                ]
            ) from None
        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                raise ConfigError(
                    [ConfigIssue("<config>", "notify.apprise", None, "an URL Apprise cannot use")]
                )

    def send(self, message: Message) -> None:
        if not self._apprise.notify(title=message.title, body=message.body):
            raise DeliveryFailed("apprise could not deliver to every URL")


@dataclass
class _Channel:
    """One destination's queue and thread."""

    sender: Sender
    attempts: int
    backoff: float
    queue: queue.Queue[Message | None] = field(default_factory=lambda: queue.Queue(QUEUE_SIZE))
    thread: threading.Thread | None = None
    sent: int = 0
    failed: int = 0

    def start(self, stop: threading.Event) -> None:
        self.thread = threading.Thread(
            target=self._run, args=(stop,), name=f"notify-{self.sender.name}", daemon=True
        )
        self.thread.start()

    def put(self, message: Message) -> None:
        while True:
            try:
                self.queue.put_nowait(message)
                return
            except queue.Full:
                try:
                    dropped = self.queue.get_nowait()
                except queue.Empty:
                    continue
                log.warning("notification queue full: dropped the oldest", dropped=dropped)

    def _run(self, stop: threading.Event) -> None:
        while True:
            message = self.queue.get()
            if message is None:
                return
            for attempt in range(self.attempts):
                try:
                    self.sender.send(message)
                except Exception as exc:  # noqa: BLE001 - any failure of a receiver is retried, then logged
                    if attempt + 1 == self.attempts or stop.is_set():
                        self.failed += 1
                        log.warning(
                            "notification not delivered",
                            to=self.sender.name,
                            notice=message.event,
                            error=str(exc),
                        )
                        break
                    delay = min(self.backoff * 2**attempt, 300.0)
                    if stop.wait(delay * random.uniform(0.5, 1.0)):  # noqa: S311 - jitter only
                        break
                else:
                    self.sent += 1
                    break


class Notifications:
    """Turns ledger changes and pauses into messages and hands them to every destination."""

    def __init__(
        self,
        senders: Iterable[Sender],
        events: Iterable[str],
        *,
        attempts: int = 6,
        backoff: float = 2.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.events = frozenset(events)
        self.now = now
        self._stop = threading.Event()
        self.channels = [_Channel(s, attempts, backoff) for s in senders]
        for channel in self.channels:
            channel.start(self._stop)
        self._cursor: int | None = None
        self._pauses: dict[str, str] | None = None

    @classmethod
    def from_config(cls, config: Config) -> Notifications | None:
        """The configured destinations, or None when notify is empty."""
        senders: list[Sender] = []
        if config.notify_apprise:
            senders.append(AppriseSender([s.reveal() for s in config.notify_apprise]))
        if config.notify_webhook_url:
            senders.append(
                WebhookSender(
                    config.notify_webhook_url, _read_key(config.notify_webhook_secret_file)
                )
            )
        if not senders:
            return None
        return cls(senders, config.notify_events)

    def emit(self, message: Message) -> None:
        """Queue a message for every destination; never blocks."""
        if message.event not in self.events:
            return
        # Belt and braces: registered secrets (the API key, S3 tokens) never leave in a message.
        redactor = Redactor()
        message = dataclasses.replace(
            message,
            title=redactor.redact_text(message.title),
            body=redactor.redact_text(message.body),
        )
        for channel in self.channels:
            channel.put(message)

    # --- sources -------------------------------------------------------------------------------

    def poll_ledger(self, ledger: LedgerStore) -> None:
        """Queue a message for each job that reached done/partial/failed/needs_attention."""
        if self._cursor is None:
            stored = ledger.get_meta(CURSOR_KEY)
            # First run with notifications: start from now, do not replay old history.
            self._cursor = int(stored) if stored and stored.isdigit() else ledger.last_event_id()
            ledger.set_meta(CURSOR_KEY, str(self._cursor))
        changes = ledger.state_changes_after(self._cursor, JOB_EVENTS)
        if not changes:
            return
        for event in changes:
            try:
                job = ledger.get(event.job_id)
            except KeyError:
                continue
            self.emit(job_message(JobState(event.to_state or ""), job, event.why, event.at))
        self._cursor = changes[-1].id
        ledger.set_meta(CURSOR_KEY, str(self._cursor))

    def observe_pauses(self, current: Mapping[str, str]) -> None:
        """Queue paused/resumed messages for pause reasons that appeared or went away."""
        previous, self._pauses = self._pauses, dict(current)
        if previous is None:
            previous = {}
        now = self.now()
        for kind, reason in current.items():
            if kind not in previous:
                title = PAUSE_TITLES.get(kind.split(":")[0], kind)
                self.emit(Message("paused", f"Dubbing paused: {title}", reason, now, reason=kind))
        for kind in previous:
            if kind not in current:
                title = PAUSE_TITLES.get(kind.split(":")[0], kind)
                self.emit(
                    Message("resumed", "Dubbing resumed", f"no longer: {title}", now, reason=kind)
                )

    def carry_over(self, old: Notifications) -> None:
        """After a reload: continue where the previous set stopped (no replay, no repeat)."""
        self._cursor, self._pauses = old._cursor, old._pauses

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued for up to ``timeout`` seconds, then stop retrying."""
        for channel in self.channels:
            with contextlib.suppress(queue.Full):
                channel.queue.put_nowait(None)
        deadline = time.monotonic() + timeout
        for channel in self.channels:
            if channel.thread is not None:
                channel.thread.join(max(deadline - time.monotonic(), 0))
        self._stop.set()


def job_message(state: JobState, job: Any, why: str, at: float) -> Message:
    """The message for a job that reached ``state``."""
    event = JOB_EVENTS[state]
    name = Path(job.source_path).name
    titles = {
        "done": f"Dubbed: {name}",
        "partial": f"Partly dubbed: {name}",
        "failed": f"Failed: {name}",
        "needs_attention": f"Needs attention: {name}",
    }
    body = f"job #{job.id} (watch {job.watch}, {', '.join(job.targets)}): {why}"
    if event in ("partial", "failed", "needs_attention"):
        body += f". See `synthesia-watchd show {job.id}`."
    return Message(
        event,
        titles[event],
        body,
        at,
        job={
            "id": job.id,
            "watch": job.watch,
            "file": name,
            "state": state.value,
            "targets": list(job.targets),
        },
    )


def _read_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        key = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue(str(path), "notify.webhook.secret_file", None, f"cannot read: {exc}")]
        ) from None
    if not key:
        raise ConfigError(
            [ConfigIssue(str(path), "notify.webhook.secret_file", None, "the file is empty")]
        )
    return key
