"""The SQLite job ledger, on real SQLite files in tmp_path."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synthesia_watchd.errors import LedgerError, NetworkFilesystemError, StaleTransition
from synthesia_watchd.fsinfo import Mount
from synthesia_watchd.ledger import MIGRATIONS, SCHEMA_VERSION, Job, Ledger
from synthesia_watchd.states import JobState, OutputState

S = JobState
T0 = 1_750_000_000.0
REPO = Path(__file__).resolve().parent.parent


class Clock:
    """A hand-stepped clock for the ledger's ``now``."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.db"


@pytest.fixture
def ledger(db: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger(db, now=clock) as led:
        yield led


def add(led: Ledger, name: str = "a.mp4", **kw: object) -> Job:
    """A job with sensible defaults; keyword arguments override them."""
    args: dict[str, object] = {
        "watch": "inbox",
        "source_path": name,
        "size": 1000,
        "mtime_ns": 1,
        "sha256": "h-" + name,
        "source_language": "en",
        "targets": ["de", "fr"],
        "output_dir": "out",
    }
    args.update(kw)
    return led.add_job(**args)  # type: ignore[arg-type]


def walk(led: Ledger, job_id: int, *states: JobState) -> Job:
    """Move a job through ``states`` in order."""
    job = led.get(job_id)
    for new in states:
        job = led.transition(job_id, job.state, new, why=f"to {new.value}")
    return job


# --- opening, pragmas, files ---------------------------------------------------------------------


def test_pragmas_in_effect(ledger: Ledger) -> None:
    """WAL, synchronous FULL, foreign keys, busy timeout and the schema version are set."""
    c = ledger._conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert c.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert c.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert ledger.schema_version == SCHEMA_VERSION == len(MIGRATIONS)


def test_files_are_private_even_with_a_lax_umask(tmp_path: Path) -> None:
    """The ledger and its -wal are 0600 and a created parent folder 0700, whatever the umask."""
    db = tmp_path / "new" / "ledger.db"
    old = os.umask(0o002)
    try:
        with Ledger(db) as led:
            add(led)
            wal = Path(f"{db}-wal")
            assert wal.exists()
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
            assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700


def test_reopen_is_idempotent(db: Path) -> None:
    """Opening an up-to-date ledger again changes nothing and keeps the data."""
    with Ledger(db) as led:
        job = add(led)
    with Ledger(db) as led:
        assert led.schema_version == SCHEMA_VERSION
        assert led.get(job.id) == job


def test_version_one_ledger_migrates_forward(db: Path) -> None:
    """A ledger built at schema 1 by hand gains the later steps and keeps its rows."""
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    for statement in MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO jobs (watch, source_path, size, mtime_ns, source_language, targets, state,"
        " next_attempt_at, output_dir, created_at, updated_at, state_changed_at)"
        " VALUES ('inbox', 'old.mp4', 5, 1, 'en', '[\"de\"]', 'queued', 0, 'out', 1, 1, 1)"
    )
    raw.execute("INSERT INTO events (job_id, at, to_state, why) VALUES (1, 1, 'queued', 'old')")
    raw.commit()
    raw.close()

    with Ledger(db) as led:
        assert led.schema_version == SCHEMA_VERSION
        assert led.get(1).source_path == "old.mp4"
        assert [e.why for e in led.events(1)] == ["old"]
    raw = sqlite3.connect(db)
    try:
        assert raw.execute("SELECT why FROM history").fetchall() == [("old",)]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events")
    finally:
        raw.close()


def test_newer_schema_is_refused(db: Path) -> None:
    """A ledger written by a newer release is refused with both versions named."""
    with Ledger(db):
        pass
    raw = sqlite3.connect(db)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 7}")
    raw.close()
    with pytest.raises(LedgerError, match=rf"schema version {SCHEMA_VERSION + 7}.*upgrade"):
        Ledger(db)


