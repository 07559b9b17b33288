"""Where dubbed files go, and what happens to a source afterwards (pure except the post-actions).

Output names are built from the source's stem and a language code that came from config or
the API, so the code is checked against a strict pattern and the final path must stay inside
the output root: a hostile or mistyped code can never write elsewhere. Subfolders of the input
are mirrored under the output root and under move targets, so two ``intro.mp4`` in different
subfolders never collide.

Post-actions never lose a file: a move is a hard link plus unlink on one filesystem, and a
copy, fsync, no-clobber link, then unlink across filesystems; an existing name is never
overwritten (``name (1).mp4`` instead). A failed source is never deleted: it may be the only
copy, and the operator needs it to retry.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import stat as stat_mod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Protocol

from .atomic import AtomicWriter, fsync_dir, temp_name_for
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

REASON_SUFFIX = ".reason.json"
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


def output_path(watch: WatchPaths, source: Path, language: str, kind: str = "video") -> Path:
    """``<output_dir>/<stem>.dubbed-<lang><ext>``; UnsafePathError if it would leave the root."""
    ext = KIND_EXTENSIONS.get(kind)
    if ext is None:
        raise ValueError(f"unknown output kind {kind!r}; expected one of {sorted(KIND_EXTENSIONS)}")
    lang = sanitize_language(language)
    path = output_dir(watch, source) / f"{Path(source).stem}.dubbed-{lang}{ext}"
    if not _inside(path, Path(watch.output_root)):
        raise UnsafePathError(f"{path.name}: the output would land outside the output folder")
    return path


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
    folder: Path, name: str, start: int = 0, *, reason_too: bool = False
) -> tuple[Path, int]:
    """The first ``name`` / ``name (n)`` (n >= start) in ``folder`` not taken, and its n.

    With ``reason_too`` the name's reason file must be free as well.
    """
    for n in range(start, start + _MAX_UNIQUE_TRIES):
        cand = folder / _numbered(name, n)
        if cand.exists() or cand.is_symlink():
            continue
        if reason_too and (folder / (cand.name + REASON_SUFFIX)).exists():
            continue
        return cand, n
    raise WatchdError(f"{name}: no free name in the target folder after {_MAX_UNIQUE_TRIES} tries")


_NO_HARDLINKS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK)


def _place(
    src: Path,
    dest: Path,
    link: Callable[[Path, Path], None],
    rename: Callable[[Path, Path], None],
    *,
    reason_too: bool,
) -> Path:
    """Link ``src`` to the first free ``dest`` / ``dest (n)``; returns the name it got.

    Where hard links are not supported, a rename to a name checked to be free.
    """
    n = 0
    while True:
        target, n = _free_name(dest.parent, dest.name, n, reason_too=reason_too)
        try:
            link(src, target)
            return target
        except FileExistsError:
            pass  # taken since we looked
        except OSError as exc:
            if exc.errno not in _NO_HARDLINKS:
                raise
            if not (target.exists() or target.is_symlink()):
                rename(src, target)
                return target
        n += 1


def _copy_across(src: Path, tmp: Path) -> None:
    """Copy ``src`` to a fresh ``tmp`` (exclusive create), fsync it, keep mode and times."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(src, tmp)
        if os.stat(tmp).st_size != os.stat(src).st_size:
            raise WatchdError(f"{src.name}: the copy is shorter than the source; source kept")
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _rename(src: Path, dest: Path) -> None:
    os.rename(src, dest)


def move_file(
    src: Path,
    dest: Path,
    *,
    link: Callable[[Path, Path], None] = os.link,
    reason_too: bool = False,
) -> Path:
    """Move ``src`` to ``dest`` or the first free ``dest (n)``; never overwrite, never lose it.

    Same filesystem: hard link (fails instead of clobbering), then unlink the source.
    Across filesystems: copy to a hidden temp name beside the target, fsync, link that into
    place, and only then unlink the source. Returns where the file now is. ``link`` is a seam
    for tests (raise EXDEV to take the cross-filesystem path).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        target = _place(src, dest, link, _rename, reason_too=reason_too)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = temp_name_for(dest)
        _copy_across(src, tmp)
        try:
            target = _place(tmp, dest, os.link, _rename, reason_too=reason_too)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    fsync_dir(target.parent)
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
        return move_file(source, _move_target(action, watch, source))
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
    moved = move_file(source, _move_target(action, watch, source), reason_too=True)
    reason = {
        "error": error,
        "context": context,
        "time": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "source": str(source),
    }
    data = (printable(json.dumps(reason, indent=2, ensure_ascii=False)) + "\n").encode()
    with AtomicWriter(moved.parent / (moved.name + REASON_SUFFIX)) as writer:
        writer.write(data)
        writer.commit(replace_identical=True)
    return moved
