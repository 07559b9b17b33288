"""Three daemon processes, one PostgreSQL ledger, one drop folder: one dub per content.

Each node is a real ``run`` subprocess with its own state folder and node name; they share the
input and output folders and the database. Two of them are killed with SIGKILL mid-work (one
while uploading, one while a dub it submitted is running); the survivor takes their jobs over
once the leases expire, polls what was submitted and never submits anything again. Then the
database server itself is stopped as if it crashed and started again while work is left.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from e2efixtures import SOURCE_SIZE, DaemonProcess
from helpers import wait_until
from pgcluster import PASSWORD, Cluster

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.reasons import Reason
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Job, open_ledger

pytestmark = pytest.mark.slow

S = JobState
#: 60 files of 48 distinct contents: more assets than a minute's writes, so the limit binds.
FILES, CONTENTS = 60, 48
WRITES_PER_MINUTE = 40
READS_PER_MINUTE = 90
LEASE = 15


def _nodes(
    tmp_path: Path,
    sim: Simulator,
    daemon_factory: Callable[..., DaemonProcess],
    url: str,
    count: int,
) -> list[DaemonProcess]:
    shared_in, shared_out = tmp_path / "shared-in", tmp_path / "shared-out"
    for folder in (shared_in, shared_out):
        folder.mkdir()
    secret = tmp_path / "ledger_password"
    secret.write_text(PASSWORD + "\n")
    nodes = []
    for i in range(count):
        node = daemon_factory(
            sim,
            settings={
                "ledger": url,
                "ledger_password_file": str(secret),
                "node_name": f"node-{i}",
                "lease_duration": LEASE,
                "api": {
                    "rate_limits": {
                        "writes": {"per_minute": WRITES_PER_MINUTE},
                        "reads": {"per_minute": READS_PER_MINUTE},
                    }
                },
            },
        )
        node.input, node.output = shared_in, shared_out
        nodes.append(node)
    return nodes


def _jobs(url: str) -> list[Job]:
    with open_ledger(url, password=PASSWORD) as ledger:
        return ledger.list_jobs(limit=10_000)


#: Seconds between a request's slot in the window and its arrival that the check forgives:
#: the limiter counts a request when it lets it go, the simulator when it arrives, and on a
#: loaded 2-CPU machine a thread may take this long in between.
SEND_JITTER = 1.0


def _max_in_a_minute(times: list[float]) -> int:
    """Most arrivals in any window of a minute (less the send jitter)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 60.0 - SEND_JITTER:
            start += 1
        best = max(best, end - start + 1)
    return best


def _assert_one_dub_per_content(sim: Simulator, jobs: list[Job]) -> None:
    """No asset submitted twice, no content dubbed twice, every content dubbed or ambiguous."""
    posts = [r for r in sim.requests if r.endpoint == "POST /v2/dubbing"]
    accepted = [r for r in posts if r.status is not None and r.status < 300]
    assets = [r.body["sourceAssetId"] for r in posts]
    assert len(assets) == len(set(assets)), "an asset was submitted twice"
    sha_of_asset = {j.asset_id: j.sha256 for j in jobs if j.asset_id}
    dubbed = [sha_of_asset.get(r.body["sourceAssetId"]) for r in accepted]
    assert len(dubbed) == len(set(dubbed)), "a content was dubbed twice"
    ambiguous = {j.sha256 for j in jobs if j.state is S.NEEDS_ATTENTION}
    assert set(dubbed) | ambiguous == {j.sha256 for j in jobs}
    assert len({j.sha256 for j in jobs}) == CONTENTS


