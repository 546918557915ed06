"""Seaborn figures from the tables and the runs' ``history.csv`` (no training, no torch)."""

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
from intrakd.report.tables import METHOD_LABELS, paper_results  # noqa: E402

METRIC_LABELS = {"miou": "mIoU (%)", "f1": "F1 (%)", "map": "mAP"}


def save_figure(fig, path) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; returns the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def paper_vs_ours(table: pd.DataFrame, path: str | Path, title: str) -> Path:
    """Grouped bars: the paper's value beside ours (with sd over seeds) for every cell of a table."""
    df = table.copy()
    df["cell"] = df["model"] + " " + df["method"].map(lambda m: METHOD_LABELS.get(m, m))
    long = pd.concat([
        df.assign(source="paper", score=df["paper"], err=0.0),
        df.assign(source="ours", score=df["ours"], err=df["sd"].fillna(0.0)),
    ], ignore_index=True)
    datasets = list(dict.fromkeys(df["dataset"]))
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets) + 1, 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sub = long[long["dataset"] == ds]
        sns.barplot(data=sub, x="cell", y="score", hue="source", ax=ax, palette=["#9e9e9e", "#1f77b4"])
        ours = sub[sub["source"] == "ours"]
        for patch_x, (_, r) in zip(range(len(ours)), ours.iterrows()):
            ax.errorbar(patch_x + 0.2, r["score"], yerr=r["err"], color="black", capsize=3, lw=1)
        floors = df.loc[df["dataset"] == ds, "floor"].dropna() if "floor" in df else pd.Series(dtype=float)
        if len(floors):  # the all-background predictor on the same images: a bar near it has learned nothing
            ax.axhline(floors.max(), color="#d62728", ls="--", lw=1, label="floor (background everywhere)")
            ax.legend(fontsize=7)
        ax.set_title(ds)
        ax.set_xlabel("")
        metric = sub["metric"].dropna().iloc[0] if "metric" in sub and sub["metric"].notna().any() else None
        ax.set_ylabel(METRIC_LABELS.get(metric, "score"))
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle("\n".join(textwrap.wrap(title, 48 + 40 * (len(datasets) - 1))), fontsize=10)
    return save_figure(fig, path)


def training_curves(histories: dict[str, Path], path: str | Path, metric_col: str | None = None) -> Path:
    """Loss (and validation metric) per epoch for each run; ``histories`` maps a label to a history.csv."""
    frames = []
    for label, hist in histories.items():
        h = pd.read_csv(hist)
        h["run"] = label
        frames.append(h)
    df = pd.concat(frames, ignore_index=True)
    val_cols = [c for c in df.columns if c.startswith("val_")]
    metric_col = metric_col or (val_cols[0] if val_cols else None)
    sns.set_theme(style="whitegrid", context="notebook")
    ncols = 2 if metric_col else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 3.6), squeeze=False)
    sns.lineplot(data=df, x="epoch", y="loss_seg", hue="run", ax=axes[0][0], marker="o")
    axes[0][0].set_title("segmentation loss (train)")
    if metric_col:
        sns.lineplot(data=df.dropna(subset=[metric_col]), x="epoch", y=metric_col, hue="run", ax=axes[0][1],
                     marker="o", legend=False)
        axes[0][1].set_title(f"{metric_col[4:]} (validation)")
    return save_figure(fig, path)


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
    metric = paper_results()["metrics"][dataset]
    base = runs[(runs.dataset == dataset) & (runs.student == model) & (runs.method == "baseline")]["value"]
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(8.6, 4.0))
    lo, hi = fig1["stable"]
    ax.axvspan(lo, hi, color="#2ca02c", alpha=0.08, label=f"paper: stable for k in [{lo}, {hi}]")
    ax.axvline(fig1["paper_kernel"], color="#2ca02c", ls=":", lw=1.2, label=f"paper's kernel k={fig1['paper_kernel']}")
    if len(base):
        mean, sd = base.mean(), (base.std() if len(base) > 1 else 0.0)
        ax.axhline(mean, color="#7f7f7f", lw=1.5, label=f"{model} baseline (n={len(base)})")
        if sd > 0:
            ax.axhspan(mean - sd, mean + sd, color="#7f7f7f", alpha=0.15)
    for (method, g), colour in zip(sweep.groupby("base_method"), sns.color_palette("deep")):
        stats = g.groupby("kernel")["value"].agg(["mean", "std", "count"]).reset_index()
        ax.errorbar(stats["kernel"].to_numpy(float), stats["mean"].to_numpy(float),
                    yerr=stats["std"].fillna(0.0).to_numpy(float), marker="o", capsize=3,
                    color=colour, label=f"ours: {model} {METHOD_LABELS.get(method, method)} (mean ± sd)")
        ax.scatter(g["kernel"].to_numpy(float), g["value"].to_numpy(float), s=12, color=colour, alpha=0.45, zorder=3)
    ax.set_xscale("log")
    ticks = sorted({int(k) for k in sweep["kernel"]} | {lo, hi})
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("AOI smoothing kernel size k (log scale)")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(fig1["title"] + f"\nours on {dataset}", fontsize=9)
    values = "" if fig1.get("numbers") else "the paper prints no values for Fig. 1: its curve as the text says"
    ax.text(0.01, 0.01, f"{values}\n(k<{fig1['degraded_below']}: slightly lower; {lo}-{hi}: flat; "
            f">{fig1['drops_above']}: drops quickly)", transform=ax.transAxes, fontsize=7, va="bottom",
            color="#2ca02c")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    save_figure(fig, path)
    return fig


#: figure id -> file written by :func:`build_figures` (and ``intrakd figures``).
FIGURE_FILES = {"fig1": "fig1_kernel_sweep.png", "fig2": "fig2_qualitative.png", "fig3": "fig3_affinity_graphs.png",
                "curves": "training_curves.png"}
#: figure id -> per-image scores written beside it: the paired samples the verdict tests Fig. 2's and Fig. 3's
#: claims on (:func:`intrakd.report.qualitative.image_scores`, :func:`intrakd.report.affinity.graph_distances`).
SCORE_FILES = {"fig2": "fig2_scores.csv", "fig3": "fig3_scores.csv"}


def run_label(model: str, method: str) -> str:
    """Column label of a run in the figures: ``erfnet`` for the baseline, ``erfnet + IntRA-KD`` otherwise."""
    return model if method == "baseline" else f"{model} {METHOD_LABELS.get(method, method)}"


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
        else:  # every run given (any grid has curves); one seed per run label
            pick = runs if seed is None else runs[runs["seed"] == seed]
            curves = {}
            for r in pick.sort_values("seed").itertuples():
                curves.setdefault(f"{r.dataset} {run_label(r.student, r.method)}", Path(r.path).parent / "history.csv")
            training_curves(curves, path)
        written[w] = path
    return written