def test_not_a_database_is_refused(db: Path) -> None:
    """A file that is not SQLite gives a LedgerError naming the file, not a raw sqlite error."""
    db.parent.mkdir()
    db.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger(db)


@pytest.mark.parametrize("fstype", ["nfs4", "cifs"])
def test_network_filesystem_is_refused(tmp_path: Path, fstype: str) -> None:
    """A ledger on NFS/SMB is refused, naming the type and a local alternative; nothing made."""
    mounts = [Mount("/dev/sda1", "/", "ext4"), Mount("nas:/share", str(tmp_path), fstype)]
    db = tmp_path / "state" / "ledger.db"
    with pytest.raises(NetworkFilesystemError, match=f"{fstype}.*local disk") as info:
        Ledger(db, mounts=mounts)
    assert "state_dir" in str(info.value)
    assert not db.parent.exists()
    with Ledger(db, mounts=mounts, allow_network_fs=True) as led:
        assert led.schema_version == SCHEMA_VERSION


def test_local_filesystem_is_accepted(tmp_path: Path) -> None:
    """An ext4 mount table lets the ledger open."""
    mounts = [Mount("/dev/sda1", "/", "ext4"), Mount("/dev/sdb1", str(tmp_path), "ext4")]
    with Ledger(tmp_path / "ledger.db", mounts=mounts) as led:
        assert add(led).state is S.QUEUED


# --- jobs, outputs, events -----------------------------------------------------------------------


def test_add_job_creates_outputs_and_first_event(ledger: Ledger) -> None:
    """One call records the job, a pending output per (target, kind) and None -> queued."""
    job = add(ledger, targets=["de", "fr", "de"], kinds=("video", "srt"), settings={"lip": 1})
    assert job.targets == ("de", "fr")
    assert dict(job.settings) == {"lip": 1}
    assert job.created_at == job.next_attempt_at == T0
    outs = ledger.outputs(job.id)
    assert [(o.language, o.kind, o.state) for o in outs] == [
        ("de", "srt", OutputState.PENDING),
        ("de", "video", OutputState.PENDING),
        ("fr", "srt", OutputState.PENDING),
        ("fr", "video", OutputState.PENDING),
    ]
    [event] = ledger.events(job.id)
    assert (event.from_state, event.to_state, event.why, event.at) == (
        None,
        "queued",
        "discovered",
        T0,
    )


def test_add_job_validates_before_writing(ledger: Ledger) -> None:
    """Bad kinds, empty targets or a secret in settings are refused and nothing is stored."""
    with pytest.raises(ValueError, match="kinds"):
        add(ledger, kinds=("video", "gif"))
    with pytest.raises(ValueError, match="targets"):
        add(ledger, targets=[])
    with pytest.raises(ValueError, match="secrets"):
        add(ledger, settings={"s3": {"Session-Token": "x"}})
    assert sum(ledger.counts().values()) == 0


def test_get_missing_job_raises_key_error(ledger: Ledger) -> None:
    """get, transition and set_output on an unknown id raise KeyError."""
    with pytest.raises(KeyError):
        ledger.get(42)
    with pytest.raises(KeyError):
        ledger.transition(42, S.QUEUED, S.ASSET_CREATED, why="x")
    with pytest.raises(KeyError):
        ledger.set_output(42, "de", state=OutputState.DONE)


def test_transition_writes_fields_and_appends_events_in_order(ledger: Ledger, clock: Clock) -> None:
    """A transition sets state, fields and timestamps and appends from -> to, in order."""
    job = add(ledger)
    clock.advance(5)
    job = ledger.transition(
        job.id, S.QUEUED, S.ASSET_CREATED, why="asset created", asset_id="as-1", attempts=0
    )
    clock.advance(5)
    job = ledger.transition(
        job.id, [S.ASSET_CREATED, S.QUEUED], S.UPLOADED, why="uploaded", targets=["it"]
    )
    assert job.state is S.UPLOADED
    assert job.asset_id == "as-1"
    assert job.targets == ("it",)
    assert job.state_changed_at == job.updated_at == T0 + 10
    assert job.created_at == T0
    assert [(e.from_state, e.to_state, e.at) for e in ledger.events(job.id)] == [
        (None, "queued", T0),
        ("queued", "asset_created", T0 + 5),
        ("asset_created", "uploaded", T0 + 10),
    ]


