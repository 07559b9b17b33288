"""Nodes mounting a share at different paths share one ledger: a job is its watch's name and
the path relative to that watch's folder, resolved by each node through its own config.

Run unchanged against every backend (a real SQLite file, a real PostgreSQL database).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from enginefixtures import Engine
from ledgerbackends import T0, Backend, add, run_threads, walk
from pgcluster import PASSWORD

from synthesia_watchd.domain.errors import DuplicateJob
from synthesia_watchd.domain.pathmap import PathMap, WatchFolders, relative
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.stores import pgschema, sqlite
from synthesia_watchd.stores.ledger import LedgerStore

S = JobState

#: The same share as two hosts see it.
A = WatchFolders(Path("/srv/a/drop"), Path("/srv/a/dubbed"), on_failure=Path("/srv/a/failed"))
B = WatchFolders(Path("/mnt/b/drop"), Path("/mnt/b/dubbed"), on_failure=Path("/mnt/b/failed"))


def _settings(f: WatchFolders) -> dict[str, object]:
    """Frozen settings as intake writes them on the node with folders ``f``."""
    return {
        "input_root": str(f.input),
        "output_root": str(f.output_root),
        "on_failure": {"kind": "move", "path": str(f.on_failure)},
        "on_success": {"kind": "keep", "path": None},
    }


def _add_on(led: LedgerStore, f: WatchFolders, rel: str = "sub/talk.mp4", **kw: object) -> int:
    """Record ``rel`` of watch ``inbox`` as the node with folders ``f`` sees it."""
    src = f.input / rel
    args: dict[str, object] = {
        "source_path": str(src),
        "output_dir": str(f.output_root / Path(rel).parent),
        "settings": _settings(f),
        "sha256": "h-shared",
    }
    args.update(kw)
    return add(led, **args).id


def _node(backend: Backend, folders: WatchFolders) -> LedgerStore:
    led = backend.open()
    led.use_paths(PathMap({"inbox": folders}))
    return led


def test_each_node_resolves_a_job_through_its_own_folders(backend: Backend) -> None:
    """A job node A recorded reads on node B with B's source path, output folder and move
    targets, is found by B's path, and B recording the same file again makes no second job."""
    a, b = _node(backend, A), _node(backend, B)
    job_id = _add_on(a, A)
    mine, theirs = a.get(job_id), b.get(job_id)
    assert mine.source_path == "/srv/a/drop/sub/talk.mp4"
    assert theirs.source_path == "/mnt/b/drop/sub/talk.mp4"
    assert theirs.rel_path == mine.rel_path == "sub/talk.mp4"
    assert theirs.output_dir == "/mnt/b/dubbed/sub"
    assert theirs.settings["input_root"] == "/mnt/b/drop"
    assert theirs.settings["output_root"] == "/mnt/b/dubbed"
    assert theirs.settings["on_failure"] == {"kind": "move", "path": "/mnt/b/failed"}
    found = b.find_job("inbox", "/mnt/b/drop/sub/talk.mp4", 1000, 1)
    assert found is not None and found.id == job_id
    assert [j.id for j in b.jobs_for_path("inbox", "/mnt/b/drop/sub/talk.mp4")] == [job_id]
    with pytest.raises(DuplicateJob):
        _add_on(b, B)
    # Every read that hands out jobs resolves them the same way.
    [claimed] = b.claim([S.QUEUED], T0, "node-b", T0 + 60)
    assert claimed.source_path == theirs.source_path
    assert [j.source_path for j in b.list_jobs()] == [theirs.source_path]
    assert [j.source_path for j in b.due([S.QUEUED], T0)] == [theirs.source_path]
    assert [j.source_path for j in b.jobs_with_hash("h-shared")] == [theirs.source_path]


def test_two_nodes_recording_one_file_at_once_make_one_job(backend: Backend) -> None:
    """Nodes with different mounts add the same file at the same moment: one job, one refusal."""
    nodes = [_node(backend, A), _node(backend, B)]
    barrier = threading.Barrier(2)
    made: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        barrier.wait()
        try:
            job_id = _add_on(nodes[i], (A, B)[i], "same.mp4")
        except DuplicateJob as exc:
            with lock:
                refused.append(exc.existing_id)
        else:
            with lock:
                made.append(job_id)

    run_threads(work, 2)
    assert len(made) == 1 and refused == made
    assert sum(nodes[0].counts().values()) == 1


