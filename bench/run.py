"""Run benchmarks 1-5, print a markdown table, write bench/results/latest.json.

``python -m bench [--quick] [--runs N] [--only throughput,detection,idle,scale,upload]``
(``--only`` also takes creator, latency, realistic and day, which do not run by default)
(or ``python bench/run.py ...``). Every figure is a median over ``--runs`` runs (pooled
percentiles for detection), and every ratio compares two things measured in the same run.
Everything talks to simulators on 127.0.0.1 only, and every wait has a time limit.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import day, detection, idle, realistic, scale, throughput, upload
from bench.common import median

RESULTS = Path(__file__).resolve().parent / "results"
NAMES = ("throughput", "detection", "idle", "scale", "upload")
#: Not run by default: throughput once more with the daemon's default (Creator-tier) pacing;
#: 20 s dubs at Creator pacing and pacing off; realistic latency; a simulated day.
EXTRA = ("creator", "latency", "realistic", "day")

FULL = {
    "tp_files": 40,
    "det_files": 20,
    "idle_seconds": 60.0,
    "scale_files": 10_000,
    "upload_mib": 1024,
    "lat_files": 16,
    "real_files": 40,
    "day_hours": 24.0,
}
QUICK = {
    "tp_files": 12,
    "det_files": 10,
    "idle_seconds": 10.0,
    "scale_files": 2_000,
    "upload_mib": 64,
    "lat_files": 16,
    "real_files": 16,
    "day_hours": 6.0,
}


def _run_all(
    names: list[str], p: dict[str, Any], runs: int, save: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Run each benchmark in turn, saving after each (a long run keeps what it measured)."""
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "throughput": lambda: throughput.bench(files=p["tp_files"], runs=runs),
        "detection": lambda: detection.bench(files=p["det_files"], runs=runs),
        "idle": lambda: idle.bench(seconds=p["idle_seconds"], runs=runs),
        "scale": lambda: scale.bench(files=p["scale_files"], runs=runs),
        "upload": lambda: upload.bench(mib=p["upload_mib"], runs=runs),
        "creator": lambda: throughput.bench_creator_tier(files=p["tp_files"]),
        "latency": lambda: throughput.bench_latency(files=p["lat_files"]),
        "realistic": lambda: realistic.bench(files=p["real_files"]),
        "day": lambda: {
            "creator": day.simulate(hours=p["day_hours"]),
            "stress": day.simulate(
                hours=p["day_hours"],
                slots=60,
                min_video=60.0,
                max_video=7200.0,
                lengths_known=False,
            ),
        },
    }
    out: dict[str, Any] = {}
    for name in names:
        print(f"{name} ...", flush=True)
        t0 = time.monotonic()
        out[name] = jobs[name]()
        out[name]["bench_seconds"] = round(time.monotonic() - t0, 1)
        save(out)
    return out


def _f(x: float, digits: int = 2) -> str:
    return f"{x:.{digits}f}"


