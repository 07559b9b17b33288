"""The ledger contract: what every backend must do, run unchanged against each of them.

Each test gets a fresh, empty ledger of every backend (a real SQLite file, a real PostgreSQL
database); a second backend is done when this file passes on it without a change.
"""

from __future__ import annotations

import os
import threading

import pytest
from ledgerbackends import T0, Backend, Clock, add, run_threads, walk

from synthesia_watchd.domain.errors import DuplicateJob, StaleTransition
from synthesia_watchd.domain.states import JobState, OutputState
from synthesia_watchd.stores.ledger import Lease, LedgerStore

S = JobState


# --- jobs, outputs, events -----------------------------------------------------------------------


def test_add_job_creates_outputs_and_first_event(ledger: LedgerStore) -> None:
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


def test_add_job_validates_before_writing(ledger: LedgerStore) -> None:
    """Bad kinds, empty targets or a secret in settings are refused and nothing is stored."""
    with pytest.raises(ValueError, match="kinds"):
        add(ledger, kinds=("video", "gif"))
    with pytest.raises(ValueError, match="targets"):
        add(ledger, targets=[])
    with pytest.raises(ValueError, match="secrets"):
        add(ledger, settings={"s3": {"Session-Token": "x"}})
    assert sum(ledger.counts().values()) == 0


def test_get_missing_job_raises_key_error(ledger: LedgerStore) -> None:
    """get, transition and set_output on an unknown id raise KeyError."""
    with pytest.raises(KeyError):
        ledger.get(42)
    with pytest.raises(KeyError):
        ledger.transition(42, S.QUEUED, S.ASSET_CREATED, why="x")
    with pytest.raises(KeyError):
        ledger.set_output(42, "de", state=OutputState.DONE)


def test_transition_writes_fields_and_appends_events_in_order(
    ledger: LedgerStore, clock: Clock
) -> None:
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


def test_transition_from_stale_state_is_refused(ledger: LedgerStore) -> None:
    """Compare-and-set: expecting a state the job has left raises and writes nothing."""
    job = walk(ledger, add(ledger).id, S.ASSET_CREATED)
    with pytest.raises(StaleTransition, match="is asset_created, not queued"):
        ledger.transition(job.id, S.QUEUED, S.ASSET_CREATED, why="again", asset_id="as-2")
    assert ledger.get(job.id).asset_id is None
    assert len(ledger.events(job.id)) == 2


def test_disallowed_transition_is_refused(ledger: LedgerStore) -> None:
    """A move the state machine forbids (queued -> dubbing) raises StaleTransition."""
    job = add(ledger)
    with pytest.raises(StaleTransition, match="queued -> dubbing is not an allowed"):
        ledger.transition(job.id, S.QUEUED, S.DUBBING, why="skip ahead")
    assert ledger.get(job.id).state is S.QUEUED


def test_unknown_or_identity_fields_are_refused(ledger: LedgerStore) -> None:
    """Only mutable job columns may be written; state and identity belong to the ledger."""
    job = add(ledger)
    for bad in ({"api_key": "k"}, {"state": "done"}, {"source_path": "b.mp4"}):
        with pytest.raises(ValueError, match="not updatable"):
            ledger.update(job.id, expected=S.QUEUED, **bad)
    assert ledger.get(job.id) == job


def test_update_is_compare_and_set_and_may_log(ledger: LedgerStore, clock: Clock) -> None:
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


def test_note_appends_an_event(ledger: LedgerStore) -> None:
    """note records a line of history without changing the state."""
    job = add(ledger)
    ledger.note(job.id, "source renamed by the operator")
    assert ledger.events(job.id)[-1].why == "source renamed by the operator"
    assert ledger.get(job.id).state is S.QUEUED


def test_set_output_upserts_and_keeps_what_is_not_given(ledger: LedgerStore) -> None:
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


def test_due_orders_oldest_first_and_excludes_running(ledger: LedgerStore) -> None:
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


