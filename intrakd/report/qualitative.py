"""Fig. 2: the same evaluation images segmented by several runs, coloured with the dataset's palette.

Everything comes from the run folders: ``metrics.json`` (its ``config``: dataset, data_root, eval_split,
input_size, student, width) and ``model.pt`` (read with ``weights_only``). Predictions are made on CPU at each
run's own input size and mapped back to the genuine label space and resolution by the loader's
``restore_prediction`` (what the official evaluators read), so ground truth and predictions are drawn in the
same space, in the colours of the dataset's spec (``DatasetSpec.palette``): ApolloScape and Cityscapes label IDs in their
official table colours, LLAMAS lanes in the official label script's lane colours, CULane lane slots in fixed colours
(CULane has no official palette).

The run helpers here (:func:`load_run`, :func:`run_model`, :func:`run_dataset`, :func:`class_names`) are shared
with :mod:`intrakd.report.affinity`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from intrakd.data import build_dataset, get_spec  # noqa: E402
from intrakd.engine.config import upgrade  # noqa: E402
from intrakd.report.plotting import save_figure  # noqa: E402
_CONFIG_KEYS = ("dataset", "data_root", "model", "width")


# ---------------------------------------------------------------------------------------------- runs
def load_run(run_dir) -> dict:
    """The ``metrics.json`` of a finished run folder, checked for what the figures need."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics.json (expected a finished run folder)")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: unreadable metrics.json ({err})") from err
    cfg = metrics.get("config")
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: no 'config' object (expected the run's RunConfig)")
    metrics["config"] = cfg = upgrade(cfg)  # a run recorded before a key's rename reads under its new name
    missing = [k for k in _CONFIG_KEYS if k not in cfg]
    if missing:
        raise ValueError(f"{path}: config lacks {missing}")
    return metrics


def run_model(run_dir, metrics: dict | None = None):
    """The run's final network (``model.pt``, weights only) on CPU in eval mode."""
    from intrakd.models.checkpoint import load_weights

    metrics = metrics or load_run(run_dir)
    cfg = metrics["config"]
    model, _meta = load_weights(Path(run_dir) / "model.pt", name=cfg["model"],
                                num_classes=get_spec(cfg["dataset"]).num_classes, width=cfg["width"])
    return model.eval()


def run_dataset(metrics: dict, data_root=None):
    """The run's evaluation split at the run's input size (``data_root`` overrides the recorded one)."""
    cfg = metrics["config"]
    root = Path(data_root or cfg["data_root"])
    if not root.is_dir():
        raise FileNotFoundError(f"data_root {str(root)!r} of the {cfg['dataset']} run: no such directory (run from "
                                "the folder the run was trained from, or pass data_root)")
    size = cfg.get("input_size")
    return build_dataset(cfg["dataset"], root, cfg.get("eval_split", "val"), train=False,
                         input_size=tuple(size) if size else None)


def same_images(datasets: dict) -> None:
    """One ValueError unless every dataset lists the same images in the same order (same eval split)."""
    (first_label, first), *rest = datasets.items()
    names = [r.name for r in first.records]
    for label, ds in rest:
        if ds.spec.name != first.spec.name or [r.name for r in ds.records] != names:
            raise ValueError(f"runs {first_label!r} and {label!r} evaluate different images ({first.spec.name} "
                             f"{first.split} at {first.root} vs {ds.spec.name} {ds.split} at {ds.root}); the figure "
                             "needs runs of one dataset split")


def load_runs(run_dirs: dict, data_root=None, who: str = "the figure") -> tuple[dict, dict, object]:
    """({label: metrics}, {label: eval dataset}, the first dataset) of runs that must evaluate the same images."""
    if not run_dirs:
        raise ValueError(f"{who} needs at least one run folder")
    runs = {label: load_run(d) for label, d in run_dirs.items()}
    datasets = {label: run_dataset(m, data_root) for label, m in runs.items()}
    same_images(datasets)
    return runs, datasets, next(iter(datasets.values()))


# ---------------------------------------------------------------------------------------------- classes, colours
def class_names(dataset: str) -> list[str]:
    """Names of the training classes 0..n-1 (the nodes of the affinity graphs): ``DatasetSpec.class_names``."""
    return list(get_spec(dataset).class_names)


def label_colours(dataset: str) -> np.ndarray:
    """256 x 3 uint8 RGB colours of the values of the dataset's genuine label space (``raw_label``):
    ``DatasetSpec.palette``."""
    return np.asarray(get_spec(dataset).palette, np.uint8)


def value_names(dataset: str) -> dict[int, str]:
    """{genuine label value: class name} of the dataset's label space (what :func:`label_colours` paints):
    ``DatasetSpec.value_names``."""
    return dict(get_spec(dataset).value_names)


def colour_key(dataset: str, values) -> list[tuple[str, tuple[int, int, int]]]:
    """(class name, RGB) of each genuine label value in ``values``, sorted by value: Fig. 2's colour key."""
    names, lut = value_names(dataset), label_colours(dataset)
    return [(names.get(int(v), f"value {int(v)}"), tuple(int(c) for c in lut[int(v)])) for v in sorted(values)]


def colourise(dataset: str, raw: np.ndarray) -> np.ndarray:
    """H x W genuine label values -> H x W x 3 uint8 RGB."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.dtype.kind not in "ui" or (raw.size and (raw.min() < 0 or raw.max() > 255)):
        raise ValueError(f"colourise expects an H x W map of label values 0..255, got {raw.dtype} {raw.shape}")
    return label_colours(dataset)[raw.astype(np.uint8)]


# ---------------------------------------------------------------------------------------------- prediction
@torch.no_grad()
def predict_raw(model, dataset, i: int) -> np.ndarray:
    """The prediction of ``model`` for image ``i`` in the genuine label space at full size (H x W)."""
    item = dataset[i]
    logits = model(item["image"][None])["logits"][0]
    restored = np.asarray(dataset.restore_prediction(i, logits.argmax(0).to(torch.uint8).numpy()))
    return restored.argmax(0).astype(np.uint8) if restored.ndim == 3 else restored  # LLAMAS: per-class maps


def image_score(dataset, pred: np.ndarray, gt: np.ndarray) -> float:
    """The per-image score behind Fig. 2's claim, on full-size genuine label maps: the official mIoU restricted to
    one image (``SegEvaluator``: evaluated classes present in the label or the prediction) for the mIoU datasets;
    for the lane datasets, which have no per-image official score, the mean IoU of the lane values present in the
    label or the prediction (background 0 excluded). Percent; NaN when nothing is scored."""
    if dataset.spec.metric == "miou":
        from intrakd.metrics.segmentation import SegEvaluator

        evaluator = SegEvaluator(dataset.spec.name)
        evaluator.update(pred, gt)
        return 100.0 * evaluator.result()["miou"]
    lanes = sorted((set(np.unique(gt).tolist()) | set(np.unique(pred).tolist())) - {0})
    ious = [np.logical_and(gt == v, pred == v).sum() / np.logical_or(gt == v, pred == v).sum() for v in lanes]
    return 100.0 * float(np.mean(ious)) if ious else float("nan")


def image_scores(run_dirs: dict, max_images: int | None = 200, data_root=None) -> pd.DataFrame:
    """Per-image scores (:func:`image_score`) of each run on the first ``max_images`` evaluation images (None:
    all), the paired sample the verdict tests Fig. 2's claim on. Columns: label, image (eval index), name, score."""
    runs, datasets, ref = load_runs(run_dirs, data_root, "image_scores")
    n = len(ref) if max_images is None else min(int(max_images), len(ref))
    rows = []
    for label, metrics in runs.items():
        model, ds = run_model(run_dirs[label], metrics), datasets[label]
        for i in range(n):
            rows.append({"label": label, "image": i, "name": ds.records[i].name,
                         "score": image_score(ds, predict_raw(model, ds, i), ds.raw_label(i))})
    return pd.DataFrame(rows, columns=["label", "image", "name", "score"])


def pick_images(n_images: int, total: int) -> list[int]:
    """``n_images`` evenly spaced indices of an ``total``-image split (all of them when it has fewer)."""
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images!r}")
    return sorted(set(np.linspace(0, total - 1, min(n_images, total)).round().astype(int).tolist()))