def test_transition_from_stale_state_is_refused(ledger: Ledger) -> None:
    """Compare-and-set: expecting a state the job has left raises and writes nothing."""
    job = walk(ledger, add(ledger).id, S.ASSET_CREATED)
    with pytest.raises(StaleTransition, match="is asset_created, not queued"):
        ledger.transition(job.id, S.QUEUED, S.ASSET_CREATED, why="again", asset_id="as-2")
    assert ledger.get(job.id).asset_id is None
    assert len(ledger.events(job.id)) == 2


def test_disallowed_transition_is_refused(ledger: Ledger) -> None:
    """A move the state machine forbids (queued -> dubbing) raises StaleTransition."""
    job = add(ledger)
    with pytest.raises(StaleTransition, match="queued -> dubbing is not an allowed"):
        ledger.transition(job.id, S.QUEUED, S.DUBBING, why="skip ahead")
    assert ledger.get(job.id).state is S.QUEUED


def test_unknown_or_identity_fields_are_refused(ledger: Ledger) -> None:
    """Only mutable job columns may be written; state and identity belong to the ledger."""
    job = add(ledger)
    for bad in ({"api_key": "k"}, {"state": "done"}, {"source_path": "b.mp4"}):
        with pytest.raises(ValueError, match="not updatable"):
            ledger.update(job.id, expected=S.QUEUED, **bad)
    assert ledger.get(job.id) == job


def test_update_is_compare_and_set_and_may_log(ledger: Ledger, clock: Clock) -> None:
    """update writes fields on the expected state; with why it logs a same-state event."""
    job = add(ledger)
    clock.advance(1)
    job = ledger.update(
        job.id,
        expected=S.QUEUED,
        why="retry in 8s: 503",
        attempts=1,
        next_attempt_at=T0 + 9,
        last_error="503",
    )
    assert (job.attempts, job.next_attempt_at, job.last_error) == (1, T0 + 9, "503")
    assert job.updated_at == T0 + 1
    assert job.state_changed_at == T0
    ledger.update(job.id, expected=S.QUEUED, attempts=2)
    assert [(e.from_state, e.to_state, e.why) for e in ledger.events(job.id)][1:] == [
        ("queued", "queued", "retry in 8s: 503")
    ]
    with pytest.raises(StaleTransition):
        ledger.update(job.id, expected=[S.DUBBING, S.DOWNLOADING], attempts=9)
    assert ledger.get(job.id).attempts == 2


def test_note_appends_an_event(ledger: Ledger) -> None:
    """note records a line of history without changing the state."""
    job = add(ledger)
    ledger.note(job.id, "source renamed by the operator")
    assert ledger.events(job.id)[-1].why == "source renamed by the operator"
    assert ledger.get(job.id).state is S.QUEUED


def test_events_are_append_only(ledger: Ledger, db: Path) -> None:
    """UPDATE and DELETE on events abort, even through a plain sqlite3 connection."""
    add(ledger)
    raw = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE events SET why = 'rewritten'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM events")
        raw.rollback()
    finally:
        raw.close()
    assert [e.why for e in ledger.events(1)] == ["discovered"]