def _assert_paced(sim: Simulator) -> None:
    """Per API endpoint, all nodes together never sent more than a minute's limit."""
    sent: dict[str, list[float]] = collections.defaultdict(list)
    for r in sim.requests:
        if r.endpoint.startswith(("POST /v2/", "PUT /v2/", "GET /v2/")):
            sent[r.endpoint].append(r.time)
    writes = [_max_in_a_minute(t) for e, t in sent.items() if not e.startswith("GET")]
    reads = [_max_in_a_minute(t) for e, t in sent.items() if e.startswith("GET")]
    assert len(sent["POST /v2/assets"]) > WRITES_PER_MINUTE  # the write limit had to bind
    assert max(writes) <= WRITES_PER_MINUTE, dict(sent)
    assert max(reads) <= READS_PER_MINUTE


def test_three_nodes_one_folder_one_dub_per_content(
    pg_cluster: Cluster,
    pg_database: str,  # set up first, so dropped only after the daemons are stopped
    tmp_path: Path,
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
) -> None:
    """60 files (48 distinct contents) on 3 nodes, one SIGKILLed mid-upload, one mid-dub, then
    a PostgreSQL crash and restart: every job ends, one POST /v2/dubbing per content, the
    killed node's dub is polled to done (not resubmitted), and the requests of all nodes
    together never exceed the per-minute limits."""
    sim = e2e_sim(dub_seconds=2.0)
    nodes = _nodes(tmp_path, sim, daemon_factory, pg_database, 3)
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_started()
    contents = [
        sample_video(f"multi:{i}:{secrets.token_hex(4)}", SOURCE_SIZE) for i in range(CONTENTS)
    ]
    for i in range(FILES):
        nodes[0].drop(f"clip-{i:02}.mp4", contents[i % CONTENTS])

    def held(state: JobState, node: str) -> list[Job]:
        return [j for j in _jobs(pg_database) if j.state is state and j.lease_node == node]

    wait_until(lambda: held(S.ASSET_CREATED, "node-1"), timeout=60, what="node-1 uploading")
    nodes[1].kill()
    polled = wait_until(lambda: held(S.DUBBING, "node-2"), timeout=60, what="node-2 polling")
    nodes[2].kill()

    def some_done_some_left() -> bool:
        states = collections.Counter(j.state for j in _jobs(pg_database))
        return states[S.DONE] >= 5 and states[S.DONE] + states[S.NEEDS_ATTENTION] < FILES

    wait_until(some_done_some_left, timeout=120, interval=0.2, what="work done and left")
    pg_cluster.stop("immediate")  # as if the server crashed: recovery from WAL on start
    pg_cluster.start()

    def settled() -> list[Job] | None:
        jobs = _jobs(pg_database)
        ended = all(j.state in (S.DONE, S.NEEDS_ATTENTION, S.FAILED) for j in jobs)
        return jobs if len(jobs) == FILES and ended else None

    jobs = wait_until(settled, timeout=240, interval=0.5, what="every job settled")
    assert nodes[0].running
    # A job whose submit marker a killed node left is ambiguous: a person decides, never a
    # blind resubmit. Every other job is done, the dub node-2 was polling among them.
    # An identical file's job waits beside it (it would pay again), naming that job.
    ambiguous = [j for j in jobs if j.state is S.NEEDS_ATTENTION]
    marked = {j.sha256 for j in ambiguous if j.submit_started_at is not None}
    for j in ambiguous:
        if j.submit_started_at is None:
            assert j.reason_code == Reason.TWIN_NEEDS_ATTENTION.value, j
            assert j.sha256 in marked, j
    done = {j.id: j for j in jobs if j.state is S.DONE}
    assert len(done) + len(ambiguous) == FILES, collections.Counter(j.state for j in jobs)
    assert all(j.id in done and done[j.id].project_id == j.project_id for j in polled), polled
    _assert_one_dub_per_content(sim, jobs)
    with open_ledger(pg_database, password=PASSWORD) as ledger:
        for job in done.values():
            files = [o.path for o in ledger.outputs(job.id)]
            assert len(files) == 2, (job.id, files)
            assert all(p and Path(p).is_file() for p in files), files
    _assert_paced(sim)