def test_outputs_resolve_under_each_nodes_output_root(backend: Backend) -> None:
    """An output node A wrote is at B's path on B, recognised there as written by the job,
    and reusable from B by content."""
    a, b = _node(backend, A), _node(backend, B)
    job_id = _add_on(a, A, targets=["de"])
    walk(a, job_id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING, S.DOWNLOADING, S.DONE)
    a.set_output(
        job_id, "de", state=OutputState.DONE,
        path="/srv/a/dubbed/sub/talk.dubbed-de.mp4", bytes=9, sha256="out-sha",
    )  # fmt: skip
    [out] = b.outputs(job_id)
    assert out.path == "/mnt/b/dubbed/sub/talk.dubbed-de.mp4"
    assert [o.path for o in a.outputs(job_id)] == ["/srv/a/dubbed/sub/talk.dubbed-de.mp4"]
    assert b.output_written_by("/mnt/b/dubbed/sub/talk.dubbed-de.mp4", "out-sha") == job_id
    assert b.output_written_by("/mnt/b/dubbed/sub/other.dubbed-de.mp4", "out-sha") is None
    twin = b.find_reusable("h-shared", "en", ["de"])
    assert twin is not None and twin.output_dir == "/mnt/b/dubbed/sub"


def test_a_ledger_opened_without_a_config_shows_the_recorded_paths(backend: Backend) -> None:
    """A command given no config (no watch folders) sees paths as the recording node wrote
    them, and a node without the watch keeps them too."""
    a = _node(backend, A)
    job_id = _add_on(a, A)
    bare = backend.open()
    other = backend.open()
    other.use_paths(PathMap({"elsewhere": B}))
    for led in (bare, other):
        job = led.get(job_id)
        assert job.source_path == "/srv/a/drop/sub/talk.mp4"
        assert job.rel_path == "sub/talk.mp4"
        found = led.find_job("inbox", "/srv/a/drop/sub/talk.mp4", 1000, 1)
        assert found is not None and found.id == job_id


def test_jobs_whose_path_is_outside_every_folder_keep_their_absolute_path(
    backend: Backend,
) -> None:
    """A path no watch folder holds (and no frozen input folder) stays the job's identity."""
    led = _node(backend, A)
    job = add(led, "/elsewhere/x.mp4")
    assert (job.source_path, job.rel_path) == ("/elsewhere/x.mp4", None)
    found = led.find_job("inbox", "/elsewhere/x.mp4", 1000, 1)
    assert found is not None and found.id == job.id
    with pytest.raises(DuplicateJob):
        add(led, "/elsewhere/x.mp4")


# --- ledgers recorded before relative paths ------------------------------------------------------

#: The statement that brings relative paths in: every backend's schema before its step.
_REL_PATH_STEP = "ALTER TABLE jobs ADD COLUMN rel_path TEXT"


def _old_job_row(f: WatchFolders) -> dict[str, object]:
    return {
        "watch": "inbox",
        "source_path": str(f.input / "old" / "talk.mp4"),
        "size": 1000,
        "mtime_ns": 1,
        "sha256": "h-old",
        "source_language": "en",
        "targets": '["de"]',
        "state": "done",
        "next_attempt_at": T0,
        "output_dir": str(f.output_root / "old"),
        "settings": json.dumps(_settings(f)),
        "created_at": T0,
        "updated_at": T0,
        "state_changed_at": T0,
    }


def _old_output_row(f: WatchFolders) -> dict[str, object]:
    return {
        "job_id": 1,
        "language": "de",
        "kind": "video",
        "state": "done",
        "path": str(f.output_root / "old" / "talk.dubbed-de.mp4"),
        "sha256": "out-old",
        "updated_at": T0,
    }


def _insert(
    run: Callable[[str, list[object]], object], table: str, row: dict[str, object], mark: str
) -> None:
    cols = ", ".join(row)
    marks = ", ".join(mark for _ in row)
    run(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))  # noqa: S608


