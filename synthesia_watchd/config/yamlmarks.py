"""YAML read as plain data that keeps the line of every key and item, for config error messages.

``yaml.safe_load`` throws line numbers away, yet an operator fixing a config file wants each
problem at its line. This module composes the node tree itself and records, per key path, the
line and the scalar text as typed (so ``no`` can still be read as Norwegian, not False). It
knows nothing of the daemon's keys: the caller names the paths whose scalar is sealed at once
(the API key), so that value never sits in the plain data.

This is the only module that imports yaml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from synthesia_watchd.domain.errors import ConfigError, ConfigIssue

KeyPath = tuple[str | int, ...]

#: Largest config file read (a real one is a few kilobytes): a bigger file is refused unread.
MAX_CONFIG_BYTES = 1 << 20
#: Most values a config may expand to, counting every use of an alias or merge (``*name``,
#: ``<<:``) in full: far above any real config, far below a "billion laughs" alias bomb.
MAX_VALUES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _TooBig(Exception):
    """Raised inside the builder when the expanded document passes MAX_VALUES."""

    def __init__(self, path: KeyPath, line: int) -> None:
        super().__init__(path, line)
        self.path, self.line = path, line


def fmt_path(path: KeyPath) -> str:
    """``("watches", 0, "name")`` as the operator reads it: ``watches[0].name``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@dataclass
class Doc:
    """Parsed YAML as plain data, plus the line of every key and item and the raw scalar text."""

    # repr=False: the data may hold the API key and must not reach a traceback's locals.
    data: Any = field(repr=False)
    lines: dict[KeyPath, int] = field(default_factory=dict, repr=False)
    raw: dict[KeyPath, str] = field(default_factory=dict, repr=False)


class _Builder:
    """Turns a composed node tree into plain data, recording lines (yaml.safe_load loses them)."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        filename: str,
        issues: list[ConfigIssue],
        sealed: Mapping[KeyPath, Callable[[str], Any]],
    ) -> None:
        self.loader, self.filename, self.issues, self.sealed = loader, filename, issues, sealed
        self.doc = Doc(None)
        self._stack: set[int] = set()
        self._budget = MAX_VALUES
        self._merged: dict[int, int] = {}

    def _issue(self, path: KeyPath, line: int, message: str) -> None:
        self.issues.append(ConfigIssue(self.filename, fmt_path(path), line, message))

    def _spend(self, n: int, path: KeyPath, node: yaml.Node) -> None:
        """Count ``n`` values built; past MAX_VALUES the document is refused (alias bomb)."""
        self._budget -= n
        if self._budget < 0:
            raise _TooBig(path, node.start_mark.line + 1)

    def _merged_size(self, node: yaml.MappingNode, active: frozenset[int] = frozenset()) -> int:
        """How many pairs ``node`` has once its merges are flattened, without flattening it
        (PyYAML's flatten_mapping copies every merged pair, so a merge bomb would explode
        there first)."""
        if id(node) in self._merged:
            return self._merged[id(node)]
        total = 0
        for knode, vnode in node.value:
            if knode.tag != _MERGE_TAG:
                total += 1
                continue
            subs = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for sub in subs:
                if isinstance(sub, yaml.MappingNode) and id(sub) not in active:
                    total += self._merged_size(sub, active | {id(node)})
            if total > MAX_VALUES:
                break
        self._merged[id(node)] = total
        return total

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self._spend(1, path, node)
        if id(node) in self._stack:
            self._issue(path, node.start_mark.line + 1, "an alias refers to itself")
            return None
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                out = []
                for i, item in enumerate(node.value):
                    self.doc.lines[(*path, i)] = item.start_mark.line + 1
                    out.append(self.build(item, (*path, i)))
                return out
            value = self.loader.construct_object(node, deep=True)
            seal = self.sealed.get(path)
            if seal is not None and value is not None:
                return seal(str(node.value))  # wrapped at once, as the operator typed it
            if not isinstance(value, str) and value is not None:
                # What the operator typed, for string fields: `no` is Norwegian, not False.
                self.doc.raw[path] = str(node.value)
            return value
        finally:
            self._stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        own = sum(1 for k, _ in node.value if k.tag != _MERGE_TAG)
        if self._merged_size(node) > self._budget:
            raise _TooBig(path, node.start_mark.line + 1)
        self.loader.flatten_mapping(node)
        merged = len(node.value) - own  # merged pairs come first; own keys may override them
        out: dict[str, Any] = {}
        seen: dict[str, int] = {}
        for index, (knode, vnode) in enumerate(node.value):
            line = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                # Never constructed: a key made of aliases could be a bomb of its own.
                self._issue(path, line, "keys must be plain strings")
                continue
            key = self.loader.construct_object(knode, deep=True)
            if not isinstance(key, str):
                self._issue(path, line, "keys must be plain strings")
                continue
            if index >= merged and key in seen:
                self._issue((*path, key), line, f"duplicate key (first at line {seen[key]})")
                continue
            if index >= merged:
                seen[key] = line
            self.doc.lines[(*path, key)] = line
            out[key] = self.build(vnode, (*path, key))
        return out


def parse_yaml(
    text: str,
    filename: str,
    *,
    sealed: Mapping[KeyPath, Callable[[str], Any]] | None = None,
) -> tuple[Doc, list[ConfigIssue]]:
    """Parse one YAML document; syntax errors become a ConfigError with line and column.

    The error text is built from the parser's problem and context only, never its snippet of
    the offending line, which could be the one holding the API key. Duplicate keys come back as
    issues to report together with the schema's. A non-null scalar at a ``sealed`` path is
    handed, as typed, to its wrapper instead of being kept as plain data.
    """
    issues: list[ConfigIssue] = []
    loader: yaml.SafeLoader | None = None
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError([too_large(filename, len(text))])
    try:
        loader = yaml.SafeLoader(text)
        builder = _Builder(loader, filename, issues, sealed or {})
        node = loader.get_single_node()
        builder.doc.data = None if node is None else builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = "; ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        line = mark.line + 1 if mark else None
        where = f" (line {line}, column {mark.column + 1})" if mark else ""
        issue = ConfigIssue(filename, "", line, f"invalid YAML: {what}{where}")
        raise ConfigError([issue]) from None
    except _TooBig as exc:
        message = (
            f"the document expands to more than {MAX_VALUES} values through YAML aliases "
            "(`*name`) and merges (`<<:`), as an alias bomb does; refused unread. Write the "
            "values out, or reuse fewer aliases"
        )
        raise ConfigError([ConfigIssue(filename, fmt_path(exc.path), exc.line, message)]) from None
    except RecursionError:
        message = "the document is nested too deeply to read (lists or mappings inside each other)"
        raise ConfigError([ConfigIssue(filename, "", None, message)]) from None
    except yaml.YAMLError as exc:
        line = None
        if isinstance(exc, yaml.reader.ReaderError):
            line = text.count("\n", 0, exc.position) + 1
        issue = ConfigIssue(filename, "", line, "invalid YAML: a character YAML does not allow")
        raise ConfigError([issue]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return builder.doc, issues


def too_large(filename: str, size: int) -> ConfigIssue:
    """The issue for a config file over MAX_CONFIG_BYTES."""
    return ConfigIssue(
        filename,
        "",
        None,
        f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB ({size} bytes); a config is a "
        "few kilobytes: is this the right file?",
    )


def flow(value: Any) -> str:
    """One plain value as YAML flow text (``[video]``, ``null``), as the reference shows it."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def dump_block(value: Any) -> str:
    """Plain data as block-style YAML text, keys in their given order (``check-config``)."""
    return yaml.safe_dump(
        value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
