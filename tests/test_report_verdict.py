"""The claims verdict: Welch intervals and verdicts checked against hand-computed values (no training)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intrakd.report.tables import OPTION_COLUMNS, RUN_COLUMNS, collect_runs, find_metrics
from intrakd.report.verdict import (
    CLAIMS, judge, load_scores, one_sample_interval, paired_interval, read_scores, summary, table_comparisons,
    to_markdown, verdict_table, welch_interval, write_verdict,
)

T_975_DF2 = 4.302652729749464  # Student t 0.975 quantile, 2 degrees of freedom (printed tables: 4.303)


def _runs(rows) -> pd.DataFrame:
    """A collect_runs(..., with_options=True)-shaped frame from (dataset, student, method, seed, value[, kernel])."""
    recs = []
    for r in rows:
        dataset, student, method, seed, value, *kernel = r
        recs.append({"dataset": dataset, "student": student, "method": method, "seed": seed, "value": value,
                     "metric": "miou", "data_source": "synthetic apolloscape-format world", "path": f"/x/{len(recs)}",
                     "base_method": "intra" if kernel else method, "kernel": float(kernel[0]) if kernel else math.nan})
    return pd.DataFrame(recs, columns=RUN_COLUMNS + OPTION_COLUMNS)


def _row(table, claim, a, b, dataset="apolloscape"):
    hit = table[(table.claim == claim) & (table.a == a) & (table.b == b) & (table.dataset == dataset)]
    assert len(hit) == 1, (claim, a, b, hit)
    return hit.iloc[0]


def test_welch_interval_two_seeds_each_side_by_hand():
    # means 10.1 and 5.1, sample variances 0.02 each: se = sqrt(0.01 + 0.01), df = 0.02^2 / (0.01^2 + 0.01^2) = 2
    effect, low, high, df = welch_interval([10.0, 10.2], [5.0, 5.2])
    half = T_975_DF2 * math.sqrt(0.02)
    assert effect == pytest.approx(5.0)
    assert df == pytest.approx(2.0)
    assert (low, high) == pytest.approx((5.0 - half, 5.0 + half))
    assert (low, high) == pytest.approx((4.39151, 5.60849), abs=1e-5)


def test_welch_df_with_unequal_variances_and_sizes():
    # a: var 2, n 2 -> 1; b: var 1, n 3 -> 1/3; df = (4/3)^2 / (1^2/1 + (1/3)^2/2) = 32/19
    effect, low, high, df = welch_interval([1.0, 3.0], [0.0, 1.0, 2.0])
    assert effect == pytest.approx(1.0)
    assert df == pytest.approx(32 / 19)
    assert low < 0 < high


def test_one_seed_gives_an_undefined_interval_and_empty_side_nothing():
    effect, low, high, df = welch_interval([3.0], [1.0, 2.0])
    assert effect == pytest.approx(1.5) and math.isnan(low) and math.isnan(high) and math.isnan(df)
    assert all(math.isnan(v) for v in welch_interval([], [1.0, 2.0]))
    assert welch_interval([2.0, 2.0], [1.0, 1.0])[1:3] == (1.0, 1.0)  # no spread: degenerate interval


@pytest.mark.parametrize("direction, low, high, verdict", [
    (">", 0.1, 0.9, "agree"), (">", -0.9, -0.1, "disagree"), (">", -0.1, 0.9, "inconclusive"),
    ("<", -0.9, -0.1, "agree"), ("<", 0.1, 0.9, "disagree"), ("<", -0.1, 0.1, "inconclusive"),
    ("~", -0.4, 0.4, "agree"), ("~", 0.6, 0.9, "disagree"), ("~", -0.9, -0.6, "disagree"),
    ("~", -0.6, 0.1, "inconclusive"),
])
def test_judge(direction, low, high, verdict):
    assert judge(direction, low, high, 2, 2, margin=0.5) == verdict


def test_judge_counts_and_bad_direction():
    assert judge(">", math.nan, math.nan, 1, 3) == "inconclusive"
    assert judge(">", math.nan, math.nan, 0, 3) == "not run"
    with pytest.raises(ValueError, match="direction"):
        judge(">=", 0.0, 1.0, 2, 2)


def test_verdict_rows_agree_disagree_inconclusive_not_run():
    runs = _runs([
        ("apolloscape", "erfnet", "intrakd", 0, 10.0), ("apolloscape", "erfnet", "intrakd", 1, 10.2),
        ("apolloscape", "erfnet", "baseline", 0, 5.0), ("apolloscape", "erfnet", "baseline", 1, 5.2),
        # SwiftNet: IntRA-KD worse than the baseline -> disagree
        ("apolloscape", "swiftnet_rn18", "intrakd", 0, 5.0), ("apolloscape", "swiftnet_rn18", "intrakd", 1, 5.2),
        ("apolloscape", "swiftnet_rn18", "baseline", 0, 10.0), ("apolloscape", "swiftnet_rn18", "baseline", 1, 10.2),
        # CULane ERFNet: one IntRA-KD seed -> inconclusive
        ("culane", "erfnet", "intrakd", 0, 70.0),
        ("culane", "erfnet", "baseline", 0, 60.0), ("culane", "erfnet", "baseline", 1, 61.0),
    ])
    table = verdict_table(runs)
    good = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    assert good.verdict == "agree"
    assert (good.effect, good.ci_low, good.ci_high, good.df) == pytest.approx((5.0, 4.39151, 5.60849, 2.0), abs=1e-5)
    assert (good.paper_a, good.paper_b, good.paper_effect) == pytest.approx((43.2, 40.4, 2.8))
    assert (good.n_a, good.n_b) == (2, 2) and good.mean_a == pytest.approx(10.1)
    bad = _row(table, "T5.improves", "swiftnet_rn18 + IntRA-KD", "swiftnet_rn18 (baseline)")
    assert bad.verdict == "disagree" and bad.effect == pytest.approx(-5.0)
    one = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)", dataset="culane")
    assert one.verdict == "inconclusive" and one.effect == pytest.approx(9.5) and math.isnan(one.ci_low)
    absent = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)", dataset="llamas")
    assert absent.verdict == "not run" and absent.n_a == 0 and absent.paper_a == pytest.approx(0.598)
    # every claim is listed; the ones without runs only as "not run"
    counts = summary(table).set_index("claim")
    assert list(counts.index) == list(CLAIMS)
    assert counts.loc["T5.improves", ["agree", "disagree", "inconclusive", "not run"]].tolist() == [1, 1, 1, 5]
    assert (table[table.claim == "T123.best"].verdict == "not run").all()


def test_table_claims_follow_the_paper_cells():
    comps = pd.DataFrame(table_comparisons())
    # Tables 1-3: 3 datasets x 2 students x 7 other methods; Table 4: 5 forms vs ERFNet, IntRA vs the 4 others
    assert (comps.claim == "T123.best").sum() == 42 and (comps.claim == "T123.methods_improve").sum() == 42
    assert (comps.claim == "T4.gain").sum() == 5 and (comps.claim == "T4.graph_most").sum() == 4
    assert (comps.claim == "T5.improves").sum() == 8 and (comps.claim == "T123.teacher").sum() == 12
    # every claimed direction agrees with the paper's own numbers
    assert ((comps.paper_a - comps.paper_b) > 0).all()


def test_kernel_sweep_claims():
    runs = _runs([
        ("apolloscape", "erfnet", "intra_k5", 0, 5.0, 5), ("apolloscape", "erfnet", "intra_k5", 1, 5.2, 5),
        ("apolloscape", "erfnet", "intra_k1", 0, 4.0, 1), ("apolloscape", "erfnet", "intra_k1", 1, 4.2, 1),
        ("apolloscape", "erfnet", "intra_k10", 0, 5.05, 10), ("apolloscape", "erfnet", "intra_k10", 1, 5.25, 10),
        ("apolloscape", "erfnet", "intra_k25", 0, 7.0, 25), ("apolloscape", "erfnet", "intra_k25", 1, 7.2, 25),
        ("apolloscape", "erfnet", "intra_k100", 0, 3.0, 100), ("apolloscape", "erfnet", "intra_k100", 1, 3.2, 100),
    ])
    half = T_975_DF2 * math.sqrt(0.02)
    table = verdict_table(runs, stable_margin=1.0)
    k1 = _row(table, "F1.k1_degraded", "erfnet intra k=1", "erfnet intra k=5")
    assert k1.verdict == "agree" and (k1.ci_low, k1.ci_high) == pytest.approx((-1 - half, -1 + half))
    k10 = _row(table, "F1.stable", "erfnet intra k=10", "erfnet intra k=5")
    assert k10.verdict == "agree" and k10.margin == 1.0  # [-0.559, 0.659] inside (-1, 1)
    assert _row(table, "F1.stable", "erfnet intra k=25", "erfnet intra k=5").verdict == "disagree"  # [1.39, 2.61]
    assert _row(table, "F1.large_drops", "erfnet intra k=100", "erfnet intra k=5").verdict == "agree"
    # with the default margin 0.5 the k=10 interval [-0.559, 0.659] is neither inside nor outside
    assert _row(verdict_table(runs), "F1.stable", "erfnet intra k=10", "erfnet intra k=5").verdict == "inconclusive"


def test_sweep_claims_without_runs_are_not_run_and_need_the_kernel_column():
    table = verdict_table(_runs([("apolloscape", "erfnet", "baseline", 0, 5.0)]))
    fig1 = table[table.claim.str.startswith("F1.")]
    assert len(fig1) == 3 and (fig1.verdict == "not run").all()
    with pytest.raises(ValueError, match="with_options=True"):
        verdict_table(_runs([("apolloscape", "erfnet", "baseline", 0, 5.0)]).drop(columns=["kernel"]))
    with pytest.raises(ValueError, match="stable_margin"):
        verdict_table(_runs([("apolloscape", "erfnet", "baseline", 0, 5.0)]), stable_margin=0)


def _write_metrics(root, dataset, student, method, seed, value, role="student", options=None, base=None):
    d = root / dataset / student / method / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({
        "role": role, "dataset": dataset, "student": student, "method": method, "base_method": base or method,
        "method_options": options or {}, "seed": seed, "metric": "miou", "value": value,
        "data_source": "synthetic apolloscape-format world (test)"}))


def test_cli_writes_csv_and_markdown_with_data_note_and_commit(tmp_path, capsys):
    from intrakd.cli import main

    runs = tmp_path / "runs"
    for seed, (a, b) in enumerate([(10.0, 5.0), (10.2, 5.2)]):
        _write_metrics(runs, "apolloscape", "erfnet", "intrakd", seed, a)
        _write_metrics(runs, "apolloscape", "erfnet", "baseline", seed, b)
        _write_metrics(runs, "apolloscape", "erfnet", "intra_k5", seed, b, options={"kernel": 5}, base="intra")
    _write_metrics(runs, "apolloscape", "pspnet_r101", "baseline", 0, 50.0, role="teacher")
    out = tmp_path / "tables"
    assert main(["verdict", str(runs), "--out", str(out), "--commit", "abc1234"]) == 0
    csv = pd.read_csv(out / "verdict.csv")
    assert set(csv.commit) == {"abc1234"} and csv.data.str.contains("synthetic").all()
    row = csv[(csv.claim == "T5.improves") & (csv.dataset == "apolloscape") & (csv.a == "erfnet + IntRA-KD")].iloc[0]
    assert row.verdict == "agree" and row.ci_low == pytest.approx(4.39151, abs=1e-5)
    teacher = csv[(csv.claim == "T123.teacher") & (csv.dataset == "apolloscape")]
    assert set(teacher.n_a) == {1}  # the teacher run is found (method "teacher"), one seed -> inconclusive/not run
    md = (out / "verdict.md").read_text()
    assert "abc1234" in md and "NOT comparable" in md and "**agree**" in md
    assert md in capsys.readouterr().out
    # kernel of the sweep run read from method_options
    runs_df = collect_runs(find_metrics(runs), with_options=True)
    assert runs_df.set_index("method").loc["intra_k5", "kernel"].tolist() == [5.0, 5.0]


def test_bad_kernel_option_names_the_file(tmp_path):
    _write_metrics(tmp_path, "apolloscape", "erfnet", "intra_kx", 0, 1.0, options={"kernel": "big"}, base="intra")
    with pytest.raises(ValueError, match=r"intra_kx.*kernel must be an int"):
        collect_runs(find_metrics(tmp_path), with_options=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no metrics.json found"):
        find_metrics(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="missing: no such metrics.json file or folder"):
        find_metrics([tmp_path / "missing"])


def test_paired_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.3027
    effect, low, high, df = paired_interval([11, 12, 13], [10, 10, 10])
    half = T_975_DF2 / math.sqrt(3)
    assert (effect, low, high, df) == pytest.approx((2.0, 2.0 - half, 2.0 + half, 2.0))
    assert paired_interval([1.0], [0.0])[0] == 1.0 and math.isnan(paired_interval([1.0], [0.0])[1])
    assert paired_interval([2, 3], [1, 2])[1:3] == (1.0, 1.0)  # zero spread: degenerate interval
    assert all(math.isnan(v) for v in paired_interval([], []))


def _scores(fig, column, per_method):
    rows = [{"dataset": "apolloscape", "model": "erfnet", "method": m, "label": m, "image": i, column: v}
            for m, values in per_method.items() for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_figure_claims_pair_per_image_scores():
    runs = _runs([("apolloscape", "erfnet", "baseline", 0, 5.0)])
    fig2 = _scores("fig2", "score", {"intrakd": [13, 14, 15, 50], "bifpn": [10, 10, 10, None],
                                     "baseline": [14, 15, 16, 60]})
    fig3 = _scores("fig3", "mad", {"intrakd": [0.1, 0.2, 0.1], "bifpn": [0.1, 0.2, 0.1], "baseline": [0.4, 0.45, 0.42]})
    table = verdict_table(runs, scores={"fig2": fig2, "fig3": fig3})
    vs_bifpn = _row(table, "F2.more_accurate", "erfnet + IntRA-KD", "erfnet + BiFPN")
    # image 3 has no BiFPN score: pairs are images 0-2, differences 3, 4, 5 (sd 1)
    assert (vs_bifpn.n_a, vs_bifpn.n_b, vs_bifpn.unit) == (3, 3, "images")
    assert (vs_bifpn.effect, vs_bifpn.ci_low) == pytest.approx((4.0, 4.0 - T_975_DF2 / math.sqrt(3)))
    assert vs_bifpn.verdict == "agree"
    # against the baseline: image 3 counts too (differences -1, -1, -1, -10): mean -3.25, interval across 0
    worse = _row(table, "F2.more_accurate", "erfnet + IntRA-KD", "erfnet (baseline)")
    assert worse.n_a == 4 and worse.effect == pytest.approx(-3.25) and worse.verdict == "inconclusive"
    closer = _row(table, "F3.rational", "erfnet + IntRA-KD", "erfnet (baseline)")
    assert closer.direction == "<" and closer.verdict == "agree" and closer.effect == pytest.approx(-0.29)
    assert closer.ci_high == pytest.approx(-0.29 + T_975_DF2 * 0.036055513 / math.sqrt(3))  # sd of -.3, -.25, -.32
    same = _row(table, "F3.rational", "erfnet + IntRA-KD", "erfnet + BiFPN")  # identical graphs: not closer
    assert same.effect == 0.0 and (same.ci_low, same.ci_high) == (0.0, 0.0) and same.verdict == "inconclusive"
    # without score files the figure claims are listed, not run
    bare = verdict_table(runs)
    assert (bare[bare.claim.isin(["F2.more_accurate", "F3.rational"])].verdict == "not run").all()
    assert set(bare.unit) == {"seeds", "images"}


def _crn_runs(a_values, b_values, same_data=True):
    """ERFNet + IntRA-KD (a) against ERFNet (b) on ApolloScape, seeds 0.., with the engine's digests."""
    rows = []
    for method, values in (("intrakd", a_values), ("baseline", b_values)):
        for seed, v in enumerate(values):
            data = f"data{seed}" if same_data or method == "baseline" else f"other{seed}"
            rows.append({"dataset": "apolloscape", "student": "erfnet", "method": method, "seed": seed, "value": v,
                         "floor": 5.4, "metric": "miou", "data_source": "synthetic", "path": f"/x/{method}{seed}",
                         "init_sha256": f"init{seed}", "data_sha256": data, "base_method": method,
                         "kernel": math.nan})
    return pd.DataFrame(rows, columns=RUN_COLUMNS + OPTION_COLUMNS)


