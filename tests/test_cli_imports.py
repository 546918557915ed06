"""The CLI imports only the modules of the command it runs: scoring, synthesis and dataset checks load no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import contextlib, io, json, sys
    from pathlib import Path

    import cv2
    from intrakd.cli import main

    def run(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                rc = main(list(argv))
            except SystemExit as stop:  # --help
                rc = stop.code
        assert rc == 0, (argv, rc, out.getvalue())
        return out.getvalue()

    tmp = Path(sys.argv[1])
    run("evaluate", "culane", "--help")
    assert "torch" not in sys.modules, "evaluate culane --help imported torch"
    run("synth", "llamas", str(tmp / "llamas"), "--num", "3", "--size", "160x90")
    run("data", "check", "llamas", str(tmp / "llamas"), "--split", "valid")
    from intrakd.data.llamas import multiclass_label  # label drawing, as the evaluator's workers do it

    labels = sorted((tmp / "llamas" / "labels" / "valid").rglob("*.json"))
    for j in labels:  # perfect binary predictions: AP 1 for every class present
        lab = multiclass_label(j)
        for c in range(5):
            p = tmp / "pred" / j.parent.name / f"{j.name}_{c}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(p), (lab == c).astype("uint8") * 255)
    res = json.loads(run("evaluate", "llamas", "--label-root", str(tmp / "llamas" / "labels" / "valid"),
                         "--pred-root", str(tmp / "pred"), "--json"))
    assert res["images"] == len(labels) and res["ap_background"] == 1.0, res
    print(json.dumps(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
""")


def test_scoring_synthesis_and_checks_import_no_torch(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    res = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]", res.stdout


def test_top_level_help_lists_every_command(capsys):
    from intrakd.cli import COMMANDS, main

    try:
        main(["--help"])
    except SystemExit as stop:
        assert stop.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
