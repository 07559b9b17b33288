"""README drift: every command, exit code, metric, state and config section it names is real.

The README is what operators read first; when a command, exit code or metric changes and the
README does not, they act on a lie. These tests read the names from the code itself
(``cli.build_parser()``, ``cli.ExitStatus``, ``Metrics``' registry, ``config.REFERENCE``) and
check the README against them, both ways where a table lists them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from synthesia_watchd.config.load import REFERENCE, parse_config
from synthesia_watchd.domain.states import JobState
from synthesia_watchd.service.cli import ExitStatus, build_parser
from synthesia_watchd.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

#: Link targets another part of the build writes (the benchmark run writes its results).
GENERATED_LINKS = frozenset({"bench/RESULTS.md"})

#: A config good enough to complete a README fragment that shows only some sections.
MINIMAL_WATCHES = "\nwatches:\n  - name: readme\n    input: drop\n    targets: [fr-FR]\n"


def _section(title: str) -> str:
    """The README text under ``## title`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _table_rows(text: str) -> list[list[str]]:
    """Cells of every markdown table row in ``text`` (header and separator rows dropped)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert actions, "build_parser() has no subcommands"
    return sorted(actions[0].choices)


def _code_blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, re.M | re.S)


def _metric_names() -> list[str]:
    """Names as Prometheus exposes them: counters carry the ``_total`` suffix."""
    names = []
    for family in Metrics().registry.collect():
        names.append(f"{family.name}_total" if family.type == "counter" else family.name)
    return sorted(names)


def test_every_subcommand_is_in_the_commands_table() -> None:
    """Each CLI subcommand has a row in README's commands table, and each row is a real one."""
    listed = {
        row[0].strip("`")
        for row in _table_rows(_section("Commands"))
        if row[0].startswith("`") and not row[0].strip("`").isdigit()
    }
    assert set(_subcommands()) == listed


def test_exit_code_table_matches_exit_status() -> None:
    """README's exit-code table lists exactly the codes in cli.ExitStatus."""
    codes = {int(row[0]) for row in _table_rows(_section("Commands")) if row[0].isdigit()}
    assert codes == {int(s) for s in ExitStatus}


def test_readme_links_the_generated_configuration_reference() -> None:
    """README links docs/configuration.md (kept equal to the schema by test_config.py)."""
    assert "](docs/configuration.md)" in README
    assert (ROOT / "docs" / "configuration.md").is_file()


def test_every_top_level_config_section_is_named() -> None:
    """Each top-level key of config.REFERENCE appears in README as `name` or `name.…`."""
    tops = {doc.path.split(".")[0].removesuffix("[]") for doc in REFERENCE}
    assert {"synthesia", "watches", "defaults"} <= tops  # the walk below saw real sections
    missing = [t for t in sorted(tops) if not re.search(rf"`{re.escape(t)}[`.:\[ ]", README)]
    assert missing == []


def test_config_example_is_referenced_and_exists() -> None:
    """README points at config.example.yaml, and that file is there."""
    assert "](config.example.yaml)" in README
    assert (ROOT / "config.example.yaml").is_file()


def test_every_metric_is_documented() -> None:
    """Every metric the Metrics class registers appears in README under its exposed name."""
    names = _metric_names()
    assert len(names) >= 5
    assert [n for n in names if n not in README] == []


def test_metrics_table_lists_only_real_metrics() -> None:
    """The metrics table names no metric the code does not export."""
    listed = {
        row[0].strip("`").split("{")[0]
        for row in _table_rows(_section("Monitoring"))
        if row[0].startswith("`synthesia_watchd_")
    }
    assert listed == set(_metric_names())


def test_every_job_state_is_explained() -> None:
    """Each JobState value appears in a state table of 'How a file flows'."""
    rows = _table_rows(_section("How a file flows"))
    explained = {row[0].strip("`") for row in rows}
    assert {s.value for s in JobState} <= explained


@pytest.mark.parametrize("index", range(len(_code_blocks("yaml"))))
def test_yaml_examples_are_valid_config(index: int, tmp_path: Path) -> None:
    """Each yaml example in README passes the real config validator (fragments get a watch)."""
    text = _code_blocks("yaml")[index]
    if "watches:" not in text:
        text += MINIMAL_WATCHES
    config = parse_config(
        text, filename=f"README yaml block {index}", base_dir=tmp_path, environ={}
    )
    assert config.watches


def test_relative_links_point_at_files() -> None:
    """Every relative link in README names a file or folder of the repository."""
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    local = [t for t in targets if "://" not in t]
    assert local, "README links no local file"
    broken = [t for t in local if t not in GENERATED_LINKS and not (ROOT / t).exists()]
    assert broken == []


def test_no_machine_paths_of_this_checkout() -> None:
    """README never names where this checkout happens to live."""
    assert str(ROOT) not in README
    assert str(ROOT / ".venv") not in README