def test_common_random_numbers_pair_by_seed_and_the_interval_matches_scipy():
    from scipy import stats

    a, b = [17.0, 18.5, 17.3], [15.0, 17.0, 15.5]
    row = _row(verdict_table(_crn_runs(a, b)), "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    assert row.test == "paired t (seeds)"
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high))
    assert row.effect == pytest.approx(np.mean(np.subtract(a, b))) and row.df == 2
    # other training data on one side: no common random numbers, unpaired Welch interval
    welch = _row(verdict_table(_crn_runs(a, b, same_data=False)), "T5.improves", "erfnet + IntRA-KD",
                 "erfnet (baseline)")
    assert welch.test == "Welch t (seeds)"
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (welch.ci_low, welch.ci_high) == pytest.approx((ci.low, ci.high))
    # pairing is what makes this decisive: per-seed differences 2.0, 1.5, 1.8 vary less than the seeds do
    assert row.verdict == "agree" and welch.verdict == "inconclusive"


def test_a_side_near_its_floor_is_not_learned_never_agree_or_disagree():
    runs = _crn_runs([7.0, 7.2, 7.1], [5.5, 5.6, 5.5])  # baseline 0.1-0.2 above its floor of 5.4
    table = verdict_table(runs)
    row = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    assert row.verdict == "not learned" and row.ci_low > 0  # the interval alone would say "agree"
    assert (row.floor_a, row.floor_b) == pytest.approx((5.4, 5.4))
    assert summary(table).set_index("claim").loc["T5.improves", "not learned"] == 1
    md = to_markdown(table, "synthetic", "abc")
    assert "| paired t (seeds) |" in md and "**not learned**" in md and "(5.40)" in md