def test_find_job_and_jobs_for_path(ledger: LedgerStore) -> None:
    """find_job matches the exact file version, newest first; jobs_for_path filters by state."""
    old = add(ledger, mtime_ns=1)
    walk(ledger, old.id, S.CANCELLED)
    new = add(ledger, mtime_ns=2, sha256="v2")
    again = add(ledger, mtime_ns=2, sha256="v2-edited")
    assert ledger.find_job("inbox", "a.mp4", 1000, 1) == ledger.get(old.id)
    assert ledger.find_job("inbox", "a.mp4", 1000, 2) == again
    assert ledger.find_job("inbox", "a.mp4", 999, 2) is None
    assert ledger.find_job("other", "a.mp4", 1000, 2) is None
    assert [j.id for j in ledger.jobs_for_path("inbox", "a.mp4")] == [again.id, new.id, old.id]
    assert [j.id for j in ledger.jobs_for_path("inbox", "a.mp4", [S.CANCELLED])] == [old.id]


def test_jobs_with_hash_oldest_first(ledger: LedgerStore) -> None:
    """jobs_with_hash lists every job of that content, oldest first, optionally by state."""
    a = add(ledger, "a.mp4", sha256="same")
    add(ledger, "other.mp4", sha256="different")
    b = add(ledger, "b.mp4", sha256="same")
    walk(ledger, a.id, S.CANCELLED)
    assert [j.id for j in ledger.jobs_with_hash("same")] == [a.id, b.id]
    assert [j.id for j in ledger.jobs_with_hash("same", [S.QUEUED])] == [b.id]


def test_find_reusable_needs_done_same_target_set_and_done_outputs(ledger: LedgerStore) -> None:
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


def test_counts_count_in_and_list_jobs(ledger: LedgerStore) -> None:
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


def test_usage_since_counts_submissions(ledger: LedgerStore, clock: Clock) -> None:
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


def test_dub_history_pairs_video_length_with_time_in_dubbing(
    ledger: LedgerStore, clock: Clock
) -> None:
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


def test_oldest_queued_at(ledger: LedgerStore, clock: Clock) -> None:
    """oldest_queued_at is when the longest-waiting queued job entered queued."""
    assert ledger.oldest_queued_at() is None
    first = add(ledger, "a.mp4")
    clock.advance(10)
    add(ledger, "b.mp4")
    assert ledger.oldest_queued_at() == T0
    walk(ledger, first.id, S.ASSET_CREATED)
    assert ledger.oldest_queued_at() == T0 + 10


def test_meta_set_get_delete(ledger: LedgerStore) -> None:
    """meta stores daemon status values; None deletes."""
    assert ledger.get_meta("paused") is None
    ledger.set_meta("paused", "auth: 401")
    ledger.set_meta("paused", "auth: 403")
    assert ledger.get_meta("paused") == "auth: 403"
    ledger.set_meta("paused", None)
    assert ledger.get_meta("paused") is None


def test_reason_codes_are_stored_on_the_job_and_its_events_and_counted(ledger: LedgerStore) -> None:
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


# --- concurrency -------------------------------------------------------------------------------


def test_threads_and_two_connections_never_lose_events(backend: Backend) -> None:
    """8 threads on two connections write at once: no lock errors, every event kept, one CAS win."""
    first, second = backend.open(), backend.open()
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

        run_threads(work, 8)
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


@pytest.fixture
def clock(backend: Backend) -> Clock:
    return backend.clock


@pytest.fixture
def ledger(backend: Backend) -> LedgerStore:
    return backend.open()


# --- several nodes: leases and heartbeats ---------------------------------------------------


