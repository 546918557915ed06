"""Seaborn figures from the tables and the runs' ``history.csv`` (no training, no torch)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from intrakd.report.tables import METHOD_LABELS  # noqa: E402


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
        ax.set_title(ds)
        ax.set_xlabel("")
        ax.set_ylabel(sub["metric"].iloc[0] if "metric" in sub else "score")
        ax.tick_params(axis="x", rotation=20)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


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
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
