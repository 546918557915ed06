"""Verdict table: every claim of the paper, tested against our runs with a t-interval over seeds.

Each claim of the supplement (``paper_supplement.md``) becomes one or more *comparisons* (side a against side b
on one dataset, e.g. ENet + IntRA-KD against ENet on ApolloScape) with a claimed direction:

* ``>`` / ``<``: the claimed sign of mean(a) - mean(b). Verdict ``agree`` when the 95 % interval of the
  difference excludes 0 on the claimed side, ``disagree`` when it excludes 0 on the other side, ``inconclusive``
  otherwise (and whenever a side has fewer than two seeds: the interval is then undefined).

Which interval (column ``test``): the engine gives runs of one seed common random numbers (the same initial student
weights and the same training data in the same order, whatever the method; ``init_sha256`` / ``data_sha256`` in
their metrics.json). When both sides ran the same seeds and every seed's pair shares both digests, the sides are
paired by seed and the interval is the paired t-interval of the per-seed differences (``paired t (seeds)``);
otherwise (other seeds, runs without digests) Welch's interval for unpaired samples (``Welch t (seeds)``). A
teacher trained with one seed (``T123.teacher``: the presets train one teacher per dataset) against students with
several: the one-sample t-interval of the students' seeds around the teacher's value (``one-sample t (seeds)``),
which treats the teacher's value as fixed (its own seed variation is not measured; Welch would need 2 teachers).

Multiple comparisons (columns ``p``, ``p_holm``, ``verdict_holm``): a claim is tested by up to 42 comparisons, so
beside each raw interval the table gives the two-sided p-value of the same t statistic and its Holm adjustment
within the claim (the rows of one claim with a p-value form one family; ``not learned`` rows stay in it, which is
conservative). ``p`` < 0.05 exactly when the raw 95 % interval gives ``agree`` or ``disagree``: for ``>`` / ``<``
it is twice the smaller one-sided p-value (difference on the claimed side, on the other side); for ``~`` twice
the smaller of the equivalence p-value (both one-sided tests against -margin and +margin, their larger p) and the
non-equivalence one (beyond +margin or beyond -margin, their smaller p). ``verdict_holm`` is the raw verdict's
direction where ``p_holm`` < 0.05, ``inconclusive`` where it is not; ``not learned`` and ``not run`` stay.

A side whose mean lies less than ``LEARNED_MARGIN`` above its floor (the all-background predictor on the same images,
``floor`` in metrics.json) has not learned the task: the row's verdict is ``not learned`` whatever its interval, and
it is never counted as agreement or disagreement.
* ``~``: "remains almost the same" (Fig. 1, kernels 2-50): ``agree`` when the interval lies inside
  (-margin, +margin), ``disagree`` when it lies wholly outside [-margin, +margin], ``inconclusive`` otherwise
  (touching a bound is inconclusive either way, as its p-value is not below 1 - level). The paper
  gives no tolerance; ``stable_margin`` (metric units, default 0.5 mIoU point) is ours and printed with the table.

Fig. 2 and Fig. 3 make claims about single images (IntRA-KD's predictions are more accurate than ERFNet's and
ERFNet-BiFPN's; its affinity graph is more "rational" than BiFPN's). They are tested on the per-image scores the
figures step writes (``SCORE_FILES``): each run's per-image mIoU, and each student's per-image distance (MAD) to
the teacher's affinity graph, paired over the same evaluation images of one seed's runs: ``effect`` = mean of the
per-image differences with its paired t-interval (unit ``images``). That interval is over images, not seeds: it
says the difference holds across the scenes, not that it survives retraining.

``F3.rational`` is a sanity check, not a test of the claim (column ``kind``): the distance it scores, the
student's affinity graph against the teacher's, is the very quantity IntRA-KD's graph term minimises, so
``agree`` for IntRA-KD against another method is expected by construction; it checks the distillation took
effect, not that the graph is more "rational" (the paper defines rational only by its figure).

A comparison with no run on one side is ``not run``. Claims are defined here once (id, source, the paper's
wording); their paper values come from ``paper_results.yaml``. Nothing here trains or imports torch.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from intrakd.data.spec import DATASETS, get_spec
from intrakd.method_cards import row_label, row_rank
from intrakd.report.common import SCORE_FILES, fmt_number
from intrakd.report.tables import (
    LEARNED_MARGIN, NOT_LEARNED, data_note, learned, paper_results, write_table_files,
)

LEVEL = 0.95
DEFAULT_STABLE_MARGIN = 0.5
VERDICTS = ("agree", "disagree", "inconclusive", NOT_LEARNED, "not run")
PAIRED_SEEDS, WELCH_SEEDS, PAIRED_IMAGES = "paired t (seeds)", "Welch t (seeds)", "paired t (images)"
ONE_SAMPLE_SEEDS = "one-sample t (seeds)"
#: claim -> why its rows are a sanity check rather than a test of the claim (column ``kind``)
SANITY_CHECKS = {
    "F3.rational": "IntRA-KD is trained to minimise this distance",
}

#: id -> (source, the paper's wording). Quotes are the supplement's text; "[table]" marks a claim the paper makes
#: only through its table (bold best rows, ordering of the printed numbers).
CLAIMS: dict[str, tuple[str, str]] = {
    "T5.improves": (
        "Supp. §6, Table 5",
        "\"IntRA-KD consistently improves the mIoU of ERFNet and SwiftNetRN-18 from {69.8, 75.5} to {71.4, 76.6}\" "
        "(Cityscapes); \"it is evident that IntRA-KD brings significant performance gains to SwiftNetRN-18 in all "
        "benchmarks\"; Table 5 prints the same gains for ERFNet on all four benchmarks.",
    ),
    "T123.improves": (
        "Supp. Tables 1-3",
        "[table] ENet-IntRA-KD and ResNet-18-IntRA-KD score above ENet and ResNet-18 on ApolloScape, CULane and "
        "LLAMAS.",
    ),
    "T123.best": (
        "Supp. §3, Tables 1-3",
        "\"the introduced affinity graph has the least learning complexity but brings most performance gains over "
        "other distillation methods\"; [table] IntRA-KD is the best (bold) student row for ENet and ResNet-18 on "
        "every benchmark.",
    ),
    "T123.methods_improve": (
        "Supp. Tables 1-3",
        "[table] every other distillation method (self distillation: DKS, SAD; teacher-student: KD, SKD, PS-N, "
        "IRG, BiFPN) scores above the plain ENet / ResNet-18 student.",
    ),
    "T123.teacher": (
        "Supp. Tables 1-3",
        "[table] the ResNet-101 teacher (bold) scores above the students, with or without IntRA-KD.",
    ),
    "T4.gain": (
        "Supp. Table 4",
        "[table] every form of knowledge (probability map, feature map, pairwise similarity map, attention map, "
        "inter-region affinity graph) brings a positive mIoU gain to ERFNet on ApolloScape.",
    ),
    "T4.graph_most": (
        "Supp. §3, Table 4",
        "\"It is evident that the introduced affinity graph has the least learning complexity but brings most "
        "performance gains over other distillation methods.\"",
    ),
    "F1.k1_degraded": (
        "Supp. §1, Fig. 1",
        "\"when the kernel size is 1 x 1, the performance of IntRA-KD is slightly degraded since the neighbouring "
        "areas around road markings are missed\" (against the paper's setting: \"the kernel size is set as 5\").",
    ),
    "F1.stable": (
        "Supp. §1, Fig. 1",
        "\"When the kernel size ranges from 2 to 50, the performance remains almost the same, suggesting the "
        "stability of IntRA-KD.\"",
    ),
    "F1.large_drops": (
        "Supp. §1, Fig. 1",
        "\"when the kernel size continues to increase, the performance of IntRA-KD drops quickly since too many "
        "background areas are included\".",
    ),
    "F2.more_accurate": (
        "Supp. §4, Fig. 2",
        "\"ERFNet-IntRA-KD makes more accurate predictions on long and thin road markings\"; \"predictions made by "
        "ERFNet and ERFNet-BiFPN are inaccurate and messy. By contrast, the predictions of ERFNet-IntRA-KD are more "
        "complete and accurate\" (tested on per-image mIoU, paired over evaluation images).",
    ),
    "F3.rational": (
        "Supp. §5, Fig. 3",
        "\"IntRA-KD not only improves the predictions of ERFNet, but also makes the generated affinity graph more "
        "rational compared with BiFPN\" (sanity check, not a test of the claim: the student's affinity graph lies "
        "closer to the teacher's, per-image mean absolute difference paired over evaluation images, which is what "
        "IntRA-KD's graph term minimises, so agreement is expected by construction).",
    ),
}

OUT_COLUMNS = ["claim", "source", "dataset", "metric", "unit", "a", "b", "direction", "margin", "paper_a", "paper_b",
               "paper_effect", "mean_a", "sd_a", "n_a", "floor_a", "mean_b", "sd_b", "n_b", "floor_b", "test", "effect",
               "ci_low", "ci_high", "df", "verdict", "p", "p_holm", "verdict_holm", "kind"]
#: claim -> (figure id, score column, metric name, claimed direction of IntRA-KD against each other method)
IMAGE_CLAIMS = {"F2.more_accurate": ("fig2", "score", "image miou", ">"), "F3.rational": ("fig3", "mad", "graph mad", "<")}
_NEEDED = ("dataset", "student", "method", "value")
_TABLES_123 = ("table1", "table2", "table3")


# ---------------------------------------------------------------------------------------------- statistics
def welch_interval(a, b, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean(a) - mean(b), low, high, Welch-Satterthwaite df) of the two-sided ``level`` t-interval.

    Sample variances (ddof 1). With fewer than two values on a side the interval is undefined: (effect, nan, nan,
    nan); with an empty side everything is nan. Zero spread on both sides gives the degenerate interval
    [effect, effect] (df nan).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if not (a.size and b.size):
        return (math.nan,) * 4
    effect = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return effect, math.nan, math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0:
        return effect, effect, effect, math.nan
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(se2)
    return effect, effect - half, effect + half, float(df)


def paired_interval(a, b, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(mean(a - b), low, high, df) of the two-sided ``level`` t-interval of paired differences (same length).

    Fewer than two pairs: (effect, nan, nan, nan); no pair: all nan; zero spread: [effect, effect] (df nan)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if not d.size:
        return (math.nan,) * 4
    effect = float(d.mean())
    if d.size < 2:
        return effect, math.nan, math.nan, math.nan
    se = d.std(ddof=1) / math.sqrt(d.size)
    if se == 0:
        return effect, effect, effect, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1)) * se
    return effect, effect - half, effect + half, float(d.size - 1)


def one_sample_interval(value: float, b, level: float = LEVEL) -> tuple[float, float, float, float]:
    """(value - mean(b), low, high, df) of the two-sided ``level`` one-sample t-interval: ``value`` (one teacher
    run) taken as fixed, ``b`` (the students' seeds) as the sample; the paired interval of ``value`` repeated
    against ``b`` (same edge cases: fewer than two values nan bounds, none all nan, no spread [effect, effect])."""
    b = np.asarray(b, dtype=float)
    return paired_interval(np.full(b.shape, float(value)), b, level)


def _t_tails(x: float, se: float, df: float) -> tuple[float, float]:
    """(P(T >= x / se), P(T <= x / se)) for Student's t with ``df``; se 0 (no spread): by the sign of x."""
    if se == 0:
        return (0.0, 1.0) if x > 0 else (1.0, 0.0) if x < 0 else (0.5, 0.5)
    t = x / se
    return float(stats.t.sf(t, df)), float(stats.t.cdf(t, df))


def p_value(direction: str, interval: tuple, margin: float = DEFAULT_STABLE_MARGIN,
            level: float = LEVEL) -> tuple[float, str | None]:
    """(two-sided p-value, the direction it points to: "agree" / "disagree") of the t statistic behind
    ``interval`` = (effect, low, high, df) from one of the interval functions; (nan, None) when the interval is
    undefined. p < 1 - ``level`` exactly when :func:`judge` gives that interval ``agree`` or ``disagree``."""
    effect, low, high, df = interval
    if any(math.isnan(v) for v in (effect, low, high)):
        return math.nan, None
    se = 0.0 if math.isnan(df) else (high - effect) / float(stats.t.ppf(0.5 + level / 2, df))
    if direction in (">", "<"):
        above, below = _t_tails(effect, se, df)
        p_agree, p_disagree = (above, below) if direction == ">" else (below, above)
    elif direction == "~":
        p_agree = max(_t_tails(effect + margin, se, df)[0], _t_tails(effect - margin, se, df)[1])
        p_disagree = min(_t_tails(effect - margin, se, df)[0], _t_tails(effect + margin, se, df)[1])
    else:
        raise ValueError(f"direction must be '>', '<' or '~', got {direction!r}")
    return min(1.0, 2 * min(p_agree, p_disagree)), ("agree" if p_agree <= p_disagree else "disagree")


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (nan entries are not tests: they stay nan and do not count in m)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = tested.size
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def _with_holm(table: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """``p_holm`` (Holm within each claim) and ``verdict_holm`` from the rows' ``p`` and their raw verdicts."""
    table = table.copy()
    table["p_holm"] = math.nan
    for _claim, idx in table.groupby("claim", sort=False).groups.items():
        table.loc[idx, "p_holm"] = holm(table.loc[idx, "p"].to_numpy(dtype=float))
    alpha = 1 - level

    def corrected(r):
        if r.verdict not in ("agree", "disagree"):
            return r.verdict
        return r.verdict if r.p_holm < alpha else "inconclusive"

    table["verdict_holm"] = [corrected(r) for r in table.itertuples()]
    return table


def judge(direction: str, low: float, high: float, n_a: int, n_b: int, margin: float = DEFAULT_STABLE_MARGIN) -> str:
    """Verdict of one comparison from its interval (see the module docstring)."""
    if direction not in (">", "<", "~"):
        raise ValueError(f"direction must be '>', '<' or '~', got {direction!r}")
    if n_a == 0 or n_b == 0:
        return "not run"
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    if direction == "~":
        if -margin < low and high < margin:
            return "agree"
        if low > margin or high < -margin:  # the interval excludes [-margin, +margin]: p < 1 - level (p_value)
            return "disagree"
        return "inconclusive"
    sign = 1.0 if direction == ">" else -1.0
    lo, hi = sorted((sign * low, sign * high))
    if lo > 0:
        return "agree"
    if hi < 0:
        return "disagree"
    return "inconclusive"


# ---------------------------------------------------------------------------------------------- claims
def _cells() -> pd.DataFrame:
    return pd.DataFrame(paper_results()["cells"])


def _paper(cells: pd.DataFrame, dataset: str, model: str, method: str) -> float:
    hit = cells[(cells.dataset == dataset) & (cells.model == model) & (cells.method == method)]["value"]
    return float(hit.iloc[0]) if len(hit) else math.nan


def _pair(claim, dataset, a, b, direction, cells, margin=math.nan) -> dict:
    """a / b = (model, method) or (model, method, kernel, base_method) for sweep sides."""
    return {"claim": claim, "dataset": dataset, "side_a": a, "side_b": b, "direction": direction, "margin": margin,
            "paper_a": _paper(cells, dataset, *a[:2]) if len(a) == 2 else math.nan,
            "paper_b": _paper(cells, dataset, *b[:2]) if len(b) == 2 else math.nan}


def _methods_order(methods) -> list[str]:
    return sorted(set(methods), key=row_rank)


def table_comparisons() -> list[dict]:
    """The comparisons of the table claims (T5, T1-3, T4), from the paper's cells."""
    cells = _cells()
    out: list[dict] = []
    t5 = cells[cells.table == "table5"]
    for r in t5[t5.method == "intrakd"].itertuples():
        out.append(_pair("T5.improves", r.dataset, (r.model, "intrakd"), (r.model, "baseline"), ">", cells))
    t123 = cells[cells.table.isin(_TABLES_123)]
    teachers = t123[t123.method == "teacher"]
    students = t123[t123.method != "teacher"]
    others = _methods_order(m for m in students.method if m not in ("baseline", "intrakd"))
    for table in _TABLES_123:
        sub = students[students.table == table]
        dataset = sub.dataset.iloc[0]
        models = list(dict.fromkeys(sub.model))
        for model in models:
            out.append(_pair("T123.improves", dataset, (model, "intrakd"), (model, "baseline"), ">", cells))
        for model in models:
            out += [_pair("T123.best", dataset, (model, "intrakd"), (model, m), ">", cells) for m in others]
        for model in models:
            out += [_pair("T123.methods_improve", dataset, (model, m), (model, "baseline"), ">", cells) for m in others]
        for t in teachers[teachers.table == table].itertuples():
            for model in models:
                out += [_pair("T123.teacher", dataset, (t.model, "teacher"), (model, m), ">", cells)
                        for m in ("baseline", "intrakd")]
    t4 = cells[cells.table == "table4"]
    forms = _methods_order(t4.method)
    dataset, model = t4.dataset.iloc[0], t4.model.iloc[0]
    out += [_pair("T4.gain", dataset, (model, m), (model, "baseline"), ">", cells) for m in forms]
    out += [_pair("T4.graph_most", dataset, (model, "intra"), (model, m), ">", cells) for m in forms if m != "intra"]
    return out


def sweep_comparisons(runs: pd.DataFrame, stable_margin: float = DEFAULT_STABLE_MARGIN) -> list[dict]:
    """The Fig. 1 comparisons: each swept kernel against the paper's kernel (5), per swept method.

    Swept runs: the fig1 dataset and model, a ``kernel`` in their method_options (``collect_runs(...,
    with_options=True)``). Claims without a run in their kernel range get one ``not run`` row.
    """
    fig = paper_results()["figures"]["fig1"]
    ref, (lo, hi), above = fig["paper_kernel"], fig["stable"], fig["drops_above"]
    below = fig["degraded_below"]
    sweep = sweep_runs(runs, fig["dataset"], fig["model"])
    cells = _cells()
    out: list[dict] = []
    bases = sorted(set(sweep.base_method)) or ["intra"]
    for base in bases:
        kernels = sorted(int(k) for k in set(sweep[sweep.base_method == base].kernel))
        ranges = (("F1.k1_degraded", [k for k in kernels if k < below], "<", f"k<{below}"),
                  ("F1.stable", [k for k in kernels if lo <= k <= hi and k != ref], "~", f"{lo}<=k<={hi}"),
                  ("F1.large_drops", [k for k in kernels if k > above], "<", f"k>{above}"))
        for claim, ks, direction, wanted in ranges:
            margin = stable_margin if direction == "~" else math.nan
            ref_side = (fig["model"], f"{base} k={ref}", ref, base)
            if not ks:
                out.append(_pair(claim, fig["dataset"], (fig["model"], f"{base} {wanted}", None, base), ref_side,
                                 direction, cells, margin))
            out += [_pair(claim, fig["dataset"], (fig["model"], f"{base} k={k}", k, base), ref_side, direction,
                          cells, margin) for k in ks]
    return out


def sweep_runs(runs: pd.DataFrame, dataset: str, model: str) -> pd.DataFrame:
    """The kernel-sweep runs of ``model`` on ``dataset``: rows with a ``kernel`` (needs ``with_options``)."""
    missing = [c for c in ("kernel", "base_method") if c not in runs]
    if missing:
        raise ValueError(f"runs table lacks column(s) {missing}: build it with collect_runs(paths, with_options=True)")
    return runs[(runs.dataset == dataset) & (runs.student == model) & runs.kernel.notna()]


def _side_runs(runs: pd.DataFrame, dataset: str, side: tuple) -> pd.DataFrame:
    """The runs of one side of a comparison, sorted by seed."""
    model, method = side[:2]
    if len(side) == 4:
        kernel, base = side[2:]
        if kernel is None:
            return runs.iloc[:0]
        pick = runs[(runs.dataset == dataset) & (runs.student == model) & (runs.kernel == kernel)
                    & (runs.base_method == base)]
    else:
        pick = runs[(runs.dataset == dataset) & (runs.student == model) & (runs.method == method)]
    return pick.sort_values("seed", kind="stable")


def common_random_numbers(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether two sides can be paired by seed: the same seeds (each once) and, for every seed, equal initial
    weights and training data (``init_sha256`` and ``data_sha256`` recorded by the engine)."""
    if len(a) < 2 or len(a) != len(b) or list(a.seed) != list(b.seed) or a.seed.duplicated().any():
        return False
    for col in ("init_sha256", "data_sha256"):
        if col not in a or col not in b:
            return False
        x, y = a[col].tolist(), b[col].tolist()
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in x + y) or x != y:
            return False
    return True


def _floor(side: pd.DataFrame) -> float:
    return float(side["floor"].mean()) if "floor" in side and side["floor"].notna().any() else math.nan


def _learned(side: pd.DataFrame, metric: str) -> bool | None:
    if side.empty:
        return None
    return learned(float(side["value"].mean()), _floor(side), metric)


def _label(side: tuple) -> str:
    model, method = side[:2]
    if len(side) == 4:
        return f"{model} {method}"
    if method in ("baseline", "teacher"):
        return f"{model} ({method})"
    return f"{model} {row_label(method)}"


def load_scores(figures_dir) -> dict[str, pd.DataFrame]:
    """{figure id: per-image scores} of the ``SCORE_FILES`` present in ``figures_dir``."""
    out = {}
    for fig, name in SCORE_FILES.items():
        path = Path(figures_dir) / name
        if path.is_file():
            out[fig] = read_scores(path)
    return out


def read_scores(path) -> pd.DataFrame:
    """One per-image score file, checked for the columns the verdict needs."""
    frame = pd.read_csv(path)
    missing = [c for c in ("dataset", "method", "image") if c not in frame]
    if missing or not ({"score", "mad"} & set(frame.columns)):
        raise ValueError(f"{path}: per-image score file lacks {missing or ['score or mad']} (expected the output of "
                         "intrakd figures)")
    return frame


def image_rows(scores: dict | None, level: float = LEVEL, runs: pd.DataFrame | None = None) -> list[dict]:
    """The Fig. 2 / Fig. 3 comparisons (IntRA-KD against each other method of the figure), paired over images;
    ``runs`` (collect_runs) tells whether the runs behind each side learned (``not learned`` otherwise)."""
    figs = paper_results()["figures"]
    scores = scores or {}
    rows = []
    for claim, (fig, column, metric, direction) in IMAGE_CLAIMS.items():
        f = figs[fig]
        frame = scores.get(fig)
        if frame is not None and not isinstance(frame, pd.DataFrame):
            frame = read_scores(frame)
        for other in [m for m in f["methods"] if m != "intrakd"]:
            a_side, b_side = (f["model"], "intrakd"), (f["model"], other)
            a = b = pd.Series(dtype=float)
            if frame is not None:
                here = frame[frame.dataset == f["dataset"]]
                a = here[here.method == "intrakd"].set_index("image")[column]
                b = here[here.method == other].set_index("image")[column]
                common = a.dropna().index.intersection(b.dropna().index)
                a, b = a.loc[common], b.loc[common]
            a, b = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            sides = [_side_runs(runs, f["dataset"], s) if runs is not None else None for s in (a_side, b_side)]
            status = [_learned(s, get_spec(f["dataset"]).metric) if s is not None else None for s in sides]
            rows.append({
                "claim": claim, "source": CLAIMS[claim][0], "dataset": f["dataset"], "metric": metric,
                "unit": "images", "a": _label(a_side), "b": _label(b_side), "direction": direction, "margin": math.nan,
                "paper_a": math.nan, "paper_b": math.nan, "paper_effect": math.nan,
                "floor_a": _floor(sides[0]) if sides[0] is not None else math.nan,
                "floor_b": _floor(sides[1]) if sides[1] is not None else math.nan,
                **_outcome(a, b, direction, paired_interval(a, b, level), learned=status, test=PAIRED_IMAGES,
                           level=level),
                "kind": _kind(claim),
            })
    return rows


def _outcome(a: np.ndarray, b: np.ndarray, direction: str, interval: tuple,
             margin: float = DEFAULT_STABLE_MARGIN, learned=(None, None), test: str = WELCH_SEEDS,
             level: float = LEVEL) -> dict:
    """The measured columns of a comparison row: each side's mean, sd and n, the interval, the verdict (``not
    learned`` when a side is known not to have learned, see ``learned``) and the p-value of the interval's test."""
    effect, low, high, df = interval
    verdict = judge(direction, low, high, a.size, b.size, margin)
    p = p_value(direction, interval, margin, level)[0] if a.size and b.size else math.nan
    if verdict != "not run" and False in learned:
        verdict = NOT_LEARNED
    return {
        "mean_a": a.mean() if a.size else math.nan, "sd_a": a.std(ddof=1) if a.size > 1 else math.nan,
        "n_a": int(a.size),
        "mean_b": b.mean() if b.size else math.nan, "sd_b": b.std(ddof=1) if b.size > 1 else math.nan,
        "n_b": int(b.size),
        "test": test if a.size and b.size else "",
        "effect": effect, "ci_low": low, "ci_high": high, "df": df,
        "verdict": verdict, "p": p,
    }


def verdict_table(runs: pd.DataFrame, stable_margin: float = DEFAULT_STABLE_MARGIN,
                  level: float = LEVEL, scores: dict | None = None) -> pd.DataFrame:
    """One row per comparison of every claim (columns ``OUT_COLUMNS``), in claim order.

    ``runs``: ``collect_runs(paths, with_options=True)`` (the ``kernel``/``base_method`` columns are needed for
    the Fig. 1 claims); ``value`` in the paper's units. ``scores``: {"fig2"/"fig3": per-image score frame or CSV
    path} (:func:`load_scores`); without them the Fig. 2 / Fig. 3 rows are ``not run``.
    """
    missing = [c for c in _NEEDED if c not in runs]
    if missing:
        raise ValueError(f"runs table lacks column(s) {missing}; expected the frame of collect_runs()")
    if not stable_margin > 0:
        raise ValueError(f"stable_margin must be > 0 (metric units), got {stable_margin!r}")
    if "floor" not in runs:
        runs = runs.assign(floor=math.nan)
    rows = []
    for comp in table_comparisons() + sweep_comparisons(runs, stable_margin):
        metric = get_spec(comp["dataset"]).metric
        side_a = _side_runs(runs, comp["dataset"], comp["side_a"])
        side_b = _side_runs(runs, comp["dataset"], comp["side_b"])
        a, b = side_a["value"].to_numpy(dtype=float), side_b["value"].to_numpy(dtype=float)
        if common_random_numbers(side_a, side_b):
            test, interval = PAIRED_SEEDS, paired_interval(a, b, level)
        elif comp["side_a"][1] == "teacher" and a.size == 1:  # one teacher seed: the students around its value
            test, interval = ONE_SAMPLE_SEEDS, one_sample_interval(a[0], b, level)
        else:
            test, interval = WELCH_SEEDS, welch_interval(a, b, level)
        rows.append({
            "claim": comp["claim"], "source": CLAIMS[comp["claim"]][0], "dataset": comp["dataset"],
            "metric": metric, "unit": "seeds",
            "a": _label(comp["side_a"]), "b": _label(comp["side_b"]), "direction": comp["direction"],
            "margin": comp["margin"], "paper_a": comp["paper_a"], "paper_b": comp["paper_b"],
            "paper_effect": comp["paper_a"] - comp["paper_b"], "floor_a": _floor(side_a), "floor_b": _floor(side_b),
            **_outcome(a, b, comp["direction"], interval, stable_margin,
                       learned=(_learned(side_a, metric), _learned(side_b, metric)), test=test, level=level),
            "kind": _kind(comp["claim"]),
        })
    rows += image_rows(scores, level, runs)
    return _with_holm(pd.DataFrame(rows, columns=[c for c in OUT_COLUMNS if c not in ("p_holm", "verdict_holm")]),
                      level)[OUT_COLUMNS]


def _kind(claim: str) -> str:
    return "sanity check" if claim in SANITY_CHECKS else "claim"


HOLM_COUNTS = ("agree (Holm)", "disagree (Holm)")


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Counts of each raw verdict per claim (claims in definition order), and of agree / disagree after Holm's
    correction within the claim (``HOLM_COUNTS``)."""
    counts = pd.crosstab(table["claim"], table["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    if "verdict_holm" in table:
        holm_counts = pd.crosstab(table["claim"], table["verdict_holm"]).reindex(columns=["agree", "disagree"],
                                                                                 fill_value=0)
        counts[list(HOLM_COUNTS)] = holm_counts.reindex(counts.index).to_numpy()
    counts = counts.reindex([c for c in CLAIMS if c in counts.index])
    return counts.reset_index()


# ---------------------------------------------------------------------------------------------- writers
def to_markdown(table: pd.DataFrame, note: str, commit: str, stable_margin: float = DEFAULT_STABLE_MARGIN,
                level: float = LEVEL) -> str:
    digits_of = {"miou": 2, "f1": 2, "map": 3, "image miou": 2, "graph mad": 3}  # pragma: no mutate
    metric_of = {name: spec.metric for name, spec in DATASETS.items()}
    lines = [
        "# Verdict: the paper's claims against our runs", "",  # pragma: no mutate
        f"**Data:** {note}", "",  # pragma: no mutate
        f"Generated by `intrakd.report.verdict` from the runs' `metrics.json` at commit `{commit}`. Each row tests "  # pragma: no mutate
        "one comparison a vs b of a claim: `effect` = mean(a) − mean(b) over seeds with its "  # pragma: no mutate
        f"{int(level * 100)} % t-interval, `test` saying which: `{PAIRED_SEEDS}` when both sides ran the same seeds "  # pragma: no mutate
        "with common random numbers (per seed: the same initial student weights and the same training data, "  # pragma: no mutate
        f"checked by their digests), `{ONE_SAMPLE_SEEDS}` for a single teacher run against the students' seeds "  # pragma: no mutate
        f"(the teacher's value taken as fixed), else `{WELCH_SEEDS}`. Claimed `>`: agree when the interval lies above 0, "  # pragma: no mutate
        "disagree when it lies below 0; `~` (\"almost the same\"): agree when the interval lies inside ±margin "  # pragma: no mutate
        f"(margin {stable_margin:g}, our choice: the paper gives none), disagree when it lies wholly outside; "  # pragma: no mutate
        "inconclusive otherwise, and always with fewer than 2 seeds on a side; `not run` when a side has no run; "  # pragma: no mutate
        f"**{NOT_LEARNED}** when a side's mean lies less than {LEARNED_MARGIN['miou']:g} points "  # pragma: no mutate
        f"(mAP {LEARNED_MARGIN['map']:g}) above its floor, the score of a predictor that answers background "  # pragma: no mutate
        "everywhere on the same images: such a row is never counted as agreement or disagreement. "  # pragma: no mutate
        "Fig. 2 / Fig. 3 rows pair per-image scores of one seed's runs over the same evaluation images (per-image "  # pragma: no mutate
        "mIoU; distance of the student's affinity graph to the teacher's, mean absolute difference): their "  # pragma: no mutate
        "interval is over images (`img`), not seeds, so it does not speak to retraining variation. "  # pragma: no mutate
        "`p` is the two-sided p-value of the interval's own t statistic (below 0.05 exactly when the raw interval "  # pragma: no mutate
        "decides); `p Holm` adjusts it within the claim (Holm's step-down correction over the claim's rows with a "  # pragma: no mutate
        "p-value), and `verdict (Holm)` keeps the raw verdict only where `p Holm` is below 0.05 (the claims table "  # pragma: no mutate
        "counts both). Rows marked *sanity check* test what the method was trained to minimise: " + "; ".join(  # pragma: no mutate
            f"{c}: {why}" for c, why in SANITY_CHECKS.items()) + ".",  # pragma: no mutate
        "",  # pragma: no mutate
        "## Claims", "",  # pragma: no mutate
        "| claim | source | the paper says | " + " | ".join(VERDICTS + HOLM_COUNTS) + " |",  # pragma: no mutate
        "|---|---|---|" + "---|" * (len(VERDICTS) + len(HOLM_COUNTS)),  # pragma: no mutate
    ]
    for r in summary(table).to_dict("records"):  # pragma: no mutate
        source, text = CLAIMS[r["claim"]]
        lines.append(f"| {_claim_cell(r['claim'])} | {source} | {text} | "
                     + " | ".join(str(r[v]) for v in VERDICTS + HOLM_COUNTS) + " |")
    lines += ["", "## Comparisons", "",  # pragma: no mutate
              "| claim | dataset | a | b | claimed | paper a | paper b | ours a (floor) | ours b (floor) | test | "  # pragma: no mutate
              "effect [95% CI] | p | p Holm | verdict | verdict (Holm) |",  # pragma: no mutate
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",  # pragma: no mutate
              ]
    for r in table.itertuples(index=False):  # pragma: no mutate
        d = digits_of.get(r.metric, 2)  # pragma: no mutate
        claimed = f"a ~ b (±{r.margin:g})" if r.direction == "~" else f"a {r.direction} b"

        unit = " img" if r.unit == "images" else ""

        fd = digits_of.get(metric_of.get(r.dataset, r.metric), d)  # pragma: no mutate

        def ours(mean, sd, n, floor):
            if n == 0:
                return "—"
            out = f"{fmt_number(mean, d)}" + (f" ± {fmt_number(sd, d)}" if n > 1 else "") + f" (n={n}{unit})"
            return out + ("" if math.isnan(floor) else f" ({fmt_number(floor, fd)})" if r.unit != "images" else "")

        ci = "" if math.isnan(r.ci_low) else f" [{fmt_number(r.ci_low, d)}, {fmt_number(r.ci_high, d)}]"
        lines.append(f"| {_claim_cell(r.claim)} | {r.dataset} | {r.a} | {r.b} | {claimed} | {fmt_number(r.paper_a, d)} | "
                     f"{fmt_number(r.paper_b, d)} | {ours(r.mean_a, r.sd_a, r.n_a, r.floor_a)} | "
                     f"{ours(r.mean_b, r.sd_b, r.n_b, r.floor_b)} | {r.test or '—'} | "
                     f"{fmt_number(r.effect, d)}{ci} | {_fmt_p(r.p)} | {_fmt_p(r.p_holm)} | **{r.verdict}** | "
                     f"**{r.verdict_holm}** |")
    return "\n".join(lines) + "\n"


def _claim_cell(claim: str) -> str:
    return f"{claim} (*sanity check*: {SANITY_CHECKS[claim]})" if claim in SANITY_CHECKS else claim


def _fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def write_verdict(runs: pd.DataFrame, out_dir, commit: str, stable_margin: float = DEFAULT_STABLE_MARGIN,
                  scores: dict | None = None) -> pd.DataFrame:
    """Write ``<out_dir>/verdict.csv``, ``verdict.md`` and ``verdict.html`` (data note and commit stamp); returns the table.
    ``scores``: the Fig. 2 / Fig. 3 per-image scores (see :func:`verdict_table`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = verdict_table(runs, stable_margin, scores=scores)
    note = data_note(runs) if "data_source" in runs else "unknown"
    write_table_files(out_dir / "verdict", table.assign(data=note, commit=commit),
                      to_markdown(table, note, commit, stable_margin))
    return table


__all__ = ["CLAIMS", "HOLM_COUNTS", "IMAGE_CLAIMS", "OUT_COLUMNS", "SANITY_CHECKS", "VERDICTS", "common_random_numbers",
           "holm", "image_rows", "judge", "load_scores", "one_sample_interval", "p_value",
           "paired_interval", "read_scores", "summary", "sweep_comparisons", "sweep_runs", "table_comparisons",
           "to_markdown", "verdict_table", "welch_interval", "write_verdict"]