# ---------------------------------------------------------------------- one-sample teacher, p-values, Holm
def _teacher_runs(teacher, students, student_method="baseline"):
    """One PSPNet teacher run (method "teacher") and ENet student seeds on ApolloScape (Table 1)."""
    rows = [("apolloscape", "pspnet_r101", "teacher", 0, teacher)]
    rows += [("apolloscape", "enet", student_method, s, v) for s, v in enumerate(students)]
    return _runs(rows)


def test_teacher_claim_uses_a_one_sample_interval_around_the_single_teacher_run():
    from scipy import stats

    students = [20.0, 21.5, 20.7]
    table = verdict_table(_teacher_runs(30.0, students))
    row = _row(table, "T123.teacher", "pspnet_r101 (teacher)", "enet (baseline)")
    assert row.test == "one-sample t (seeds)" and (row.n_a, row.n_b) == (1, 3) and row.df == 2
    ci = stats.ttest_1samp(students, popmean=30.0).confidence_interval(0.95)  # interval of the students' mean
    assert (row.effect, row.ci_low, row.ci_high) == pytest.approx((30.0 - np.mean(students), 30.0 - ci.high,
                                                                    30.0 - ci.low))
    assert row.verdict == "agree"  # Welch could not decide with one teacher seed
    assert row.p == pytest.approx(stats.ttest_1samp(students, popmean=30.0).pvalue)
    # a teacher inside the students' spread: undecided
    close = _row(verdict_table(_teacher_runs(20.8, students)), "T123.teacher", "pspnet_r101 (teacher)",
                 "enet (baseline)")
    assert close.verdict == "inconclusive" and close.ci_low < 0 < close.ci_high
    # one student seed: no interval
    one = _row(verdict_table(_teacher_runs(30.0, [20.0])), "T123.teacher", "pspnet_r101 (teacher)", "enet (baseline)")
    assert one.verdict == "inconclusive" and math.isnan(one.ci_low) and math.isnan(one.p)


def test_one_sample_interval_edge_cases():
    from intrakd.report.verdict import one_sample_interval

    assert all(math.isnan(v) for v in one_sample_interval(1.0, []))
    flat = one_sample_interval(3.0, [1.0, 1.0])  # no spread: the degenerate interval [effect, effect]
    assert flat[:3] == (2.0, 2.0, 2.0) and math.isnan(flat[3])
    effect, low, high, df = one_sample_interval(10.0, [11.0, 12.0, 13.0])  # sd 1, se 1/sqrt 3
    assert (effect, low, high, df) == pytest.approx((-2.0, -2.0 - T_975_DF2 / math.sqrt(3),
                                                     -2.0 + T_975_DF2 / math.sqrt(3), 2.0))


def test_p_values_match_scipys_tests():
    from scipy import stats

    from intrakd.report.verdict import p_value

    a, b = [17.0, 18.5, 17.3, 16.1], [15.0, 17.0, 15.5]
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert p_value(">", welch_interval(a, b))[0] == pytest.approx(welch.pvalue)
    assert p_value(">", welch_interval(a, b))[1] == "agree" and p_value("<", welch_interval(a, b))[1] == "disagree"
    a3 = a[:3]
    assert p_value(">", paired_interval(a3, b))[0] == pytest.approx(stats.ttest_rel(a3, b).pvalue)
    # "~" with margin m on paired differences d: equivalence = the larger of the two one-sided tests (TOST),
    # non-equivalence = the smaller of "beyond +m" and "beyond -m"; p = twice the smaller of the two
    d = np.subtract(a3, b)
    for m in (0.5, 2.0, 4.0):
        tost = max(stats.ttest_1samp(d, -m, alternative="greater").pvalue,
                   stats.ttest_1samp(d, m, alternative="less").pvalue)
        outside = min(stats.ttest_1samp(d, m, alternative="greater").pvalue,
                      stats.ttest_1samp(d, -m, alternative="less").pvalue)
        p, side = p_value("~", paired_interval(a3, b), margin=m)
        assert p == pytest.approx(min(1.0, 2 * min(tost, outside)))
        assert side == ("agree" if tost <= outside else "disagree")
    assert math.isnan(p_value(">", welch_interval([1.0], [2.0, 3.0]))[0])


def test_p_below_005_exactly_when_the_raw_interval_decides():
    from intrakd.report.verdict import p_value

    rng = np.random.default_rng(0)
    decided = 0
    for _ in range(300):
        a = rng.normal(rng.normal(0, 2), rng.uniform(0.1, 2), size=rng.integers(2, 6))
        b = rng.normal(0, rng.uniform(0.1, 2), size=a.size)
        interval = paired_interval(a, b) if rng.random() < 0.5 else welch_interval(a, b)
        for direction in (">", "<", "~"):
            verdict = judge(direction, interval[1], interval[2], a.size, b.size, margin=1.0)
            p, side = p_value(direction, interval, margin=1.0)
            assert (p < 0.05) == (verdict in ("agree", "disagree")), (direction, interval, p, verdict)
            if p < 0.05:
                assert side == verdict
                decided += 1
    assert decided > 100  # both outcomes exercised


def test_holm_by_hand():
    from intrakd.report.verdict import holm

    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = holm([0.01, math.nan, 0.04])  # nan is not a test: m = 2
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)
    assert holm([0.6, 0.5]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.7, 0.6]) == pytest.approx([1.0, 1.0])  # 2 x 0.6 = 1.2, capped at 1


