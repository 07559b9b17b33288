"""The layers and module table in docs/ARCHITECTURE.md, enforced: who may import what."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "synthesia_watchd"

#: Third-party libraries and the one module (or package) allowed to import each, as dotted
#: paths inside the package: "synthesia.api" is one module, "stores" a whole sub-package.
OWNERS = {
    "requests": {"synthesia.transport"},
    "boto3": {"synthesia.upload", "simulator"},
    "botocore": {"synthesia.upload", "simulator"},
    "watchdog": {"watching.observers"},
    "yaml": {"config.yamlmarks"},
    "prometheus_client": {"telemetry.metrics"},
    "moto": {"simulator"},
    "werkzeug": {"simulator"},
    "structlog": {"telemetry.logsetup"},
    "starlette": {"web"},
    "jinja2": {"web"},
    "uvicorn": {"web"},
    "multipart": {"web"},
    "apprise": {"engine.notify"},
    "langcodes": {"config.languages"},
    "language_data": {"config.languages"},
    # The ledger's drivers stay in their backends (ledgerguard: SQLite's start-up checks).
    "sqlite3": {"stores"},
    "psycopg": {"stores"},
    "psycopg_pool": {"stores"},
}
#: Sub-packages that are pure: standard library (and each other) only.
PURE = {"domain", "files"}


def _modules() -> list[tuple[str, Path]]:
    """Every module with its top-level package (or root module) name: the unit of layering."""
    out = []
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).with_suffix("")
        out.append((rel.parts[0], path))
    return out


def _dotted(path: Path) -> str:
    """A module's dotted path inside the package ("synthesia.api", "stores.sqlite")."""
    parts = path.relative_to(PKG).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _owns(owners: set[str], path: Path) -> bool:
    dotted = _dotted(path)
    return any(dotted == o or dotted.startswith(o + ".") for o in owners)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", [p for _, p in _modules()], ids=_dotted)
def test_third_party_imports_stay_with_their_owner(path: Path) -> None:
    """Each library is imported only by the module that owns it."""
    for lib in _imports(path):
        allowed = OWNERS.get(lib)
        if allowed is not None:
            assert _owns(allowed, path), f"{_dotted(path)} imports {lib}; only {allowed} may"


@pytest.mark.parametrize("path", [p for owner, p in _modules() if owner in PURE], ids=_dotted)
def test_pure_packages_import_only_the_standard_library(path: Path) -> None:
    """domain/ and files/ stay free of third-party code and of the daemon's core."""
    import sys

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            continue  # a sibling in the same pure package
        if isinstance(node, ast.Import | ast.ImportFrom):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for m in mods:
                parts = m.split(".")
                if parts[0] == "synthesia_watchd":
                    assert len(parts) > 1 and parts[1] in PURE, f"{_dotted(path)} imports {m}"
                    continue
                top = parts[0]
                assert top in sys.stdlib_module_names or top == "__future__", (
                    f"{_dotted(path)} imports {m}"
                )


def test_the_package_root_holds_only_layers() -> None:
    """Every module lives in the sub-package of its layer; the root keeps only entry points."""
    loose = sorted(p.name for p in PKG.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py"]


def test_simulator_imports_nothing_from_the_daemon() -> None:
    """The simulator is a stand-in for Synthesia: it shares only the contract data."""
    for path in (PKG / "simulator").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level >= 2 or mod.startswith("synthesia_watchd"):
                    target = mod.removeprefix("synthesia_watchd.")
                    assert target in {"domain.contract", "domain.media"}, (
                        f"{path.name} imports {mod}"
                    )


def test_only_the_daemon_and_the_console_import_the_console() -> None:
    """The web package is optional (the `web` extra): only the daemon's listeners may import
    it, lazily."""
    for owner, path in _modules():
        if owner == "web" or _dotted(path) == "service.listeners":
            continue
        text = path.read_text(encoding="utf-8")
        assert "from .web" not in text and "synthesia_watchd.web" not in text, path.name


#: The layers, lowest first, each one or more sub-packages: a module may import its own layer
#: and the ones below, never one above (docs/ARCHITECTURE.md draws them). A new sub-package
#: must be given a layer here.
LAYERS: dict[str, set[str]] = {
    "domain": {"domain", "files"},
    "config": {"config"},
    "adapters": {"synthesia", "watching", "telemetry", "simulator"},
    "stores": {"stores"},
    "engine": {"engine"},
    "service": {"service", "web", "__main__", "__init__"},
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
    graph["stores"] = graph["stores"] | {"service"}
    assert _upward(graph) == ["stores (stores) imports service (service)"]