def test_claims_lease_due_jobs_and_skip_those_another_node_holds(
    backend: Backend, clock: Clock
) -> None:
    """A claim leases due jobs to its node; another node gets only the rest until expiry."""
    first, second = backend.open(), backend.open()
    jobs = [add(first, f"{n}.mp4") for n in "abc"]
    got = first.claim([S.QUEUED], T0, "node-a", T0 + 60, limit=2)
    assert [j.id for j in got] == [jobs[0].id, jobs[1].id]
    assert {(j.lease_node, j.lease_until) for j in got} == {("node-a", T0 + 60)}
    assert [j.id for j in second.claim([S.QUEUED], T0, "node-b", T0 + 60)] == [jobs[2].id]
    again = second.claim([S.QUEUED], T0 + 30, "node-b", T0 + 90)
    assert [j.id for j in again] == [jobs[2].id]  # its own, renewed; none of node-a's
    # node-a holds its own again (renewal by claim); after expiry node-b takes them over
    assert len(first.claim([S.QUEUED], T0 + 30, "node-a", T0 + 90)) == 2
    taken = second.claim([S.QUEUED], T0 + 91, "node-b", T0 + 150)
    assert {j.id for j in taken} == {j.id for j in jobs}


def test_renew_and_release_touch_only_the_nodes_own_leases(ledger: LedgerStore) -> None:
    """renew extends and release frees only leases the node holds; others stay as they were."""
    a, b = add(ledger, "a.mp4"), add(ledger, "b.mp4")
    ledger.claim([S.QUEUED], T0, "node-a", T0 + 60, exclude_ids={b.id})
    ledger.claim([S.QUEUED], T0, "node-b", T0 + 60)
    assert ledger.renew("node-a", [a.id, b.id], T0 + 120) == 1
    assert ledger.get(a.id).lease_until == T0 + 120
    assert ledger.get(b.id).lease_until == T0 + 60
    ledger.release("node-a", [a.id, b.id])
    assert (ledger.get(a.id).lease_node, ledger.get(b.id).lease_node) == (None, "node-b")
    assert [j.id for j in ledger.claim([S.QUEUED], T0, "node-c", T0 + 60)] == [a.id]


def test_writes_under_a_lost_lease_are_refused(ledger: LedgerStore, clock: Clock) -> None:
    """A node that stalled past its lease cannot write once another node claimed the job."""
    job = add(ledger)
    [mine] = ledger.claim([S.QUEUED], T0, "node-a", T0 + 60)
    lease = Lease("node-a", T0 + 60)
    ledger.update(job.id, expected=S.QUEUED, lease=lease, attempts=1)
    clock.advance(61)
    ledger.claim([S.QUEUED], T0 + 61, "node-b", T0 + 121)
    with pytest.raises(StaleTransition, match="no longer leased to node-a"):
        ledger.transition(job.id, S.QUEUED, S.ASSET_CREATED, why="late", lease=lease)
    with pytest.raises(StaleTransition, match="no longer leased"):
        ledger.update(job.id, expected=S.QUEUED, lease=lease, submit_started_at=T0)
    after = ledger.get(job.id)
    assert (after.state, after.attempts, after.lease_node) == (S.QUEUED, 1, "node-b")
    assert mine.id == job.id


def test_concurrent_claims_never_share_a_job(backend: Backend) -> None:
    """Four nodes claiming 40 jobs at once in small batches: every job claimed exactly once."""
    stores = [backend.open() for _ in range(4)]
    ids = {add(stores[0], f"{i}.mp4").id for i in range(40)}
    barrier = threading.Barrier(4)
    got: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        node = f"node-{i}"
        try:
            barrier.wait()
            mine: list[int] = []
            while batch := stores[i].claim([S.QUEUED], T0, node, T0 + 600, limit=3):
                mine += [j.id for j in batch if j.lease_node == node]
                stores[i].transition(batch[0].id, S.QUEUED, S.ASSET_CREATED, why=node)
                for j in batch[1:]:
                    stores[i].transition(j.id, S.QUEUED, S.ASSET_CREATED, why=node)
            got[node] = mine
        except BaseException as exc:
            errors.append(exc)

    run_threads(work, 4)
    assert errors == []
    claimed = [j for mine in got.values() for j in mine]
    assert sorted(claimed) == sorted(ids)


