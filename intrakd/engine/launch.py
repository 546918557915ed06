"""The entry of a run: train here, or start ``torchrun`` for a multi-process (DDP) run and report how it ended.

How to run on N GPUs
--------------------
Set ``nproc`` (one process per GPU) and call the engine as usual::

    intrakd train run.yaml --set nproc=4          # or RunConfig(nproc=4, ...); the workflow key is train.nproc

:func:`train` then writes the run's configuration to ``<out_dir>/ddp_config.yaml`` and starts
``python -m torch.distributed.run --standalone --nproc_per_node 4 -m intrakd.cli train <out_dir>/ddp_config.yaml``,
streams its output (also appended to ``<out_dir>/ddp.log``) and returns the ``metrics.json`` it wrote. A
notebook or workflow job therefore needs no change beyond the parameter. To launch yourself (several nodes,
SLURM ``srun torchrun ...``), run ``torchrun ... -m intrakd.cli train run.yaml``: a process that finds ``RANK``
and ``WORLD_SIZE`` in its environment joins that group instead of launching (``nproc`` 1 or equal to
``WORLD_SIZE``; the run records ``WORLD_SIZE`` as its ``nproc``). What a process group changes against one
process: :mod:`intrakd.engine.distributed`.

How a failure comes back
------------------------
The launcher gives its processes a folder (environment variable ``INTRAKD_ERROR_DIR``). A process whose run
raises writes ``rank<r>.json`` there -- ``{rank, time, types, message, traceback}`` (``types``: its exception's
classes, most derived first) -- and exits non-zero. When torchrun fails, the launcher raises the error of the
first report (by time; the others are usually peers losing their connection) again: a
:class:`~intrakd.engine.errors.DistributedRunError` that is also the worker's own type (a worker's bad value is a
``ValueError`` here too, a non-finite loss a ``NonFiniteLossError``), its message naming the log and every
report, the first report's traceback attached as a note (and appended to the log). Nothing is parsed from the
processes' output.

Layers: this module sits above :mod:`intrakd.engine.train` (which trains in one process and never launches) and
:mod:`intrakd.engine.distributed` (the process group inside a run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import torch

from intrakd import atomic
from intrakd.engine import distributed, provenance
from intrakd.engine.config import RunConfig
from intrakd.engine.errors import DistributedRunError, type_names, worker_error
from intrakd.engine.train import train_in_process

CONFIG_NAME = "ddp_config.yaml"
LOG_NAME = "ddp.log"
#: The environment variable naming the folder where the launched processes write their failure reports.
ERROR_DIR_ENV = "INTRAKD_ERROR_DIR"


def train(cfg: RunConfig | dict) -> dict:
    """Train (or resume) one run and write its sidecars; returns the metrics dict.

    ``cfg.nproc`` > 1 launches the run under torchrun (:func:`launch`) and returns the metrics it wrote; a process
    started by torchrun (``RANK``/``WORLD_SIZE`` set) trains as one member of that group, reporting a failure to
    the launcher that started it (:func:`reporting_failure`); otherwise the run trains in this process.
    """
    env = distributed.launcher_env()
    if env is not None:
        with reporting_failure(env.rank):
            return train_in_process(cfg)
    if isinstance(cfg, dict):
        cfg = RunConfig.from_dict(cfg)
    if cfg.nproc == 1:
        return train_in_process(cfg)
    cfg.validate()  # the one check of the run in the launcher; each process checks its own copy
    return launch(cfg)


@contextmanager
def reporting_failure(rank: int):
    """Inside a process :func:`launch` started: an exception leaving the block is written to
    ``$INTRAKD_ERROR_DIR/rank<rank>.json`` (then propagates). A no-op without that variable (torchrun started by
    hand)."""
    folder = os.environ.get(ERROR_DIR_ENV)
    try:
        yield
    except BaseException as err:
        if folder:
            report = {"rank": rank, "time": time.time(), "types": type_names(err), "message": str(err),
                      "traceback": "".join(traceback.format_exception(err))}
            try:
                atomic.write_text(Path(folder) / f"rank{rank}.json", json.dumps(report))
            except OSError as write_err:  # the original error matters more; say why the report is missing
                print(f"intrakd: rank {rank} could not write its failure report: {write_err}", file=sys.stderr)
        raise


def read_reports(folder: Path) -> list[dict]:
    """The failure reports in ``folder``, earliest first (ties by rank)."""
    reports = [json.loads(p.read_text()) for p in sorted(Path(folder).glob("rank*.json"))]
    return sorted(reports, key=lambda r: (r["time"], r["rank"]))


def failure(reports: list[dict], context: str) -> DistributedRunError:
    """The error for a failed torchrun job: the first report's type (:func:`intrakd.engine.errors.worker_error`)
    with ``context`` and one line per report; a plain DistributedRunError saying so when no process reported."""
    if not reports:
        return DistributedRunError(f"{context}\nno process reported an error (killed by a signal or out of memory?)")
    lines = [f"[rank{r['rank']}] {r['types'][0].rpartition('.')[2]}: {r['message']}" for r in reports]
    err = worker_error(reports[0]["types"], "\n".join([context, *dict.fromkeys(lines)]))
    err.add_note(f"traceback of rank {reports[0]['rank']}:\n{reports[0]['traceback'].rstrip()}")
    return err


def launch(cfg: RunConfig) -> dict:
    """Run ``cfg`` (validated, ``nproc`` > 1) under torchrun in a subprocess; returns the metrics.json it wrote,
    or raises :func:`failure` of its processes' reports."""
    import yaml

    if provenance.resolve_device(cfg.device).type == "cuda" and cfg.nproc > torch.cuda.device_count():
        raise ValueError(f"nproc={cfg.nproc} but {torch.cuda.device_count()} GPU(s) are visible: one process per GPU")
    out = cfg.out
    out.mkdir(parents=True, exist_ok=True)
    config_path = out / CONFIG_NAME
    # JSON first: tuples in method options become lists, which safe_dump writes and the CLI reads back.
    config_path.write_text(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict())), sort_keys=False))
    log_path = out / LOG_NAME
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(cfg.nproc),
           "-m", "intrakd.cli", "train", str(config_path)]
    with tempfile.TemporaryDirectory(prefix="intrakd-ddp-errors-") as error_dir:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{ERROR_DIR_ENV: error_dir})
        # torchrun would set 1 thread per process (with a warning); share the cores instead unless told.
        env.setdefault("OMP_NUM_THREADS", str(cfg.threads or max(1, (os.cpu_count() or 1) // cfg.nproc)))
        with log_path.open("a") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            log.flush()
            rc = _stream(cmd, env, log)
            if rc == 0:
                reports = []
            else:
                reports = read_reports(Path(error_dir))
                for r in reports:  # the CLI prints one line per error; the log keeps the whole story
                    log.write(f"=== traceback of rank {r['rank']}:\n{r['traceback']}")
    if rc != 0:
        raise failure(reports, f"{cfg.nproc}-process run in {out} failed (torchrun exit status {rc}); full log: "
                               f"{log_path}")
    metrics_path = out / "metrics.json"
    if not metrics_path.is_file():
        raise DistributedRunError(f"{cfg.nproc}-process run exited 0 but wrote no {metrics_path}; log: {log_path}")
    return json.loads(metrics_path.read_text())


def _stream(cmd: list[str], env: dict, log) -> int:
    """Run ``cmd``, copying its output to stdout and ``log`` line by line; its exit status. Interrupted here, it
    stops torchrun (which stops its workers)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env)
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(line)
            log.flush()
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