def table(r: dict[str, Any], runs: int) -> str:
    """The results as one markdown table (benchmark, measure, median, notes)."""
    rows: list[tuple[str, str, str, str]] = []
    if "throughput" in r:
        t = r["throughput"]
        d = median([x["daemon"]["seconds"] for x in t["rounds"]])
        s = median([x["sequential"]["seconds"] for x in t["rounds"]])
        ratio = median([x["ratio"] for x in t["rounds"]])
        setup = (
            f"{t['files']} videos x {t['languages']} languages, dub_seconds {t['dub_seconds']:g}, "
            f"max_uploads {t['max_uploads']}, max_active_jobs {t['max_active_jobs']}, "
            f"poll_interval {t['poll_interval']:g} s, stable_seconds {t['stable_seconds']:g} s, "
            "rate limits off"
        )
        rows += [
            ("1 throughput", "daemon wall time, first drop to last done", f"{_f(d, 1)} s", setup),
            (
                "1 throughput",
                "sequential script wall time",
                f"{_f(s, 1)} s",
                f"create, upload, start, poll every {t['poll_interval']:g} s, download, next",
            ),
            (
                "1 throughput",
                "speed-up (sequential / daemon, same run)",
                f"{_f(ratio, 1)}x",
                f"ideal daemon time {t['files']}/{t['max_active_jobs']} x {t['dub_seconds']:g} s "
                f"= {_f(t['ideal_seconds'], 1)} s",
            ),
        ]
    if "detection" in r:
        dd = r["detection"]
        for mode in ("native", "polling"):
            m = dd[mode]
            note = f"{m['files']} files, stable_seconds {dd['stable_seconds']:g} s subtracted"
            if mode == "polling":
                note += f", scan_interval {dd['polling_scan_interval']:g} s"
            rows.append(
                (
                    "2 detection",
                    f"{mode}: close() to job queued, p50 / p95",
                    f"{_f(m['p50'], 3)} / {_f(m['p95'], 3)} s",
                    note,
                )
            )
    if "idle" in r:
        ii = r["idle"]
        for v in ii["variants"]:
            what = {
                "empty": "empty folder",
                "txt": f"{v['files']} non-video files",
                "known": f"{v['files']} videos already done in the ledger",
            }[v["kind"]]
            note, cpu = what, v["cpu_seconds_median"]
            if v["mode"] == "polling":
                note += f", scan_interval {ii['polling_scan_interval']:g} s"
            rows.append(
                (
                    "3 idle",
                    f"{v['mode']}/{v['kind']}: CPU over {ii['window_seconds']:g} s; peak RSS",
                    f"{_f(cpu)} s ({_f(100 * cpu / ii['window_seconds'])} %); "
                    f"{_f(v['peak_rss_mib_max'], 0)} MiB",
                    note,
                )
            )
    if "scale" in r:
        sc = r["scale"]
        n = sc["files"]
        rows += [
            (
                "4 scale",
                f"{n} files: drop to all queued",
                f"{_f(sc['queued_seconds'], 1)} s",
                f"{_f(sc['files_per_second'], 0)} files/s, stable_seconds "
                f"{sc['stable_seconds']:g} s included, {_f(sc['intake_cpu_seconds'], 1)} CPU s",
            ),
            (
                "4 scale",
                "peak RSS (VmHWM) / ledger size",
                f"{_f(sc['peak_rss_mib'], 0)} MiB / {_f(sc['ledger_mib'], 1)} MiB",
                "ledger with -wal and -shm",
            ),
            (
                "4 scale",
                f"`status` with {n} jobs (subprocess)",
                f"{_f(sc['status_median'])} s",
                f"`--version` alone: {_f(sc['cli_startup_median'])} s (interpreter and imports)",
            ),
        ]
    if "creator" in r:
        c = r["creator"]
        rows.append(
            (
                "1 throughput",
                "daemon at Creator-tier pacing (one run)",
                f"{_f(c['seconds'], 1)} s",
                f"{c['files']} videos; the daemon's default limits: 60 writes and 60 reads "
                "per minute per endpoint",
            )
        )
    if "latency" in r:
        lat = r["latency"]
        for name, label in (("creator", "Creator-tier pacing"), ("off", "pacing off")):
            run = lat[name]
            rows.append(
                (
                    "1 throughput",
                    f"{lat['dub_seconds']:g} s dubs, {label}: wall time (share of ideal)",
                    f"{_f(run['seconds'], 1)} s ({_f(run['of_ideal'])})",
                    f"{lat['files']} videos, max_active_jobs {lat['max_active_jobs']}, ideal "
                    f"{_f(lat['ideal_seconds'], 0)} s",
                )
            )
    if "realistic" in r:
        rr = r["realistic"]
        lo, hi = rr["video_seconds"]
        setup = (
            f"{rr['files']} videos of {lo:g}-{hi:g} s, dub time {rr['rate'] * 60:g} s +- "
            f"{rr['jitter']:.0%} per minute of video, max_active_jobs {rr['max_active_jobs']}, "
            "Creator-tier pacing"
        )
        rows += [
            (
                "7 realistic",
                "finish-to-detection lag / dub time, p50 / p95 (goal p50 <= 10 %)",
                f"{rr['lag_fraction_p50']:.1%} / {rr['lag_fraction_p95']:.1%}",
                setup,
            ),
            (
                "7 realistic",
                "GET /v2/dubbing/{id} per job, mean / max (goal <= 20)",
                f"{_f(rr['reads_per_job'], 1)} / {rr['reads_per_job_max']}",
                f"status polls and the download's URL fetch; {_f(rr['seconds'], 0)} s in all",
            ),
        ]
    if "day" in r:
        for name in ("creator", "stress"):
            dd = r["day"][name]
            lo, hi = dd["video_seconds"]
            rows.append(
                (
                    f"8 day ({name})",
                    "jobs done / reads (most in 24 h) / day-window waits / lag p50",
                    f"{dd['jobs_done']} / {dd['reads']} ({dd['max_reads_24h']} of "
                    f"{dd['reads_per_day_limit']}) / {dd['day_window_waits']} / "
                    f"{dd['lag_fraction_p50']:.1%}",
                    f"{dd['hours']:g} simulated hours, {dd['slots']} slots, videos {lo:g}-{hi:g} s"
                    + ("" if dd["lengths_known"] else ", lengths unknown")
                    + f", {_f(dd['reads_per_done_job'], 1)} reads per job",
                )
            )
    if "upload" in r:
        u = r["upload"]
        rows += [
            (
                "5 upload",
                f"{u['mib']} MiB random: daemon path / bare boto3",
                f"{_f(u['daemon_seconds'], 1)} / {_f(u['boto3_seconds'], 1)} s",
                f"{_f(u['daemon_mib_s'], 0)} / {_f(u['boto3_mib_s'], 0)} MiB/s to moto",
            ),
            (
                "5 upload",
                "ratio daemon / boto3 (goal <= 1.05)",
                _f(u["ratio"]),
                "medians of alternating pairs",
            ),
        ]
    lines = [
        f"Medians of {runs} run(s).",
        "",
        "| benchmark | measure | result | setup |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows],
    ]
    return "\n".join(lines) + "\n"


def _commit() -> str:
    """The checkout measured: HEAD, with ``+dirty`` when the package has local changes."""
    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "synthesia_watchd"],
            cwd=repo,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short version (a few minutes)")
    parser.add_argument("--runs", type=int, help="runs per benchmark (default 3; --quick: 1)")
    parser.add_argument(
        "--only", help=f"comma-separated subset of {','.join(NAMES + EXTRA)} (default: the first 5)"
    )
    parser.add_argument("--upload-mib", type=int, help="size of the upload benchmark's file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",")] if args.only else list(NAMES)
    unknown = set(names) - set(NAMES) - set(EXTRA)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    params = dict(QUICK if args.quick else FULL)
    if args.upload_mib:
        params["upload_mib"] = args.upload_mib
    runs = args.runs or (1 if args.quick else 3)
    started = time.time()

    def save(results: dict[str, Any]) -> None:
        report = {
            "started": started,
            "quick": args.quick,
            "runs": runs,
            "params": params,
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "commit": _commit(),
            "results": results,
        }
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "latest.json").write_text(json.dumps(report, indent=2) + "\n")

    results = _run_all(names, params, runs, save)
    sys.stdout.write("\n" + table(results, runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