def test_nodes_list_heartbeats_and_claimed_jobs(ledger: LedgerStore) -> None:
    """beat records a node (first beat: its start); nodes counts its unexpired leases."""
    add(ledger, "a.mp4")
    add(ledger, "b.mp4")
    ledger.beat("node-b", T0, pid=12, version="1.0")
    ledger.beat("node-a", T0, pid=7, version="1.0")
    ledger.beat("node-a", T0 + 5, pid=7, version="1.0")
    ledger.claim([S.QUEUED], T0, "node-a", T0 + 60)
    [a, b] = ledger.nodes(T0 + 10)
    assert (a.name, a.started_at, a.heartbeat_at, a.pid, a.claimed) == ("node-a", T0, T0 + 5, 7, 2)
    assert (b.name, b.claimed) == ("node-b", 0)
    assert [n.claimed for n in ledger.nodes(T0 + 61)] == [0, 0]


# --- shared request windows ---------------------------------------------------------------------

MINUTE_3 = ((3, 60.0),)


def test_request_windows_pace_every_node_together(backend: Backend) -> None:
    """Two nodes share one window per class and endpoint: the 4th request in 60 s waits."""
    a, b = backend.open(), backend.open()
    ep = "POST /v2/dubbing"
    assert a.reserve_request("write", ep, T0, MINUTE_3, node="a") == 0.0
    assert b.reserve_request("write", ep, T0 + 1, MINUTE_3, node="b") == 0.0
    assert a.reserve_request("write", ep, T0 + 2, MINUTE_3, node="a") == 0.0
    assert b.reserve_request("write", ep, T0 + 10, MINUTE_3, node="b", margin=0.5) == 50.5
    assert b.reserve_request("write", "POST /v2/assets", T0 + 10, MINUTE_3) == 0.0
    assert a.reserve_request("read", ep, T0 + 10, MINUTE_3) == 0.0
    assert b.reserve_request("write", ep, T0 + 60.5, MINUTE_3) == 0.0  # the first one left


def test_request_windows_survive_a_restart(backend: Backend) -> None:
    """Hour and day windows are kept in the ledger: a reopened store still counts them."""
    first = backend.open()
    day = ((2, 86_400.0),)
    for t in (T0, T0 + 3600):
        assert first.reserve_request("write", "POST /v2/dubbing", t, day) == 0.0
    first.close()
    again = backend.open()
    wait = again.reserve_request("write", "POST /v2/dubbing", T0 + 7200, day)
    assert wait == 86_400.0 - 7200


def test_a_429_holds_every_node_and_never_shortens(backend: Backend) -> None:
    """hold_requests_until stops every class and endpoint on every node until then."""
    a, b = backend.open(), backend.open()
    assert a.requests_held_until() == 0.0
    a.hold_requests_until(T0 + 30)
    b.hold_requests_until(T0 + 10)  # a shorter hold does not shorten it
    assert b.requests_held_until() == T0 + 30
    assert b.reserve_request("read", "GET /v2/dubbing/{id}", T0 + 5, ()) == 25.0
    assert b.reserve_request("read", "GET /v2/dubbing/{id}", T0 + 30, ()) == 0.0


# --- feeds and holds (the notifier, the console) ------------------------------------------------


def test_state_changes_after_is_a_resumable_feed(ledger: LedgerStore) -> None:
    """State changes into given states after an event id, oldest first; notes are left out."""
    assert ledger.last_event_id() == 0
    a, b = add(ledger, "a.mp4"), add(ledger, "b.mp4")
    mark = ledger.last_event_id()
    walk(ledger, a.id, S.FAILED)
    ledger.note(b.id, "a note")
    walk(ledger, b.id, S.CANCELLED)
    feed = ledger.state_changes_after(mark, [S.FAILED, S.CANCELLED])
    assert [(e.job_id, e.to_state) for e in feed] == [(a.id, "failed"), (b.id, "cancelled")]
    assert ledger.state_changes_after(feed[0].id, [S.FAILED, S.CANCELLED]) == feed[1:]
    assert ledger.state_changes_after(mark, [S.QUEUED]) == []
    assert ledger.last_event_id() == feed[-1].id


