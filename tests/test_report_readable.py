"""What a reader sees, from hand-written sidecars (fast, no training): the training curves have one row of panels per
dataset in its own metric (F1 and mAP included), the table figures show every cell with its full label and ours
beside the paper's, Table 4 plots gains, tables come as HTML too, and runs trained on different data are never
pooled into one mean."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intrakd.report.tables import collect_runs, find_metrics

METRICS = {"apolloscape": "miou", "culane": "f1", "llamas": "map"}


def _run(root: Path, dataset: str, student: str, method: str, seed: int, value: float, role: str = "student",
         source: str | None = None, matched_size=None) -> Path:
    """A finished run folder: metrics.json and a 3-epoch history.csv validated at epochs 2 and 3."""
    out = root / dataset / student / method / f"seed{seed}"
    out.mkdir(parents=True)
    metric = METRICS[dataset]
    (out / "metrics.json").write_text(json.dumps({
        "role": role, "dataset": dataset, "student": student, "method": method, "seed": seed, "metric": metric,
        "value": value, "floor": {"value": value / 4}, "matched_size": matched_size, "git_commit": "abc",
        "data_source": source or f"synthetic {dataset}-format world (test)", "config": {}}))
    pd.DataFrame({"epoch": [1, 2, 3], "loss_seg": [3.0, 2.0, 1.5 + seed / 10],
                  f"val_{metric}": [np.nan, value / 2, value]}).to_csv(out / "history.csv", index=False)
    return out


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    root = tmp_path / "results" / "runs"
    for ds, scale in (("apolloscape", 1.0), ("culane", 1.0), ("llamas", 0.01)):
        _run(root, ds, "pspnet_r101", "teacher", 0, 40 * scale, role="teacher")
        for seed in (0, 1):
            for student in ("erfnet", "enet"):
                for k, method in enumerate(("baseline", "intrakd", "kd")):
                    _run(root, ds, student, method, seed, (20 + k + seed) * scale, matched_size=100 * (k + 1))
    return root


def _capture(monkeypatch):
    from intrakd.report import figures

    captured = {}
    monkeypatch.setattr(figures, "save_figure", lambda f, p: captured.setdefault("fig", f) and Path(p))
    return captured


def test_training_curves_have_a_row_per_dataset_in_its_own_metric(runs_dir, tmp_path, monkeypatch):
    from intrakd.report.figures import training_curves

    runs = collect_runs(find_metrics(runs_dir))
    assert training_curves(runs, tmp_path / "curves.png").is_file()
    captured = _capture(monkeypatch)
    training_curves(runs, tmp_path / "again.png")
    fig = captured["fig"]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    # per dataset: a loss row and a validation row, one column per model (2 students + the teacher)
    assert len(axes) == 3 * 2 * 3
    ylabels = {ax.get_ylabel().replace("\n", " ") for ax in axes if ax.get_ylabel()}
    assert {"validation mIoU (%)", "validation F1 (%)", "validation mAP"} <= ylabels
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    titles = [ax.get_title() for ax in axes]
    for ds, metric in METRICS.items():
        panel = next(ax for ax, t in zip(axes, titles) if t == f"{ds} · erfnet: {metric}")
        # the validation panel plots the mean over seeds at the validated epochs, one line per method
        assert len(panel.get_lines()) == 3
        ys = sorted(float(line.get_ydata()[-1]) for line in panel.get_lines())
        scale = 0.01 if metric == "map" else 1.0
        assert ys == pytest.approx([20.5 * scale, 21.5 * scale, 22.5 * scale])
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"teacher", "baseline", "+ IntRA-KD", "+ KD"}
    assert "synthetic culane-format world" in fig._suptitle.get_text()  # which data


def test_table_figure_shows_every_cell_with_ours_beside_the_paper(runs_dir, tmp_path, monkeypatch):
    from intrakd.report import build_tables

    captured = _capture(monkeypatch)
    frames = build_tables(find_metrics(runs_dir / "culane"), ["table2"], tmp_path / "t", tmp_path / "f", "abc")
    table = frames["table2"]
    (ax,) = captured["fig"].axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [f"{m} {lab}" for m, lab in zip(table["model"], table["method"].map(
        {"baseline": "baseline", "intrakd": "+ IntRA-KD", "kd": "+ KD", "teacher": "teacher"}))]
    ours = next(c for c in ax.collections if c.get_gid() == "ours")
    np.testing.assert_allclose(ours.get_offsets()[:, 0], table["ours"])  # every cell has its dot, teacher included
    assert ax.get_xlabel() == "F1 (%)"
    assert "synthetic culane-format world" in captured["fig"]._suptitle.get_text()
    html = (tmp_path / "t" / "table2.html").read_text()
    assert "<table>" in html and "<th>ours</th>" in html and html.count("<tr>") == len(table) + 1


def test_table4_figure_plots_gains_and_measured_complexity(runs_dir, tmp_path, monkeypatch):
    from intrakd.report import build_tables

    root = tmp_path / "t4"
    _run(root, "apolloscape", "erfnet", "baseline", 0, 20.0)
    _run(root, "apolloscape", "erfnet", "intra", 0, 23.0, matched_size=64)
    _run(root, "apolloscape", "erfnet", "kd", 0, 21.0, matched_size=4000)
    captured = _capture(monkeypatch)
    table = build_tables(find_metrics(root), ["table4"], tmp_path / "t", tmp_path / "f", "abc")["table4"]
    gains, complexity = captured["fig"].axes
    assert gains.get_xlabel().startswith("gain over the ERFNet baseline")
    ours = next(c for c in gains.collections if c.get_gid() == "ours")
    shown = table[table.method != "teacher"]
    np.testing.assert_allclose(ours.get_offsets()[:, 0], shown["ours_gain"])  # 3.0 and 1.0, not 23 and 21
    assert sorted(ours.get_offsets()[:, 0]) == [1.0, 3.0]
    assert complexity.get_xscale() == "log"
    assert [round(p.get_width()) for p in complexity.patches] == [int(s) for s in shown["ours_size"]]


def test_tables_refuse_to_pool_runs_trained_on_different_data(runs_dir, tmp_path, capsys):
    from intrakd.cli import main

    demo = _run(tmp_path / "demo", "culane", "erfnet", "baseline", 0, 6.1, source="synthetic (notebook demo)")
    assert main(["tables", str(runs_dir / "culane"), str(demo / "metrics.json"), "--table", "table2",
                 "--out-tables", str(tmp_path / "t"), "--out-figures", str(tmp_path / "f")]) == 1
    err = capsys.readouterr().err
    assert "culane runs given were trained on different data" in err
    assert "'synthetic (notebook demo)'" in err and "'synthetic culane-format world (test)'" in err
    assert not (tmp_path / "t" / "table2.md").exists()
