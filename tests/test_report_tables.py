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


def test_floor_is_printed_beside_ours_and_near_floor_means_are_flagged_not_learned():
    runs = _runs([
        dict(dataset="apolloscape", student="erfnet", method="baseline", seed=0, value=6.0, floor=5.4),
        dict(dataset="apolloscape", student="erfnet", method="baseline", seed=1, value=7.0, floor=5.4),
        dict(dataset="apolloscape", student="erfnet", method="intrakd", seed=0, value=17.4, floor=5.4),
        dict(dataset="apolloscape", student="pspnet_r101", method="teacher", seed=0, value=25.0, floor=5.4),
    ])
    df = paper_table("table5", runs).set_index("method")
    # baseline mean 6.5 is 1.1 above its floor (< 2 points): not learned; IntRA-KD 12 above: learned
    assert df.loc["baseline", "floor"] == pytest.approx(5.4) and not df.loc["baseline", "learned"]
    assert df.loc["intrakd", "learned"] and df.loc["teacher", "learned"]
    md = to_markdown("table5", df.reset_index(), "synthetic", "abc")
    assert "| floor |" in md
    baseline_line = next(line for line in md.splitlines() if "| baseline |" in line)
    assert "6.5 ± 0.7 (n=2) **not learned**" in baseline_line and "| 5.4 |" in baseline_line
    assert "not learned" not in next(line for line in md.splitlines() if "IntRA-KD |" in line)


def test_learned_margin_is_two_points_in_each_metrics_units():
    from intrakd.report.tables import learned

    assert learned(7.39, 5.4, "miou") is False and learned(7.41, 5.4, "miou") is True
    assert learned(0.019, 0.0, "map") is False and learned(0.021, 0.0, "map") is True
    assert learned(1.0, 0.0, "f1") is False and learned(10.0, float("nan"), "miou") is None
