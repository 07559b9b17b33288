"""Faults at download time: one language's unsafe URL, a full output disk.

Each drives the daemon's `run --once` against the simulator over real folders.
"""

from __future__ import annotations

from collections.abc import Callable

from enginefixtures import Engine

from synthesia_watchd.states import JobState, OutputState


def test_unsafe_url_fails_only_its_language(engine_factory: Callable[..., Engine]) -> None:
    """A plain-http metadata URL for es-ES fails es-ES only; fr-FR is written; job partial."""
    engine = engine_factory()
    engine.sim.faults.add("GET /v2/dubbing/{id}", "unsafe_url", language="es-ES")
    engine.put("talk.mp4")
    engine.run()
    job = engine.jobs()[0]
    assert job.state is JobState.PARTIAL, (job.state, job.last_error)
    outs = {o.language: o for o in engine.outputs(job)}
    assert outs["fr-FR"].state is OutputState.DONE
    assert (engine.output / "talk.dubbed-fr-FR.mp4").stat().st_size > 0
    assert outs["es-ES"].state is OutputState.FAILED
    assert outs["es-ES"].error_code == "unsafe_download_url"
    assert "unsafe_download_url" in (job.last_error or ""), job.last_error
    with engine.ledger() as ledger:
        history = [e.why for e in ledger.events(job.id)]
    assert any("es-ES/video not downloaded" in h and "169.254.169.254" in h for h in history)
    assert not (engine.output / "talk.dubbed-es-ES.mp4").exists()
    assert engine.sim.count("DOWNLOAD") == 1  # only fr-FR was fetched
