#!/usr/bin/env python3
"""Run the smoke preset on a real SLURM: a one-node cluster on 127.0.0.1, through sbatch, with profiles/slurm.

    python3 tests/slurm_smoke.py [--keep WORKDIR] [--no-install]

Needs root on a Debian-like system (the test suite's slow `tests/test_slurm.py` runs it there). Steps:
  1. ``apt-get install slurm-wlm munge`` (unless the binaries are already there or ``--no-install``), and the
     project's ``slurm`` extra (snakemake-executor-plugin-slurm) into ``.venv``;
  2. a throw-away cluster in a temporary folder: its own ``slurm.conf`` (also copied to /etc/slurm for the job
     steps, the files found there put back afterwards), munged, slurmctld and slurmd on 127.0.0.1, one node ``localhost`` in the partitions ``cpu``
     and ``gpu`` the profile names, declared with the CPUs, memory and one GPU (a GRES on /dev/null) that
     profiles/slurm asks for (``SlurmdParameters=config_overrides``: the node need not have them; jobs fall back to
     the CPU where CUDA is absent);
  3. ``snakemake --directory <copy of .test> --profile profiles/slurm`` to completion, every job but the
     local rules submitted with sbatch by the executor plugin;
  4. the daemons it started are stopped (by the PIDs it started), whatever happened.

Job status: without slurmdbd there is no accounting, so ``sacct`` cannot report jobs; the plugin's documented
alternative is ``--slurm-status-command squeue`` with a ``MinJobAge`` of at least three times the first status
check's delay (here 600 s against 3 x 10 s), so finished jobs stay visible to squeue. The profile itself keeps the
plugin's default (sacct where accounting exists); a cluster without accounting passes the same two settings.

Prints the wall time of the snakemake run and the tail of its log; exits with snakemake's return code.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
DAEMONS = ("/usr/sbin/munged", "/usr/sbin/slurmctld", "/usr/sbin/slurmd")
SYSTEM_CONF = Path("/etc/slurm")
STATUS_SETTINGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "10"]

SLURM_CONF = """\
ClusterName=intrakd-smoke
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d}/munge/munge.socket
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=16 RealMemory=131072 Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
"""
# slurmd drops a GPU without a device file; /dev/null stands in (TaskPlugin=task/none constrains no devices)
GRES_CONF = "NodeName=localhost Name=gpu File=/dev/null\n"


def sh(cmd: list, **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(map(str, cmd)), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def install(skip: bool) -> None:
    if not skip and not all(Path(d).exists() for d in DAEMONS):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh(["apt-get", "update", "-qq"], env=env)
        sh(["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"], env=env)
    missing = [d for d in DAEMONS if not Path(d).exists()]
    if missing:
        raise SystemExit(f"missing {missing}: install Debian's slurm-wlm and munge")
    probe = subprocess.run([VENV_BIN / "python", "-c", "import snakemake_executor_plugin_slurm"], capture_output=True)
    if probe.returncode:
        sh([VENV_BIN / "python", "-m", "pip", "install", "--quiet", "-e", f"{REPO}[slurm]"])


class Cluster:
    """munged, slurmctld and slurmd under ``root``, each a child process in the foreground; :meth:`stop` ends exactly
    those."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.procs: dict[str, subprocess.Popen] = {}
        self.installed: list[Path] = []  # configuration files written under /etc/slurm
        self.backups: dict[Path, Path] = {}  # what was there before

    def start(self) -> None:
        for sub in ("state", "spool", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(SLURM_CONF.format(d=self.root))
        (self.root / "gres.conf").write_text(GRES_CONF)
        # The executor plugin deletes every SLURM_* variable (SLURM_CONF too) before it calls srun inside a job, so
        # the job steps read the system's configuration: ours stands at /etc/slurm while the cluster runs, and
        # whatever was there is put back by stop().
        for name in ("slurm.conf", "gres.conf"):
            system = SYSTEM_CONF / name
            if system.exists() or system.is_symlink():
                backup = self.root / f"system-{name}"
                shutil.move(system, backup)
                self.backups[system] = backup
            SYSTEM_CONF.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.root / name, system)
            self.installed.append(system)
        munge = self.root / "munge"
        key = munge / "munge.key"
        shutil.copy("/etc/munge/munge.key", key)
        key.chmod(0o400)
        # each daemon in the foreground, a child of this process: its PID is the one we stop
        self._spawn("munged", ["/usr/sbin/munged", "--foreground", "--force", "--key-file", key,
                               "--socket", munge / "munge.socket", "--pid-file", munge / "munged.pid",
                               "--log-file", munge / "munged.log", "--seed-file", munge / "munged.seed"])
        deadline = time.time() + 30
        while not (munge / "munge.socket").exists():
            self._alive("munged", deadline)
        self._spawn("slurmctld", ["/usr/sbin/slurmctld", "-D", "-c", "-f", self.conf])
        self._spawn("slurmd", ["/usr/sbin/slurmd", "-D", "-N", "localhost", "-f", self.conf])
        deadline = time.time() + 90
        while True:
            state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=self.env, capture_output=True, text=True)
            states = state.stdout.split()
            if state.returncode == 0 and states and all(s in ("idle", "mixed", "allocated") for s in states):
                print(f"cluster up: node localhost {states[0]}", flush=True)
                return
            for name in ("slurmctld", "slurmd"):
                self._alive(name, deadline, f"sinfo says {state.stdout.strip() or state.stderr.strip()}")

    def _spawn(self, name: str, cmd: list) -> None:
        print("+", " ".join(map(str, cmd)), flush=True)
        log = (self.root / f"{name}.out").open("w")
        self.procs[name] = subprocess.Popen([str(c) for c in cmd], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)  # signals stay theirs

    def _alive(self, name: str, deadline: float, what: str = "") -> None:
        proc = self.procs[name]
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"{name} {'exited' if proc.poll() is not None else 'is not ready'} {what}; see "
                               f"{self.root}/{name}.out and {name}.log")
        time.sleep(0.5)

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print(f"stopped {name} (pid {proc.pid})", flush=True)
        for system in self.installed:
            system.unlink(missing_ok=True)
        for system, backup in self.backups.items():
            shutil.move(backup, system)
        self.installed, self.backups = [], {}


