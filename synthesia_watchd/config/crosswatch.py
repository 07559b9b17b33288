"""Checks between watches: unique names, no overlapping inputs, outputs never re-watched.

One watch alone can be valid and still break another: two watches on the same folder would dub
each file twice, and an output or move folder inside a watched input would feed dubbed or moved
files back in as new sources. Paths are compared by name and after resolving symlinks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .checks import Context
from .yamlmarks import KeyPath


def _same(a: Path, b: Path) -> bool:
    return a == b or Path(os.path.realpath(a)) == Path(os.path.realpath(b))


def _below(child: Path, parent: Path) -> bool:
    """child is strictly inside parent, by name or after resolving symlinks."""
    real_child, real_parent = Path(os.path.realpath(child)), Path(os.path.realpath(parent))
    return not _same(child, parent) and (
        child.is_relative_to(parent) or real_child.is_relative_to(real_parent)
    )


#: Each watch's index, its valid values so far and where each came from (key path).
Seen = list[tuple[int, dict[str, Any], dict[str, KeyPath]]]


def check_between(seen: Seen, ctx: Context) -> None:
    """Checks between watches: unique names, no overlapping inputs, outputs never re-watched.

    Runs on whatever parts of each watch were valid, so these errors show up together with the
    others instead of after the next fix.
    """
    for n, (i, w, _) in enumerate(seen):
        for j, other, _ in seen[:n]:
            if "name" in w and w["name"] == other.get("name"):
                ctx.error(
                    ("watches", i, "name"),
                    f"duplicate watch name {w['name']!r} (also watches[{j}])",
                )
            a, b = w.get("input"), other.get("input")
            if a is not None and b is not None and (_same(a, b) or _below(a, b) or _below(b, a)):
                ctx.error(
                    ("watches", i, "input"),
                    f"overlaps the input of watches[{j}]: {a} and {b} are the same folder or "
                    "one is inside the other",
                )
    for i, w, origin in seen:
        output = w.get("output")
        if output is not None:
            for j, other, _ in seen:
                root = other.get("input")
                if root is None or (j == i and _same(output, root)):
                    continue  # beside the source: our outputs are excluded by name
                if _same(output, root) or (other.get("recursive", True) and _below(output, root)):
                    whose = "this watch's input" if j == i else f"the input of watches[{j}]"
                    ctx.error(
                        origin["output"],
                        f"output folder {output} is inside {whose}, so dubbed files would be "
                        "taken as new sources; put it elsewhere, leave output unset (beside "
                        "the source) or set recursive: false",
                    )
        for action in ("on_success", "on_failure"):
            folder = getattr(w.get(action), "path", None)
            for j, other, _ in seen:
                root = other.get("input")
                if folder is None or root is None:
                    continue
                if _same(folder, root) or (other.get("recursive", True) and _below(folder, root)):
                    whose = "this watch's input" if j == i else f"the input of watches[{j}]"
                    inherited = "" if origin[action][0] == "watches" else f" (in watches[{i}])"
                    ctx.error(
                        (*origin[action], "move"),
                        f"move folder {folder} is inside {whose}{inherited}, so moved files "
                        "would be taken as new sources; put it outside every watched folder",
                    )
