"""What the loop tells the notifier: finished jobs from the ledger, pauses that came or went.

Notifications are optional (the ``notify`` settings). A reload swaps in the new settings,
carrying over what the old set had already seen, and keeps the running set when the new
one is bad. At shutdown the last finished jobs' messages are queued before the senders close.
"""

from __future__ import annotations

import contextlib

from synthesia_watchd.config.load import Config
from synthesia_watchd.domain.control import Control
from synthesia_watchd.domain.errors import ConfigError, WatchdError
from synthesia_watchd.engine.notify import Notifications
from synthesia_watchd.telemetry.logsetup import get_logger

from .compose import Parts

log = get_logger(component="daemon")


class NotifyFeed:
    """The running set of notifications (None: none configured), fed once per loop pass."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.notifications: Notifications | None = None

    def start(self, config: Config) -> None:
        self.notifications = Notifications.from_config(config)

    def reload(self, config: Config) -> None:
        """New notify settings take effect on reload; a bad one keeps the running set."""
        try:
            fresh = Notifications.from_config(config)
        except ConfigError as exc:
            log.error("notify settings not applied; keeping the previous ones", errors=str(exc))
            return
        old, self.notifications = self.notifications, fresh
        if old is not None:
            if fresh is not None:
                fresh.carry_over(old)
            old.close(timeout=0.5)

    def feed(self, control: Control) -> None:
        """Feed the notifier: finished jobs from the ledger, pauses (the daemon's and the
        operator's holds) that came or went."""
        if self.notifications is None:
            return
        self.notifications.poll_ledger(self.parts.ledger)
        current = self.parts.pauses.snapshot()
        if control.global_hold is not None:
            current["operator"] = f"all watches: {control.global_hold.mode}"
        for name, hold in control.watches.items():
            current[f"operator:{name}"] = f"watch {name}: {hold.mode}"
        self.notifications.observe_pauses(current)

    def close(self) -> None:
        """Queue what finished since the last pass (the last jobs' messages), then close."""
        if self.notifications is None:
            return
        with contextlib.suppress(WatchdError):
            self.notifications.poll_ledger(self.parts.ledger)
        self.notifications.close()