def test_due_and_claim_leave_out_held_watches(ledger: LedgerStore) -> None:
    """A held watch's jobs are neither due nor claimable; the others are."""
    add(ledger, "a.mp4", watch="held")
    b = add(ledger, "b.mp4", watch="open")
    assert [j.id for j in ledger.due([S.QUEUED], T0, exclude_watches={"held"})] == [b.id]
    claimed = ledger.claim([S.QUEUED], T0, "n", T0 + 60, exclude_watches={"held"})
    assert [j.id for j in claimed] == [b.id]


def test_one_active_job_per_watch_path_and_content(backend: Backend) -> None:
    """Four nodes recording one file at once make one job; the others get DuplicateJob."""
    stores = [backend.open() for _ in range(4)]
    made: list[int] = []
    dupes: list[int] = []
    errors: list[BaseException] = []

    def intake(i: int) -> None:
        try:
            made.append(add(stores[i], "shared.mp4", sha256="same").id)
        except DuplicateJob as exc:
            dupes.append(exc.existing_id)
        except BaseException as exc:
            errors.append(exc)

    run_threads(intake, 4)
    assert errors == []
    assert len(made) == 1
    assert dupes == made * 3
    ledger = stores[0]
    assert add(ledger, "other.mp4", sha256="same").id != made[0]  # a twin elsewhere is fine
    walk(ledger, made[0], S.CANCELLED)
    assert add(ledger, "shared.mp4", sha256="same").state is S.QUEUED  # none active: new job


def test_names_that_are_not_utf8_round_trip(ledger: LedgerStore) -> None:
    """A Latin-1 file name is stored and given back as the same path; errors quoting it too."""
    name = os.fsdecode(b"/in/caf\xe9.mp4")
    out = os.fsdecode(b"/out/caf\xe9")
    job = add(ledger, name, output_dir=out, sha256="latin1")
    assert (job.source_path, job.output_dir) == (name, out)
    assert ledger.find_job("inbox", name, 1000, 1) == job
    assert [j.id for j in ledger.jobs_for_path("inbox", name)] == [job.id]
    target = os.fsdecode(b"/out/caf\xe9.de.mp4")
    ledger.set_output(job.id, "de", state=OutputState.DONE, path=target, sha256="s")
    assert ledger.outputs(job.id)[0].path == target
    assert ledger.output_written_by(target, "s") == job.id
    failed = ledger.update(job.id, expected=S.QUEUED, last_error=f"cannot read {name}")
    assert failed.last_error == "cannot read /in/caf\\xe9.mp4"


def test_next_due_at_after_a_time(ledger: LedgerStore) -> None:
    """next_due_at gives the earliest due time, or with ``after`` the earliest later one."""
    a, b = add(ledger, "a.mp4"), add(ledger, "b.mp4")
    ledger.update(a.id, expected=S.QUEUED, next_attempt_at=T0 + 10)
    ledger.update(b.id, expected=S.QUEUED, next_attempt_at=T0 + 20)
    assert ledger.next_due_at([S.QUEUED]) == T0 + 10
    assert ledger.next_due_at([S.QUEUED], after=T0 + 10) == T0 + 20
    assert ledger.next_due_at([S.QUEUED], after=T0 + 20) is None


# --- single-runner work, one status record per node, reads from the request log ---------------


def test_a_runner_lease_is_held_by_one_node_at_a_time(ledger: LedgerStore) -> None:
    """take_runner: free or expired or already ours -> taken; else the holder's name."""
    assert ledger.take_runner("backfill", "a", T0, T0 + 60) is None
    assert ledger.take_runner("backfill", "b", T0 + 1, T0 + 61) == "a"
    assert ledger.take_runner("backfill", "a", T0 + 2, T0 + 62) is None  # ours: renewed
    assert ledger.take_runner("spending", "b", T0 + 2, T0 + 62) is None  # another name
    ledger.renew_runners("a", T0 + 100)
    assert ledger.take_runner("backfill", "b", T0 + 70, T0 + 130) == "a"  # renewed past 62
    ledger.drop_runner("backfill", "b")  # not b's: nothing happens
    assert ledger.take_runner("backfill", "b", T0 + 71, T0 + 131) == "a"
    ledger.drop_runner("backfill", "a")
    assert ledger.take_runner("backfill", "b", T0 + 72, T0 + 132) is None
    assert ledger.take_runner("backfill", "a", T0 + 200, T0 + 260) is None  # b's expired