def test_holm_within_a_claim_can_undo_a_raw_agreement():
    from scipy import stats

    # T5.improves on ApolloScape: ERFNet barely better (paired p 0.033), SwiftNet clearly better
    erf_a, erf_b = [16.0, 18.6, 16.4], [15.0, 17.0, 15.5]  # differences 1.0, 1.6, 0.9
    sw_a, sw_b = [30.0, 31.0, 32.0], [20.0, 21.1, 21.9]
    rows = []
    for model, a, b in (("erfnet", erf_a, erf_b), ("swiftnet_rn18", sw_a, sw_b)):
        for method, values in (("intrakd", a), ("baseline", b)):
            for seed, v in enumerate(values):
                rows.append({"dataset": "apolloscape", "student": model, "method": method, "seed": seed, "value": v,
                             "floor": 5.4, "metric": "miou", "data_source": "synthetic", "path": f"/{model}{method}{seed}",
                             "init_sha256": f"{model}{seed}", "data_sha256": f"d{seed}", "base_method": method,
                             "kernel": math.nan})
    table = verdict_table(pd.DataFrame(rows, columns=RUN_COLUMNS + OPTION_COLUMNS))
    erf = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    sw = _row(table, "T5.improves", "swiftnet_rn18 + IntRA-KD", "swiftnet_rn18 (baseline)")
    p_erf, p_sw = stats.ttest_rel(erf_a, erf_b).pvalue, stats.ttest_rel(sw_a, sw_b).pvalue
    assert (erf.p, sw.p) == pytest.approx((p_erf, p_sw))
    assert p_sw < p_erf < 0.05 < 2 * p_erf  # the family of T5.improves holds these two tests (m = 2)
    assert sw.p_holm == pytest.approx(2 * p_sw) and erf.p_holm == pytest.approx(max(2 * p_sw, p_erf))
    assert erf.p_holm == pytest.approx(p_erf)  # step-down: the second-smallest is multiplied by 1
    assert erf.verdict == "agree" and erf.verdict_holm == "agree" and sw.verdict_holm == "agree"
    # a third, undecided comparison in the same claim (m = 3) pushes ERFNet's adjusted p above 0.05
    extra = [{"dataset": "culane", "student": "erfnet", "method": m, "seed": s, "value": v, "floor": 0.0,
              "metric": "f1", "data_source": "synthetic", "path": f"/c{m}{s}", "init_sha256": f"c{s}",
              "data_sha256": f"c{s}", "base_method": m, "kernel": math.nan}
             for m, vals in (("intrakd", [60.0, 70.0, 65.0]), ("baseline", [64.0, 66.0, 63.0]))
             for s, v in enumerate(vals)]
    table3 = verdict_table(pd.DataFrame(rows + extra, columns=RUN_COLUMNS + OPTION_COLUMNS))
    erf3 = _row(table3, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    assert erf3.p_holm == pytest.approx(2 * p_erf) and erf3.verdict == "agree" and erf3.verdict_holm == "inconclusive"
    counts = summary(table3).set_index("claim").loc["T5.improves"]
    assert (counts["agree"], counts["agree (Holm)"]) == (2, 1)
    md = to_markdown(table3, "synthetic", "abc")
    assert "| p | p Holm | verdict | verdict (Holm) |" in md and "**agree** | **inconclusive** |" in md


def test_f3_is_labelled_a_sanity_check_in_its_rows():
    runs = _runs([("apolloscape", "erfnet", "baseline", 0, 5.0)])
    fig3 = _scores("fig3", "mad", {"intrakd": [0.1, 0.2, 0.1], "bifpn": [0.3, 0.4, 0.35], "baseline": [0.4, 0.45, 0.42]})
    table = verdict_table(runs, scores={"fig3": fig3})
    assert set(table[table.claim == "F3.rational"].kind) == {"sanity check"}
    assert set(table[table.claim != "F3.rational"].kind) == {"claim"}
    md = to_markdown(table, "synthetic", "abc")
    assert "| F3.rational (*sanity check*: IntRA-KD is trained to minimise this distance) | apolloscape |" in md
    assert "sanity check, not a test of the claim" in CLAIMS["F3.rational"][1]


# ---------------------------------------------------------------------- mutation testing (issue 17), by function
# Each test below pins behaviour a surviving mutant of intrakd/report/verdict.py changed (mutmut 3.8.1): values are
# scipy's (ttest_ind / ttest_rel / ttest_1samp / t.sf) or computed by hand in the comment beside them.
# welch_interval
@pytest.mark.parametrize("n_a, n_b, sd_a, sd_b", [(2, 5, 3.0, 0.5), (6, 3, 0.4, 2.5), (4, 4, 1.0, 1.0)])
@pytest.mark.parametrize("level", [0.95, 0.8])
def test_welch_interval_matches_scipy_with_fractional_df(n_a, n_b, sd_a, sd_b, level):
    rng = np.random.default_rng(n_a * 10 + n_b)
    a, b = rng.normal(1.0, sd_a, n_a), rng.normal(0.0, sd_b, n_b)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(level)
    assert welch_interval(a, b, level) == pytest.approx((a.mean() - b.mean(), ci.low, ci.high, res.df), rel=1e-9)
    assert welch_interval(list(a), list(b), level) == welch_interval(a, b, level)  # lists as arrays


@pytest.mark.filterwarnings("error")  # an undefined interval or an empty side is answered without computing on it
def test_welch_interval_edge_cases_are_four_values_computed_without_numpy_warnings():
    for out in (welch_interval([], [1.0, 2.0]), welch_interval([1.0, 2.0], [])):
        assert len(out) == 4 and all(math.isnan(v) for v in out)
    for out, effect in ((welch_interval([3.0], [1.0, 2.0]), 1.5), (welch_interval([1.0, 2.0], [3.0]), -1.5)):
        assert len(out) == 4 and out[0] == effect and all(math.isnan(v) for v in out[1:])
    flat = welch_interval([2.0, 2.0, 2.0], [1.0, 1.0])  # no spread on either side: [effect, effect], df nan
    assert flat[:3] == (1.0, 1.0, 1.0) and math.isnan(flat[3])


# paired_interval / one_sample_interval
@pytest.mark.parametrize("n", [2, 3, 7])
@pytest.mark.parametrize("level", [0.95, 0.9])
def test_paired_and_one_sample_intervals_match_scipy(n, level):
    rng = np.random.default_rng(n)
    a, b = rng.normal(1.0, 1.0, n), rng.normal(0.0, 1.0, n)
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(level)
    assert paired_interval(a, b, level) == pytest.approx(((a - b).mean(), ci.low, ci.high, n - 1), rel=1e-9)
    one = stats.ttest_1samp(b, popmean=3.0)  # the teacher's 3.0 fixed: 3 - mean(b), interval mirrored
    ci = one.confidence_interval(level)
    assert one_sample_interval(3, list(b), level) == pytest.approx((3.0 - b.mean(), 3.0 - ci.high, 3.0 - ci.low,
                                                                     n - 1), rel=1e-9)


@pytest.mark.filterwarnings("error")
def test_paired_interval_edge_cases_are_four_values_computed_without_numpy_warnings():
    for out in (paired_interval([], []), one_sample_interval(2.0, [])):
        assert len(out) == 4 and all(math.isnan(v) for v in out)
    out = paired_interval([4.0], [1.0])
    assert len(out) == 4 and out[0] == 3.0 and all(math.isnan(v) for v in out[1:])
    assert one_sample_interval(2.0, [1.5])[0] == 0.5


# _t_tails / p_value
def test_t_tails_are_scipys_and_by_the_sign_without_spread():
    from intrakd.report.verdict import _t_tails

    assert _t_tails(1.0, 0.5, 3.0) == pytest.approx((stats.t.sf(2.0, 3.0), stats.t.cdf(2.0, 3.0)))
    assert _t_tails(-0.3, 0.1, 7.5) == pytest.approx((stats.t.sf(-3.0, 7.5), stats.t.cdf(-3.0, 7.5)))
    # se 0: the statistic is +inf / -inf (tails 0 and 1), or sits at the centre (P(T >= 0) = 1/2 for any df)
    assert _t_tails(0.5, 0.0, math.nan) == (0.0, 1.0) and _t_tails(-2.0, 0.0, math.nan) == (1.0, 0.0)
    assert _t_tails(0.0, 0.0, math.nan) == (0.5, 0.5)


def test_p_value_of_a_degenerate_interval_and_its_verdict_agree():
    from intrakd.report.verdict import p_value

    # zero spread (df nan): the p-value is 0 on a side by the effect's sign, 1 at the bound itself
    assert p_value(">", (0.5, 0.5, 0.5, math.nan)) == (0.0, "agree")
    assert p_value("<", (0.5, 0.5, 0.5, math.nan)) == (0.0, "disagree")
    assert p_value("<", (-2.0, -2.0, -2.0, math.nan)) == (0.0, "agree")
    assert p_value(">", (0.0, 0.0, 0.0, math.nan))[0] == 1.0 and judge(">", 0.0, 0.0, 2, 2) == "inconclusive"
    # "~", margin 0.5: inside the band agree, beyond it disagree, on the margin neither (p 1, inconclusive)
    for effect, p, side in ((0.2, 0.0, "agree"), (-0.2, 0.0, "agree"), (0.7, 0.0, "disagree"),
                            (-0.7, 0.0, "disagree"), (0.5, 1.0, None), (-0.5, 1.0, None)):
        got = p_value("~", (effect, effect, effect, math.nan), margin=0.5)
        assert got[0] == p and (side is None or got[1] == side), (effect, got)
        assert judge("~", effect, effect, 2, 2, margin=0.5) == (side or "inconclusive")
    with pytest.raises(ValueError, match="direction must be"):
        p_value(">=", (1.0, 0.5, 1.5, 3.0))


def test_p_values_of_both_directions_and_signs_match_scipy():
    from intrakd.report.verdict import p_value

    a, b = [17.0, 18.5, 17.3], [15.0, 17.0, 15.5]  # paired differences 2.0, 1.5, 1.8
    for x, y in ((a, b), (b, a)):  # effect +1.77 and -1.77
        res = stats.ttest_rel(x, y)
        for level in (0.95, 0.8):
            interval = paired_interval(x, y, level)
            assert p_value(">", interval, level=level)[0] == pytest.approx(res.pvalue)
            assert p_value("<", interval, level=level)[0] == pytest.approx(res.pvalue)
        d = np.subtract(x, y)
        for m in (0.5, 2.0, 4.0):  # beyond, near and well inside the band, on both signs
            tost = max(stats.ttest_1samp(d, -m, alternative="greater").pvalue,
                       stats.ttest_1samp(d, m, alternative="less").pvalue)
            outside = min(stats.ttest_1samp(d, m, alternative="greater").pvalue,
                          stats.ttest_1samp(d, -m, alternative="less").pvalue)
            p, side = p_value("~", paired_interval(x, y, 0.8), margin=m, level=0.8)
            assert p == pytest.approx(2 * min(tost, outside)) and side == ("agree" if tost < outside else "disagree")
    # the side of ">" and "<" on a negative effect
    assert p_value(">", paired_interval(b, a))[1] == "disagree" and p_value("<", paired_interval(b, a))[1] == "agree"


# judge
@pytest.mark.parametrize("direction, low, high, verdict", [
    # an interval touching 0 (or a margin) does not exclude it: p = 0.05 there, not below it
    (">", 0.0, 0.9, "inconclusive"), (">", -0.9, 0.0, "inconclusive"),
    ("<", 0.0, 0.9, "inconclusive"), ("<", -0.9, 0.0, "inconclusive"),
    ("~", -0.5, 0.2, "inconclusive"), ("~", -0.2, 0.5, "inconclusive"),
    ("~", 0.5, 0.9, "inconclusive"), ("~", -0.9, -0.5, "inconclusive"),
    ("~", 0.51, 0.9, "disagree"), ("~", -0.9, -0.51, "disagree"), ("~", -0.49, 0.49, "agree"),
    # one bound undefined: no interval
    (">", 0.5, math.nan, "inconclusive"), (">", math.nan, 0.5, "inconclusive"), ("~", 0.0, math.nan, "inconclusive"),
])
def test_judge_at_the_bounds(direction, low, high, verdict):
    assert judge(direction, low, high, 3, 3, margin=0.5) == verdict


def test_judge_not_run_needs_an_empty_side_and_one_seed_is_inconclusive():
    assert judge(">", math.nan, math.nan, 3, 0) == "not run" and judge("~", math.nan, math.nan, 0, 0) == "not run"
    assert judge(">", math.nan, math.nan, 3, 1) == "inconclusive" and judge("<", math.nan, math.nan, 1, 1) == "inconclusive"
    assert judge(">", 0.1, 0.9, 1, 1) == "agree"  # the counts only say whether a side ran
    with pytest.raises(ValueError, match="direction must be '>', '<' or '~', got '='"):
        judge("=", 0.1, 0.9, 2, 2)


# table_comparisons / _pair / _paper
def test_table_comparisons_pair_every_paper_cell_as_the_claims_say():
    from intrakd.report.common import paper_results

    cells = paper_results()["cells"]
    value = {}
    for c in cells:
        value.setdefault((c["dataset"], c["model"], c["method"]), c["value"])
    expected = [("T5.improves", d, (m, "intrakd"), (m, "baseline"))
                for d, m in dict.fromkeys((c["dataset"], c["model"]) for c in cells if c["table"] == "table5")]
    for table in ("table1", "table2", "table3"):  # Tables 1-3: one dataset, one teacher, two students each
        rows = [c for c in cells if c["table"] == table]
        (teacher,) = [c["model"] for c in rows if c["method"] == "teacher"]
        students = dict.fromkeys(c["model"] for c in rows if c["method"] != "teacher")
        others = {c["method"] for c in rows} - {"teacher", "baseline", "intrakd"}
        d = rows[0]["dataset"]
        for m in students:
            expected.append(("T123.improves", d, (m, "intrakd"), (m, "baseline")))
            expected += [("T123.best", d, (m, "intrakd"), (m, o)) for o in others]
            expected += [("T123.methods_improve", d, (m, o), (m, "baseline")) for o in others]
            expected += [("T123.teacher", d, (teacher, "teacher"), (m, s)) for s in ("baseline", "intrakd")]
    forms = [c["method"] for c in cells if c["table"] == "table4"]  # Table 4: ERFNet on ApolloScape
    expected += [("T4.gain", "apolloscape", ("erfnet", f), ("erfnet", "baseline")) for f in forms]
    expected += [("T4.graph_most", "apolloscape", ("erfnet", "intra"), ("erfnet", f)) for f in forms if f != "intra"]
    comps = table_comparisons()
    assert sorted(map(repr, [(c["claim"], c["dataset"], c["side_a"], c["side_b"]) for c in comps])) == sorted(
        map(repr, expected))
    for c in comps:
        assert c["direction"] == ">" and math.isnan(c["margin"])
        assert (c["paper_a"], c["paper_b"]) == (value[(c["dataset"], *c["side_a"])], value[(c["dataset"], *c["side_b"])])


# verdict_table / _outcome / _with_holm: every measured column of a row
def _table_runs():
    rows = [("apolloscape", "erfnet", "intrakd", s, v) for s, v in enumerate([10.0, 10.2])]
    rows += [("apolloscape", "erfnet", "baseline", s, v) for s, v in enumerate([5.0, 5.2, 5.4])]
    rows += [("apolloscape", "swiftnet_rn18", "intrakd", s, v) for s, v in enumerate([10.0, 11.0, 10.6])]
    rows += [("apolloscape", "swiftnet_rn18", "baseline", s, v) for s, v in enumerate([9.0, 9.5, 10.0])]
    rows += [("culane", "erfnet", "baseline", s, v) for s, v in enumerate([60.0, 61.0])]  # no IntRA-KD run
    rows += [("llamas", "erfnet", "intrakd", 0, 0.6)]  # no baseline run
    rows += [("cityscapes", "erfnet", "baseline", 0, 70.0)]  # one baseline seed, no IntRA-KD run
    floors = {"apolloscape": 1.0, "culane": 59.5, "llamas": 0.1}  # culane: 60.5 lies < 2 points above: not learned
    return _runs(rows).assign(floor=lambda f: f.dataset.map(floors))


def test_verdict_row_columns_by_hand_with_scipy_at_level_090():
    table = verdict_table(_table_runs(), level=0.9)
    assert table.p.dtype == table.p_holm.dtype == float  # numeric columns, nan where no test ran
    row = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    a, b = [10.0, 10.2], [5.0, 5.2, 5.4]
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.9)
    # means 10.1 and 5.2, sd sqrt(0.02) and 0.2; Welch df = (0.01 + 0.04/3)^2 / (0.01^2 + (0.04/3)^2 / 2) = 49/17
    assert (row.mean_a, row.sd_a, row.n_a, row.mean_b, row.sd_b, row.n_b) == pytest.approx(
        (10.1, math.sqrt(0.02), 2, 5.2, 0.2, 3))
    assert (row.effect, row.ci_low, row.ci_high, row.df, row.p) == pytest.approx((4.9, ci.low, ci.high, 49 / 17,
                                                                                   res.pvalue))
    assert (row.test, row.verdict, row.floor_a, row.floor_b) == ("Welch t (seeds)", "agree", 1.0, 1.0)
    assert (row.metric, row.unit, row.source, row.direction, row.kind) == ("miou", "seeds", "Supp. §6, Table 5", ">",
                                                                           "claim")
    assert math.isnan(row.margin) and (row.paper_a, row.paper_b) == (43.2, 40.4)
    # SwiftNet: p 0.065 (scipy), so the 90 % interval decides and Holm's alpha is 0.10: m = 2 in T5.improves
    sw = _row(table, "T5.improves", "swiftnet_rn18 + IntRA-KD", "swiftnet_rn18 (baseline)")
    p_sw = stats.ttest_ind([10.0, 11.0, 10.6], [9.0, 9.5, 10.0], equal_var=False).pvalue
    assert 0.05 < p_sw < 0.1 and sw.p == pytest.approx(p_sw) and sw.verdict == "agree"
    assert (sw.p_holm, row.p_holm) == pytest.approx((p_sw, 2 * res.pvalue)) and sw.verdict_holm == "agree"
    assert _row(verdict_table(_table_runs()), "T5.improves", "swiftnet_rn18 + IntRA-KD",
                "swiftnet_rn18 (baseline)").verdict_holm == "inconclusive"  # 95 %: raw interval spans 0
    # a side without runs: not run (never "not learned", though the other side did not learn), no test, no p
    culane = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)", dataset="culane")
    assert (culane.verdict, culane.verdict_holm, culane.test, culane.n_a, culane.n_b) == ("not run", "not run", "",
                                                                                         0, 2)
    assert (culane.mean_b, culane.sd_b, culane.floor_b) == pytest.approx((60.5, math.sqrt(0.5), 59.5))
    assert all(math.isnan(v) for v in (culane.mean_a, culane.sd_a, culane.p, culane.p_holm, culane.floor_a))
    llamas = _row(table, "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)", dataset="llamas")
    assert (llamas.verdict, llamas.test, llamas.n_a, llamas.n_b, llamas.mean_a) == ("not run", "", 1, 0, 0.6)
    assert math.isnan(llamas.sd_a) and math.isnan(llamas.effect) and llamas.metric == "map"