def test_set_output_upserts_and_keeps_what_is_not_given(ledger: Ledger) -> None:
    """set_output updates a row, keeps columns passed as None and clears stale error codes."""
    job = add(ledger, targets=["de"])
    ledger.set_output(job.id, "de", state=OutputState.PENDING, dubbed_asset_id="d-1")
    ledger.set_output(job.id, "de", state=OutputState.FAILED, error_code="TTS_FAILED")
    assert ledger.outputs(job.id)[0].error_code == "TTS_FAILED"
    ledger.set_output(
        job.id, "de", state=OutputState.DONE, path="out/a.de.mp4", bytes=9, sha256="s"
    )
    ledger.set_output(job.id, "de", "vtt", state=OutputState.DONE, path="out/a.de.vtt")
    by_kind = {o.kind: o for o in ledger.outputs(job.id)}
    video, vtt = by_kind["video"], by_kind["vtt"]
    assert (video.state, video.path, video.bytes) == (OutputState.DONE, "out/a.de.mp4", 9)
    assert (video.dubbed_asset_id, video.error_code) == ("d-1", None)
    assert (vtt.state, vtt.path) == (OutputState.DONE, "out/a.de.vtt")


# --- queries -------------------------------------------------------------------------------------


def test_due_orders_oldest_first_and_excludes_running(ledger: Ledger) -> None:
    """due returns only due jobs of the given states, oldest due first, minus exclude_ids."""
    a, b, c, d = (add(ledger, f"{n}.mp4") for n in "abcd")
    ledger.update(a.id, expected=S.QUEUED, next_attempt_at=T0 + 30)
    ledger.update(b.id, expected=S.QUEUED, next_attempt_at=T0 + 10)
    ledger.update(c.id, expected=S.QUEUED, next_attempt_at=T0 + 99)
    walk(ledger, d.id, S.ASSET_CREATED)
    ledger.update(d.id, expected=S.ASSET_CREATED, next_attempt_at=T0 + 20)

    assert [j.id for j in ledger.due([S.QUEUED], T0 + 50)] == [b.id, a.id]
    both = [S.QUEUED, S.ASSET_CREATED]
    assert [j.id for j in ledger.due(both, T0 + 50)] == [b.id, d.id, a.id]
    assert [j.id for j in ledger.due(both, T0 + 50, exclude_ids={b.id})] == [d.id, a.id]
    assert [j.id for j in ledger.due(both, T0 + 50, limit=1)] == [b.id]
    assert ledger.due([S.QUEUED], T0) == []
    assert ledger.next_due_at([S.QUEUED]) == T0 + 10
    assert ledger.next_due_at([S.DUBBING]) is None


def test_find_job_and_jobs_for_path(ledger: Ledger) -> None:
    """find_job matches the exact file version, newest first; jobs_for_path filters by state."""
    old = add(ledger, mtime_ns=1)
    walk(ledger, old.id, S.CANCELLED)
    new = add(ledger, mtime_ns=2)
    again = add(ledger, mtime_ns=2)
    assert ledger.find_job("inbox", "a.mp4", 1000, 1) == ledger.get(old.id)
    assert ledger.find_job("inbox", "a.mp4", 1000, 2) == again
    assert ledger.find_job("inbox", "a.mp4", 999, 2) is None
    assert ledger.find_job("other", "a.mp4", 1000, 2) is None
    assert [j.id for j in ledger.jobs_for_path("inbox", "a.mp4")] == [again.id, new.id, old.id]
    assert [j.id for j in ledger.jobs_for_path("inbox", "a.mp4", [S.CANCELLED])] == [old.id]


def test_jobs_with_hash_oldest_first(ledger: Ledger) -> None:
    """jobs_with_hash lists every job of that content, oldest first, optionally by state."""
    a = add(ledger, "a.mp4", sha256="same")
    add(ledger, "other.mp4", sha256="different")
    b = add(ledger, "b.mp4", sha256="same")
    walk(ledger, a.id, S.CANCELLED)
    assert [j.id for j in ledger.jobs_with_hash("same")] == [a.id, b.id]
    assert [j.id for j in ledger.jobs_with_hash("same", [S.QUEUED])] == [b.id]