def _old_ledger(
    backend: Backend,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    jobs: tuple[dict[str, object], ...] | None = None,
) -> None:
    """The backend's ledger at the schema before relative paths, with ``jobs`` (default: one
    done job of A, with its output)."""
    rows = (_old_job_row(A),) if jobs is None else jobs
    outputs = (_old_output_row(A),) if jobs is None else ()
    steps = {"sqlite": sqlite.MIGRATIONS, "postgres": pgschema.MIGRATIONS}[backend.name]
    before = steps[: next(i for i, step in enumerate(steps) if _REL_PATH_STEP in step)]
    if backend.name == "sqlite":
        path = tmp_path / "state" / "ledger.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(path, isolation_level=None)
        for step in before:
            for statement in step:
                assert isinstance(statement, str)
                raw.execute(statement)
        for row in rows:
            _insert(raw.execute, "jobs", row, "?")
        for row in outputs:
            _insert(raw.execute, "outputs", row, "?")
        raw.execute(f"PRAGMA user_version = {len(before)}")
        raw.close()
        return
    url = request.getfixturevalue("pg_database")
    with psycopg.connect(url, password=PASSWORD, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
        )
        for version, step in enumerate(before, start=1):
            for statement in step:
                assert isinstance(statement, str)
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (version, T0))
        for row in rows:
            _insert(conn.execute, "jobs", row, "%s")
        for row in outputs:
            _insert(conn.execute, "outputs", row, "%s")


@pytest.fixture
def old_backend(backend: Backend, tmp_path: Path, request: pytest.FixtureRequest) -> Backend:
    _old_ledger(backend, tmp_path, request)
    return backend


def test_a_ledger_from_before_relative_paths_is_filled_in(old_backend: Backend) -> None:
    """The schema step fills each old job's relative path from its absolute path and the
    input folder frozen with it, so another node resolves old jobs and outputs too."""
    a, b = _node(old_backend, A), _node(old_backend, B)
    old = b.get(1)
    assert old.rel_path == "old/talk.mp4"
    assert old.source_path == "/mnt/b/drop/old/talk.mp4"
    assert [o.path for o in b.outputs(1)] == ["/mnt/b/dubbed/old/talk.dubbed-de.mp4"]
    assert a.get(1).source_path == "/srv/a/drop/old/talk.mp4"
    assert b.output_written_by("/mnt/b/dubbed/old/talk.dubbed-de.mp4", "out-old") == 1
    found = b.find_job("inbox", "/mnt/b/drop/old/talk.mp4", 1000, 1)
    assert found is not None and found.id == 1
    # New work on the old ledger is keyed the new way.
    new = _add_on(b, B, "new.mp4")
    assert a.get(new).source_path == "/srv/a/drop/new.mp4"


def test_a_job_recorded_without_an_input_folder_keeps_its_absolute_path(
    backend: Backend,
) -> None:
    """A job whose frozen settings name no input folder, recorded by a store without
    folders, keeps its absolute path on a node that has the watch."""
    bare = backend.open()
    job = add(bare, "/srv/a/drop/x.mp4", settings={})
    assert job.rel_path is None
    a = _node(backend, A)
    assert a.get(job.id).source_path == "/srv/a/drop/x.mp4"
    found = a.find_job("inbox", "/srv/a/drop/x.mp4", 1000, 1)
    assert found is not None and found.id == job.id


def test_a_claim_may_be_limited_to_the_watches_a_node_has(backend: Backend) -> None:
    """A node claims only jobs of the watches it has: it could resolve no other job's paths."""
    led = backend.open()
    mine = add(led, "a.mp4").id
    other = add(led, "b.mp4", watch="elsewhere").id
    got = led.claim([S.QUEUED], T0, "node-b", T0 + 60, only_watches={"inbox"})
    assert [j.id for j in got] == [mine]
    assert led.claim([S.QUEUED], T0, "node-c", T0 + 60, only_watches=()) == []
    assert [j.id for j in led.claim([S.QUEUED], T0, "node-c", T0 + 60)] == [other]


