"""Two daemon processes, one PostgreSQL ledger, one share mounted at a different path on each.

The share is a real folder; each node reaches it through its own bind mount (as two hosts
mount one NAS export at different places), with its watch's input, output and move target
under that mount. Jobs are named by watch and relative path in the ledger, so both nodes
make one job per file, and a node taking over a dead node's job finds the source, writes the
outputs and moves the source through its own mount. Node A's mount is taken away once it is
dead: anything still using A's paths would find nothing there.
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2efixtures import SOURCE_SIZE, TARGETS, DaemonProcess
from helpers import wait_until
from pgcluster import PASSWORD

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.simulator import Simulator
from synthesia_watchd.stores.ledger import Job, open_ledger

pytestmark = pytest.mark.slow

S = JobState
#: The shortest lease the config takes: a dead node's jobs are free this long after it died.
LEASE = 15


#: Bind mounts need root: as another user the test asks sudo (without a password prompt).
_AS_ROOT: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]


class Share:
    """One real folder (drop, dubbed, done, staging) and the bind mounts that reach it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("drop/sub", "dubbed", "done", "staging"):
            (root / name).mkdir(parents=True)
        self.views: list[Path] = []

    def mount(self, at: Path) -> Path:
        """Bind-mount the share at ``at`` (this node's view of it)."""
        at.mkdir()
        subprocess.run([*_AS_ROOT, "mount", "--bind", str(self.root), str(at)], check=True)
        self.views.append(at)
        return at

    def unmount(self, view: Path) -> None:
        """Take a view away (lazily: a dead daemon's open handles do not keep it)."""
        subprocess.run([*_AS_ROOT, "umount", "--lazy", str(view)], check=True)
        self.views.remove(view)

    def drop(self, rel: str) -> Path:
        """A finished copy landing in the drop folder in one rename; its path in the share."""
        body = sample_video(f"relpaths:{rel}:{secrets.token_hex(4)}", SOURCE_SIZE)
        staged = self.root / "staging" / Path(rel).name
        staged.write_bytes(body)
        dest = self.root / "drop" / rel
        staged.replace(dest)
        return dest


@pytest.fixture
def share(tmp_path: Path) -> Iterator[Share]:
    """The share; every view still mounted is unmounted afterwards."""
    made = Share(tmp_path / "share")
    try:
        yield made
    finally:
        for view in list(made.views):
            made.unmount(view)


def _node(
    daemon_factory: Callable[..., DaemonProcess],
    sim: Simulator,
    url: str,
    name: str,
    view: Path,
    secret: Path,
) -> DaemonProcess:
    node = daemon_factory(
        sim,
        settings={
            "ledger": url,
            "ledger_password_file": str(secret),
            "node_name": name,
            "lease_duration": LEASE,
        },
        watch={"on_success": {"move": str(view / "done")}},
    )
    node.input, node.output = view / "drop", view / "dubbed"
    return node


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "ledger_password"
    secret.write_text(PASSWORD + "\n")
    return secret


def _jobs(url: str) -> list[Job]:
    """Every job, paths as recorded (no watch folders given)."""
    with open_ledger(url, password=PASSWORD) as ledger:
        return ledger.list_jobs(limit=10_000)


def _raw_output_paths(url: str, job_id: int) -> list[str]:
    with open_ledger(url, password=PASSWORD) as ledger:
        return sorted(o.path or "" for o in ledger.outputs(job_id))


def _dub_posts(sim: Simulator) -> list[str]:
    """The source asset of every accepted POST /v2/dubbing."""
    return [
        r.body["sourceAssetId"]
        for r in sim.requests
        if r.endpoint == "POST /v2/dubbing" and r.status is not None and r.status < 300
    ]


def _outputs_in_share(share: Share, rel: str) -> list[Path]:
    stem = Path(rel)
    return [
        share.root / "dubbed" / stem.parent / f"{stem.stem}.dubbed-{lang}.mp4" for lang in TARGETS
    ]


