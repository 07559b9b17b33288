"""Size limits measured with ast: modules, functions and classes stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "synthesia_watchd"

MODULE_LINES, FUNCTION_LINES, CLASS_LINES = 400, 60, 300

#: Data tables, exempt from the limits by nature (a table is read row by row, not as code).
DATA_TABLES = {
    "domain/contract.py": "vocabularies read from the OpenAPI document (no functions)",
    "config/schema.py": "the config key table: one row per key with its check and docs",
    "service/cli/parser.py:build_parser": "the argparse declarations of every command and option",
}


def _sizes() -> dict[str, tuple[int, int]]:
    """Every module, function and class over its limit: name -> (lines, limit)."""
    found: dict[str, tuple[int, int]] = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MODULE_LINES:
            found[rel] = (lines, MODULE_LINES)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                limit = CLASS_LINES if isinstance(node, ast.ClassDef) else FUNCTION_LINES
                size = (node.end_lineno or node.lineno) - node.lineno + 1
                if size > limit:
                    found[f"{rel}:{node.name}"] = (size, limit)
    return found


def test_nothing_is_over_the_limits() -> None:
    """No module over 400 lines, function over 60 or class over 300, except data tables."""
    over = {
        name: size
        for name, (size, _limit) in _sizes().items()
        if name not in DATA_TABLES and name.split(":")[0] not in DATA_TABLES
    }
    assert over == {}, f"over the size limits (split them): {over}"


def test_each_data_table_exemption_names_code_that_exists() -> None:
    """An exemption outlives no rename: it must name a module (and function) still there."""
    missing = []
    for name in DATA_TABLES:
        module, _, func = name.partition(":")
        path = PKG / module
        found = path.is_file() and (
            not func
            or any(
                isinstance(n, ast.FunctionDef) and n.name == func
                for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            )
        )
        if not found:
            missing.append(name)
    assert missing == []
