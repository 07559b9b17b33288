"""Where dubbed files go, and what happens to a source afterwards (pure except the post-actions).

This module owns output kinds and names: every caller (intake, downloads, reuse, filters)
derives them from here. Output names are built from the source's stem and a language code
that came from config or the API, so the code is checked against a strict pattern, and every
write (outputs, temp files, moved sources, reason files) reaches its folder from the root
without following symlinks (see saferoot): a hostile code or a swapped folder can never write
elsewhere. Subfolders of the input are mirrored under the output root and under move
targets, so two ``intro.mp4`` in different subfolders never collide.

Post-actions never lose a file: a move is a hard link plus unlink on one filesystem, and a
copy, fsync, no-clobber link, then unlink across filesystems; an existing name is never
overwritten (``name (1).mp4`` instead). A failed source is never deleted: it may be the only
copy, and the operator needs it to retry.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import json
import os
import re
import shutil
import stat as stat_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Protocol

from synthesia_watchd.files.atomic import PART_SUFFIX, AtomicWriter, fsync_dir, temp_name_for
from synthesia_watchd.files.saferoot import SafeDir, open_parent

from .errors import UnsafePathError, WatchdError
from .names import printable

_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")

#: Output kind -> file extension of ``<stem>.dubbed-<lang><ext>``.
KIND_EXTENSIONS: dict[str, str] = {
    "video": ".mp4",
    "vtt": ".vtt",
    "srt": ".srt",
    "thumbnail": ".jpg",
}

#: Values of a watch's ``outputs:`` option -> the output kinds each stands for.
OUTPUT_OPTIONS: dict[str, tuple[str, ...]] = {
    "video": ("video",),
    "captions": ("vtt", "srt"),
    "thumbnail": ("thumbnail",),
}

REASON_SUFFIX = ".reason.json"

#: Names the daemon writes itself (outputs of any kind, failure reasons): never new work.
OWN_OUTPUT = re.compile(
    r"\.dubbed-[a-z0-9-]+(?:"
    + "|".join(re.escape(ext) for ext in sorted(set(KIND_EXTENSIONS.values())))
    + ")$|"
    + re.escape(REASON_SUFFIX)
    + "$",
    re.IGNORECASE,
)
_MAX_UNIQUE_TRIES = 10_000


class PostActionLike(Protocol):
    """What a post-action needs from config's ``PostAction``."""

    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> Path | None: ...


class WatchPaths(Protocol):
    """What path building needs from config's ``WatchConfig``."""

    @property
    def input(self) -> Path: ...
    @property
    def output_root(self) -> Path: ...


class OutputsNotVerified(WatchdError):
    """Raised when on_success would run but an output is missing or empty; nothing was touched."""


def sanitize_language(code: str) -> str:
    """Return ``code`` if it is a plain language tag (``de``, ``pt-BR``), else UnsafePathError."""
    if not isinstance(code, str) or not _LANGUAGE.fullmatch(code):
        raise UnsafePathError(f"refusing language code {code!r} in a file name")
    return code


def relative_source(watch: WatchPaths, source: Path) -> PurePath:
    """``source`` relative to the watch's input folder (UnsafePathError when outside it)."""
    base = os.path.abspath(watch.input)
    full = os.path.abspath(source)
    try:
        rel = os.path.relpath(full, base)
    except ValueError:  # another drive on Windows
        rel = os.pardir
    if rel == os.curdir or rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise UnsafePathError(f"{Path(source).name}: not inside the watch's input folder")
    return PurePath(rel)