def run_smoke(cluster: Cluster, workdir: Path) -> tuple[int, float, str]:
    """Run the smoke preset in a copy of .test through SLURM; (return code, wall seconds, log)."""
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    env = dict(cluster.env, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", TQDM_DISABLE="1")
    cmd = [VENV_BIN / "snakemake", "--snakefile", REPO / "Snakefile", "--directory", workdir,
           "--profile", REPO / "profiles" / "slurm", *STATUS_SETTINGS]
    print("+", " ".join(map(str, cmd)), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    return proc.returncode, wall, proc.stdout + proc.stderr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--no-install", action="store_true", help="do not apt-get install missing daemons")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("needs root (apt-get, and slurmd runs the jobs as the submitting user)")
    install(args.no_install)
    root = args.keep or Path(tempfile.mkdtemp(prefix="intrakd-slurm-"))
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root / "cluster")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout's SIGTERM still stops the daemons
    try:
        cluster.start()
        rc, wall, log = run_smoke(cluster, root / "smoke")
        jobs = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %j %T %P"], env=cluster.env,
                              capture_output=True, text=True).stdout
    finally:
        cluster.stop()
    (root / "snakemake.log").write_text(log)
    print(f"snakemake --profile profiles/slurm on the smoke preset: rc {rc}, wall {wall:.0f} s")
    print("SLURM jobs (squeue -t all):\n" + jobs)
    print("log tail:\n" + "\n".join(log.splitlines()[-40:]))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
