"""The report's figures. The tables' dot plots, Fig. 1 and the training curves come from sidecars alone (seaborn,
no torch); :func:`build_figures`, the step above them, also draws Fig. 2 and Fig. 3 through
:mod:`intrakd.report.qualitative` and :mod:`intrakd.report.affinity`, which load the runs' weights (torch). Layers:
``common`` (file names, the paper's numbers) < ``plotting`` (matplotlib) < ``tables`` < ``verdict`` < this module
(``qualitative`` and ``affinity`` below it); nothing here trains."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from intrakd import atomic  # noqa: E402
from intrakd.report.common import FIGURE_FILES, SCORE_FILES, paper_results  # noqa: E402
from intrakd.report.plotting import save_figure  # noqa: E402
from intrakd.data.spec import get_spec  # noqa: E402
from intrakd.method_cards import row_label, row_rank  # noqa: E402
from intrakd.report.tables import NOT_LEARNED, not_learned  # noqa: E402

METRIC_LABELS = {"miou": "mIoU (%)", "f1": "F1 (%)", "map": "mAP"}


def _cell_label(model: str, method: str) -> str:
    return f"{model} {row_label(method)}"


def _metric_label(metric) -> str:
    return METRIC_LABELS.get(metric, "score") if isinstance(metric, str) else "score"


def paper_vs_ours(table: pd.DataFrame, path: str | Path, title: str, data: str | None = None) -> Path:
    """A dot plot of one paper table: one horizontal row per cell (model + method, full label), the paper's value
    (grey diamond) beside ours (blue dot, bar = sd over seeds, hollow when it is not learned), one facet per
    dataset with that dataset's metric and its floor (dashed red). Table 4 (a ``complexity`` column) plots the
    gains over the ERFNet baseline instead, with a second facet of the measured complexity (matched entries per
    image, log scale). ``data``: the data note printed under the title. Legible at any grid size: the height grows
    with the number of cells. Returns the path written."""
    df = table.copy()
    df["cell"] = [_cell_label(m, k) for m, k in zip(df["model"], df["method"])]
    gains = "complexity" in df and "ours_gain" in df
    if gains:  # Table 4: the paper reports gains over the ERFNet baseline (the 0 line); a teacher has no gain
        df = df[df["method"] != "teacher"].assign(paper=df["gain"], ours=df["ours_gain"])
    datasets = list(dict.fromkeys(df["dataset"]))
    panels = [(ds, df[df["dataset"] == ds].reset_index(drop=True)) for ds in datasets]
    if gains:
        panels.append(("complexity", panels[0][1]))
    heights = [max(len(sub), 2) * 0.32 + 0.9 for _, sub in panels]
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(len(panels), 1, figsize=(8.5, sum(heights) + 1.4), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (ds, sub) in zip(axes[:, 0], panels):
        y = range(len(sub))
        if ds == "complexity":
            size = sub["ours_size"].astype(float) if "ours_size" in sub else pd.Series(float("nan"), index=sub.index)
            ax.barh(list(y), size.fillna(0.0), color="#1f77b4", height=0.5)
            if (size > 0).any():
                ax.set_xscale("log")
            for yi, (s, c) in enumerate(zip(size, sub["complexity"])):
                ours_c = "not measured" if pd.isna(s) or s <= 0 else f"{int(s):,}"
                ax.annotate(f"ours {ours_c} | paper {c if isinstance(c, str) else '—'}", (1.0, yi),
                            xycoords=("axes fraction", "data"), xytext=(4, 0), textcoords="offset points",
                            va="center", fontsize=7, color="#333333")
            ax.set_xlabel("ours: matched entries per image (log scale)", fontsize=9)
            ax.set_title("measured complexity of each method (Table 4)", fontsize=9)
        else:
            metric = sub["metric"].dropna().iloc[0] if "metric" in sub and sub["metric"].notna().any() else None
            sd = sub["sd"].astype(float).fillna(0.0).to_numpy()
            ours = sub["ours"].astype(float).to_numpy()
            ax.scatter(sub["paper"].astype(float), list(y), marker="D", s=30, color="#7f7f7f", zorder=3,
                       label="paper")
            learned_ = [not not_learned(v) for v in sub.get("learned", [None] * len(sub))]
            ax.errorbar(ours, list(y), xerr=sd, fmt="none", ecolor="#1f77b4", capsize=3, lw=1, zorder=2)
            ax.scatter(ours, list(y), s=36, zorder=4, gid="ours",
                       facecolors=["#1f77b4" if ok else "white" for ok in learned_], edgecolors="#1f77b4")
            ax.scatter([], [], s=36, color="#1f77b4", label="ours (mean, bar = sd over seeds)")  # legend entry
            if not all(learned_):
                ax.scatter([], [], s=36, facecolors="white", edgecolors="#1f77b4", label=f"ours, {NOT_LEARNED}")
            floors = sub["floor"].dropna() if "floor" in sub and not gains else pd.Series(dtype=float)
            if len(floors):  # the all-background predictor on the same images: a dot near it has learned nothing
                ax.axvline(floors.max(), color="#d62728", ls="--", lw=1, label="floor (background everywhere)")
            if gains:
                ax.axvline(0.0, color="#444444", lw=0.8, label="ERFNet baseline (gain 0)")
                ax.set_xlabel(f"gain over the ERFNet baseline, {_metric_label(metric)}", fontsize=9)
            else:
                ax.set_xlabel(_metric_label(metric), fontsize=9)
            ns = sorted({int(n) for n in sub["n"].dropna()}) if "n" in sub else []
            seeds = "" if not ns else f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}-{ns[-1]}"
            ax.set_title(f"{ds} (ours: n = {seeds} seed(s) per cell)", fontsize=9)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, frameon=False)
        ax.set_yticks(list(y), sub["cell"], fontsize=8)
        ax.set_ylim(len(sub) - 0.5, -0.5)
        ax.set_ylabel("")
    head = "\n".join(textwrap.wrap(title, 90))
    if data:
        head += "\n" + "\n".join(textwrap.wrap(f"ours on: {data}", 110))
    fig.suptitle(head, fontsize=8.5, x=0.01, ha="left")
    return save_figure(fig, path)


#: history.csv column of the training loss drawn by the training curves (the supervised cross-entropy).
LOSS_COLUMN = "loss_seg"


def read_histories(runs: pd.DataFrame) -> pd.DataFrame:
    """The ``history.csv`` of every run (``collect_runs`` rows) as one long table: dataset, metric, model, method,
    seed, epoch, loss (``LOSS_COLUMN``) and ``val`` (the run's validation metric; NaN on epochs not validated)."""
    frames = []
    for r in runs.itertuples():
        h = pd.read_csv(Path(r.path).parent / "history.csv")
        val = f"val_{r.metric}"
        frames.append(pd.DataFrame({
            "dataset": r.dataset, "metric": r.metric, "model": r.student, "method": r.method, "seed": r.seed,
            "data_source": getattr(r, "data_source", None), "epoch": h["epoch"],
            "loss": h.get(LOSS_COLUMN, float("nan")), "val": h[val] if val in h else float("nan"),
        }))
    if not frames:
        raise ValueError("no runs given: the training curves need at least one run's history.csv")
    return pd.concat(frames, ignore_index=True)


def training_curves(histories, path: str | Path, title: str = "Training curves") -> Path:
    """Training loss and validation metric per epoch. For each dataset two rows of panels, the training loss above
    its validation metric (mIoU, F1 or mAP, in the paper's units), one column per model (students, then the
    teacher); colour = method, the mean over seeds with its sd band; validation axes span at least
    ``Y_SPAN_POINTS`` points of the metric (:func:`honest_y_range`). ``histories``: ``collect_runs`` rows, or
    {label: history.csv} (a notebook's own runs, one colour per label). One legend beside the panels; which data
    trained each dataset's runs is named in the title. Returns the path written."""
    if isinstance(histories, dict):
        frames = []
        for label, hist in histories.items():
            h = pd.read_csv(hist)
            val = [c for c in h.columns if c.startswith("val_")]
            frames.append(pd.DataFrame({"dataset": "", "metric": val[0][4:] if val else None, "model": "",
                                        "method": label, "seed": 0, "data_source": None, "epoch": h["epoch"],
                                        "loss": h.get(LOSS_COLUMN, float("nan")),
                                        "val": h[val[0]] if val else float("nan")}))
        df = pd.concat(frames, ignore_index=True)
    else:
        df = read_histories(histories)
    ranked = sorted(df["method"].unique(), key=row_rank)  # the tables' row order
    df["method"] = df["method"].map(row_label)
    methods = list(dict.fromkeys(row_label(m) for m in ranked))
    palette = dict(zip(methods, sns.color_palette("tab20" if len(methods) > 10 else "tab10", len(methods))))
    datasets = list(dict.fromkeys(df["dataset"]))
    models = {ds: sorted(df.loc[df["dataset"] == ds, "model"].unique(),
                         key=lambda m: (df.loc[(df["dataset"] == ds) & (df["model"] == m), "method"] == "teacher").all())
              for ds in datasets}  # students first, the teacher last
    ncols = max(len(m) for m in models.values())
    many = df.groupby(["dataset", "model", "method"])["seed"].nunique().max() > 1
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(2 * len(datasets), ncols, figsize=(3.6 * ncols + 0.6, 2.6 * 2 * len(datasets) + 0.8),
                             squeeze=False)
    for d, ds in enumerate(datasets):
        sub = df[df["dataset"] == ds]
        metric = sub["metric"].dropna().iloc[0] if sub["metric"].notna().any() else None
        for r, (col, label) in enumerate((("loss", "training loss\n(cross-entropy)"),
                                          ("val", f"validation\n{_metric_label(metric)}"))):
            row = axes[2 * d + r]
            for c, ax in enumerate(row):
                if c >= len(models[ds]):
                    ax.set_visible(False)
                    continue
                model = models[ds][c]
                data = sub[sub["model"] == model].dropna(subset=[col])
                if data.empty:
                    ax.text(0.5, 0.5, "no values recorded", ha="center", va="center", transform=ax.transAxes)
                else:
                    sns.lineplot(data=data, x="epoch", y=col, hue="method", hue_order=methods, palette=palette,
                                 errorbar="sd" if many else None, marker="o", markersize=5, ax=ax, legend=False)
                    if col == "val":  # as Fig. 1: a few tenths of a point must not look like a cliff
                        honest_y_range(ax, data[col], metric)
                what = "loss" if col == "loss" else metric or ""
                where = " · ".join(x for x in (ds, model) if x)
                ax.set_title(f"{where}: {what}" if where else what, fontsize=8)
                ax.set_xlabel("epoch", fontsize=8)
                ax.set_ylabel(label if c == 0 else "", fontsize=8)
                ax.tick_params(labelsize=7)
                epochs = sorted(sub["epoch"].unique())
                if len(epochs) <= 12:  # every epoch a tick; one-epoch runs get a readable axis, not 0.995-1.005
                    ax.set_xticks(epochs)
                    ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
                else:
                    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    from matplotlib.lines import Line2D

    fig.legend(handles=[Line2D([], [], color=palette[m], marker="o", label=m) for m in methods], loc="upper left",
               bbox_to_anchor=(1.0, 0.97), fontsize=8, frameon=False, title="colour: method", title_fontsize=8)
    sources = [f"{ds}: {'; '.join(sorted(set(df.loc[df['dataset'] == ds, 'data_source'].dropna())))}"
               for ds in datasets if df.loc[df["dataset"] == ds, "data_source"].notna().any()]
    note = "mean over seeds, band = sd" if many else "one seed per line"
    fig.suptitle("\n".join([f"{title} ({note})", *(f"data {s}" for s in sources)]), fontsize=9)
    return save_figure(fig, path)


#: One "point" of each metric in its plotted units (mIoU and F1 in percent, LLAMAS mAP as a fraction).
METRIC_POINT = {"miou": 1.0, "f1": 1.0, "map": 0.01}
#: The least y span, in points, of a figure comparing close scores (Fig. 1): seed noise is not drawn as a cliff.
Y_SPAN_POINTS = 4


def honest_y_range(ax, values, metric: str) -> float:
    """Set ``ax``'s y range to cover ``values`` and at least ``Y_SPAN_POINTS`` points of ``metric``, with a grid line
    every point (or every few points for a wide range); returns the grid step in the metric's units."""
    point = METRIC_POINT.get(metric, 1.0)
    lo, hi = ax.get_ylim()
    vals = [float(v) for v in values if pd.notna(v)]
    if vals:
        lo, hi = min(lo, min(vals)), max(hi, max(vals))
    span = max(hi - lo, Y_SPAN_POINTS * point)
    bottom = (lo + hi) / 2 - 0.55 * span
    if vals and min(vals) >= 0 > bottom:  # scores are never negative: start at 0 rather than below it
        bottom = 0.0
    ax.set_ylim(bottom, bottom + 1.1 * span)
    step = point * max(1, int(round(span / point / 10)))
    ax.yaxis.set_major_locator(matplotlib.ticker.MultipleLocator(step))
    return step


def kernel_sweep(runs: pd.DataFrame, path: str | Path, dataset: str | None = None, model: str | None = None):
    """Fig. 1: the metric over the AOI kernel size, mean ± sd over seeds (one line per swept method), seeds as
    dots, the plain student as a horizontal line with its sd band, and the paper's curve.

    The supplement prints Fig. 1 without values, so the paper's curve is drawn as its text describes it (the
    ``figures.fig1`` ranges of ``paper_results.yaml``): shaded "stable" kernel range, the paper's kernel, and a
    note saying so. ``runs``: ``collect_runs(paths, with_options=True)``. Returns the (closed) figure.
    """
    from intrakd.report.verdict import sweep_runs

    fig1 = paper_results()["figures"]["fig1"]
    dataset, model = dataset or fig1["dataset"], model or fig1["model"]
    sweep = sweep_runs(runs, dataset, model)
    if sweep.empty:
        raise ValueError(f"no kernel-sweep runs (method_options.kernel) of {model} on {dataset} among the "
                         f"{len(runs)} runs given")
    metric = get_spec(dataset).metric
    base = runs[(runs.dataset == dataset) & (runs.student == model) & (runs.method == "baseline")]["value"]
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8.6, 4.0))
    lo, hi = fig1["stable"]
    ax.axvspan(lo, hi, color="#2ca02c", alpha=0.08, label=f"paper: stable for k in [{lo}, {hi}]")
    ax.axvline(fig1["paper_kernel"], color="#2ca02c", ls=":", lw=1.2, label=f"paper's kernel k={fig1['paper_kernel']}")
    if len(base):
        mean, sd = base.mean(), (base.std() if len(base) > 1 else 0.0)
        ax.axhline(mean, color="#7f7f7f", lw=1.5, label=f"{model} baseline: mean, band ± sd (n={len(base)})")
        if sd > 0:
            ax.axhspan(mean - sd, mean + sd, color="#7f7f7f", alpha=0.15)
    for (method, g), colour in zip(sweep.groupby("base_method"), sns.color_palette("deep")):
        stats = g.groupby("kernel")["value"].agg(["mean", "std", "count"]).reset_index()
        ax.errorbar(stats["kernel"].to_numpy(float), stats["mean"].to_numpy(float),
                    yerr=stats["std"].fillna(0.0).to_numpy(float), marker="o", capsize=3,
                    color=colour, label=f"ours: {model} {row_label(method)} (mean ± sd)")
        ax.scatter(g["kernel"].to_numpy(float), g["value"].to_numpy(float), s=12, color=colour, alpha=0.45, zorder=3)
    ax.set_xscale("log")
    ticks = sorted({int(k) for k in sweep["kernel"]} | {lo, hi})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("AOI smoothing kernel size k (log scale)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    point = honest_y_range(ax, [*sweep["value"], *base], metric)
    source = "; ".join(sorted(set(sweep["data_source"].dropna()))) if "data_source" in sweep else ""
    ax.set_title("\n".join(textwrap.wrap(f"{fig1['title']} | ours on {dataset}" + (f": {source}" if source else ""),
                                          100)), fontsize=8)
    values = "The paper prints no values for Fig. 1;\nits curve as the text says:" if not fig1.get("numbers") else ""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.text(1.01, 0.0, f"{values}\nk<{fig1['degraded_below']}: slightly lower; {lo}-{hi}: flat;\n"
            f">{fig1['drops_above']}: drops quickly.\n\nGrid lines are {point:g} {METRIC_LABELS.get(metric, metric)}"
            f"\napart; the y axis spans at least\n{Y_SPAN_POINTS} of them.", transform=ax.transAxes, fontsize=7,
            va="bottom", color="#2ca02c")
    save_figure(fig, path)
    return fig


def run_label(model: str, method: str) -> str:
    """Column label of a run in the figures: ``erfnet`` for the baseline, ``erfnet + IntRA-KD`` otherwise."""
    return model if method == "baseline" else f"{model} {row_label(method)}"


def select_runs(runs: pd.DataFrame, dataset: str, model: str, methods, seed: int | None = None) -> dict[str, Path]:
    """{label: run folder} of ``model`` + each of ``methods`` on ``dataset`` for one seed (default: the smallest
    seed that every method has); one ValueError naming what is missing."""
    pick = runs[(runs.dataset == dataset) & (runs.student == model) & runs.method.isin(methods)]
    seeds = [set(pick[pick.method == m].seed) for m in methods]
    if seed is None:
        common = set.intersection(*seeds) if seeds else set()
        if not common:
            have = {m: sorted(s) for m, s in zip(methods, seeds)}
            raise ValueError(f"no seed with a finished run of every method {list(methods)} for {model} on {dataset} "
                             f"(seeds found per method: {have})")
        seed = min(common)
    missing = [m for m, s in zip(methods, seeds) if seed not in s]
    if missing:
        raise ValueError(f"no finished run of {model} + {missing} on {dataset} with seed {seed}")
    return {run_label(model, m): Path(pick[(pick.method == m) & (pick.seed == seed)].path.iloc[0]).parent
            for m in methods}


def figure_methods(runs: pd.DataFrame, fig: dict) -> list[str]:
    """The methods of Fig. 2 / Fig. 3 (``fig["methods"]``) that have runs: a preset may train only some of them
    (the default trains ERFNet and ERFNet + IntRA-KD, not BiFPN); the verdict marks the missing ones ``not run``.
    All of them when IntRA-KD or every other method is missing, so that ``select_runs`` names what is missing."""
    have = set(runs[(runs.dataset == fig["dataset"]) & (runs.student == fig["model"])].method)
    present = [m for m in fig["methods"] if m in have]
    return present if "intrakd" in present and len(present) >= 2 else list(fig["methods"])


def teacher_dir(runs: pd.DataFrame, dataset: str, student_dirs) -> Path:
    """The teacher run folder among ``runs`` that the students were distilled from (their recorded
    ``teacher_checkpoint``), or the only teacher run of ``dataset``; one ValueError otherwise."""
    import json

    teachers = [Path(p).parent for p in runs[(runs.dataset == dataset) & (runs.method == "teacher")].path]
    recorded = set()
    for d in student_dirs:
        ckpt = json.loads((Path(d) / "metrics.json").read_text())["config"].get("teacher_checkpoint")
        if ckpt:
            recorded.add(Path(ckpt).resolve().parent)
    matching = [t for t in teachers if t.resolve() in recorded]
    if len(matching) == 1 or (not matching and len(teachers) == 1):
        return (matching or teachers)[0]
    raise ValueError(f"cannot tell which teacher run of {dataset} the students used: teacher runs found "
                     f"{[str(t) for t in teachers] or 'none'}, "
                     f"recorded checkpoints {sorted(map(str, recorded)) or 'none'}")


def _write_scores(scores: pd.DataFrame, dirs: dict, fig: dict, path: Path) -> Path:
    """Per-image scores with the dataset, model and method of each run label; written atomically."""
    method_of = {run_label(fig["model"], m): m for m in fig["methods"]}
    out = scores.assign(dataset=fig["dataset"], model=fig["model"], method=scores["label"].map(method_of),
                        run=scores["label"].map({k: str(v) for k, v in dirs.items()}))
    return atomic.write_text(path, out.to_csv(index=False))


def build_figures(runs_dir, out_dir, which=tuple(FIGURE_FILES), seed: int | None = None, data_root=None) -> dict:
    """Regenerate the paper's figures from the run folders under ``runs_dir`` (sidecars and ``model.pt`` only,
    never training): ``which`` among ``FIGURE_FILES`` (a list or a comma-separated string). Fig. 2, Fig. 3 and the
    training curves use the runs of ``figures.fig2`` / ``fig3`` of ``paper_results.yaml`` (dataset, model, methods)
    with ``seed`` (default: the smallest common one); Fig. 2 and Fig. 3 also write their per-image scores
    (``SCORE_FILES``, keys ``fig2_scores`` / ``fig3_scores``). Returns {figure id: path written}.
    """
    from intrakd.report.tables import collect_runs, find_metrics

    which = [w.strip() for w in which.split(",")] if isinstance(which, str) else list(which)
    unknown = [w for w in which if w not in FIGURE_FILES]
    if unknown or not which:
        raise ValueError(f"unknown figure(s) {unknown or which}; valid: {', '.join(FIGURE_FILES)}")
    runs = collect_runs(find_metrics(runs_dir), with_options=True)
    figs = paper_results()["figures"]
    out_dir = Path(out_dir)
    written = {}
    for w in which:
        path = out_dir / FIGURE_FILES[w]
        if w == "fig1":
            kernel_sweep(runs, path)
        elif w == "fig2":
            from intrakd.report.qualitative import image_scores, qualitative_figure

            f = figs["fig2"]
            dirs = select_runs(runs, f["dataset"], f["model"], figure_methods(runs, f), seed)
            qualitative_figure(dirs, path, data_root=data_root)
            written[f"{w}_scores"] = _write_scores(image_scores(dirs, data_root=data_root), dirs, f,
                                                   out_dir / SCORE_FILES[w])
        elif w == "fig3":
            from intrakd.report.affinity import affinity_figure, graph_distances

            f = figs["fig3"]
            dirs = select_runs(runs, f["dataset"], f["model"], figure_methods(runs, f), seed)
            teacher = teacher_dir(runs, f["dataset"], dirs.values())
            affinity_figure(dirs, teacher, path, data_root=data_root)
            written[f"{w}_scores"] = _write_scores(graph_distances(dirs, teacher, data_root=data_root), dirs, f,
                                                   out_dir / SCORE_FILES[w])
        else:  # every run given (any grid has curves): one row of panels per dataset and metric
            training_curves(runs if seed is None else runs[runs["seed"] == seed], path)
        written[w] = path
    return written
