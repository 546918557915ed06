"""tasks.py reproduce after a killed snakemake: a stale lock is released, a live snakemake is reported."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tasks():
    spec = importlib.util.spec_from_file_location("intrakd_tasks", REPO / "tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not (module.BIN / "snakemake").exists():
        pytest.skip("no snakemake in .venv")
    return module


SNAKEFILE = """
rule all:
    input: "done.txt"

rule slow:
    output: "done.txt"
    shell: "sleep {config[sleep]} && touch {output}"
"""


def _snakemake(tasks, workdir: Path, sleep: float, **kw):
    cmd = [str(tasks.BIN / "snakemake"), "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir),
           "--cores", "1", "--config", f"sleep={sleep}"]
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, **kw)


def _wait_for_lock(workdir: Path, proc) -> None:
    locks = workdir / ".snakemake" / "locks"
    deadline = time.time() + 120
    while not (locks.is_dir() and any(locks.iterdir())):
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.2)


def test_killed_snakemake_lock_is_released_and_a_live_one_reported(tasks, tmp_path, capsys):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    where = ["--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path)]
    proc = _snakemake(tasks, tmp_path, 60)
    try:
        _wait_for_lock(tmp_path, proc)
        with pytest.raises(SystemExit, match=f"snakemake is already running in {tmp_path} \\(pid {proc.pid}\\)"):
            tasks.release_stale_lock(tmp_path, where)
        assert proc.poll() is None and any((tmp_path / ".snakemake" / "locks").iterdir())
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # like kill -9 of the user's snakemake
        proc.wait()
    assert any((tmp_path / ".snakemake" / "locks").iterdir())  # the lock it leaves behind

    tasks.release_stale_lock(tmp_path, where)
    assert "releasing the lock of a snakemake that is no longer running" in capsys.readouterr().out
    rerun = _snakemake(tasks, tmp_path, 0)
    log, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, log
    assert (tmp_path / "done.txt").is_file()


def test_no_lock_no_action(tasks, tmp_path, capsys):
    tasks.release_stale_lock(tmp_path, [])
    assert capsys.readouterr().out == ""


def test_mutation_core_is_the_scientific_core_and_its_tests_exist(tasks):
    import tomllib

    # issue 17: intrakd/distill/intrakd.py, intrakd/metrics/*.py, intrakd/report/verdict.py, intrakd/engine/evaluate.py
    expected = {"intrakd/distill/intrakd.py", "intrakd/report/verdict.py", "intrakd/engine/evaluate.py",
                *(p.relative_to(REPO).as_posix() for p in (REPO / "intrakd" / "metrics").glob("*.py"))}
    assert set(tasks.core_modules()) == expected
    selection = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"][
        "pytest_add_cli_args_test_selection"]
    assert selection and all((REPO / t).is_file() for t in selection)


def test_mutation_scores_count_mutmut_outcomes(tasks, tmp_path):
    import json

    meta = tmp_path / "mutants" / "intrakd" / "report" / "verdict.py.meta"
    meta.parent.mkdir(parents=True)
    # mutmut's exit codes: 1 killed, 3 killed (pytest internal error), 0 survived, 33 no tests, 36 timeout, None not run
    codes = {"a__mutmut_1": 1, "a__mutmut_2": 3, "a__mutmut_3": 0, "a__mutmut_4": 33, "a__mutmut_5": 36,
             "a__mutmut_6": None, "a__mutmut_7": 1, "a__mutmut_8": 1}
    meta.write_text(json.dumps({"exit_code_by_key": codes}))
    (row,) = tasks.mutation_scores(["intrakd/report/verdict.py"], root=tmp_path)
    assert (row["mutants"], row["killed"], row["survived"], row["no tests"], row["timeout"], row["not run"]) == \
        (8, 4, 1, 1, 1, 1)
    assert row["score"] == 50.0  # 4 killed of 8
    assert row["survivors"] == ["a__mutmut_3"]
    (missing,) = tasks.mutation_scores(["intrakd/engine/evaluate.py"], root=tmp_path)
    assert missing["mutants"] == 0


def test_mutate_refuses_a_module_outside_the_core(tasks):
    with pytest.raises(SystemExit, match="not in the scientific core.*intrakd/report/verdict.py"):
        tasks.mutate(["intrakd/report/tables.py"])