def output_dir(watch: WatchPaths, source: Path) -> Path:
    """The folder for ``source``'s outputs: the output root plus the source's subfolder."""
    return Path(watch.output_root) / relative_source(watch, source).parent


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to somewhere inside ``root``."""
    real_root = root.resolve(strict=False)
    real = path.resolve(strict=False)
    return real == real_root or real_root in real.parents


def output_kinds(requested: Sequence[str]) -> list[str]:
    """Output kinds for the ``outputs:`` option (``captions`` is both vtt and srt)."""
    kinds: list[str] = []
    for item in requested:
        kinds.extend(OUTPUT_OPTIONS.get(item, (item,)))
    return kinds or ["video"]


def remove_temp_files(root: Path, folder: Path, stem: str) -> None:
    """Remove the temp files an interrupted download of ``stem``'s outputs left in ``folder``.

    The folder is reached from ``root`` without following symlinks: even a cleanup never
    deletes outside the output root. Best effort: an unreachable folder is left alone.
    """
    pattern = f".{glob.escape(stem)}.dubbed-*{PART_SUFFIX}"
    try:
        with open_parent(root, folder / pattern, create=False) as d:
            for name in os.listdir(d.fd):
                if fnmatch.fnmatchcase(name, pattern):
                    d.unlink(name)
    except (OSError, UnsafePathError):
        return


def output_name(stem: str, language: str, kind: str) -> str:
    """``<stem>.dubbed-<lang><ext>``: the one spelling of an output's file name.

    The language is sanitised here (it may have come from the API), so the name never holds
    a separator.
    """
    ext = KIND_EXTENSIONS.get(kind)
    if ext is None:
        raise ValueError(f"unknown output kind {kind!r}; expected one of {sorted(KIND_EXTENSIONS)}")
    return f"{stem}.dubbed-{sanitize_language(language)}{ext}"


def output_path(watch: WatchPaths, source: Path, language: str, kind: str = "video") -> Path:
    """``<output_dir>/<stem>.dubbed-<lang><ext>``; UnsafePathError if it would leave the root."""
    path = output_dir(watch, source) / output_name(Path(source).stem, language, kind)
    if not _inside(path, Path(watch.output_root)):
        raise UnsafePathError(f"{path.name}: the output would land outside the output folder")
    return path


@dataclass(frozen=True)
class OutputSink:
    """Where one download is written: its final name inside its root, and which file already
    there it may replace; the API client streams into ``writer()`` and calls ``commit``."""

    dest: Path
    root: Path | None = None
    replace_if: Callable[[Path], bool] | None = None

    def writer(self) -> AtomicWriter:
        return AtomicWriter(self.dest, root=self.root)

    def commit(self, writer: AtomicWriter) -> None:
        writer.commit(replace_if=self.replace_if)


def verify_outputs(paths: Sequence[Path]) -> list[str]:
    """Problems that forbid touching the source: outputs missing, empty or not files."""
    problems: list[str] = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            problems.append(f"{p.name}: missing")
            continue
        except OSError as exc:
            problems.append(f"{p.name}: cannot stat: {exc.strerror}")
            continue
        if not stat_mod.S_ISREG(st.st_mode):
            problems.append(f"{p.name}: not a regular file")
        elif st.st_size == 0:
            problems.append(f"{p.name}: empty")
    return problems


def _numbered(name: str, n: int) -> str:
    """``clip.mp4`` -> ``clip (n).mp4`` (n == 0 keeps the name)."""
    if n == 0:
        return name
    p = PurePath(name)
    return f"{p.stem} ({n}){p.suffix}"


def _free_name(
    folder: SafeDir, name: str, start: int = 0, *, reason_too: bool = False
) -> tuple[str, int]:
    """The first ``name`` / ``name (n)`` (n >= start) in ``folder`` not taken, and its n.

    With ``reason_too`` the name's reason file must be free as well.
    """
    for n in range(start, start + _MAX_UNIQUE_TRIES):
        cand = _numbered(name, n)
        if folder.lexists(cand):
            continue
        if reason_too and folder.lexists(cand + REASON_SUFFIX):
            continue
        return cand, n
    raise WatchdError(f"{name}: no free name in the target folder after {_MAX_UNIQUE_TRIES} tries")


_NO_HARDLINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK)


def _place(
    folder: SafeDir,
    name: str,
    link: Callable[[str], None],
    rename: Callable[[str], None],
    *,
    reason_too: bool,
) -> str:
    """Link a file to the first free ``name`` / ``name (n)`` in ``folder``; returns the name.

    Where hard links are not supported, a rename to a name checked to be free.
    """
    n = 0
    while True:
        target, n = _free_name(folder, name, n, reason_too=reason_too)
        try:
            link(target)
            return target
        except FileExistsError:
            pass  # taken since we looked
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            if not folder.lexists(target):
                rename(target)
                return target
        n += 1


def _copy_across(src: Path, folder: SafeDir, tmp: str) -> None:
    """Copy ``src`` to a fresh ``tmp`` in ``folder``, fsync it, keep mode and times."""
    fd = folder.open_new(tmp)
    try:
        st = os.stat(src)
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fchmod(out.fileno(), stat_mod.S_IMODE(st.st_mode))
            os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
            os.fsync(out.fileno())
            copied = os.fstat(out.fileno()).st_size
        if copied != st.st_size:
            raise WatchdError(f"{src.name}: the copy is shorter than the source; source kept")
    except BaseException:
        folder.unlink(tmp)
        raise


def move_file(
    src: Path,
    dest: Path,
    *,
    link: Callable[[Path, Path], None] | None = None,
    reason_too: bool = False,
    root: Path | None = None,
) -> Path:
    """Move ``src`` to ``dest`` or the first free ``dest (n)``; never overwrite, never lose it.

    Same filesystem: hard link (fails instead of clobbering), then unlink the source.
    Across filesystems: copy to a hidden temp name beside the target, fsync, link that into
    place, and only then unlink the source. With ``root``, the target folder is reached from
    it without following symlinks (EscapingPath otherwise). Returns where the file now is.
    ``link`` is a seam for tests (raise EXDEV to take the cross-filesystem path).
    """
    with open_parent(root, dest) as folder:
        fd = folder.fd

        def link_in(name: str) -> None:
            if link is not None:
                link(src, folder.path / name)
            else:
                os.link(src, name, dst_dir_fd=fd)

        def rename_in(name: str) -> None:
            os.rename(src, name, dst_dir_fd=fd)

        try:
            placed = _place(folder, dest.name, link_in, rename_in, reason_too=reason_too)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            tmp = temp_name_for(dest).name
            _copy_across(src, folder, tmp)
            try:
                placed = _place(
                    folder,
                    dest.name,
                    lambda name: os.link(tmp, name, src_dir_fd=fd, dst_dir_fd=fd),
                    lambda name: os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd),
                    reason_too=reason_too,
                )
            finally:
                folder.unlink(tmp)
        folder.fsync()
        target = folder.path / placed
    with contextlib.suppress(FileNotFoundError):  # the no-hardlink fallback renamed it
        src.unlink()
    fsync_dir(src.parent)
    return target


def _move_target(action: PostActionLike, watch: WatchPaths, source: Path) -> Path:
    if action.path is None:
        raise WatchdError(f"{source.name}: post-action 'move' has no target folder")
    return Path(action.path) / relative_source(watch, source)


def apply_on_success(
    action: PostActionLike, source: Path, watch: WatchPaths, outputs: Sequence[Path]
) -> Path | None:
    """Run on_success once every output is verified; returns the source's new path on move.

    Raises OutputsNotVerified (touching nothing) when an output is missing or empty.
    """
    problems = verify_outputs(outputs)
    if problems:
        raise OutputsNotVerified(
            f"{source.name}: outputs not verified, source left in place: " + "; ".join(problems)
        )
    if action.kind == "keep":
        return None
    if action.kind == "delete":
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
            fsync_dir(source.parent)
        return None
    if action.kind == "move":
        return move_file(source, _move_target(action, watch, source), root=action.path)
    raise WatchdError(f"unknown on_success action {action.kind!r}")


def apply_on_failure(
    action: PostActionLike,
    source: Path,
    watch: WatchPaths,
    *,
    error: str,
    context: str | None,
    now: float,
) -> Path | None:
    """Run on_failure; on move, write ``<name>.reason.json`` beside the moved file.

    ``keep`` (and ``delete``, which is refused for a failed source) leave the file in place;
    the ledger remembers the failure so it is not retried in a loop.
    """
    if action.kind != "move":
        if action.kind not in ("keep", "delete"):
            raise WatchdError(f"unknown on_failure action {action.kind!r}")
        return None
    moved = move_file(
        source, _move_target(action, watch, source), reason_too=True, root=action.path
    )
    reason = {
        "error": error,
        "context": context,
        "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "source": str(source),
    }
    data = (printable(json.dumps(reason, indent=2, ensure_ascii=False)) + "\n").encode()
    with AtomicWriter(moved.parent / (moved.name + REASON_SUFFIX), root=action.path) as writer:
        writer.write(data)
        writer.commit(replace_identical=True)
    return moved
