"""Work one node at a time may do on a shared ledger: a runner lease, shared by threads.

The daily spending check and the start-up backfill must not run on two nodes at once: two
nodes each counting today's submits would both see room for the last one and pay twice; two
nodes starting together would both add the same languages to a done project. A runner lease
in the ledger (``take_runner``) names the node doing the work until a time; the node's
heartbeat renews it and the node drops it when the work is done, and a node that dies
holding it frees it when it expires. In one daemon several threads share the lease (every
submit under way counts): it is dropped when the last of them is done. On SQLite the same
row works too, and is always free (one daemon per ledger).
"""

from __future__ import annotations

import threading

from synthesia_watchd.domain.errors import LedgerError
from synthesia_watchd.stores.ledger import LedgerStore


class SingleRunner:
    """One named piece of work done by one node at a time; thread-safe."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        #: Threads of this daemon inside the work now.
        self._users = 0
        #: A drop the ledger did not take (unreachable): tried again at the next renewal.
        self._undropped = False

    def enter(self, ledger: LedgerStore, node: str, now: float, lease: float) -> str | None:
        """Take the lease for ``node`` (or share it with this daemon's other threads);
        None when in, else the name of the node doing the work now. Pair with ``leave``."""
        with self._lock:
            holder = ledger.take_runner(self.name, node, now, now + lease)
            if holder is None:
                self._users += 1
                self._undropped = False
            return holder

    def leave(self, ledger: LedgerStore, node: str) -> None:
        """One thread is done; the last one gives the lease up."""
        with self._lock:
            self._users = max(self._users - 1, 0)
            if self._users == 0:
                self._drop(ledger, node)

    def renew(self, ledger: LedgerStore, node: str, now: float, lease: float) -> None:
        """The heartbeat: keep the lease while threads are inside; retry a failed drop."""
        with self._lock:
            if self._users:
                ledger.take_runner(self.name, node, now, now + lease)
            elif self._undropped:
                self._drop(ledger, node)

    def _drop(self, ledger: LedgerStore, node: str) -> None:
        try:
            ledger.drop_runner(self.name, node)
            self._undropped = False
        except LedgerError:
            self._undropped = True  # else it would only go when it expires


class Runners:
    """This daemon's runner leases by name, made on first use."""

    #: The daily spending check and the submits it lets through.
    SPENDING = "spending"
    #: The start-up (and reload) backfill of new targets.
    BACKFILL = "backfill"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: dict[str, SingleRunner] = {}

    def get(self, name: str) -> SingleRunner:
        with self._lock:
            return self._all.setdefault(name, SingleRunner(name))

    def renew(self, ledger: LedgerStore, node: str, now: float, lease: float) -> None:
        """Renew every lease this daemon holds (with its heartbeat)."""
        with self._lock:
            runners = list(self._all.values())
        for runner in runners:
            runner.renew(ledger, node, now, lease)