def test_find_reusable_needs_done_same_target_set_and_done_outputs(ledger: Ledger) -> None:
    """Reuse only a done job with the same hash, language and target set, outputs all done."""
    done = add(ledger, "a.mp4", sha256="same", targets=["de", "fr"])
    walk(ledger, done.id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING, S.DOWNLOADING)
    ledger.set_output(done.id, "de", state=OutputState.DONE, path="out/a.de.mp4")
    walk(ledger, done.id, S.DONE)
    assert ledger.find_reusable("same", "en", ["fr", "de"]) is None  # fr not written yet
    ledger.set_output(done.id, "fr", state=OutputState.DONE, path="out/a.fr.mp4")

    assert ledger.find_reusable("same", "en", ["fr", "de"]) == ledger.get(done.id)
    assert ledger.find_reusable("same", "en", ["de"]) is None
    assert ledger.find_reusable("same", "en", ["de", "fr", "it"]) is None
    assert ledger.find_reusable("same", "es", ["de", "fr"]) is None
    assert ledger.find_reusable("other", "en", ["de", "fr"]) is None
    assert ledger.find_reusable("same", "en", ["de", "fr"], kinds=("video", "srt")) is None
    busy = add(ledger, "b.mp4", sha256="same", targets=["de", "fr"])
    walk(ledger, busy.id, S.ASSET_CREATED)
    assert ledger.find_reusable("same", "en", ["de", "fr"]) == ledger.get(done.id)


def test_counts_count_in_and_list_jobs(ledger: Ledger) -> None:
    """counts has every state; count_in sums states; list_jobs is newest first and filters."""
    a = add(ledger, "a.mp4")
    b = add(ledger, "b.mp4", watch="other")
    c = add(ledger, "c.mp4")
    walk(ledger, b.id, S.FAILED)
    counts = ledger.counts()
    assert set(counts) == {s.value for s in JobState}
    assert (counts["queued"], counts["failed"], counts["done"]) == (2, 1, 0)
    assert ledger.count_in([S.QUEUED, S.FAILED]) == 3
    assert ledger.count_in([S.DONE]) == 0
    assert [j.id for j in ledger.list_jobs()] == [c.id, b.id, a.id]
    assert [j.id for j in ledger.list_jobs(limit=1, offset=1)] == [b.id]
    assert [j.id for j in ledger.list_jobs(watch="inbox")] == [c.id, a.id]
    assert [j.id for j in ledger.list_jobs(states=[S.FAILED])] == [b.id]


def test_usage_since_counts_submissions(ledger: Ledger, clock: Clock) -> None:
    """usage_since counts uploaded -> dubbing events after the cut-off and sums source bytes."""
    early = add(ledger, "early.mp4", size=100)
    walk(ledger, early.id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING)
    clock.advance(3600)
    late = add(ledger, "late.mp4", size=250)
    walk(ledger, late.id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING)
    never = add(ledger, "never.mp4", size=999)
    walk(ledger, never.id, S.ASSET_CREATED, S.UPLOADED)
    assert ledger.usage_since(T0 - 1) == (2, 350)
    assert ledger.usage_since(T0 + 60) == (1, 250)
    assert ledger.usage_since(T0 + 7200) == (0, 0)


def test_dub_history_pairs_video_length_with_time_in_dubbing(ledger: Ledger, clock: Clock) -> None:
    """dub_history gives (video seconds, seconds in dubbing) of finished dubs, newest first."""
    first = add(ledger, "first.mp4", duration_s=60.0)
    walk(ledger, first.id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING)
    clock.advance(90)
    walk(ledger, first.id, S.DOWNLOADING)
    second = add(ledger, "second.mp4")
    walk(ledger, second.id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING)
    clock.advance(30)
    ledger.note(second.id, "a note is not leaving dubbing")
    clock.advance(15)
    walk(ledger, second.id, S.DOWNLOADING)
    still = add(ledger, "still.mp4", duration_s=10.0)
    walk(ledger, still.id, S.ASSET_CREATED, S.UPLOADED, S.DUBBING)
    assert ledger.get(first.id).duration_s == 60.0
    assert ledger.dub_history() == [(None, 45.0), (60.0, 90.0)]
    assert ledger.dub_history(limit=1) == [(None, 45.0)]


