"""The package type-checks under mypy strict (config in pyproject.toml), so it stays typed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_package_type_checks_strict() -> None:
    """mypy with the project's [tool.mypy] settings finds no error in synthesia_watchd."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            "--no-color-output",
            "synthesia_watchd",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    report = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"mypy found problems:\n{report}"
