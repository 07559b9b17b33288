"""Outputs already on disk are adopted with no API call, and only when they can be trusted."""

from __future__ import annotations

import os
from pathlib import Path

from enginefixtures import TARGETS, Engine

from synthesia_watchd.domain.states import JobState
from synthesia_watchd.files.adopt import ADOPTED


def _script_outputs(engine: Engine, source: Path, languages: tuple[str, ...] = TARGETS) -> None:
    """What a one-off script left behind: one dubbed file per language, newer than the source."""
    for lang in languages:
        out = engine.output / f"{source.stem}.dubbed-{lang}.mp4"
        out.write_bytes(b"dubbed by a script " + lang.encode())
        st = source.stat()
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _whys(engine: Engine, source: Path) -> list[str]:
    job = engine.job_for(source)
    with engine.ledger() as ledger:
        return [e.why for e in ledger.events(job.id)]


def test_outputs_left_by_a_script_are_adopted_without_an_api_call(stepped_engine: Engine) -> None:
    """Every output present and newer than the source: done, adopted, nothing sent."""
    engine = stepped_engine
    source = engine.put("talk.mp4")
    _script_outputs(engine, source)
    engine.step()
    engine.assert_all_done()
    assert any(ADOPTED in why for why in _whys(engine, source))
    assert engine.sim.count("POST /v2/assets") == 0
    outs = engine.outputs(engine.job_for(source))
    assert {o.language for o in outs if o.path and o.sha256} == set(TARGETS)


def test_a_missing_language_means_no_adoption(stepped_engine: Engine) -> None:
    """One requested output absent: the file is dubbed as usual (all or nothing)."""
    engine = stepped_engine
    source = engine.put("talk.mp4")
    _script_outputs(engine, source, TARGETS[:1])
    engine.step()
    assert not any(ADOPTED in why for why in _whys(engine, source))
    assert engine.dub_posts() == 1


def test_outputs_older_than_the_source_are_not_adopted(stepped_engine: Engine) -> None:
    """A source saved after its outputs is a new version: it is dubbed, not adopted."""
    engine = stepped_engine
    source = engine.put("talk.mp4")
    _script_outputs(engine, source)
    for out in engine.output.iterdir():
        st = source.stat()
        os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns - 1_000_000_000))
    engine.step()
    assert not any(ADOPTED in why for why in _whys(engine, source))
    assert engine.dub_posts() == 1


def test_outputs_the_ledger_gave_another_source_are_not_adopted(stepped_engine: Engine) -> None:
    """talk.mov with an old mtime does not take over the outputs dubbed for talk.mp4."""
    engine = stepped_engine
    first = engine.put("talk.mp4")
    engine.step()
    engine.assert_all_done()
    second = engine.put("talk.mov", seed="another video")
    os.utime(second, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns))
    engine.step()
    assert not any(ADOPTED in why for why in _whys(engine, second))
    assert engine.job_for(second).state is not JobState.DONE or engine.dub_posts() == 2
