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
