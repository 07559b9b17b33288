"""README's promises: its first lines are the two set-up commands, and CI runs the second."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_starts_with_demo_and_test_commands() -> None:
    """The first block holds exactly two commands: the demo, then the tests."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.index("```sh") < 40
    demo, tests = _readme_commands()
    assert demo.startswith("python3 -m venv .venv") and demo.endswith("synthesia-watchd demo")
    assert tests == "bash scripts/test"
    script = (ROOT / "scripts" / "test").read_text(encoding="utf-8")
    assert "python3 -m venv .venv" in script and "python -m pytest" in script


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run calls the very command README gives for the tests."""
    _, tests = _readme_commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()
