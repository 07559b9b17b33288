"""Paths as the ledger keeps them and as this node sees them.

A job's file is named by its watch and the path relative to the watch's input folder
(``rel_path``); an output by the path relative to the job's watch's output root. Each node
resolves both through its own folders (a `PathMap` built from its config), so hosts may
mount a share at different paths. The absolute paths the recording node saw are kept beside
them: they are what a node without the watch (or a command given no config) shows, and what
identifies a job recorded without a relative path.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from synthesia_watchd.domain.names import from_db, to_db
from synthesia_watchd.domain.pathmap import PathMap, rel_parent, relative, under_text
from synthesia_watchd.domain.states import ACTIVE

from .base import Job

_ACTIVE = frozenset(s.value for s in ACTIVE)

if TYPE_CHECKING:  # sqlbase resolves jobs through this module
    from .sqlbase import SqlConn


def frozen_root(settings: Mapping[str, Any] | str | None, key: str) -> str | None:
    """A folder frozen into a job's settings (``input_root``, ``output_root``), if any."""
    if isinstance(settings, str):
        try:
            settings = json.loads(settings)
        except ValueError:
            return None
    if not isinstance(settings, Mapping):
        return None
    value = settings.get(key)
    return value if isinstance(value, str) else None


def source_key(
    paths: PathMap, watch: str, source_path: str, settings: Mapping[str, Any] | None
) -> str | None:
    """The relative path a new job is recorded under: inside this node's input folder of the
    watch, else inside the input folder frozen into its settings; None when neither holds it."""
    key = paths.source_key(watch, source_path)
    if key is None:
        key = relative(frozen_root(settings, "input_root"), source_path)
    return key


def source_where(
    watch: str,
    source_path: str,
    key: str | None,
    also: str = "",
    also_params: Sequence[Any] = (),
) -> tuple[str, list[Any]]:
    """WHERE clause for the jobs of one file: by relative path (or, for jobs recorded without
    one, the absolute path); without a key, by the absolute path as recorded. ``also``
    (`` AND ...``) narrows each branch, so both use the (watch, path) indexes: a lookup by
    file never scans a watch's jobs, however many it has."""
    if key is None:
        return f"watch = ? AND source_path = ?{also}", [watch, to_db(source_path), *also_params]
    return (
        # ``also`` is built by this package from fixed text and ``?`` marks, never from input.
        f"id IN (SELECT id FROM jobs WHERE watch = ? AND rel_path = ?{also}"  # noqa: S608
        f" UNION ALL SELECT id FROM jobs WHERE watch = ? AND rel_path IS NULL"
        f" AND source_path = ?{also})",
        [watch, to_db(key), *also_params, watch, to_db(source_path), *also_params],
    )


def localize(job: Job, paths: PathMap) -> Job:
    """The job with this node's source path, output folder and frozen folders."""
    folders = paths.folders(job.watch)
    if job.rel_path is None or folders is None:
        return job
    settings = paths.settings(job.watch, job.settings)
    assert settings is not None
    return dataclasses.replace(
        job,
        source_path=under_text(folders.input, job.rel_path),
        output_dir=under_text(folders.output_root, rel_parent(job.rel_path)),
        settings=MappingProxyType(settings),
    )


def output_path(paths: PathMap, watch: str, rel: str | None, recorded: str | None) -> str | None:
    """An output's path on this node: its relative path under this node's output root of
    the watch, else the path as recorded."""
    folders = paths.folders(watch)
    if rel is None or folders is None:
        return recorded
    return under_text(folders.output_root, rel)


def output_key(
    paths: PathMap, watch: str, settings: Mapping[str, Any] | str, path: str
) -> str | None:
    """The relative path an output is recorded under (this node's output root of the job's
    watch, else the root frozen into the job's settings)."""
    folders = paths.folders(watch)
    if folders is not None:
        key = relative(folders.output_root, path)
        if key is not None:
            return key
    return relative(frozen_root(settings, "output_root"), path)


def output_where(paths: PathMap, path: str) -> tuple[str, list[Any]]:
    """WHERE clause (on outputs ``o`` joined to jobs ``j``) for the output at ``path`` on
    this node: recorded at that path, or at its relative path in a watch whose output root
    holds it here."""
    clauses, params = ["o.path = ?"], [to_db(path)]
    for watch, rel in paths.output_keys(path):
        clauses.append("(j.watch = ? AND o.rel_path = ?)")
        params += [watch, to_db(rel)]
    return f"({' OR '.join(clauses)})", params


def fill_relative_paths(c: SqlConn) -> None:
    """Schema step: give jobs and outputs recorded before relative paths theirs, from their
    absolute paths and the folders frozen into each job's settings (the watch's config when
    the job was recorded). A row neither folder holds keeps its absolute path only, and so
    does the second of two active jobs that would share a relative path and content (a watch
    whose folder moved), so one active job per file still holds."""
    active: set[tuple[str, str, str | None]] = set()
    for row in c.rows(
        "SELECT id, watch, source_path, sha256, state, settings FROM jobs"
        " WHERE rel_path IS NULL ORDER BY id"
    ):
        key = relative(frozen_root(row["settings"], "input_root"), from_db(row["source_path"]))
        if key is None:
            continue
        if row["state"] in _ACTIVE and row["sha256"] is not None:
            if (row["watch"], key, row["sha256"]) in active:
                continue
            active.add((row["watch"], key, row["sha256"]))
        c.run("UPDATE jobs SET rel_path = ? WHERE id = ?", (to_db(key), row["id"]))
    for row in c.rows(
        "SELECT o.job_id, o.language, o.kind, o.path, j.settings FROM outputs o"
        " JOIN jobs j ON j.id = o.job_id WHERE o.path IS NOT NULL AND o.rel_path IS NULL"
    ):
        key = relative(frozen_root(row["settings"], "output_root"), from_db(row["path"]))
        if key is not None:
            c.run(
                "UPDATE outputs SET rel_path = ? WHERE job_id = ? AND language = ? AND kind = ?",
                (to_db(key), row["job_id"], row["language"], row["kind"]),
            )