@pytest.mark.filterwarnings("error")  # means and sds of empty or one-seed sides are not computed
def test_verdict_table_without_runs_on_a_side_raises_no_numpy_warning():
    assert (verdict_table(_table_runs()).verdict == "not run").sum() > 100


def test_holm_undoes_two_raw_disagreements_of_one_claim():
    # T5.improves: IntRA-KD worse than the baseline for both students, per-seed differences -1.0, -1.6, -0.9 each:
    # raw paired p 0.033 (scipy) twice, Holm 2 x 0.033 = 0.067 for both
    rows = []
    for model in ("erfnet", "swiftnet_rn18"):
        for method, values in (("intrakd", [15.0, 17.0, 15.5]), ("baseline", [16.0, 18.6, 16.4])):
            rows += [{"dataset": "apolloscape", "student": model, "method": method, "seed": s, "value": v,
                      "floor": 5.4, "metric": "miou", "data_source": "synthetic", "path": f"/{model}{method}{s}",
                      "init_sha256": f"{model}{s}", "data_sha256": f"d{s}", "base_method": method, "kernel": math.nan}
                     for s, v in enumerate(values)]
    table = verdict_table(pd.DataFrame(rows, columns=RUN_COLUMNS + OPTION_COLUMNS))
    p = stats.ttest_rel([15.0, 17.0, 15.5], [16.0, 18.6, 16.4]).pvalue
    for model in ("erfnet", "swiftnet_rn18"):
        row = _row(table, "T5.improves", f"{model} + IntRA-KD", f"{model} (baseline)")
        assert (row.verdict, row.verdict_holm) == ("disagree", "inconclusive") and row.test == "paired t (seeds)"
        assert (row.p, row.p_holm) == pytest.approx((p, 2 * p))
    counts = summary(table).set_index("claim").loc["T5.improves"]
    assert (counts["disagree"], counts["disagree (Holm)"], counts["agree (Holm)"]) == (2, 0, 0)