def test_runner_lease_taken_by_one_of_many_at_once(backend: Backend) -> None:
    """Nodes asking for the same free runner lease at once: exactly one gets it."""
    stores = [backend.open() for _ in range(4)]
    got: list[int] = []

    def ask(i: int) -> None:
        if stores[i % len(stores)].take_runner("backfill", f"n{i}", T0, T0 + 60) is None:
            got.append(i)

    run_threads(ask, 8)
    assert len(got) == 1


def test_each_node_keeps_its_own_status_record(ledger: LedgerStore) -> None:
    """set_node_status writes one record per node name; node_statuses gives all of them."""
    ledger.set_node_status("a", T0, '{"pid": 1}')
    ledger.set_node_status("b", T0, '{"pid": 2}')
    ledger.set_node_status("a", T0 + 5, '{"pid": 3}')
    assert ledger.node_statuses() == {"a": '{"pid": 3}', "b": '{"pid": 2}'}
    ledger.beat("a", T0 + 6, pid=3, version="x")  # a heartbeat keeps the record
    assert ledger.node_statuses()["a"] == '{"pid": 3}'
    assert [n.name for n in ledger.nodes(T0 + 6)] == ["a", "b"]


def test_read_counts_come_from_the_request_log(ledger: LedgerStore) -> None:
    """api_reads_since counts the recorded read requests per ten-minute period, all nodes,
    one endpoint; writes and other endpoints do not count."""
    ep = "GET /v2/dubbing/{id}"
    bucket = 1_750_000_200.0
    day = [(20_000, 86_400.0)]
    for at, node in (
        (bucket + 1, "a"),
        (bucket + 2, "b"),
        (bucket + 599, "a"),
        (bucket + 600, "a"),
    ):
        assert ledger.reserve_request("read", ep, at, day, node=node) == 0.0
    ledger.reserve_request("read", "GET /v2/videos", bucket + 3, day, node="a")
    ledger.reserve_request("write", ep, bucket + 3, [(60, 60.0)], node="a")
    assert ledger.api_reads_since(ep, bucket) == {int(bucket): 3, int(bucket) + 600: 1}
    assert ledger.api_reads_since(ep, bucket + 600) == {int(bucket) + 600: 1}


def test_submits_whose_answer_was_not_recorded_are_counted(ledger: LedgerStore) -> None:
    """A submit marker without a project id (under way, or lost to a crash) since a time
    counts, with its bytes; one recorded or older does not; ``exclude_ids`` leaves out."""
    a, b, c = add(ledger, "a.mp4", size=10), add(ledger, "b.mp4", size=20), add(ledger, "c.mp4")
    for job in (a, b, c):
        walk(ledger, job.id, S.ASSET_CREATED, S.UPLOADED)
    ledger.update(a.id, expected=S.UPLOADED, submit_started_at=T0 + 5)
    ledger.update(b.id, expected=S.UPLOADED, submit_started_at=T0 - 5)  # before ``since``
    ledger.update(c.id, expected=S.UPLOADED, submit_started_at=T0 + 6)
    ledger.transition(c.id, S.UPLOADED, S.DUBBING, why="started", project_id="p")
    assert ledger.unrecorded_submits_since(T0) == (1, 10)
    assert ledger.unrecorded_submits_since(T0 - 10) == (2, 30)
    assert ledger.unrecorded_submits_since(T0 - 10, exclude_ids=[a.id]) == (1, 20)
    walk(ledger, a.id, S.NEEDS_ATTENTION)  # an ambiguous submit keeps counting
    assert ledger.unrecorded_submits_since(T0) == (1, 10)