def test_nodes_mounting_the_share_at_different_paths_dub_each_file_once(
    tmp_path: Path,
    share: Share,
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    pg_database: str,
) -> None:
    """Both nodes see every file (at their own paths): one job and one POST /v2/dubbing per
    file, every output written once in the share's mirrored folders, every source moved, and
    each node's `jobs` shows its own paths."""
    sim = e2e_sim(dub_seconds=1.0)
    secret = _secret(tmp_path)
    a_view, b_view = share.mount(tmp_path / "view-a"), share.mount(tmp_path / "view-b")
    nodes = [
        _node(daemon_factory, sim, pg_database, "node-a", a_view, secret),
        _node(daemon_factory, sim, pg_database, "node-b", b_view, secret),
    ]
    for node in nodes:
        node.start()
    for node in nodes:
        node.wait_started()
    rels = [f"clip-{i}.mp4" for i in range(4)] + [f"sub/deep-{i}.mp4" for i in range(2)]
    for rel in rels:
        share.drop(rel)

    def settled() -> list[Job] | None:
        jobs = _jobs(pg_database)
        done = len(jobs) >= len(rels) and all(j.state is S.DONE for j in jobs)
        return jobs if done else None

    jobs = wait_until(settled, timeout=180, interval=0.5, what="every job done")
    assert sorted(j.rel_path or "" for j in jobs) == sorted(rels)
    posts = _dub_posts(sim)
    assert len(posts) == len(rels) == len(set(posts)), posts
    for rel in rels:
        assert all(p.is_file() for p in _outputs_in_share(share, rel)), rel
        assert (share.root / "done" / rel).is_file(), f"{rel} not moved on success"
        assert not (share.root / "drop" / rel).exists()
    assert not [p for p in share.root.rglob("*.part")]
    # Each node's operator view is its own mount.
    for node, view in zip(nodes, (a_view, b_view), strict=True):
        listed = json.loads(node.cli("jobs", "--json").stdout)
        assert {row["source"] for row in listed} == {str(view / "drop" / r) for r in rels}
    worked = collections.Counter(j.lease_node for j in jobs)
    assert worked[None] == len(rels), worked  # every lease given back
    for node in nodes:
        assert node.running


def test_a_node_takes_over_a_dead_nodes_job_through_its_own_mount(
    tmp_path: Path,
    share: Share,
    e2e_sim: Callable[..., Simulator],
    daemon_factory: Callable[..., DaemonProcess],
    pg_database: str,
) -> None:
    """Node A dies mid-download, holding the job's lease, and its mount goes away; node B
    takes the job over once the lease expires, fetches the paid dub again (never submits
    again), writes the outputs and moves the source through its own mount."""
    sim = e2e_sim(dub_seconds=1.0)
    secret = _secret(tmp_path)
    a_view, b_view = share.mount(tmp_path / "view-a"), share.mount(tmp_path / "view-b")
    node_a = _node(daemon_factory, sim, pg_database, "node-a", a_view, secret)
    node_b = _node(daemon_factory, sim, pg_database, "node-b", b_view, secret)
    gate = sim.pause("DOWNLOAD")
    node_a.start()
    node_a.wait_started()
    share.drop("sub/talk.mp4")
    assert gate.wait_arrived(timeout=60), "node-a never started downloading"
    [job] = _jobs(pg_database)
    assert (job.state, job.lease_node) == (S.DOWNLOADING, "node-a")
    assert job.source_path == str(a_view / "drop" / "sub" / "talk.mp4")
    node_a.kill()
    share.unmount(a_view)
    gate.release()
    node_b.start()
    node_b.wait_started()

    def done() -> Job | None:
        [j] = _jobs(pg_database)
        return j if j.state is S.DONE else None

    finished = wait_until(done, timeout=LEASE + 90, interval=0.5, what="the job done on node-b")
    assert len(_dub_posts(sim)) == 1
    assert finished.project_id == job.project_id
    assert all(p.is_file() for p in _outputs_in_share(share, "sub/talk.mp4"))
    assert _raw_output_paths(pg_database, job.id) == sorted(
        str(b_view / "dubbed" / "sub" / f"talk.dubbed-{lang}.mp4") for lang in TARGETS
    )
    assert (share.root / "done" / "sub" / "talk.mp4").is_file()
    assert list(a_view.iterdir()) == []  # nothing written where node A's mount was
    assert not [p.name for p in share.root.rglob("*.part")]
    events = [e for e in node_b.log() if e.get("job_id") == str(job.id)]
    assert events, "node-b never worked on the job"
