"""The git commit stamped on runs, tables and the report (torch-free: the workflow reads it while building the DAG)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_commit(path: str | Path | None = None) -> str:
    """The commit of the checkout holding ``path`` (the package by default), ``+dirty`` when a tracked file is
    modified. Generated outputs under any ``results/`` folder do not count: the committed default results are
    rewritten by the very runs that stamp this."""
    where = Path(path or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ":/", ":(top,exclude,glob)**/results/**"],
            cwd=where, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")