def test_stable_claim_p_value_in_the_table_is_the_welch_equivalence_test():
    a, b = [5.05, 5.25], [5.0, 5.2]  # k=10 against k=5 (Welch: no digests), margin 1.0
    runs = _runs([("apolloscape", "erfnet", "intra_k5", s, v, 5) for s, v in enumerate(b)]
                 + [("apolloscape", "erfnet", "intra_k10", s, v, 10) for s, v in enumerate(a)])
    row = _row(verdict_table(runs, stable_margin=1.0), "F1.stable", "erfnet intra k=10", "erfnet intra k=5")
    m, xa = 1.0, np.asarray(a)
    tost = max(stats.ttest_ind(xa + m, b, equal_var=False, alternative="greater").pvalue,
               stats.ttest_ind(xa - m, b, equal_var=False, alternative="less").pvalue)
    outside = min(stats.ttest_ind(xa - m, b, equal_var=False, alternative="greater").pvalue,
                  stats.ttest_ind(xa + m, b, equal_var=False, alternative="less").pvalue)
    assert row.p == pytest.approx(2 * min(tost, outside)) and row.margin == 1.0 and row.direction == "~"
    assert row.verdict == "agree" and tost < 0.05


# sweep_comparisons / sweep_runs / _side_runs
def test_kernel_sweep_bounds_bases_and_labels():
    # kernels 2 and 50 are the ends of "2 to 50" (stable), 1 below it, 51 above; two swept methods (bases)
    rows = []
    for base in ("intra", "intrakd"):
        for k in (1, 2, 5, 50, 51):
            rows += [("apolloscape", "erfnet", f"{base}_k{k}", s, 10.0 + s + k / 100, k) for s in (0, 1)]
    runs = _runs(rows)
    runs["base_method"] = [r.method.split("_k")[0] for r in runs.itertuples()]
    runs = pd.concat([runs, _runs([("culane", "erfnet", "intra_k1", 0, 1.0, 1), ("apolloscape", "enet", "intra_k1", 0,
                                                                                 1.0, 1)])])  # not the fig1 runs
    fig1 = verdict_table(runs)
    fig1 = fig1[fig1.claim.str.startswith("F1.")]
    got = {(r.claim, r.a, r.b, r.direction) for r in fig1.itertuples()}
    want = set()
    for base in ("intra", "intrakd"):
        ref = f"erfnet {base} k=5"
        want |= {("F1.k1_degraded", f"erfnet {base} k=1", ref, "<"), ("F1.large_drops", f"erfnet {base} k=51", ref, "<")}
        want |= {("F1.stable", f"erfnet {base} k={k}", ref, "~") for k in (2, 50)}
    assert got == want and len(fig1) == 8
    k50 = _row(fig1, "F1.stable", "erfnet intrakd k=50", "erfnet intrakd k=5")
    assert (k50.n_a, k50.n_b, k50.mean_a, k50.mean_b) == (2, 2, pytest.approx(11.0), pytest.approx(10.55))
    k1 = _row(fig1, "F1.k1_degraded", "erfnet intra k=1", "erfnet intra k=5")  # not the culane / enet k=1 runs
    assert k50.margin == 0.5 and math.isnan(k1.margin) and (k1.n_a, k1.n_b) == (2, 2)
    assert (k1.mean_a, k1.mean_b) == pytest.approx((10.51, 10.55))
    # no swept run: one "not run" row per claim, labelled with the kernel range, for the default method "intra"
    bare = verdict_table(_runs([("apolloscape", "erfnet", "baseline", 0, 5.0)]))
    labels = set(bare[bare.claim.str.startswith("F1.")].a)
    assert labels == {"erfnet intra k<2", "erfnet intra 2<=k<=50", "erfnet intra k>50"}
    assert set(bare[bare.claim.str.startswith("F1.")].b) == {"erfnet intra k=5"}
    assert (bare[bare.claim.str.startswith("F1.")].n_a == 0).all()