def _shown(dataset, i: int, array: np.ndarray, width: int, nearest: bool) -> np.ndarray:
    """The rows the network sees (below ``top_rows``), scaled to ``width`` pixels for display."""
    top = dataset.top_rows(array.shape[0])
    kept = array[top:]
    h, w = kept.shape[:2]
    if w <= width:
        return kept
    size = (width, max(1, round(h * width / w)))
    return cv2.resize(kept, size, interpolation=cv2.INTER_NEAREST if nearest else cv2.INTER_AREA)


def qualitative_figure(run_dirs: dict, out_path, n_images: int = 3, indices=None, data_root=None,
                       max_width: int = 640):
    """Fig. 2: rows = evaluation images, columns = input, ground truth, then each run's prediction.

    ``run_dirs``: {column label: run folder} (e.g. ERFNet, ERFNet-BiFPN, ERFNet-IntRA-KD), runs of one dataset
    split; ``indices`` (eval-split indices) override the ``n_images`` evenly spaced ones. Each prediction panel is
    titled with its pixel accuracy on the rows shown. Writes ``out_path``; returns the (closed) figure.
    """
    runs, datasets, ref = load_runs(run_dirs, data_root, "qualitative_figure")
    name = ref.spec.name
    if indices is None:
        indices = pick_images(n_images, len(ref))
    bad = [i for i in indices if not 0 <= int(i) < len(ref)]
    if bad:
        raise ValueError(f"image indices {bad} outside the {len(ref)} images of {name} {ref.split}")
    models = {label: run_model(run_dirs[label], m) for label, m in runs.items()}

    cols = 2 + len(models)
    w, h = ref.orig_size
    aspect = (h - ref.top_rows(h)) / w
    fig, axes = plt.subplots(len(indices), cols, figsize=(2.9 * cols, (2.9 * aspect + 0.8) * len(indices) + 0.6),
                             squeeze=False)
    shown_values: set[int] = set()
    for row, i in enumerate(indices):
        image = ref.read_image(i)[..., ::-1]
        gt = ref.raw_label(i)
        panels = [("input", _shown(ref, i, image, max_width, False)),
                  ("ground truth", _shown(ref, i, colourise(name, gt), max_width, True))]
        gt_shown = _shown(ref, i, gt, max_width, True)
        shown_values |= set(np.unique(gt_shown).tolist())
        for label, model in models.items():
            pred = _shown(ref, i, predict_raw(model, datasets[label], i), max_width, True)
            shown_values |= set(np.unique(pred).tolist())
            acc = float(np.mean(pred == gt_shown))
            panels.append((f"{label}\npixel acc. {acc:.3f}", colourise(name, pred)))
        for ax, (title, img) in zip(axes[row], panels):
            ax.imshow(img, interpolation="nearest")
            ax.grid(False)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_xlabel("\n".join(textwrap.wrap(ref.records[i].name, 44)), fontsize=6.5)  # full name, never cut
    from matplotlib.patches import Patch

    from intrakd.report.common import paper_results

    keys = colour_key(name, shown_values)
    fig.legend(handles=[Patch(facecolor=np.asarray(rgb) / 255.0, edgecolor="#444444", label=label)
                        for label, rgb in keys], loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(6, len(keys)),
               fontsize=7, frameon=False, title="colours: the classes shown (official palette)", title_fontsize=8)
    source = next(iter(runs.values())).get("data_source") or name
    fig.suptitle(f"{paper_results()['figures']['fig2']['title']} — ours on {name} {ref.split}\ndata: {source}",
                 fontsize=9)
    save_figure(fig, out_path)
    return fig


__all__ = ["class_names", "colour_key", "colourise", "image_score", "image_scores", "label_colours", "load_run", "load_runs",
           "pick_images", "predict_raw", "qualitative_figure", "run_dataset", "run_model", "same_images"]
