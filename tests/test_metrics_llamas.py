"""LLAMAS AP: the official 101-threshold recurrence and its quirks; histogram form == per-threshold loop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from intrakd.metrics import llamas as L
from intrakd.metrics import writers as W


def _mask():
    gt = np.zeros((20, 30), bool)
    gt[5:15, 10:20] = True
    return gt


def test_documented_quirks():
    gt = _mask()
    assert L.image_ap(np.where(gt, 255, 0).astype(np.uint8), gt) == 1.0
    assert L.image_ap(np.where(gt, 230, 0).astype(np.uint8), gt) == 0.0  # first positives below t = 1.0
    one = np.where(gt, 230, 0).astype(np.uint8)
    one[5, 10] = 255
    assert L.image_ap(one, gt) == pytest.approx(1.0)
    assert L.image_ap(np.zeros_like(gt, np.uint8), gt) == 0.0  # all-zero prediction


def test_binary_prediction_gives_r_plus_one_minus_r_times_p():
    gt = np.zeros((10, 10), bool)
    gt[0, :4] = True
    pred = np.zeros((10, 10), np.uint8)
    pred[0, 1:5] = 255  # TP 3 of 4 GT pixels, FP 1: R = P = 0.75
    assert L.image_ap(pred, gt) == pytest.approx(0.9375)
    assert L.image_ap_reference(pred, gt) == pytest.approx(0.9375)


def test_absent_class_scores_zero():
    gt = np.zeros((8, 8), bool)
    for pred in (np.zeros((8, 8), np.uint8), np.full((8, 8), 255, np.uint8), np.random.default_rng(0).random((8, 8))):
        assert L.image_ap(pred, gt) == 0.0 == L.image_ap_reference(pred, gt)


def test_values_below_255_and_float_inputs_match_the_loop():
    rng = np.random.default_rng(1)
    for trial in range(120):
        h, w = rng.integers(1, 25, 2)
        gt = rng.random((h, w)) < rng.random()
        kind = trial % 4
        if kind == 0:
            pred = rng.integers(0, 256, (h, w)).astype(np.uint8)
        elif kind == 1:
            pred = rng.integers(200, 255, (h, w)).astype(np.uint8)  # never 255
        elif kind == 2:
            pred = rng.random((h, w)).astype(np.float32)
        else:
            pred = np.round(rng.random((h, w)) * 100) / 100  # exactly on thresholds
        assert L.image_ap(pred, gt) == L.image_ap_reference(pred, gt)


def test_uint8_equals_float_of_the_png_values():
    rng = np.random.default_rng(4)
    pred = rng.integers(0, 256, (30, 40)).astype(np.uint8)
    gt = rng.random((30, 40)) < 0.3
    assert L.image_ap(pred, gt) == L.image_ap(pred / 255, gt)


def test_evaluate_files_mean_over_images_and_classes(tmp_path):
    h, w = 12, 16
    labels, keys = [], []
    rng = np.random.default_rng(7)
    for i in range(3):
        lab = np.zeros((h, w), np.uint8)
        lab[:, 2:4], lab[:, 6:8], lab[:, 10:12] = 1, 2, 3
        if i == 2:
            lab[:, 14:16] = 4  # r1 present only in the last image
        probs = rng.random((5, h, w))
        for c in range(5):
            probs[c][lab == c] += 1.0
        probs /= probs.sum(0, keepdims=True)
        key = f"rec{i}/{1419287247 + i}_0942030000.json"
        W.write_llamas_probs(tmp_path, key, probs)
        labels.append(lab)
        keys.append(key)
    res = L.evaluate(tmp_path, list(zip(keys, labels)), workers=2)
    expect = np.zeros(5)
    for key, lab in zip(keys, labels):
        for c in range(5):
            png = cv2.imread(str(tmp_path / f"{key}_{c}.png"), cv2.IMREAD_GRAYSCALE)
            expect[c] += L.image_ap_reference(png, lab == c) / 3
    assert res["images"] == 3
    assert res["ap"] == pytest.approx(dict(zip(L.LANE_CLASSES, expect[1:])))
    assert res["map"] == pytest.approx(expect[1:].mean())
    assert res["ap_background"] == pytest.approx(expect[0])
    assert res["ap"]["r1"] < 0.34  # absent in two of three images: AP 0 there


def test_errors(tmp_path):
    lab = np.zeros((4, 4), np.uint8)
    W.write_llamas_probs(tmp_path, "r/a.json", np.zeros((5, 4, 4)))
    (tmp_path / "r/a.json_3.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"a\.json_3\.png"):
        L.evaluate(tmp_path, [("r/a.json", lab)])
    W.write_llamas_probs(tmp_path, "r/b.json", np.zeros((5, 4, 5)))
    with pytest.raises(ValueError, match="size mismatch for r/b.json"):
        L.evaluate(tmp_path, [("r/b.json", lab)])
    with pytest.raises(ValueError, match="empty"):
        L.evaluate(tmp_path, [])
    with pytest.raises(ValueError, match="NaN"):
        L.image_ap(np.full((2, 2), np.nan), np.ones((2, 2), bool))


# ----------------------------------------------------------------------------- inputs, evaluator, files
def test_integer_label_maps_mean_their_non_zero_pixels():
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 256, (9, 11)).astype(np.uint8)
    target = rng.random((9, 11)) < 0.4
    want = L.image_ap_reference(pred, target)
    for dtype in (np.uint8, np.int64, np.int32):
        lab = np.where(target, 3, 0).astype(dtype)  # any non-zero value is the target
        assert L.image_ap(pred, lab) == want
        assert L.image_ap(pred / 255, lab) == want
    assert L.image_ap(pred.astype(np.float32) / 255, target) == L.image_ap_reference(pred.astype(np.float32) / 255,
                                                                                      target)


def test_threshold_counts_by_hand():
    # values 255, 128 (0.502), 0 on target pixels; 128 on a non-target pixel
    pred = np.array([[255, 128, 0, 128]], np.uint8)
    gt = np.array([[1, 1, 1, 0]], bool)
    tp, fp = L.threshold_counts(pred, gt)
    # t = 1.00 (i = 0): only 255; t = 0.50 (i = 50): also both 128s; t = 0.51 (i = 49): 128/255 = 0.502 < 0.51
    assert (tp[0], fp[0]) == (1, 0) and (tp[49], fp[49]) == (1, 0) and (tp[50], fp[50]) == (2, 1)
    assert (tp[100], fp[100]) == (3, 1)  # t = 0: everything is positive
    assert np.array_equal(L.threshold_counts(pred / 255, gt)[0], tp)
    with pytest.raises(ValueError, match=r"size mismatch: prediction \(1, 4\) vs ground truth \(1, 3\)"):
        L.threshold_counts(pred, gt[:, :3])


def test_joint_histogram_path_equals_the_per_class_loop():
    """image_aps takes one joint (value, label) histogram per class for uint8 maps and a 0..4 label: the same
    APs, bit for bit, as the official per-threshold loop on ``label == c``; a label with other values (255) takes
    the per-class path, where those pixels are negatives of every class."""
    rng = np.random.default_rng(11)
    lab = rng.integers(0, 5, (37, 53)).astype(np.uint8)
    lab[:, :9] = 0
    probs = [np.clip(rng.normal(60 + 40 * (lab == c), 50), 0, 255).astype(np.uint8) for c in range(5)]
    probs[4][lab == 4] = 255
    joint = L.LlamasEvaluator().image_aps(probs, lab)
    want = [L.image_ap_reference(p, lab == c) for c, p in enumerate(probs)]
    assert list(joint) == want and len(set(want)) == 5
    lab[3:6] = 255
    assert list(L.LlamasEvaluator().image_aps(probs, lab)) == [L.image_ap_reference(p, lab == c)
                                                                for c, p in enumerate(probs)]


def test_evaluator_result_and_errors():
    ev = L.LlamasEvaluator()
    with pytest.raises(ValueError, match=r"^no images were evaluated \(empty list\?\)$"):
        ev.result()
    with pytest.raises(ValueError, match=r"^no LLAMAS labels to evaluate \(empty list\)$"):
        L.evaluate("anywhere", [])
    with pytest.raises(ValueError, match="^prediction contains NaN$"):
        L.image_ap(np.array([[0.5, np.nan]]), np.ones((1, 2), bool))
    lab = np.array([[0, 1], [2, 3]])  # r1 (4) absent: AP 0 (official quirk)
    probs = [np.where(lab == c, 255, 0).astype(np.uint8) for c in range(5)]
    ev.update(probs, lab)
    probs[2] = np.zeros_like(probs[2])  # l0 missed in the second image
    ev.update(probs, lab)
    res = ev.result()
    assert res["images"] == 2 and res["ap"] == {"l1": 1.0, "l0": 0.5, "r0": 1.0, "r1": 0.0}
    assert res["map"] == pytest.approx((1 + 0.5 + 1 + 0) / 4) and res["ap_background"] == 1.0
    with pytest.raises(ValueError, match="^image: expected 5 class maps, got 4$"):
        ev.update(probs[:4], lab)
    with pytest.raises(ValueError, match="^img3: expected 5 class maps, got 4$"):
        ev.update(probs[:4], lab, name="img3")
    with pytest.raises(ValueError, match="size mismatch for img3 class l0: prediction \\(1, 2\\) vs label \\(2, 2\\)"):
        ev.update(probs[:2] + [np.zeros((1, 2), np.uint8)] + probs[3:], lab, name="img3")
    with pytest.raises(ValueError, match="^size mismatch for image class r1: prediction"):
        ev.update(probs[:4] + [np.zeros((1, 2), np.uint8)], lab)
    assert ev.images == 2


def test_files_labels_from_json_and_bad_pngs(tmp_path):
    from intrakd.data.llamas import multiclass_label
    from intrakd.data.synth import generate

    generate("llamas", tmp_path / "ds", num=2, seed=0, size=(96, 54))
    jsons = sorted((tmp_path / "ds/labels").rglob("*.json"))
    keys = [f"{j.parent.name}/{j.name}" for j in jsons]
    assert L.prediction_paths(tmp_path, keys[0]) == [tmp_path / f"{keys[0]}_{c}.png" for c in range(5)]
    rng = np.random.default_rng(5)
    labels = [multiclass_label(j) for j in jsons]
    for key, lab in zip(keys, labels):
        W.write_llamas_probs(tmp_path / "pred", key, rng.random((5, *lab.shape)))
    by_array = L.evaluate(tmp_path / "pred", list(zip(keys, labels)), workers=1)
    # labels given as JSON paths are drawn by the official procedure, in one chunk or in two workers
    for workers in (1, 2):
        assert L.evaluate(tmp_path / "pred", list(zip(keys, jsons)), workers=workers) == by_array
    assert L.evaluate(str(tmp_path / "pred"), [(keys[0], str(jsons[0]))], workers=1)["images"] == 1
    expect = np.mean([[L.image_ap(png, lab == c) for c, png in enumerate(L.read_prediction(tmp_path / "pred", k))]
                      for k, lab in zip(keys, labels)], axis=0)
    assert by_array["map"] == pytest.approx(expect[1:].mean()) and by_array["ap_background"] == pytest.approx(expect[0])
    (tmp_path / "pred" / f"{keys[0]}_2.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot decode prediction PNG .*_2\.png"):
        L.read_prediction(tmp_path / "pred", keys[0])
