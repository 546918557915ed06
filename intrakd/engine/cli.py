"""``intrakd train``: run the engine outside notebooks (same function the notebooks call)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("train", help="train one run from a YAML/JSON file of RunConfig keys "
                                     "(--set nproc=N: N processes under torchrun)")
    p.add_argument("config", type=Path, help="YAML or JSON mapping of run parameters (see intrakd.engine.RunConfig)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter (VALUE parsed as YAML), repeatable")
    p.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    p.set_defaults(func=_train)


def _train(args) -> int:
    from intrakd.engine import train
    from intrakd.engine.config import load_run_file
    from intrakd.yamlio import yaml_value

    values = load_run_file(args.config)
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        values[key] = yaml_value(raw, f"--set {key}")
    metrics = train(values)  # nproc > 1: launches torchrun, whose processes come back here (see launch.py)
    if args.json and os.environ.get("RANK", "0") == "0":  # once per run, not once per process
        print(json.dumps({k: metrics[k] for k in ("metric", "value", "wall_seconds", "params")}))
    return 0
