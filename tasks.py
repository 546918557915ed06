#!/usr/bin/env python3
"""Quick-start entry point for a fresh clone: needs only Python 3.11 and pip.

    python3 tasks.py reproduce   # build the default results (tables, figures, executed notebooks, report)
    python3 tasks.py reproduce --preset quick   # another preset: smoke | quick | default | standard | paper
    python3 tasks.py test        # run the test suite (fast tests; add -m slow for the long ones)

Both first create the project-local virtual environment ``.venv`` (torch 2.14.1 / torchvision 0.29.1, the package
in editable mode with its dev extras, and the Jupyter kernel ``intrakd``) unless it is already up to date.
Extra arguments are passed on to snakemake (reproduce) or pytest (test).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".intrakd-install"
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


def _run(cmd: list, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kw)


def ensure_env() -> None:
    """Create or update .venv when pyproject.toml changed since the last install."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + " ".join(TORCH).encode()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == digest and PY.exists():
        return
    if sys.version_info[:2] != (3, 11):
        print(f"warning: intrakd is tested on Python 3.11; this is {sys.version.split()[0]}", file=sys.stderr)
    if not PY.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    _run([PY, "-m", "pip", "install", "--quiet", *TORCH])
    _run([PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]"])
    _run([PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "intrakd", "--display-name", "Python (intrakd)"])
    STAMP.write_text(digest + "\n")


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    env.setdefault("TQDM_DISABLE", "1")
    return env


PRESETS = {"default": ".", "smoke": ".test", "quick": "presets/quick", "standard": "presets/standard",
           "paper": "presets/paper"}


def reproduce(args: list[str]) -> None:
    preset = "default"
    if "--preset" in args:
        i = args.index("--preset")
        if i + 1 >= len(args) or args[i + 1] not in PRESETS:
            raise SystemExit(f"--preset needs one of {sorted(PRESETS)}")
        preset = args[i + 1]
        args = args[:i] + args[i + 2:]
    where = ["--directory", PRESETS[preset]] if preset != "default" else []
    _run([BIN / "snakemake", *where, *args], env=_env())
    _run([BIN / "snakemake", *where, "--report", "results/report.html"], env=_env())


def test(args: list[str]) -> None:
    _run([BIN / "pytest", *args], env=_env())


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("reproduce", "test", "setup"):
        print(__doc__)
        return 2
    ensure_env()
    task, rest = sys.argv[1], sys.argv[2:]
    try:
        {"reproduce": reproduce, "test": test, "setup": lambda a: None}[task](rest)
    except subprocess.CalledProcessError as err:
        return err.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