# common_random_numbers
def test_common_random_numbers_needs_the_same_seeds_once_and_both_digests():
    from intrakd.report.verdict import common_random_numbers

    a = _crn_runs([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])
    side_a, side_b = a[a.method == "intrakd"], a[a.method == "baseline"]
    assert common_random_numbers(side_a, side_b)
    assert not common_random_numbers(side_a.iloc[:1], side_b.iloc[:1])  # one pair: nothing to pair
    assert common_random_numbers(side_a.iloc[:2], side_b.iloc[:2])  # two pairs: a paired interval (df 1)
    assert not common_random_numbers(side_a.iloc[:2], side_b)  # other seed counts
    assert not common_random_numbers(side_a, side_b.assign(seed=[0, 1, 5]))  # other seeds
    twice = side_a.assign(seed=[0, 0, 1])
    assert not common_random_numbers(twice, twice)  # a seed twice
    for col in ("init_sha256", "data_sha256"):
        assert not common_random_numbers(side_a.drop(columns=col), side_b)
        assert not common_random_numbers(side_a, side_b.drop(columns=col))
        assert not common_random_numbers(side_a.drop(columns=col), side_b.drop(columns=col))
        assert not common_random_numbers(side_a.assign(**{col: [None, "x", "y"]}), side_b.assign(**{col: [None, "x",
                                                                                                          "y"]}))
        assert not common_random_numbers(side_a.assign(**{col: math.nan}), side_b.assign(**{col: math.nan}))
        assert not common_random_numbers(side_a, side_b.assign(**{col: ["o0", "o1", "o2"]}))


# read_scores / load_scores / write_verdict
def test_load_scores_reads_the_figure_files_present_and_read_scores_names_what_is_missing(tmp_path):
    from intrakd.report.common import SCORE_FILES

    fig3 = _scores("fig3", "mad", {"intrakd": [0.1, 0.2], "baseline": [0.4, 0.5]})
    fig3.to_csv(tmp_path / SCORE_FILES["fig3"], index=False)
    got = load_scores(tmp_path)
    assert list(got) == ["fig3"] and got["fig3"]["mad"].tolist() == [0.1, 0.2, 0.4, 0.5]
    assert load_scores(tmp_path / "nothing") == {}
    for drop, missing in (("dataset", "['dataset']"), ("method", "['method']"), ("image", "['image']"),
                          ("mad", "['score or mad']")):
        bad = tmp_path / f"no_{drop}.csv"
        fig3.drop(columns=drop).to_csv(bad, index=False)
        with pytest.raises(ValueError, match=rf"no_{drop}\.csv: per-image score file lacks {re.escape(missing)} "
                                             r"\(expected the output of intrakd figures\)"):
            read_scores(bad)
    fig3.rename(columns={"mad": "score"}).to_csv(tmp_path / "score.csv", index=False)
    assert read_scores(tmp_path / "score.csv")["score"].tolist() == [0.1, 0.2, 0.4, 0.5]


def test_write_verdict_into_a_new_folder_with_margin_scores_and_an_unknown_data_note(tmp_path):
    runs = _table_runs().drop(columns="data_source")
    fig2 = _scores("fig2", "score", {"intrakd": [13, 14, 15], "bifpn": [10, 10, 11], "baseline": [14, 15, 16]})
    out = tmp_path / "new" / "tables"
    for _ in range(2):  # a second write over the first
        table = write_verdict(runs, out, "c0ffee", stable_margin=1.5, scores={"fig2": fig2})
    csv = pd.read_csv(out / "verdict.csv")
    assert set(csv.data) == {"unknown"} and set(csv.commit) == {"c0ffee"} and len(csv) == len(table)
    assert _row(table, "F2.more_accurate", "erfnet + IntRA-KD", "erfnet + BiFPN").verdict == "agree"
    assert set(table[table.claim == "F1.stable"].margin) == {1.5}
    md = (out / "verdict.md").read_text()
    assert "**Data:** unknown" in md and "(margin 1.5, our choice" in md and (out / "verdict.html").is_file()


# to_markdown: the cells of the claims and comparisons tables
def test_markdown_cells_by_metric_digits_seeds_images_and_missing_sides():
    fig2 = _scores("fig2", "score", {"intrakd": [13, 14, 15], "bifpn": [10, 10, 11], "baseline": [14, 15, 16]})
    fig3 = _scores("fig3", "mad", {"intrakd": [0.1, 0.2, 0.1], "baseline": [0.4, 0.45, 0.42]})
    table = verdict_table(_table_runs(), stable_margin=1.5, scores={"fig2": fig2, "fig3": fig3})
    lines = to_markdown(table, "synthetic", "abc", stable_margin=1.5).split("\n")

    def line(start):
        (hit,) = [x for x in lines if x.startswith(start)]
        return hit

    def ci(res, digits):
        c = res.confidence_interval(0.95)
        return f"[{c.low:.{digits}f}, {c.high:.{digits}f}]"

    welch = stats.ttest_ind([10.0, 10.2], [5.0, 5.2, 5.4], equal_var=False)
    sw = stats.ttest_ind([10.0, 11.0, 10.6], [9.0, 9.5, 10.0], equal_var=False)
    # mIoU: 2 decimals; mean ± sd (n) (floor); Welch 95 % interval and p from scipy (p < 0.001 printed as such)
    assert line("| T5.improves | apolloscape | erfnet + IntRA-KD |") == (
        "| T5.improves | apolloscape | erfnet + IntRA-KD | erfnet (baseline) | a > b | 43.20 | 40.40 | "
        f"10.10 ± 0.14 (n=2) (1.00) | 5.20 ± 0.20 (n=3) (1.00) | Welch t (seeds) | 4.90 {ci(welch, 2)} | < 0.001 | "
        "< 0.001 | **agree** | **agree** |")
    assert welch.pvalue < 0.001 and f"{sw.pvalue:.3f}" == "0.065"
    assert line("| T5.improves | apolloscape | swiftnet_rn18 + IntRA-KD |").endswith(
        f"| 10.53 ± 0.50 (n=3) (1.00) | 9.50 ± 0.50 (n=3) (1.00) | Welch t (seeds) | 1.03 {ci(sw, 2)} | 0.065 | 0.065 | "
        "**inconclusive** | **inconclusive** |")
    # F1 score 2 decimals, no run on a side: an em dash for it, its test, effect, interval and p
    assert line("| T5.improves | culane | erfnet + IntRA-KD |").endswith(
        "| a > b | 72.40 | 70.20 | — | 60.50 ± 0.71 (n=2) (59.50) | — | — | — | — | **not run** | **not run** |")
    # mAP: 3 decimals; one seed: no sd
    assert line("| T5.improves | llamas | erfnet + IntRA-KD |").endswith(
        "| a > b | 0.598 | 0.570 | 0.600 (n=1) (0.100) | — | — | — | — | — | **not run** | **not run** |")
    assert line("| F1.stable | apolloscape |").startswith(
        "| F1.stable | apolloscape | erfnet intra 2<=k<=50 | erfnet intra k=5 | a ~ b (±1.5) | — | — |")
    # images: n counts images, no floor (the runs' floor is per seed, not per image); differences -1, -1, -1 have
    # no spread (degenerate interval, p 0); against BiFPN differences 3, 4, 4 (scipy's paired interval and p 0.008)
    assert line("| F2.more_accurate | apolloscape | erfnet + IntRA-KD | erfnet (baseline) |").endswith(
        "| 14.00 ± 1.00 (n=3 img) | 15.00 ± 1.00 (n=3 img) | paired t (images) | -1.00 [-1.00, -1.00] | < 0.001 | "
        "< 0.001 | **disagree** | **disagree** |")
    bifpn = stats.ttest_rel([13, 14, 15], [10, 10, 11])
    assert f"{bifpn.pvalue:.3f}" == "0.008" and line("| F2.more_accurate | apolloscape | erfnet + IntRA-KD | erfnet + "
                                                      "BiFPN |").endswith(
        f"| 10.33 ± 0.58 (n=3 img) | paired t (images) | 3.67 {ci(bifpn, 2)} | 0.008 | 0.008 | **agree** | **agree** |")
    # graph distance: 3 decimals
    mad = stats.ttest_rel([0.1, 0.2, 0.1], [0.4, 0.45, 0.42])
    assert line("| F3.rational (*sanity check*: IntRA-KD is trained to minimise this distance) | apolloscape | erfnet + "
                "IntRA-KD | erfnet (baseline) |").endswith(
        f"| 0.133 ± 0.058 (n=3 img) | 0.423 ± 0.025 (n=3 img) | paired t (images) | -0.290 {ci(mad, 3)} | "
        f"{mad.pvalue:.3f} | {mad.pvalue:.3f} | **agree** | **agree** |")
    # claims table: the counts of summary() per verdict, then agree / disagree after Holm
    assert line("| T5.improves | Supp. §6, Table 5 |").endswith(" | 1 | 0 | 1 | 0 | 6 | 1 | 0 |")
    assert line("| F2.more_accurate | Supp. §4, Fig. 2 |").endswith(" | 1 | 1 | 0 | 0 | 0 | 1 | 1 |")
    assert lines[-1] == "" and lines[-2].startswith("| F3.rational")  # one newline at the end
    no_floor = to_markdown(verdict_table(_table_runs().drop(columns="floor")), "synthetic", "abc")
    assert "| 10.10 ± 0.14 (n=2) | 5.20 ± 0.20 (n=3) | Welch t (seeds) |" in no_floor  # no floor recorded: none shown