def test_oldest_queued_at(ledger: Ledger, clock: Clock) -> None:
    """oldest_queued_at is when the longest-waiting queued job entered queued."""
    assert ledger.oldest_queued_at() is None
    first = add(ledger, "a.mp4")
    clock.advance(10)
    add(ledger, "b.mp4")
    assert ledger.oldest_queued_at() == T0
    walk(ledger, first.id, S.ASSET_CREATED)
    assert ledger.oldest_queued_at() == T0 + 10


def test_meta_set_get_delete(ledger: Ledger) -> None:
    """meta stores daemon status values; None deletes."""
    assert ledger.get_meta("paused") is None
    ledger.set_meta("paused", "auth: 401")
    ledger.set_meta("paused", "auth: 403")
    assert ledger.get_meta("paused") == "auth: 403"
    ledger.set_meta("paused", None)
    assert ledger.get_meta("paused") is None


def test_integrity_check_and_checkpoint(ledger: Ledger, db: Path) -> None:
    """A healthy ledger checks ok; checkpoint empties the WAL into the main file."""
    add(ledger)
    assert Path(f"{db}-wal").stat().st_size > 0
    assert ledger.integrity_check() == "ok"
    ledger.checkpoint()
    assert Path(f"{db}-wal").stat().st_size == 0


def test_plain_sqlite3_reads_history(ledger: Ledger, db: Path) -> None:
    """Operators can read jobs and the history view with the plain sqlite3 module."""
    job = walk(ledger, add(ledger).id, S.ASSET_CREATED)
    raw = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = raw.execute(
            "SELECT job_id, source_path, from_state, to_state, why, at_utc, current_state"
            " FROM history ORDER BY event_id"
        ).fetchall()
        targets = raw.execute("SELECT targets FROM jobs").fetchone()[0]
    finally:
        raw.close()
    assert rows == [
        (
            job.id,
            "a.mp4",
            None,
            "queued",
            "discovered",
            "2025-06-15T15:06:40.000Z",
            "asset_created",
        ),
        (
            job.id,
            "a.mp4",
            "queued",
            "asset_created",
            "to asset_created",
            "2025-06-15T15:06:40.000Z",
            "asset_created",
        ),
    ]
    assert targets == '["de", "fr"]'


# --- concurrency and durability ------------------------------------------------------------------


def test_threads_and_two_connections_never_lose_events(db: Path) -> None:
    """8 threads on two connections write at once: no lock errors, every event kept, one CAS win."""
    first, second = Ledger(db), Ledger(db)
    try:
        shared = add(first, "shared.mp4")
        own = [add(first, f"{i}.mp4").id for i in range(8)]
        path = (S.ASSET_CREATED, S.UPLOADED, S.DUBBING, S.DOWNLOADING, S.DONE)
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []
        wins: list[int] = []

        def work(i: int) -> None:
            led = first if i % 2 else second
            try:
                barrier.wait()
                try:
                    led.transition(shared.id, S.QUEUED, S.ASSET_CREATED, why=f"thread {i}")
                    wins.append(i)
                except StaleTransition:
                    pass
                state = S.QUEUED
                for step, new in enumerate(path):
                    led.update(own[i], expected=state, why=f"step {step}", attempts=step)
                    led.transition(own[i], state, new, why=f"to {new.value}")
                    state = new
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        assert len(wins) == 1
        assert len(first.events(shared.id)) == 2
        for job_id in own:
            events = second.events(job_id)
            assert len(events) == 1 + 2 * len(path)
            assert [e.to_state for e in events if e.from_state != e.to_state] == [
                "queued",
                *(s.value for s in path),
            ]
        assert first.count_in([S.DONE]) == 8
    finally:
        first.close()
        second.close()


