"""Named operations on the daemon's holds (pause, drain, resume), stored in the ledger.

``lifecycle`` re-exports them: the CLI, the web console and the push API reach every named
operation through that one module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from synthesia_watchd.domain.control import CONTROL_KEY, DRAIN, PAUSE, Control, Hold
from synthesia_watchd.domain.errors import WatchdError
from synthesia_watchd.stores.ledger import LedgerStore

Clock = Callable[[], float]


class NotAllowed(WatchdError):
    """Raised when an operation does not apply to the job as it stands (the message says why)."""


def read_control(ledger: LedgerStore) -> Control:
    """The operator holds as stored in the ledger."""
    return Control.from_json(ledger.get_meta(CONTROL_KEY))


def _write(ledger: LedgerStore, control: Control) -> None:
    ledger.set_meta(CONTROL_KEY, control.to_json())


def pause(
    ledger: LedgerStore,
    *,
    watch: str | None = None,
    drain: bool = False,
    reason: str = "",
    known: Sequence[str] | None = None,
    now: Clock = time.time,
) -> str:
    """Hold new work, globally or for one watch; ``drain`` lets started jobs finish.

    With ``known`` (the configured watch names), a misspelt watch is refused instead of
    holding nothing.
    """
    if watch is not None and known is not None and watch not in known:
        raise NotAllowed(f"no watch named {watch!r} (watches: {', '.join(known) or 'none'})")
    mode = DRAIN if drain else PAUSE
    hold = Hold(mode, now(), reason or f"{'drain' if drain else 'pause'} by operator")
    control = read_control(ledger)
    if watch is None:
        control = Control(hold, control.watches)
    else:
        control = Control(control.global_hold, {**control.watches, watch: hold})
    _write(ledger, control)
    what = "draining (started jobs finish, nothing new starts)" if drain else "paused"
    return f"{'all watches' if watch is None else f'watch {watch}'}: {what}"


def resume(ledger: LedgerStore, *, watch: str | None = None) -> str:
    """Lift the hold (globally: the global one; for a watch: that watch's own)."""
    control = read_control(ledger)
    if watch is None:
        if control.global_hold is None:
            return "all watches: not paused"
        control = Control(None, control.watches)
        _write(ledger, control)
        return "all watches: resumed"
    if watch not in control.watches:
        return f"watch {watch}: not paused"
    _write(
        ledger,
        Control(control.global_hold, {n: h for n, h in control.watches.items() if n != watch}),
    )
    return f"watch {watch}: resumed"


def drain(ledger: LedgerStore, *, watch: str | None = None, now: Clock = time.time) -> str:
    """``pause(drain=True)``: finish what was started, start nothing new."""
    return pause(ledger, watch=watch, drain=True, now=now)


def holds_data(ledger: LedgerStore) -> dict[str, Any]:
    """The holds as plain data (``status --json``, the page, the API)."""
    control = read_control(ledger)
    return {
        "all": control.global_hold.to_data() if control.global_hold else None,
        "watches": {n: h.to_data() for n, h in sorted(control.watches.items())},
    }
