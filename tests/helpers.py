"""Helpers shared by the engine tests: a tiny synthetic ApolloScape tree, a tiny run config, and comparisons of
two runs' weights and histories (timing columns aside)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from intrakd.engine import RunConfig

TIMING_COLUMNS = ["epoch_seconds", "train_seconds"]


def tiny_apollo(tmp_path_factory, num: int) -> Path:
    from intrakd.data.synth import generate

    root = tmp_path_factory.mktemp("data") / "apolloscape"
    generate("apolloscape", root, num=num, seed=0, size=(424, 340))
    return root


def tiny_cfg(root: Path, out: Path, **kw) -> RunConfig:
    base = dict(dataset="apolloscape", data_root=str(root), model="erfnet", width=0.125, method="baseline",
                epochs=2, batch_size=2, input_size=[104, 32], out_dir=str(out), threads=1)
    return RunConfig(**(base | kw))


def same_weights(a_dir: Path, b_dir: Path) -> bool:
    """Whether the ``model.pt`` of two run folders hold the same tensors under the same names."""
    a = torch.load(Path(a_dir) / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(Path(b_dir) / "model.pt", weights_only=True)["state_dict"]
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def history_without_timings(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / "history.csv").drop(columns=TIMING_COLUMNS)


def poison_second_epoch(monkeypatch) -> None:
    """Make the next run's loss non-finite in its second epoch (NaN weights), the first epoch's checkpoint kept."""
    import importlib

    trainer = importlib.import_module("intrakd.engine.train").Trainer
    original = trainer.train_epoch

    def poisoned(self, epoch):
        if epoch == 1:
            with torch.no_grad():
                next(self.student.parameters()).fill_(float("nan"))
        return original(self, epoch)

    monkeypatch.setattr(trainer, "train_epoch", poisoned)


def cityscapes_scripts_oracle(monkeypatch, preds, gts, table: str):
    """cityscapesScripts' ``evaluateImgLists`` in-process on label-ID PNGs, with ``table``'s labels ("apolloscape"
    or "cityscapes") patched into it; returns (classScores, averageScoreClasses)."""
    from collections import namedtuple

    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as ev_mod

    from intrakd.labels import APOLLO_LABELS, CITYSCAPES_LABELS

    labels = APOLLO_LABELS if table == "apolloscape" else CITYSCAPES_LABELS
    CsLabel = namedtuple("Label", "name id trainId category categoryId hasInstances ignoreInEval color")
    cats = sorted({lab.category for lab in labels})
    cs = [CsLabel(lab.name, lab.id, lab.train_id, lab.category, cats.index(lab.category), False,
                  lab.ignore_in_eval, lab.color) for lab in labels]
    cat2 = {}
    for lab in cs:
        cat2.setdefault(lab.category, []).append(lab)
    for name, val in (("labels", cs), ("name2label", {lab.name: lab for lab in cs}),
                      ("id2label", {lab.id: lab for lab in cs}),
                      ("trainId2label", {lab.trainId: lab for lab in reversed(cs)}),
                      ("category2labels", cat2)):
        monkeypatch.setattr(ev_mod, name, val)
    monkeypatch.setattr(ev_mod.args, "evalInstLevelScore", False)
    monkeypatch.setattr(ev_mod.args, "quiet", True)
    monkeypatch.setattr(ev_mod.args, "JSONOutput", False)
    res = ev_mod.evaluateImgLists([str(p) for p in preds], [str(g) for g in gts], ev_mod.args)
    return res["classScores"], res["averageScoreClasses"]


def apollo_submission_files(model, dataset, out: Path) -> list[tuple[Path, Path]]:
    """(prediction, ground truth) label-ID PNGs of every image of an ApolloScape ``dataset``: ``model`` run here on
    each image (not through the engine), the argmax at the network size written as the submission PNG
    (metrics.writers: trainId -> ID, nearest resize into the kept rows of a void image), and the tree's label IDs
    written as a plain ID PNG, both ready for :func:`cityscapes_scripts_oracle`."""
    from PIL import Image

    from intrakd.metrics.writers import write_apollo_submission

    model.eval()
    pairs = []
    for i in range(len(dataset)):
        with torch.no_grad():
            logits = model(dataset[i]["image"][None])["logits"][0]
        w, h = dataset.full_size(i)
        pred = write_apollo_submission(out / "pred" / f"{i}.png", logits.argmax(0).numpy(), full_size=(w, h),
                                       crop_top=dataset.top_rows(h))
        gt = out / "gt" / f"{i}.png"
        gt.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(dataset.raw_label(i)).save(gt)
        pairs.append((pred, gt))
    return pairs


def resnet101_params() -> int:
    """Parameters of torchvision's ResNet-101 without its ImageNet classifier (the teachers' backbone; dilation
    adds none): 42,500,160."""
    import torchvision

    model = torchvision.models.resnet101(weights=None)
    return sum(p.numel() for n, p in model.named_parameters() if not n.startswith("fc."))


def pspnet_r101_params(classes: int) -> int:
    """The IntRA-KD teacher counted by hand (models_baselines.md §A: dilated ResNet-101 + PSP head, Codes-for-IntRA-KD
    models/pspnet.py): 4 pyramid branches of a 1x1 2048->512 conv (no bias) + BN (2 x 512), a 3x3
    (2048 + 4 x 512)->512 conv (no bias) + BN, a 1x1 512->classes classifier with bias. 65,592,933 at 37 classes."""
    branches = 4 * (2048 * 512 + 2 * 512)
    bottleneck = (2048 + 4 * 512) * 512 * 9 + 2 * 512
    return resnet101_params() + branches + bottleneck + 512 * classes + classes


def deeplabv3plus_r101_params(classes: int) -> int:
    """DeepLabv3+ ResNet-101 (VainF's, models_baselines.md §A) counted by hand: ASPP = a 1x1 and three 3x3 atrous
    2048->256 convs, an image-pooling 1x1 2048->256 conv, a 1x1 1280->256 projection (each without bias, + BN of
    2 x 256); decoder = a 1x1 256->48 low-level conv + BN, one 3x3 (256 + 48)->256 conv + BN, a 1x1 256->classes
    classifier with bias. 58,753,459 at 19 classes (the reference's 58.75M)."""
    bn = 2 * 256
    aspp = 2048 * 256 + bn + 3 * (2048 * 256 * 9 + bn) + 2048 * 256 + bn + 5 * 256 * 256 + bn
    decoder = 256 * 48 + 2 * 48 + (256 + 48) * 256 * 9 + bn
    return resnet101_params() + aspp + decoder + 256 * classes + classes


def direct_aoi(label, size, num_classes: int, kernel: int = 5, unit: str = "feature", downsample: str = "area"):
    """n x h x w AOI maps of one H x W label (numpy, 255 = ignore; H, W multiples of h, w), by the paper's recipe
    written directly: one-hot per class, area (the mean of each block) or nearest (every s-th pixel, OpenCV
    INTER_NEAREST) downsampling, and cv2.blur (the author's box filter, BORDER_REFLECT_101) in feature pixels after
    it or in label pixels before it."""
    import cv2
    import numpy as np

    h, w = size
    sy, sx = label.shape[0] // h, label.shape[1] // w
    out = []
    for c in range(num_classes):
        m = (label == c).astype(np.float64)
        if unit == "label":
            m = cv2.blur(m, (kernel, kernel))
        m = m.reshape(h, sy, w, sx).mean((1, 3)) if downsample == "area" else m[::sy, ::sx]
        if unit == "feature":
            m = cv2.blur(m, (kernel, kernel))
        out.append(m)
    return np.stack(out)


def direct_graphs(feat, aoi, moments=(1, 2, 3), eps: float = 1e-6):
    """(K x n x n cosine affinity graphs, n AOI masses) of one C x h x w feature map, by the paper's formulas with
    loops: per class j the AOI-weighted mean, variance and skewness of every channel (two-pass, float64), per order
    the n x n cosine matrix, 0 for an absent class (zero mass)."""
    import numpy as np

    f = feat.detach().double().numpy() if isinstance(feat, torch.Tensor) else np.asarray(feat, np.float64)
    n = aoi.shape[0]
    mass = aoi.sum((1, 2))
    nodes = np.zeros((len(moments), n, f.shape[0]))
    for j in range(n):
        if mass[j] == 0:
            continue
        wgt = aoi[j] / mass[j]
        for ch in range(f.shape[0]):
            mu = (wgt * f[ch]).sum()
            var = (wgt * (f[ch] - mu) ** 2).sum()
            third = (wgt * (f[ch] - mu) ** 3).sum()
            by_order = {1: mu, 2: var, 3: third / (var + eps) ** 1.5}
            nodes[:, j, ch] = [by_order[k] for k in moments]
    graphs = np.zeros((len(moments), n, n))
    for k in range(len(moments)):
        for i in range(n):
            for j in range(n):
                ni, nj = np.linalg.norm(nodes[k, i]), np.linalg.norm(nodes[k, j])
                graphs[k, i, j] = nodes[k, i] @ nodes[k, j] / (ni * nj) if ni and nj else 0.0
    return graphs, mass
