"""Paper tables from run sidecars: joins, gains, teacher context rows and Table 4's measured complexity."""

from __future__ import annotations

import pandas as pd
import pytest

from intrakd.report.tables import RUN_COLUMNS, paper_table, to_markdown


def _runs(rows):
    base = dict(teacher=None, metric="miou", data_source="synthetic apolloscape-format world", params=1,
                wall_seconds=1.0, matched_size=None, seconds_per_step=0.5, git_commit="abc", path="p")
    return pd.DataFrame([base | r for r in rows], columns=RUN_COLUMNS)


def test_table4_gains_are_over_our_baseline_and_show_measured_sizes():
    runs = _runs([
        dict(dataset="apolloscape", student="erfnet", method="baseline", seed=0, value=10.0),
        dict(dataset="apolloscape", student="erfnet", method="baseline", seed=1, value=12.0),
        dict(dataset="apolloscape", student="erfnet", method="kd", seed=0, value=11.5, matched_size=1000),
        dict(dataset="apolloscape", student="erfnet", method="intra", seed=0, value=13.0, matched_size=80),
    ])
    df = paper_table("table4", runs).set_index("method")
    assert df.loc["kd", "ours_gain"] == pytest.approx(0.5) and df.loc["intra", "ours_gain"] == pytest.approx(2.0)
    assert df.loc["intra", "ours_size"] == 80 and df.loc["intra", "paper"] == pytest.approx(42.3)
    md = to_markdown("table4", df.reset_index(), "synthetic", "abc")
    assert "| 1,000 |" in md and "`O(n^2)`" in md


def test_table5_keeps_our_teacher_as_a_context_row_and_sd_over_seeds():
    runs = _runs([
        dict(dataset="apolloscape", student="erfnet", method="baseline", seed=0, value=10.0),
        dict(dataset="apolloscape", student="erfnet", method="baseline", seed=1, value=14.0),
        dict(dataset="apolloscape", student="pspnet_r101", method="teacher", seed=0, value=30.0),
    ])
    df = paper_table("table5", runs).set_index("method")
    assert df.loc["baseline", "ours"] == 12.0 and df.loc["baseline", "n"] == 2
    assert df.loc["baseline", "sd"] == pytest.approx(2 ** 1.5)  # sample sd of (10, 14)
    assert df.loc["baseline", "delta"] == pytest.approx(12.0 - 40.4)
    assert pd.isna(df.loc["teacher", "paper"]) and df.loc["teacher", "ours"] == 30.0
