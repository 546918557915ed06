"""The SLURM profile against a real SLURM: tests/slurm_smoke.py runs the smoke preset through sbatch on a one-node
cluster it starts on 127.0.0.1 (installing Debian's slurm-wlm and munge when missing) and stops afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow  # about 4.5 minutes on 2 CPU cores (the smoke preset through 5 SLURM jobs: 253 s measured)
@pytest.mark.skipif(os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="needs root: installs slurm-wlm and munge, and starts their daemons")
@pytest.mark.skipif(shutil.which("apt-get") is None and shutil.which("slurmctld") is None,
                    reason="needs Debian's apt-get (or SLURM already installed)")
def test_smoke_preset_runs_through_sbatch_with_the_slurm_profile(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "slurm_smoke.py"), "--keep", str(tmp_path)],
                          capture_output=True, text=True, timeout=3600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "rc 0" in out and "stopped slurmd" in out and "stopped slurmctld" in out and "stopped munged" in out
    log = (tmp_path / "snakemake.log").read_text()
    submitted = [line for line in log.splitlines() if "has been submitted with SLURM jobid" in line]
    assert len(submitted) >= 4, log[-3000:]  # kernel, synth, teacher, two students (tables and figures run locally)
    smoke = tmp_path / "smoke"
    for table in ("results/tables/table5.md", "results/tables/verdict.md"):
        assert (smoke / table).is_file()
    assert len(list((smoke / "results" / "runs").rglob("metrics.json"))) == 3  # teacher + two students
    jobs = [line for line in out.splitlines() if " COMPLETED " in f" {line} "]
    assert jobs, out[-3000:]  # squeue saw the finished SLURM jobs
