"""File names that are not valid UTF-8 (a Latin-1 share, an old archive): dubbed end to end.

Python hands such names over with surrogate escapes; the ledger, the log, the API title, the
output names and every CLI command must cope, or the file is retried (and fails) forever.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from enginefixtures import Engine

from synthesia_watchd.domain.media import sample_video
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service import cli
from synthesia_watchd.telemetry.logsetup import configure_logging

Capsys = pytest.CaptureFixture[str]
RAW = b"\xff\xfebad.mp4"


def put_raw(folder: Path, raw: bytes = RAW, seed: str = "raw name") -> Path:
    """A sample video under a name given as raw bytes; returns its (surrogate-escaped) path."""
    path = os.path.join(os.fsencode(folder), raw)
    with open(path, "wb") as fh:
        fh.write(sample_video(seed, 24 * 1024))
    return Path(os.fsdecode(path))


def output_exists(folder: Path, raw_stem: bytes, lang: str) -> bool:
    return os.path.isfile(
        os.path.join(os.fsencode(folder), raw_stem + f".dubbed-{lang}.mp4".encode())
    )


def test_non_utf8_name_is_dubbed_once_end_to_end(engine: Engine, capsys: Capsys) -> None:
    """The watcher takes it, the API gets a clean title, outputs keep the raw bytes, once."""
    configure_logging(level="info", fmt="json")  # the daemon's own log pipeline, to stdout
    src = put_raw(engine.input)
    engine.put("good.mp4")
    engine.run()
    assert "\\\\xff\\\\xfebad.mp4" in capsys.readouterr().out  # JSON of the escaped name
    engine.assert_all_done()
    job = engine.job_for(src)
    assert job.source_path == str(src)  # the ledger gives back exactly the escaped name
    for lang in job.targets:
        assert output_exists(engine.output, b"\xff\xfebad", lang)
    titles = [a.title for a in engine.sim.assets.values()]
    assert len(titles) == 2 and all(t.encode("utf-8") for t in titles)
    assert any(t.endswith("bad") for t in titles)
    posts = engine.dub_posts()
    engine.run()
    assert engine.dub_posts() == posts, "the same file was paid for again"
    capsys.readouterr()
    for argv in (["status"], ["jobs"], ["show", str(job.id)]):
        assert cli.main([*argv, "--ledger", str(engine.ledger_path)]) == 0, argv
    out = capsys.readouterr().out
    assert "\\xff\\xfebad.mp4" in out


def test_dub_takes_a_non_utf8_name(
    engine: Engine, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dub PATH` with a non-UTF-8 name: done, with the outputs listed readably."""
    monkeypatch.setenv("SYNTHESIA_API_KEY", engine.sim.api_key)
    src = put_raw(engine.input, b"caf\xe9.mp4")
    cfg = str(engine.write_config())
    capsys.readouterr()
    code = cli.main(["dub", str(src), "--targets", "de-DE", "-c", cfg])
    out = capsys.readouterr().out
    assert code == 0, out
    assert output_exists(engine.input, b"caf\xe9", "de-DE")
    assert "caf\\xe9.dubbed-de-DE.mp4" in out
    assert engine.job_for(src).state is JobState.DONE
