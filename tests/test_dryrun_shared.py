"""``--dry-run`` shares the run's folder walk and its paid-already decision."""

from __future__ import annotations

import os
import time
from pathlib import Path

from enginefixtures import TARGETS, Engine

from synthesia_watchd.domain import outputs
from synthesia_watchd.engine.dryrun import discover, plan_file
from synthesia_watchd.stores.ledger import Ledger


def _age(*paths: Path) -> None:
    """Backdate files so the dry run does not see them as still settling."""
    old = time.time() - 60
    for p in paths:
        os.utime(p, (old, old))


def test_reuse_is_promised_only_for_the_same_output_kinds(stepped_engine: Engine) -> None:
    """A copy of a file dubbed as video only is not free when the watch now also wants
    captions (the run would dub it); with the same kinds it is."""
    engine = stepped_engine
    engine.put("a.mp4", seed="same")
    engine.step()
    copy = engine.put("copy.mp4", seed="same")
    _age(copy)
    with Ledger(engine.ledger_path) as ledger:
        same = plan_file(engine.config().watches[0], copy, ledger, time.time())
        more = engine.config(outputs=["video", "captions"]).watches[0]
        wider = plan_file(more, copy, ledger, time.time())
    assert same.action == "reuse", same
    assert wider.action == "dub", wider


def test_outputs_on_disk_are_promised_as_adopted(tmp_path: Path, stepped_engine: Engine) -> None:
    """Every output already on disk and newer than the source: the dry run says free, as the
    run's adoption does, with or without a ledger."""
    engine = stepped_engine
    src = engine.put("talk.mp4")
    _age(src)
    for lang in TARGETS:
        (engine.output / outputs.output_name("talk", lang, "video")).write_bytes(b"dubbed " * 9)
    watch = engine.config().watches[0]
    item = plan_file(watch, src, None, time.time())
    assert item.action == "reuse" and "adopted" in item.detail, item


def test_the_dry_run_walks_as_the_watcher_does(stepped_engine: Engine) -> None:
    """The dry run offers what the watcher's walk finds: a FIFO under a video's name is not
    a file to dub (the watcher never takes one either)."""
    engine = stepped_engine
    kept = engine.put("sub/a.mp4")
    os.mkfifo(engine.input / "pipe.mp4")
    assert list(discover(engine.config().watches[0])) == [kept]