# image_rows
def test_image_rows_read_score_files_at_the_level_with_the_runs_floors(tmp_path):
    from intrakd.report.verdict import image_rows

    fig2 = _scores("fig2", "score", {"intrakd": [13, 14, 15], "bifpn": [10, 10, 11], "baseline": [14, 15, 16]})
    path = tmp_path / "fig2_scores.csv"
    pd.concat([fig2, fig2.assign(dataset="culane", score=0.0)]).to_csv(path, index=False)  # another dataset: ignored
    # one seed per side; BiFPN's 3.0 lies 1.0 above its floor 2.0 (< 2 points): not learned
    runs = _runs([("apolloscape", "erfnet", "intrakd", 0, 10.0), ("apolloscape", "erfnet", "bifpn", 0, 3.0),
                  ("apolloscape", "erfnet", "baseline", 0, 9.0)]).assign(floor=[1.0, 2.0, 1.5])
    rows = {(r["claim"], r["b"]): r for r in image_rows({"fig2": str(path)}, 0.9, runs)}
    vs = rows[("F2.more_accurate", "erfnet + BiFPN")]
    res = stats.ttest_rel([13, 14, 15], [10, 10, 11])  # differences 3, 4, 4
    ci = res.confidence_interval(0.9)
    assert (vs["effect"], vs["ci_low"], vs["ci_high"], vs["df"], vs["p"]) == pytest.approx((11 / 3, ci.low, ci.high, 2,
                                                                                           res.pvalue))
    assert (vs["verdict"], vs["floor_a"], vs["floor_b"], vs["n_a"], vs["n_b"]) == ("not learned", 1.0, 2.0, 3, 3)
    assert (vs["unit"], vs["metric"], vs["direction"], vs["source"], vs["kind"], vs["test"]) == (
        "images", "image miou", ">", "Supp. §4, Fig. 2", "claim", "paired t (images)")
    assert all(math.isnan(vs[k]) for k in ("margin", "paper_a", "paper_b", "paper_effect"))
    base = rows[("F2.more_accurate", "erfnet (baseline)")]  # differences -1, -1, -1: no spread
    assert (base["verdict"], base["floor_b"], base["effect"], base["ci_low"]) == ("disagree", 1.5, -1.0, -1.0)
    f3 = rows[("F3.rational", "erfnet (baseline)")]  # no fig3 scores: not run, a sanity check
    assert (f3["verdict"], f3["n_a"], f3["metric"], f3["direction"], f3["kind"]) == ("not run", 0, "graph mad", "<",
                                                                                    "sanity check")
    # the same through verdict_table; without runs (or their floors) nothing is known not to have learned
    table = verdict_table(runs, level=0.9, scores={"fig2": str(path)})
    assert _row(table, "F2.more_accurate", "erfnet + IntRA-KD", "erfnet + BiFPN").verdict == "not learned"
    for bare_runs in (None, runs.drop(columns="floor")):
        bare = {r["b"]: r for r in image_rows({"fig2": fig2}, runs=bare_runs) if r["claim"] == "F2.more_accurate"}
        assert bare["erfnet + BiFPN"]["verdict"] == "agree" and math.isnan(bare["erfnet + BiFPN"]["floor_a"])
        assert math.isnan(bare["erfnet + BiFPN"]["floor_b"])


def test_markdown_p_values_three_decimals_and_below_a_thousandth():
    from intrakd.report.verdict import _fmt_p

    assert [_fmt_p(p) for p in (None, math.nan, np.float64(0.0004), 0.001, 0.0651, 1.0)] == [
        "—", "—", "< 0.001", "0.001", "0.065", "1.000"]


def test_comparison_rows_follow_the_method_order_of_the_tables():
    from intrakd.method_cards import METHOD_CARDS

    comps = table_comparisons()
    best = [c["side_b"][1] for c in comps if c["claim"] == "T123.best" and c["dataset"] == "apolloscape"
            and c["side_a"][0] == "enet"]
    assert best == [m for m in METHOD_CARDS if m in set(best)] and len(best) == 7  # the cards' declaration order
    gain = [c["side_a"][1] for c in comps if c["claim"] == "T4.gain"]
    assert gain == [m for m in METHOD_CARDS if m in set(gain)] and len(gain) == 5


def test_paired_and_one_sample_rows_use_the_tables_level():
    a, b = [17.0, 18.5, 17.3], [15.0, 17.0, 15.5]
    paired = _row(verdict_table(_crn_runs(a, b), level=0.9), "T5.improves", "erfnet + IntRA-KD", "erfnet (baseline)")
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(0.9)
    assert paired.test == "paired t (seeds)"
    assert (paired.ci_low, paired.ci_high, paired.p) == pytest.approx((ci.low, ci.high, res.pvalue))
    students = [20.0, 21.5, 20.7]
    one = _row(verdict_table(_teacher_runs(30.0, students), level=0.9), "T123.teacher", "pspnet_r101 (teacher)",
               "enet (baseline)")
    res = stats.ttest_1samp(students, popmean=30.0)
    ci = res.confidence_interval(0.9)
    assert one.test == "one-sample t (seeds)"
    assert (one.ci_low, one.ci_high, one.p) == pytest.approx((30.0 - ci.high, 30.0 - ci.low, res.pvalue))


def test_a_runs_table_without_the_needed_columns_is_refused():
    runs = _runs([("apolloscape", "erfnet", "baseline", 0, 5.0)])
    for col in ("dataset", "student", "method", "value"):
        with pytest.raises(ValueError, match=re.escape(f"runs table lacks column(s) ['{col}']; expected the frame of "
                                                       "collect_runs()")):
            verdict_table(runs.drop(columns=col))
