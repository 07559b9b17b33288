"""Hostile or broken config files are refused with a clear error; a reload never kills the daemon.

An alias bomb is a few hundred bytes that expand to billions of values; a deeply nested
document overflows a recursive parser. Runs that would blow up are held under an
address-space limit, so a regression ends in MemoryError rather than in swapping the machine.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from e2efixtures import DaemonProcess, python_command
from helpers import wait_until

from synthesia_watchd.config.load import parse_config
from synthesia_watchd.domain.errors import ConfigError
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator

#: Enough for the CLI, far below what a bomb needs.
CLI_MEMORY = 1_500_000_000
#: The daemon runs a few dozen threads, each reserving stack and malloc arenas.
DAEMON_MEMORY = 4_000_000_000


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": each level lists the previous one ``width`` times."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 9, width: int = 9) -> str:
    """The same with merge keys: each mapping merges the previous one ``width`` times."""
    lines = ["m0: &m0 {a: 1, b: 2, c: 3}"]
    for n in range(1, levels):
        lines.append(f"m{n}: &m{n} {{<<: [{', '.join([f'*m{n - 1}'] * width)}], k{n}: 1}}")
    return "\n".join(lines) + "\n"


def deep_nesting(depth: int = 100_000) -> str:
    """A flow sequence nested ``depth`` levels deep: small, but deeper than any recursion."""
    return "watches: " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param(alias_bomb(), ("alias",), id="alias-bomb"),
        pytest.param(merge_bomb(), ("alias",), id="merge-bomb"),
        pytest.param(deep_nesting(), ("nested",), id="deep-nesting"),
        pytest.param("# padding\n" * 200_000, ("larger than",), id="too-large"),
    ],
)
def test_check_config_refuses_a_hostile_file_quickly(
    tmp_path: Path, text: str, words: tuple[str, ...]
) -> None:
    """check-config: exit 2 within seconds, naming the problem, under a 1.5 GB memory limit."""
    config = tmp_path / "config.yaml"
    config.write_text(text)
    started = time.monotonic()
    result = subprocess.run(
        [*python_command(CLI_MEMORY), "check-config", "--offline", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert time.monotonic() - started < 60


def test_an_alias_used_within_bounds_still_works() -> None:
    """Ordinary anchors and merges (shared watch settings) are untouched by the bound."""
    text = """
watches:
  - &one {name: a, input: /srv/a, targets: [fr-FR], source_language: en}
  - {<<: *one, name: b, input: /srv/b}
"""
    cfg = parse_config(text)
    assert [w.name for w in cfg.watches] == ["a", "b"]
    assert cfg.watches[1].targets == ("fr-FR",)


def test_an_alias_bomb_is_a_config_error_naming_its_line() -> None:
    """parse_config raises ConfigError (not MemoryError) with the line where expansion stopped."""
    with pytest.raises(ConfigError) as caught:
        parse_config(alias_bomb(levels=6, width=10))  # a million values: small enough to try
    issue = caught.value.issues[0]
    assert "alias" in issue.message and issue.line is not None


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [pytest.param(alias_bomb(), id="alias-bomb"), pytest.param(deep_nesting(), id="deep")],
)
def test_a_reload_that_fails_in_any_way_keeps_the_daemon_running(
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    text: str,
) -> None:
    """SIGHUP with a hostile config: logged, the running config kept, files still dubbed."""
    sim = e2e_sim()
    daemon = daemon_factory(sim)
    daemon.memory_limit = DAEMON_MEMORY
    daemon.start()
    daemon.wait_started()
    daemon.config_path.write_text(text)
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: (
            daemon._check_alive()
            and any("keeping the running config" in str(e.get("event")) for e in daemon.log())
        ),
        60,
        what="the failed reload to be logged",
    )
    daemon.drop("after.mp4")
    daemon.wait_all(1, {JobState.DONE})
    assert daemon.running
    assert daemon.terminate() == 0
