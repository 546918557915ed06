"""mIoU against the official cityscapesScripts evaluator (PyPI oracle), on real samples and random maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from intrakd.labels import APOLLO_LABELS, CITYSCAPES_LABELS, CITYSCAPES_TRAIN_TO_ID
from intrakd.metrics import segmentation as seg

ev_mod = pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling")
APOLLO = "apolloscape_lane/test_eval_data"


@pytest.fixture
def oracle(monkeypatch):
    """``evaluateImgLists`` in-process; ``oracle(preds, gts, table)`` -> (classScores, averageScoreClasses)."""
    from helpers import cityscapes_scripts_oracle

    return lambda preds, gts, table: cityscapes_scripts_oracle(monkeypatch, preds, gts, table)


def _same(ours: dict, theirs_scores: dict, theirs_mean: float) -> None:
    for name, iou in ours["per_class"].items():
        ref = theirs_scores[name]
        assert (iou is None) == math.isnan(ref), name
        if iou is not None:
            assert iou == pytest.approx(ref, abs=1e-12), name
    assert ours["miou"] == pytest.approx(theirs_mean, abs=1e-12)


def _save(path, arr):
    Image.fromarray(arr.astype(np.uint8)).save(path)
    return path


@pytest.mark.real_samples
def test_apollo_real_pred_equals_gt(real_samples, oracle):
    root = real_samples / APOLLO
    res = seg.evaluate_apolloscape(root, root, root / "gt_list.csv", root / "pred_list.csv")
    assert res["miou"] == 1.0 and res["images"] == 6
    present = {k for k, v in res["per_class"].items() if v is not None}
    assert {"void", "s_w_d", "b_w_g", "s_y_d", "c_wy_z", "s_w_s", "om_n_n"} <= present
    gts = [root / ln.strip() for ln in (root / "gt_list.csv").read_text().splitlines() if ln.strip()]
    _same(res, *oracle(gts, gts, "apolloscape"))


@pytest.mark.real_samples
def test_apollo_real_perturbed_against_oracle(real_samples, oracle, tmp_path):
    root = real_samples / APOLLO
    gts = [root / ln.strip() for ln in (root / "gt_list.csv").read_text().splitlines() if ln.strip()][:2]
    rng = np.random.default_rng(3)
    evaluated = [lab.id for lab in APOLLO_LABELS]
    preds = []
    for i, g in enumerate(gts):
        a = np.asarray(Image.open(g)).copy()
        noise = rng.random(a.shape) < 0.02
        a[noise] = rng.choice(evaluated, size=int(noise.sum()))
        a = np.roll(a, 7, axis=1)  # shifted marks: real FP and FN
        preds.append(_save(tmp_path / f"p{i}.png", a))
    ours = seg.evaluate_pairs(list(zip(preds, gts)), "apolloscape")
    assert 0.05 < ours["miou"] < 0.9
    _same(ours, *oracle(preds, gts, "apolloscape"))
    # excluding void: same per-class numbers, mean over the 17 marking classes only
    nv = seg.evaluate_pairs(list(zip(preds, gts)), "apolloscape", exclude_void=True)
    assert "void" not in nv["per_class"]
    vals = [v for v in nv["per_class"].values() if v is not None]
    assert nv["miou"] == pytest.approx(np.mean(vals)) and nv["miou"] != ours["miou"]


@pytest.mark.real_samples
def test_cityscapes_real_sample_against_oracle(real_samples, oracle, tmp_path):
    gt_dir = real_samples / "cityscapes/pseudo_cityscapes_dataset/gtFine/val/frankfurt"
    gt = gt_dir / "frankfurt_000000_000294_gtFine_labelIds.png"
    pred_full = real_samples / "cityscapes/predictions_nonofficial_hrnet_ocr/frankfurt_000000_000294_gtFine_labelIds.png"
    small = Image.open(pred_full).resize((256, 128), Image.NEAREST)  # mode P kept: indices are the IDs
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    pred = pred_dir / "frankfurt_000000_000294_pred.png"
    small.save(pred)
    ours = seg.evaluate_cityscapes(gt_dir, pred_dir)
    assert 0.3 < ours["miou"] < 1.0
    assert set(ours["per_class"]) == {lab.name for lab in CITYSCAPES_LABELS if not lab.ignore_in_eval and lab.id >= 0}
    _same(ours, *oracle([pred], [gt], "cityscapes"))


@pytest.mark.parametrize("table", ["apolloscape", "cityscapes"])
def test_random_maps_against_oracle(table, oracle, tmp_path):
    rng = np.random.default_rng(11 if table == "cityscapes" else 12)
    labels = APOLLO_LABELS if table == "apolloscape" else CITYSCAPES_LABELS
    ids = np.array([lab.id for lab in labels if lab.id >= 0])
    preds, gts = [], []
    for i in range(3):
        vocab = rng.choice(ids, size=8, replace=False)  # few IDs per image: some classes absent (NaN)
        g = rng.choice(vocab, size=(40, 60))
        p = np.where(rng.random(g.shape) < 0.6, g, rng.choice(vocab, size=g.shape))
        gts.append(_save(tmp_path / f"g{i}.png", g))
        preds.append(_save(tmp_path / f"p{i}.png", p))
    _same(seg.evaluate_pairs(list(zip(preds, gts)), table), *oracle(preds, gts, table))


def test_reference_worked_example():
    gt = np.zeros((20, 30), np.uint8)
    gt[:, 0:5], gt[:, 5:8], gt[:, 8:10] = 200, 213, 255
    pred = np.zeros_like(gt)
    pred[:, 0:4], pred[:, 5:10] = 200, 200
    pred[0, 20] = 204
    res = seg.evaluate_arrays([(pred, gt)], "apolloscape")
    assert res["per_class"]["s_w_d"] == pytest.approx(0.80)
    assert res["per_class"]["void"] == pytest.approx(399 / 420)
    assert res["per_class"]["s_y_d"] == 0.0
    assert res["miou"] == pytest.approx((0.8 + 399 / 420 + 0.0) / 3)


def test_trainid_formulation_matches_when_no_ignored_predictions():
    rng = np.random.default_rng(5)
    gt_t = rng.integers(0, 19, (64, 64))
    gt_t[rng.random(gt_t.shape) < 0.1] = 255
    pred_t = np.where(rng.random(gt_t.shape) < 0.7, np.where(gt_t == 255, 0, gt_t), rng.integers(0, 19, gt_t.shape))
    to_id = np.concatenate([CITYSCAPES_TRAIN_TO_ID, np.zeros(256 - 19, np.uint8)])
    res = seg.evaluate_arrays([(to_id[pred_t], to_id[gt_t])], "cityscapes")
    m = gt_t != 255
    conf = np.bincount(gt_t[m] * 19 + pred_t[m], minlength=361).reshape(19, 19)
    iou = np.diag(conf) / (conf.sum(0) + conf.sum(1) - np.diag(conf))
    assert res["miou"] == pytest.approx(np.nanmean(iou))


def test_errors_name_the_problem(tmp_path):
    ev = seg.SegEvaluator("apolloscape")
    with pytest.raises(ValueError, match="size mismatch for img7"):
        ev.update(np.zeros((4, 5), np.uint8), np.zeros((4, 6), np.uint8), name="img7")
    with pytest.raises(ValueError, match="label ID 100"):
        ev.update(np.full((4, 5), 100, np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="ground truth .* label ID 3"):
        ev.update(np.zeros((4, 5), np.uint8), np.full((4, 5), 3, np.uint8))
    with pytest.raises(ValueError, match="label ID 300"):
        ev.update(np.full((2, 2), 300), np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="label ID 34"):
        seg.SegEvaluator("cityscapes").update(np.full((2, 2), 34, np.uint8), np.zeros((2, 2), np.uint8))
    with pytest.raises(ValueError, match="no images"):
        ev.result()
    with pytest.raises(ValueError, match="unknown label table"):
        seg.SegEvaluator("kitti")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(ValueError, match="empty.csv is empty"):
        seg.evaluate_apolloscape(tmp_path, tmp_path, tmp_path / "empty.csv", tmp_path / "empty.csv")
    _save(tmp_path / "a.png", np.zeros((4, 4)))
    _save(tmp_path / "b.png", np.zeros((4, 5)))
    with pytest.raises(ValueError, match="size mismatch: prediction .*a.png"):
        seg.evaluate_pairs([(tmp_path / "a.png", tmp_path / "b.png")], "apolloscape")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        seg.evaluate_pairs([(tmp_path / "missing.png", tmp_path / "b.png")], "apolloscape")


def test_pooling_is_over_pixels_not_images():
    a_gt = np.full((10, 10), 200, np.uint8)
    b_gt = np.zeros((10, 10), np.uint8)
    b_gt[0, :2] = 200
    a_pred, b_pred = a_gt.copy(), np.zeros_like(b_gt)  # image b misses its 2 marking pixels
    res = seg.evaluate_arrays([(a_pred, a_gt), (b_pred, b_gt)], "apolloscape")
    assert res["per_class"]["s_w_d"] == pytest.approx(100 / 102)
