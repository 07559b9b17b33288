"""The module table in docs/ARCHITECTURE.md, enforced: who may import which library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "synthesia_watchd"

#: Third-party libraries and the one module (or package) allowed to import each.
OWNERS = {
    "requests": {"api"},
    "boto3": {"upload", "simulator"},
    "botocore": {"upload", "simulator"},
    "watchdog": {"watcher"},
    "yaml": {"yamlmarks"},
    "prometheus_client": {"metrics"},
    "moto": {"simulator"},
    "werkzeug": {"simulator"},
    "structlog": {"logsetup"},
    "starlette": {"web"},
    "jinja2": {"web"},
    "uvicorn": {"web"},
    "multipart": {"web"},
    "apprise": {"notify"},
    "langcodes": {"languages"},
    "language_data": {"languages"},
    # The ledger's drivers stay in their backends (ledgerguard: SQLite's start-up checks).
    "sqlite3": {"stores", "ledgerguard"},
    "psycopg": {"stores"},
    "psycopg_pool": {"stores"},
}
#: Pure leaves: standard library (and each other) only.
PURE = {
    "apireplies",
    "contract",
    "errors",
    "states",
    "media",
    "fsinfo",
    "atomic",
    "retry",
    "ratelimit",
    "filters",
    "stability",
    "urls",
    "control",
    "saferoot",
    "diskspace",
    "outputs",
    "estimate",
    "names",
    "sourcefile",
    "completeness",
    "incomplete",
    "offload",
    "hygiene",
    "reasons",
    "apitypes",
    "folderwalk",
    "readbudget",
    "pathmap",
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        out.append((rel.parts[0], path))
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("owner", "path"), _modules(), ids=lambda v: str(v))
def test_third_party_imports_stay_with_their_owner(owner: str, path: Path) -> None:
    """Each library is imported only by the module that owns it."""
    for lib in _imports(path):
        allowed = OWNERS.get(lib)
        if allowed is not None:
            assert owner in allowed, f"{path.name} imports {lib}; only {allowed} may"


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_leaves_import_only_the_standard_library(name: str) -> None:
    """Pure leaves stay free of third-party code and of the daemon's core."""
    import sys

    tree = ast.parse((PKG / f"{name}.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.module in PURE, f"{name} imports .{node.module}"
                continue
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for m in mods:
                top = m.split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", f"{name} imports {m}"


def test_simulator_imports_nothing_from_the_daemon() -> None:
    """The simulator is a stand-in for Synthesia: it shares only the contract data."""
    for path in (PKG / "simulator").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level >= 2 or mod.startswith("synthesia_watchd"):
                    target = mod.removeprefix("synthesia_watchd.")
                    assert target in {"contract", "media"}, f"{path.name} imports {mod}"


def test_only_the_daemon_and_the_console_import_the_console() -> None:
    """The web package is optional (the `web` extra): only daemon.py may import it, lazily."""
    for owner, path in _modules():
        if owner in ("web", "daemon"):
            continue
        text = path.read_text(encoding="utf-8")
        assert "from .web" not in text and "synthesia_watchd.web" not in text, path.name


#: The layers, lowest first: a module may import its own layer and the ones below, never one
#: above (docs/ARCHITECTURE.md draws them). A new module must be given a layer here.
LAYERS: dict[str, set[str]] = {
    "domain": {
        "errors", "states", "reasons", "contract", "control", "names", "sourcefile", "media",
        "completeness", "incomplete", "fsinfo", "saferoot", "atomic", "retry", "ratelimit",
        "urls", "diskspace", "outputs", "filters", "folderwalk", "stability", "estimate",
        "hygiene", "apitypes", "apireplies", "readbudget", "offload", "adopt", "pathmap",
    },
    "config": {
        "yamlmarks", "languages", "configchecks", "configschema", "config", "starter",
        "ledgersecret",
    },
    "adapters": {
        "logsetup", "api", "upload", "watcher", "watchrunner", "metrics", "sdnotify",
        "simulator",
    },
    "stores": {
        "stores", "ledger", "ledgerguard", "sharedledger", "runtime", "claims",
    },
    "engine": {
        "jobspec", "lifecycle", "holds", "operatorops", "restore", "progress", "spending",
        "pollplan", "engine", "pipeline", "scheduler", "dryrun", "notify",
    },
    "service": {"compose", "daemon", "cli", "oneshot", "demo", "web", "__main__", "__init__"},
}  # fmt: skip
_RANK = {m: i for i, layer in enumerate(LAYERS.values()) for m in layer}


def _internal_imports(path: Path) -> set[str]:
    """The package's own top-level modules (or sub-packages) a file imports."""
    rel = path.relative_to(PKG).with_suffix("")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level == 0:
            parts = (node.module or "").split(".")
            if parts[0] != "synthesia_watchd":
                continue
            parts = parts[1:]
        elif node.level == len(rel.parts):  # relative to the package root
            parts = (node.module or "").split(".") if node.module else []
        else:
            continue  # inside its own sub-package
        if parts and parts[0]:
            names.add(parts[0])
        else:
            names.update(a.name for a in node.names)
    names.discard("__version__")
    return names


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import that points from a lower layer to a higher one."""
    return sorted(
        f"{mod} ({_layer(mod)}) imports {dep} ({_layer(dep)})"
        for mod, deps in graph.items()
        for dep in deps
        if dep in _RANK and mod in _RANK and _RANK[dep] > _RANK[mod]
    )


def _layer(mod: str) -> str:
    return next(name for name, mods in LAYERS.items() if mod in mods)


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for owner, path in _modules():
        graph.setdefault(owner, set()).update(_internal_imports(path) - {owner})
    return graph


def test_every_module_has_a_layer() -> None:
    """A new module is placed in a layer (and so in the drawing) before it can land."""
    assert sorted(set(_graph()) - set(_RANK)) == []


def test_no_module_imports_a_higher_layer() -> None:
    """Dependencies point downward: domain <- config <- adapters <- stores <- engine <- service."""
    assert _upward(_graph()) == []


def test_an_upward_import_is_caught() -> None:
    """The check itself: the ledger importing the CLI would be reported."""
    graph = _graph()
    graph["ledger"] = graph["ledger"] | {"cli"}
    assert _upward(graph) == ["ledger (stores) imports cli (service)"]
