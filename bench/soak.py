"""The soak: hundreds of files through a daemon that is SIGKILLed every few seconds while the
simulator fails about one request in ten on every endpoint.

``python -m bench.soak [--files 300] [--minutes 10] [--kill-every 20]``

Transient faults on every endpoint, each kind with an equal share of ``--fault-rate``: 429
(Retry-After 1 s; S3 and signed URLs answer 503 SlowDown), 503, connections dropped before
and after the request was handled, and per endpoint expired S3 credentials and expired or
truncated downloads. Dropped connections on POST /v2/dubbing are left out unless
``--ambiguous``: the simulator drops only after reading the whole request, so to the client
either kind is "sent, no answer", a genuine ambiguous submit, which ends in needs_attention by
design. A SIGKILL between recording ``submit_started_at`` and the project id is one too; such
jobs are counted apart, with whether Synthesia really created (and billed) a project.

A few permanent errors are injected as well (``--permanent-rate`` of assets refused, projects
failed, one language failed), so that "failed only for injected reasons" can be checked.

Checks at the end: every file reached a final state; no file was dubbed twice (projects per
title at the simulator); every written output is byte-identical to what the simulator serves
(``expected_output``) and no temp file is left; every failure is explained by an injected
permanent error; ``PRAGMA integrity_check`` of the ledger. Exit code 0 when all hold.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.files.atomic import PART_SUFFIX
from synthesia_watchd.simulator import ENDPOINTS, Fault, Simulator

from .common import TARGETS, DaemonProcess, LedgerReader, ledger_path, write_config

RESULTS = Path(__file__).resolve().parent / "results"
FINAL = ("done", "failed", "partial", "needs_attention", "cancelled")
#: Fault kinds beyond the common four, per endpoint.
EXTRA_KINDS = {"S3": ("expired_credentials",), "DOWNLOAD": ("expired_url", "truncate")}


def add_faults(sim: Simulator, rate: float, permanent: float, ambiguous: bool) -> list[Fault]:
    """About ``rate`` of the requests to every endpoint fail transiently; a few permanently."""
    faults: list[Fault] = []
    for endpoint in ENDPOINTS:
        kinds = ["429", "5xx", "drop_before", "drop_after", *EXTRA_KINDS.get(endpoint, ())]
        if endpoint == "POST /v2/dubbing" and not ambiguous:
            # The simulator drops either way after reading the whole request: to the client
            # both are "sent, no answer", an ambiguous submit.
            kinds.remove("drop_before")
            kinds.remove("drop_after")
        share = 1 - (1 - rate) ** (1 / len(kinds))  # so that they fire about `rate` together
        for kind in kinds:
            params: dict[str, Any] = {}
            if kind == "429":
                params["retry_after"] = 1
            elif kind == "5xx":
                params["status"] = 503
            faults.append(sim.faults.add(endpoint, kind, probability=share, **params))
    if permanent > 0:
        faults.append(sim.faults.add("POST /v2/assets", "asset_error", probability=permanent))
        faults.append(sim.faults.add("POST /v2/dubbing", "project_error", probability=permanent))
        faults.append(
            sim.faults.add(
                "POST /v2/dubbing", "language_error", probability=permanent, language=TARGETS[0]
            )
        )
    return faults


def drop_file(folder: Path, index: int, rng: random.Random) -> None:
    """Copy a video in the way a network copy does: a growing .part file, then a rename."""
    data = sample_video(f"soak-{index}", rng.randrange(16, 96) * 1024)
    final = folder / f"soak-{index:04d}.mp4"
    part = final.with_name(final.name + ".part")
    part.write_bytes(data)
    part.rename(final)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    drop, out = work / "drop", work / "out"
    drop.mkdir(parents=True)
    rng = random.Random(args.seed)
    sim = Simulator(dub_seconds=args.dub_seconds, seed=args.seed).start()
    try:
        faults = add_faults(sim, args.fault_rate, args.permanent_rate, args.ambiguous)
        config = write_config(
            work,
            api_url=sim.url,
            watch={
                "input": str(drop),
                "output": str(out),
                "stable_seconds": 0.5,
                "poll_interval": 1,
                "mode": "native",
            },
        )
        daemon = DaemonProcess(config, sim.env()).start()
        reader = LedgerReader(ledger_path(config))
        t0 = time.monotonic()
        deadline = t0 + args.minutes * 60
        next_kill = t0 + args.kill_every
        dropped, kills = 0, 0
        kill_times: list[float] = []
        per_second = max(args.files / max(args.drop_seconds, 1), 1)
        finished = False
        while time.monotonic() < deadline:
            now = time.monotonic()
            while dropped < args.files and dropped < (now - t0) * per_second:
                drop_file(drop, dropped, rng)
                dropped += 1
            if now >= next_kill:
                daemon.kill()
                kill_times.append(time.time())
                kills += 1
                daemon.start()
                next_kill = now + args.kill_every
            if dropped == args.files and reader.count(FINAL) >= args.files:
                finished = True
                break
            time.sleep(0.2)  # the soak's own tick
        elapsed = time.monotonic() - t0
        reader.close()
        daemon.stop()
        report = analyse(sim, config, out, args.files, kill_times)
        report.update(
            {
                "finished": finished,
                "elapsed_seconds": round(elapsed, 1),
                "kills": kills,
                "daemon_starts": daemon.starts,
                "files_dropped": dropped,
                "faults_fired": _fired(faults),
                "log_errors": _log_errors(daemon.log_path),
            }
        )
    finally:
        sim.stop()
    return report


def _fired(faults: list[Fault]) -> dict[str, int]:
    fired: collections.Counter[str] = collections.Counter()
    for f in faults:
        fired[f"{f.endpoint} {f.kind}"] += f.fired
    return dict(sorted(fired.items()))


def _log_errors(path: Path) -> dict[str, int]:
    """Error-level log events of every daemon run, by event name."""
    seen: collections.Counter[str] = collections.Counter()
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                seen["<traceback on stderr>"] += 1
            continue
        if isinstance(rec, dict) and rec.get("level") in ("error", "critical"):
            seen[str(rec.get("event"))] += 1
    return dict(seen)


def analyse(
    sim: Simulator, config: Path, out: Path, files: int, kill_times: list[float]
) -> dict[str, Any]:
    """Every check of the module docstring, from the ledger, the simulator and the disk."""
    ledger = ledger_path(config)
    conn = sqlite3.connect(ledger)
    conn.row_factory = sqlite3.Row
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        jobs = list(conn.execute("SELECT * FROM jobs ORDER BY id"))
        outputs = list(conn.execute("SELECT * FROM outputs"))
    finally:
        conn.close()
    projects = sim.projects
    assets = sim.assets
    by_title: collections.Counter[str] = collections.Counter(p.title for p in projects.values())
    duplicates = {t: n for t, n in by_title.items() if n > 1}
    states = collections.Counter(j["state"] for j in jobs)
    sources = {j["source_path"] for j in jobs}

    # Outputs: byte-identical to what the simulator serves, and nothing stray on disk.
    job_by_id = {j["id"]: j for j in jobs}
    corrupt: list[str] = []
    recorded: set[Path] = set()
    for o in outputs:
        if o["state"] != "done" or not o["path"]:
            continue
        path = Path(o["path"])
        recorded.add(path)
        project_id = job_by_id[o["job_id"]]["project_id"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            corrupt.append(f"{path.name}: {exc.strerror}")
            continue
        if project_id is None or data != sim.expected_output(project_id, o["language"]):
            corrupt.append(f"{path.name}: {len(data)} bytes differ from the simulator's")
    on_disk = {p for p in out.rglob("*") if p.is_file()} if out.exists() else set()
    temp_left = sorted(p.name for p in on_disk if p.name.endswith(PART_SUFFIX))
    stray = sorted(p.name for p in on_disk - recorded if not p.name.endswith(PART_SUFFIX))

    # Failures: each must trace back to an injected permanent error.
    posts = [sim.epoch(r.time) for r in sim.requests if r.endpoint == "POST /v2/dubbing"]
    submits = len(posts)
    explained, unexplained, ambiguous = [], [], []
    for j in jobs:
        if j["state"] in ("failed", "partial"):
            asset = assets.get(j["asset_id"] or "")
            project = projects.get(j["project_id"] or "")
            injected = (asset is not None and asset.error_code is not None) or (
                project is not None
                and (project.error_code is not None or any(i.error_code for i in project.items))
            )
            entry = f"job {j['id']} {j['state']}: {j['last_error']}"
            (explained if injected else unexplained).append(entry)
        elif j["state"] == "needs_attention":
            title = Path(j["source_path"]).stem
            billed = by_title.get(title, 0)
            ambiguous.append(
                f"job {j['id']}: {j['last_error']} (projects at Synthesia: {billed}"
                f"{_kill_window(j['submit_started_at'], kill_times, posts)})"
            )
    return {
        "files": files,
        "files_seen": len(sources),
        "jobs": len(jobs),
        "states": dict(states),
        "files_done": states.get("done", 0),
        "projects": len(projects),
        "post_dubbing_requests": submits,
        "duplicate_projects": duplicates,
        "outputs_checked": len(recorded),
        "corrupt_outputs": corrupt,
        "temp_files_left": temp_left,
        "stray_outputs": stray,
        "failed_injected": explained,
        "failed_unexplained": unexplained,
        "needs_attention": ambiguous,
        "integrity_check": integrity,
    }


def _kill_window(marker: float | None, kill_times: list[float], posts: list[float]) -> str:
    """Whether a SIGKILL fell between the submit marker and its answer, and what was sent."""
    if marker is None:
        return ""
    kill = min((k for k in kill_times if k >= marker), default=None)
    if kill is None or kill - marker > 60:
        return ""
    sent = sum(1 for t in posts if marker <= t <= kill)
    return (
        f"; SIGKILL {kill - marker:.2f} s after the submit marker, "
        f"{sent} POST /v2/dubbing reached the simulator in between"
    )


def verdict(r: dict[str, Any]) -> list[str]:
    """The goals that were missed (empty: all held)."""
    missed = []
    if not r["finished"]:
        missed.append("not every file reached a final state in time")
    if r["duplicate_projects"]:
        missed.append(f"{len(r['duplicate_projects'])} file(s) dubbed more than once")
    if r["corrupt_outputs"] or r["temp_files_left"] or r["stray_outputs"]:
        missed.append("corrupt, partial or stray outputs")
    if r["failed_unexplained"]:
        missed.append(f"{len(r['failed_unexplained'])} failure(s) not from an injected error")
    if r["integrity_check"] != "ok":
        missed.append(f"ledger integrity_check: {r['integrity_check']}")
    return missed


def markdown(r: dict[str, Any], args: argparse.Namespace) -> str:
    rows = [
        ("files dropped / seen by the daemon", f"{r['files_dropped']} / {r['files_seen']}"),
        ("jobs by state", ", ".join(f"{k} {v}" for k, v in sorted(r["states"].items()))),
        ("files done", r["files_done"]),
        ("failed or partial, from injected permanent errors", len(r["failed_injected"])),
        ("failed or partial, unexplained", len(r["failed_unexplained"])),
        ("needs_attention (ambiguous submits)", len(r["needs_attention"])),
        (
            "POST /v2/dubbing requests / projects created",
            f"{r['post_dubbing_requests']} / {r['projects']}",
        ),
        ("files dubbed more than once (duplicate projects)", len(r["duplicate_projects"])),
        ("outputs compared byte for byte", r["outputs_checked"]),
        (
            "corrupt / temp left / stray outputs",
            f"{len(r['corrupt_outputs'])} / "
            f"{len(r['temp_files_left'])} / {len(r['stray_outputs'])}",
        ),
        ("ledger integrity_check", r["integrity_check"]),
        ("SIGKILLs / daemon starts", f"{r['kills']} / {r['daemon_starts']}"),
        ("wall time", f"{r['elapsed_seconds']} s ({'finished' if r['finished'] else 'timed out'})"),
        (
            "transient faults fired",
            sum(v for k, v in r["faults_fired"].items() if not k.endswith("_error")),
        ),
    ]
    lines = [
        f"Soak: {args.files} files, faults {args.fault_rate:.0%} per endpoint, SIGKILL every "
        f"{args.kill_every:g} s, dub_seconds {args.dub_seconds:g}, seed {args.seed}"
        + (
            ", dropped connections on POST /v2/dubbing too"
            if args.ambiguous
            else ", no dropped connections on POST /v2/dubbing"
        ),
        "",
        "| check | result |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in rows],
    ]
    for title, key in (
        ("Failed from injected errors", "failed_injected"),
        ("Unexplained failures", "failed_unexplained"),
        ("Needs attention", "needs_attention"),
        ("Corrupt outputs", "corrupt_outputs"),
    ):
        if r[key]:
            lines += ["", f"{title}:", *[f"- {x}" for x in r[key][:20]]]
    if r["log_errors"]:
        lines += ["", "Error-level log events (all daemon runs):"]
        lines += [f"- {k}: {v}" for k, v in sorted(r["log_errors"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--minutes", type=float, default=10.0, help="hard time limit")
    parser.add_argument("--kill-every", type=float, default=20.0, help="seconds between SIGKILLs")
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--permanent-rate", type=float, default=0.01)
    parser.add_argument(
        "--drop-seconds", type=float, default=60.0, help="spread the drops over this many seconds"
    )
    parser.add_argument("--dub-seconds", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ambiguous",
        action="store_true",
        help="also drop connections on POST /v2/dubbing (ambiguous submits)",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        report = run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
            report = run(args, Path(tmp))
    missed = verdict(report)
    report["missed"] = missed
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(markdown(report, args))
    sys.stdout.write(
        "\nall goals held\n" if not missed else "\nMISSED: " + "; ".join(missed) + "\n"
    )
    return 0 if not missed else 1


if __name__ == "__main__":
    raise SystemExit(main())
