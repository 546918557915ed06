#!/usr/bin/env python3
"""Quick-start entry point for a fresh clone: needs only Python 3.11 and pip.

    python3 tasks.py reproduce   # build the default results (tables, figures, executed notebooks, report)
    python3 tasks.py reproduce --preset quick   # another preset: smoke | quick | default | standard | paper
    python3 tasks.py test        # run the test suite (fast tests; add -m slow for the long ones)
    python3 tasks.py mutate [intrakd/report/verdict.py ...]   # mutation testing of the scientific core (slow)

Both first create the project-local virtual environment ``.venv`` (torch 2.14.1 / torchvision 0.29.1, the package
in editable mode with its dev extras, and the Jupyter kernel ``intrakd``) unless it is already up to date.
Extra arguments are passed on to snakemake (reproduce) or pytest (test). ``reproduce`` recovers from a killed
snakemake by itself: the lock it left is released when no snakemake runs in that directory any more (a live one is
reported and nothing is started), and the default profile's ``--rerun-incomplete`` reruns its unfinished jobs,
which resume from their checkpoints.
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


def snakemake_processes(workdir: Path) -> list[int]:
    """PIDs of live snakemake processes working in ``workdir`` (Linux /proc; an empty list elsewhere)."""
    workdir = workdir.resolve()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
        names = [Path(a).name for a in argv[:3]]
        if int(proc.name) == os.getpid() or not ("snakemake" in names or argv[1:3] == ["-m", "snakemake"]):
            continue
        where = cwd
        for flag in ("--directory", "-d"):
            if flag in argv[:-1]:
                where = cwd / argv[argv.index(flag) + 1]
        if where.resolve() == workdir:
            found.append(int(proc.name))
    return found


def release_stale_lock(workdir: Path, where: list[str]) -> None:
    """A snakemake killed with ``kill -9`` (or a power cut) leaves its lock in ``.snakemake/locks``, and every later
    run stops with a LockException. Release a lock whose snakemake is gone; refuse when one is still running."""
    locks = workdir / ".snakemake" / "locks"
    if not locks.is_dir() or not any(locks.iterdir()):
        return
    live = snakemake_processes(workdir)
    if live:
        raise SystemExit(f"snakemake is already running in {workdir} (pid {', '.join(map(str, live))}); "
                         "wait for it to finish or stop it, then rerun")
    if not Path("/proc").is_dir():
        raise SystemExit(f"{locks} holds a lock and this system cannot tell whether its snakemake still runs; "
                         f"if none does, run: snakemake {' '.join(where)} --unlock")
    print(f"releasing the lock of a snakemake that is no longer running ({locks})", flush=True)
    _run([BIN / "snakemake", *where, "--unlock"], env=_env())


def reproduce(args: list[str]) -> None:
    preset = "default"
    if "--preset" in args:
        i = args.index("--preset")
        if i + 1 >= len(args) or args[i + 1] not in PRESETS:
            raise SystemExit(f"--preset needs one of {sorted(PRESETS)}")
        preset = args[i + 1]
        args = args[:i] + args[i + 2:]
    where = ["--directory", PRESETS[preset]] if preset != "default" else []
    release_stale_lock(ROOT / PRESETS[preset], where)
    _run([BIN / "snakemake", *where, *args], env=_env())
    _run([BIN / "snakemake", *where, "--report", "results/report.html"], env=_env())


def test(args: list[str]) -> None:
    _run([BIN / "pytest", *args], env=_env())


def core_modules() -> list[str]:
    """The files ``[tool.mutmut] only_mutate`` in pyproject.toml names (globs expanded): the scientific core."""
    import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]["only_mutate"]
    return sorted({p.relative_to(ROOT).as_posix() for pat in patterns for p in ROOT.glob(pat) if p.suffix == ".py"})


def mutation_scores(modules: list[str], root: Path = ROOT) -> list[dict]:
    """Per module, the mutants mutmut recorded in ``mutants/<module>.meta`` by outcome; score = killed / all."""
    import json
    from collections import Counter

    rows = []
    for module in modules:
        meta = root / "mutants" / f"{module}.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.is_file() else {}
        # mutmut's exit codes (mutmut.stats.status_by_exit_code): 1 and 3 killed, 0 survived, 36 etc. timeout
        outcome = Counter("killed" if c in (1, 3) else "survived" if c == 0 else "not run" if c is None
                          else "no tests" if c in (5, 33) else "timeout" if c in (24, -24, 36, 152, 255) else "other"
                          for c in codes.values())
        rows.append({"module": module, "mutants": len(codes),
                     **{k: outcome[k] for k in ("killed", "survived", "timeout", "no tests", "not run", "other")},
                     "survivors": sorted(k for k, c in codes.items() if c == 0),
                     "score": 100.0 * outcome["killed"] / len(codes) if codes else float("nan")})
    return rows


def mutate(args: list[str]) -> None:
    """Mutation-test MODULEs (default: every file of the scientific core) with mutmut against the test files of
    ``[tool.mutmut] pytest_add_cli_args_test_selection``; print each module's score and its surviving mutants
    (``mutmut show NAME`` prints one). ``--min-score S`` fails when a module scores below S percent;
    ``--max-children N`` caps mutmut's parallel processes (default: the cores)."""
    min_score = None
    if "--min-score" in args:
        i = args.index("--min-score")
        min_score = float(args[i + 1])
        args = args[:i] + args[i + 2:]
    options = []
    if "--max-children" in args:
        i = args.index("--max-children")
        options, args = args[i:i + 2], args[:i] + args[i + 2:]
    core = core_modules()
    unknown = [m for m in args if m not in core]
    if unknown:
        raise SystemExit(f"not in the scientific core ([tool.mutmut] only_mutate): {', '.join(unknown)}; "
                         f"expected one of: {', '.join(core)}")
    modules = args or core
    env = _env()
    env.setdefault("INTRAKD_REAL_SAMPLES", str(ROOT.parent / "shared" / "real_samples"))  # tests run in mutants/
    names = [m[:-3].replace("/", ".").removesuffix(".__init__") + ".*" for m in modules]
    subprocess.run([str(BIN / "mutmut"), "run", *options, *names], cwd=ROOT, env=env, check=False)
    rows = mutation_scores(modules)
    print(f"\n{'module':<34} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} {'no tests':>8} {'not run':>7} {'score':>6}")
    for r in rows:
        print(f"{r['module']:<34} {r['mutants']:>7} {r['killed']:>6} {r['survived']:>8} {r['timeout']:>7} "
              f"{r['no tests']:>8} {r['not run']:>7} {r['score']:>5.1f}%")
    for r in rows:
        if r["survivors"]:
            print(f"\nsurvivors in {r['module']} ({len(r['survivors'])}):", *r["survivors"], sep="\n  ")
    low = [r["module"] for r in rows if min_score is not None and (r["not run"] or not r["score"] >= min_score)]
    if low:
        raise SystemExit(f"mutation score below {min_score}% (or mutants not run) in: {', '.join(low)}")


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("reproduce", "test", "setup", "mutate"):
        print(__doc__)
        return 2
    ensure_env()
    task, rest = sys.argv[1], sys.argv[2:]
    try:
        {"reproduce": reproduce, "test": test, "mutate": mutate, "setup": lambda a: None}[task](rest)
    except subprocess.CalledProcessError as err:
        return err.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