def test_old_active_twins_of_one_relative_path_keep_the_schema_step_from_failing(
    backend: Backend, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two active jobs recorded under two input folders with the same relative path and
    content (a watch whose folder moved): the step fills one, the other keeps its absolute
    path, and the ledger opens."""
    twins = tuple({**_old_job_row(f), "state": "queued"} for f in (A, B))
    _old_ledger(backend, tmp_path, request, twins)
    led = backend.open()
    assert sorted(str(led.get(i).rel_path) for i in (1, 2)) == ["None", "old/talk.mp4"]


def test_a_name_that_is_not_utf8_resolves_on_every_node(backend: Backend) -> None:
    """A Latin-1 name (surrogate escapes in Python) keeps its bytes through the relative path."""
    a, b = _node(backend, A), _node(backend, B)
    rel = os.fsdecode(b"sub/caf\xe9.mp4")
    job_id = _add_on(a, A, rel)
    assert b.get(job_id).source_path == os.fsdecode(b"/mnt/b/drop/sub/caf\xe9.mp4")
    assert b.get(job_id).rel_path == rel
    found = b.find_job("inbox", os.fsdecode(b"/mnt/b/drop/sub/caf\xe9.mp4"), 1000, 1)
    assert found is not None and found.id == job_id


@pytest.mark.parametrize(
    ("root", "path", "rel"),
    [
        ("/srv/drop", "/srv/drop/a.mp4", "a.mp4"),
        ("/srv/drop/", "/srv/drop/x/../sub/a.mp4", "sub/a.mp4"),
        ("/srv/drop", "/srv/drop", None),
        ("/srv/drop", "/srv/dropped/a.mp4", None),
        ("/srv/drop", "/srv/a.mp4", None),
        ("/srv/drop", "a.mp4", None),
        (None, "/srv/drop/a.mp4", None),
        ("drop", "drop/a.mp4", None),
    ],
)
def test_relative_paths_only_inside_the_folder(
    root: str | None, path: str, rel: str | None
) -> None:
    """A path gets a relative name only strictly inside an absolute folder."""
    assert relative(root, path) == rel


def test_a_node_on_a_shared_ledger_leaves_jobs_of_watches_it_lacks(
    engine: Engine, pg_database: str
) -> None:
    """run --once on a shared ledger: this node's file is dubbed; a job of a watch only
    another node has stays queued and unclaimed (its paths are that node's), and --once ends."""
    engine.use_shared_ledger(pg_database, PASSWORD)
    with engine.ledger() as ledger:
        foreign = ledger.add_job(
            watch="other-office", source_path="/volume1/video/drop/x.mp4", size=1, mtime_ns=1,
            sha256="h-x", source_language="en", targets=["de"], output_dir="/volume1/video/out",
        )  # fmt: skip
    engine.put("a.mp4")
    engine.run()
    jobs = {j.id: j for j in engine.jobs()}
    assert jobs.pop(foreign.id).state is S.QUEUED
    assert [j.state for j in jobs.values()] == [S.DONE]
    assert engine.dub_posts() == 1


@pytest.mark.parametrize(
    "also", ["", " AND size = 1 AND mtime_ns = 2", " AND state IN ('queued', 'dubbing')"]
)
def test_a_lookup_by_file_never_scans_a_watchs_jobs(tmp_path: Path, also: str) -> None:
    """Intake looks every file up by watch and relative path: each branch of the lookup goes
    through the (watch, path) indexes, so intake stays flat as a watch gathers jobs."""
    from synthesia_watchd.stores.nodepaths import source_where
    from synthesia_watchd.stores.sqlite import SqliteLedger

    SqliteLedger(tmp_path / "l.sqlite3").close()
    where, params = source_where("w", "/in/a.mp4", "a.mp4", also)
    with contextlib.closing(sqlite3.connect(tmp_path / "l.sqlite3")) as c:
        plan = [
            row[3]
            for row in c.execute(f"EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE {where}", params)  # noqa: S608
        ]
    searches = [p for p in plan if p.startswith("SEARCH jobs USING")]
    assert not [p for p in plan if p.startswith("SCAN")], plan
    assert sum("(watch=? AND rel_path=?)" in p for p in searches) == 2, plan