CHILD = """
import os, signal, sys
from pathlib import Path
from synthesia_watchd.ledger import Ledger
led = Ledger(Path(sys.argv[1]))
led.transition(int(sys.argv[2]), "queued", "asset_created", why="child", asset_id="as-9")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_transition_survives_sigkill_right_after(db: Path) -> None:
    """A transition returned in a process killed with SIGKILL right after is there on reopen."""
    with Ledger(db) as led:
        job = add(led)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(db), str(job.id)],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert Path(f"{db}-wal").stat().st_size > 0  # the commit lives in the WAL, not yet folded
    with Ledger(db) as led:
        after = led.get(job.id)
        assert (after.state, after.asset_id) == (S.ASSET_CREATED, "as-9")
        assert led.events(job.id)[-1].why == "child"
        assert led.integrity_check() == "ok"


def test_reason_codes_are_stored_on_the_job_and_its_events_and_counted(ledger: Ledger) -> None:
    """A transition's reason_code lands on the job and its event; count_reasons counts codes."""
    job = add(ledger)
    ledger.update(job.id, expected=S.QUEUED, why="any words", reason_code="fresh_asset")
    ledger.note(job.id, "other words", code="fresh_asset")
    job = ledger.transition(
        job.id, S.QUEUED, S.CANCELLED, why="gone", last_error="gone", reason_code="vanished"
    )
    assert job.reason_code == "vanished"
    assert [e.reason_code for e in ledger.events(job.id)] == [
        None,
        "fresh_asset",
        "fresh_asset",
        "vanished",
    ]
    assert ledger.count_reasons(job.id, ["fresh_asset"]) == 2
    assert ledger.count_reasons(job.id, ["fresh_asset", "vanished"]) == 3
    born = add(ledger, "b.mp4", state=S.FAILED, why="bad", reason_code="content_refused")
    assert born.reason_code == "content_refused"
    assert ledger.events(born.id)[0].reason_code == "content_refused"


def test_version_four_ledger_gets_codes_for_what_it_said_in_words(db: Path) -> None:
    """Migration 6 codes old vanished/project-failed jobs and fresh-asset/internal-error
    events, so the rules and caps carry over; events stay append-only."""
    db.parent.mkdir()
    raw = sqlite3.connect(db)
    for step in MIGRATIONS[:4]:
        for statement in step:
            raw.execute(statement)
    raw.execute("PRAGMA user_version = 4")
    for name, state, err in (
        ("gone.mp4", "cancelled", "source file vanished"),
        ("bad.mp4", "failed", "Synthesia failed the dubbing project: tts_error"),
    ):
        raw.execute(
            "INSERT INTO jobs (watch, source_path, size, mtime_ns, source_language, targets,"
            " state, next_attempt_at, output_dir, created_at, updated_at, state_changed_at,"
            " last_error) VALUES ('inbox', ?, 5, 1, 'en', '[\"de\"]', ?, 0, 'out', 1, 1, 1, ?)",
            (name, state, err),
        )
    for why in (
        "upload credentials expired; creating a fresh asset (403)",
        "retry: internal error: KeyError: 'x'",
        "retry: 503",
    ):
        raw.execute("INSERT INTO events (job_id, at, why) VALUES (1, 1, ?)", (why,))
    raw.commit()
    raw.close()
    with Ledger(db) as led:
        assert (led.get(1).reason_code, led.get(2).reason_code) == ("vanished", "project_failed")
        assert [e.reason_code for e in led.events(1)] == ["fresh_asset", "internal_error", None]
    raw = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE events SET why = 'x'")
    finally:
        raw.close()
