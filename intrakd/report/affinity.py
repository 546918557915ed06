"""Fig. 3: the inter-region affinity graphs of the teacher and the students on one evaluation image.

The graphs are computed with the IntRA-KD module's own functions (:func:`intrakd.distill.intrakd.aoi_maps`,
:func:`~intrakd.distill.intrakd.moment_pool`, :func:`~intrakd.distill.intrakd.affinity_graph`) and the options an
IntRA-KD run among the students was trained with (its ``method_options`` over the method's defaults), so the
figure shows exactly what that run distilled: class x class cosine similarities of the AOI moment vectors, one
graph per moment order (or one for ``graph: concat``), on one distillation tap. Only classes present in the image
(AOI mass above ``presence_tau`` for every network) are drawn. Each student's panel title carries the mean absolute
difference between its graph and the teacher's over the drawn entries.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from intrakd.report.plotting import write_figure  # noqa: E402
from intrakd.report.qualitative import class_names, load_run, run_dataset, run_model, same_images  # noqa: E402

INTRA_METHODS = ("intrakd", "intra")
MOMENT_NAMES = {1: "mean", 2: "variance", 3: "skewness"}


def intra_options(runs: dict) -> dict:
    """IntRA-KD's default options overridden by the ``method_options`` of the first IntRA(-KD) run in ``runs``
    ({label: metrics dict}); the defaults alone when none is."""
    from intrakd.distill.intrakd import IntraKD

    options = dict(IntraKD.default_options)
    for metrics in runs.values():
        if metrics.get("base_method", metrics.get("method")) in INTRA_METHODS:
            options.update(metrics.get("method_options") or {})
            break
    options["moments"] = tuple(options["moments"])
    return options


@torch.no_grad()
def graphs_of(model, item: dict, num_classes: int, options: dict,
              tap: str = "high") -> tuple[torch.Tensor, torch.Tensor]:
    """(K x n x n affinity graphs, n AOI masses) of ``model`` on one dataset item at tap ``tap`` (role or name)."""
    from intrakd.distill.intrakd import affinity_graph, aoi_maps, moment_pool
    from intrakd.models import feats_of

    try:
        feat = feats_of(model(item["image"][None]), model, tap)
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    o = options
    aoi = aoi_maps(item["label"][None], num_classes, feat.shape[-2:], o["kernel"], o["kernel_unit"], o["downsample"],
                   o["pad"])
    nodes, mass = moment_pool(feat, aoi, o["moments"], o["normaliser"], o["eps"], o["precision"], o["second"],
                              o["third"])
    return affinity_graph(nodes, o["graph"])[0], mass[0]


def pick_image(dataset, limit: int = 50) -> int:
    """The evaluation image (among the first ``limit``) whose label holds the most classes."""
    ignore = dataset.spec.ignore_index
    counts = [len(set(np.unique(dataset.train_label(i)).tolist()) - {ignore}) for i in range(min(limit, len(dataset)))]
    return int(np.argmax(counts))


def _teacher_and_students(student_run_dirs: dict, teacher_run_dir, data_root):
    """(teacher label, {label: metrics}, {label: run folder}, {label: eval dataset}), teacher first; the teacher
    folder defaults to the one of the checkpoint recorded by the first student that has one."""
    if not student_run_dirs:
        raise ValueError("the affinity graphs need at least one student run folder")
    students = {label: load_run(d) for label, d in student_run_dirs.items()}
    if teacher_run_dir is None:
        ckpts = [m["config"]["teacher_checkpoint"] for m in students.values() if m["config"].get("teacher_checkpoint")]
        if not ckpts:
            raise ValueError("no teacher_run_dir given and no student run records a teacher_checkpoint")
        teacher_run_dir = Path(ckpts[0]).parent
    teacher = load_run(teacher_run_dir)
    t_label = f"teacher ({teacher['config']['model']})"
    if t_label in students:
        raise ValueError(f"student label {t_label!r} clashes with the teacher's column")
    runs = {t_label: teacher, **students}
    dirs = {t_label: Path(teacher_run_dir), **{k: Path(v) for k, v in student_run_dirs.items()}}
    datasets = {label: run_dataset(m, data_root) for label, m in runs.items()}
    same_images(datasets)
    return t_label, runs, dirs, datasets


def graphs_at(models: dict, datasets: dict, i: int, options: dict, tap: str = "high") -> tuple[dict, np.ndarray]:
    """({label: K x n x n graphs as float64 numpy}, the classes present, AOI mass above ``presence_tau``, for every
    network) of each model on evaluation image ``i``."""
    graphs, present = {}, None
    for label, model in models.items():
        ds = datasets[label]
        g, mass = graphs_of(model, ds[i], ds.spec.num_classes, options, tap)
        graphs[label] = g.double().numpy()
        here = (mass > options["presence_tau"]).numpy()
        present = here if present is None else present & here
    return graphs, np.flatnonzero(present)


def _pairs(n: int, options: dict) -> np.ndarray:
    pairs = np.ones((n, n), bool)
    if not options.get("diagonal", True):
        np.fill_diagonal(pairs, False)
    return pairs


def graph_distances(student_run_dirs: dict, teacher_run_dir=None, max_images: int | None = 100, tap: str = "high",
                    data_root=None) -> pd.DataFrame:
    """Per-image distance of each student's affinity graphs to the teacher's: the mean absolute difference over
    the graph entries of the classes present (all moment orders), on the first ``max_images`` evaluation images
    that hold at least 2 classes; the paired sample the verdict tests Fig. 3's claim on. Columns: label, image,
    name, mad."""
    t_label, runs, dirs, datasets = _teacher_and_students(student_run_dirs, teacher_run_dir, data_root)
    options = intra_options({k: v for k, v in runs.items() if k != t_label})
    models = {label: run_model(dirs[label], m) for label, m in runs.items()}
    ref = datasets[t_label]
    n = len(ref) if max_images is None else min(int(max_images), len(ref))
    rows = []
    for i in range(n):
        graphs, classes = graphs_at(models, datasets, i, options, tap)
        if len(classes) < 2:
            continue
        pairs = _pairs(len(classes), options)
        sub = {label: g[:, classes][:, :, classes] for label, g in graphs.items()}
        for label in student_run_dirs:
            mad = float(np.abs(sub[label] - sub[t_label])[:, pairs].mean())
            rows.append({"label": label, "image": i, "name": ref.records[i].name, "mad": mad})
    return pd.DataFrame(rows, columns=["label", "image", "name", "mad"])


def affinity_figure(student_run_dirs: dict, teacher_run_dir, out_path, image: int | None = None, tap: str = "high",
                    data_root=None):
    """Fig. 3: rows = graphs (moment orders), columns = teacher then each student (``{label: run folder}``).

    ``teacher_run_dir`` None: the teacher checkpoint's folder recorded by the first student that has one.
    ``image``: an eval-split index (default: the image with the most classes, :func:`pick_image`).
    Writes ``out_path``; returns the (closed) figure.
    """
    t_label, runs, dirs, datasets = _teacher_and_students(student_run_dirs, teacher_run_dir, data_root)
    ref = datasets[t_label]
    name = ref.spec.name
    i = pick_image(ref) if image is None else int(image)
    if not 0 <= i < len(ref):
        raise ValueError(f"image index {i} outside the {len(ref)} images of {name} {ref.split}")
    options = intra_options({k: v for k, v in runs.items() if k != t_label})
    models = {label: run_model(dirs[label], m) for label, m in runs.items()}
    graphs, classes = graphs_at(models, datasets, i, options, tap)
    if len(classes) < 2:
        raise ValueError(f"{ref.records[i].name}: {len(classes)} class(es) present at tap {tap!r}; the affinity graph "
                         "needs at least 2 (pick another image)")
    names = [class_names(name)[c] for c in classes]
    pairs = _pairs(len(classes), options)
    orders = ["concat (" + ", ".join(MOMENT_NAMES[m] for m in options["moments"]) + ")"] \
        if options["graph"] == "concat" else [f"moment {m}: {MOMENT_NAMES[m]}" for m in options["moments"]]

    cols = len(runs)
    side = 0.32 * len(classes) + 1.6
    fig, axes = plt.subplots(len(orders), cols, figsize=(side * cols + 1.8, (side + 0.9) * len(orders) + 0.6),
                             squeeze=False)
    fig.subplots_adjust(hspace=0.6, wspace=0.15)
    for k, order in enumerate(orders):
        teacher_g = graphs[t_label][k][np.ix_(classes, classes)]
        row = np.stack([g[k][np.ix_(classes, classes)] for g in graphs.values()])
        lo, hi = float(row.min()), float(row.max())  # each row its own range: a mean graph sits near 1 throughout
        if hi - lo < 1e-6:
            lo, hi = lo - 0.01, hi + 0.01
        for col, (ax, (label, g)) in enumerate(zip(axes[k], graphs.items())):
            shown = g[k][np.ix_(classes, classes)]
            image_artist = ax.imshow(shown, vmin=lo, vmax=hi, cmap="viridis")
            ax.grid(False)  # a seaborn theme set by another figure would draw its grid over the cells
            title = label
            if label != t_label:
                title += f"\nMAD vs teacher {np.abs(shown - teacher_g)[pairs].mean():.3f}"
            ax.set_title(title, fontsize=8)
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
            ax.set_yticks(range(len(names)), names if col == 0 else [], fontsize=6)
        axes[k][0].set_ylabel(order, fontsize=8)
        bar = fig.colorbar(image_artist, ax=axes[k].tolist(), shrink=0.8, pad=0.02)
        bar.set_label(f"cosine similarity\n(this row: {lo:.3f} to {hi:.3f})", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    from intrakd.report.common import paper_results

    in_label = len(set(np.unique(ref.train_label(i)).tolist()) - {ref.spec.ignore_index})
    rule = ("image chosen by default: of the first 50 evaluation images, the one whose label holds the most classes"
            if image is None else "image chosen by the caller")
    source = runs[t_label].get("data_source") or name
    fig.suptitle(f"{paper_results()['figures']['fig3']['title']} — ours on {name} {ref.split} image "
                 f"{ref.records[i].name}, tap {tap!r}, AOI kernel {options['kernel']}\ndata: {source}", fontsize=8)
    fig.text(0.01, -0.01, "\n".join(textwrap.wrap(
        f"Classes drawn: {rule} ({in_label} classes in its label); of those, the {len(classes)} whose area of "
        f"influence has mass above presence_tau={options['presence_tau']:g} at this tap in every network (the classes "
        "IntRA-KD's graph has nodes for). Each row of graphs has its own colour range (colour bar at its right): a "
        "mean-moment graph lies close to 1 everywhere, so a common [-1, 1] scale would hide its differences.", 150)),
        fontsize=7, va="top")
    write_figure(fig, out_path)  # laid out by hand above (no tight_layout around the colour bars)
    return fig


__all__ = ["affinity_figure", "graph_distances", "graphs_at", "graphs_of", "intra_options", "pick_image"]
