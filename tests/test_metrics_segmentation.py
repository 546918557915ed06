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


# ----------------------------------------------------------------------------- evaluator state, inputs and files
def _marks(shape=(6, 8)):
    """GT: s_w_d (200) on columns 0..2, void (0) elsewhere."""
    gt = np.zeros(shape, np.uint8)
    gt[:, :3] = 200
    return gt


def test_reset_forgets_previous_images():
    ev = seg.SegEvaluator("apolloscape")
    gt = _marks()
    ev.update(np.zeros_like(gt), gt)  # s_w_d missed entirely
    ev.reset()
    assert ev.images == 0 and not ev.confusion.any()
    ev.update(gt, gt)
    assert ev.result()["per_class"]["s_w_d"] == 1.0 and ev.result()["images"] == 1


def test_integer_maps_of_any_dtype_count_as_uint8():
    gt = _marks()
    pred = gt.copy()
    pred[0, :] = 204  # 8 pixels s_y_d: 3 from s_w_d, 5 from void
    want = seg.evaluate_arrays([(pred, gt)], "apolloscape")
    # hand count: s_w_d TP 15 FN 3 FP 0; void TP 25 FN 5; s_y_d TP 0 FP 8
    assert want["per_class"]["s_w_d"] == pytest.approx(15 / 18) and want["per_class"]["void"] == pytest.approx(25 / 30)
    assert want["per_class"]["s_y_d"] == 0.0
    for dtype in (np.int64, np.int32, np.uint16):
        assert seg.evaluate_arrays([(pred.astype(dtype), gt.astype(dtype))], "apolloscape") == want
    assert seg.evaluate_arrays([(pred.astype(np.int64), gt)], "apolloscape") == want  # mixed dtypes


def test_bad_ids_name_the_side_and_the_value():
    ev = seg.SegEvaluator("apolloscape")
    ok = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match="prediction of img contains label ID 100, not in the apolloscape table"):
        ev.update(np.full((2, 2), 100, np.uint8), ok, name="img")
    with pytest.raises(ValueError, match="ground truth of img contains label ID 3, not in the apolloscape table"):
        ev.update(ok, np.full((2, 2), 3, np.uint8), name="img")
    with pytest.raises(ValueError, match="prediction of image contains label ID -1"):
        ev.update(np.array([[0, -1]]), np.zeros((1, 2), int))
    with pytest.raises(ValueError, match="ground truth of image contains label ID 256"):
        ev.update(np.zeros((1, 2), int), np.array([[0, 256]]))
    with pytest.raises(ValueError, match="ground truth of image contains label ID -5"):
        ev.update(np.zeros((1, 2), int), np.array([[300, -5]]))  # the low end is named when it is negative
    with pytest.raises(ValueError, match="prediction of image contains label ID 255, not in the cityscapes table"):
        seg.SegEvaluator("cityscapes").update(np.array([[7, 255]], np.uint8), np.array([[7, 7]], np.uint8))
    with pytest.raises(ValueError, match="img7: expected single-channel label maps, got shape"):
        ev.update(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), name="img7")
    assert ev.images == 0 and not ev.confusion.any()  # nothing was counted


def test_exclude_void_only_changes_the_apolloscape_mean():
    gt = _marks()
    pred = np.full_like(gt, 200)  # s_w_d IoU 18/48, void IoU 0
    both = seg.evaluate_arrays([(pred, gt)], "apolloscape")
    marks = seg.evaluate_arrays([(pred, gt)], "apolloscape", exclude_void=True)
    assert both["miou"] == pytest.approx(18 / 48 / 2) and marks["miou"] == pytest.approx(18 / 48)
    assert list(both["per_class"])[0] == "void" and "void" not in marks["per_class"]
    assert len(marks["per_class"]) == len(both["per_class"]) - 1
    c_gt = np.array([[7, 8]], np.uint8)  # Cityscapes has no void class to leave out
    c = [seg.evaluate_arrays([(c_gt, c_gt)], "cityscapes", exclude_void=x) for x in (False, True)]
    assert c[0] == c[1] and len(c[0]["per_class"]) == 19


def test_read_ids_decodes_grey_palette_and_16_bit_pngs(tmp_path, monkeypatch):
    ids = np.array([[0, 200, 255], [213, 7, 1]], np.uint8)
    Image.fromarray(ids).save(tmp_path / "grey.png")
    pal = Image.fromarray(ids).convert("P")  # indices = the IDs
    pal.putpalette([(7 * i) % 256 for i in range(768)])  # colours unrelated to the indices
    pal.save(tmp_path / "pal.png")
    Image.fromarray(ids.astype(np.uint16) * 200).save(tmp_path / "deep.png")  # 16-bit greyscale
    assert np.array_equal(seg.read_ids(tmp_path / "pal.png"), ids)  # palette indices, not colours
    assert seg.read_ids(tmp_path / "deep.png").tolist() == (ids.astype(np.int64) * 200).tolist()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png: expected a single-channel label PNG, got mode RGB"):
        seg.read_ids(tmp_path / "rgb.png")
    with pytest.raises(FileNotFoundError, match="label image not found: .*nothere.png"):
        seg.read_ids(tmp_path / "nothere.png")

    # 8-bit greyscale PNGs (every label and prediction file) are decoded without PIL
    def no_pil(*a, **k):
        raise AssertionError("PIL used for an 8-bit greyscale PNG")

    monkeypatch.setattr(Image, "open", no_pil)
    assert np.array_equal(seg.read_ids(tmp_path / "grey.png"), ids)


def test_list_files_and_pairing(tmp_path):
    gt_root, pred_root = tmp_path / "gt", tmp_path / "pred"
    (gt_root / "Camera 5").mkdir(parents=True)
    pred_root.mkdir()
    gt = _marks()
    Image.fromarray(gt).save(gt_root / "Camera 5/a_bin.png")
    Image.fromarray(np.full_like(gt, 200)).save(pred_root / "a.png")
    (tmp_path / "gt.csv").write_text("\n  Camera 5/a_bin.png  \n\n")  # blank lines skipped, spaces inside kept
    (tmp_path / "pred.csv").write_text("a.png\n")
    assert seg.read_list(tmp_path / "gt.csv") == ["Camera 5/a_bin.png"]
    res = seg.evaluate_apolloscape(gt_root, pred_root, tmp_path / "gt.csv", tmp_path / "pred.csv")
    # pred = all s_w_d against the GT (not the other way round): s_w_d 18/48, void 0/30
    assert res["per_class"]["s_w_d"] == pytest.approx(18 / 48) and res["per_class"]["void"] == 0.0
    res = seg.evaluate_apolloscape(gt_root, pred_root, tmp_path / "gt.csv", tmp_path / "pred.csv", exclude_void=True)
    assert res["miou"] == pytest.approx(18 / 48)
    (tmp_path / "two.csv").write_text("a.png\na.png\n")
    with pytest.raises(ValueError, match=r"list lengths differ: .*gt.csv has 1 lines, .*two.csv has 2"):
        seg.evaluate_apolloscape(gt_root, pred_root, tmp_path / "gt.csv", tmp_path / "two.csv")
    with pytest.raises(FileNotFoundError, match="list file not found: .*none.csv"):
        seg.read_list(tmp_path / "none.csv")
    with pytest.raises(ValueError, match="empty list of image pairs"):
        seg.evaluate_pairs([], "apolloscape")


def test_chunks_of_several_pairs_sum_like_one_evaluator(tmp_path):
    rng = np.random.default_rng(8)
    ids = np.array([0, 200, 204, 209, 213, 255], np.uint8)
    pairs, arrays = [], []
    for i in range(5):
        g = rng.choice(ids, size=(12, 10))
        p = np.where(rng.random(g.shape) < 0.5, g, rng.choice(ids, size=g.shape))
        pairs.append((_save(tmp_path / f"p{i}.png", p), _save(tmp_path / f"g{i}.png", g)))
        arrays.append((p, g))
    want = seg.evaluate_arrays(arrays, "apolloscape")
    assert want["images"] == 5
    for workers in (1, 2):  # one chunk of 5 pairs in-process; chunks in two worker processes
        assert seg.evaluate_pairs(pairs, "apolloscape", workers=workers) == want


def test_cityscapes_pairs_by_frame_name(tmp_path):
    gt_root, pred_root = tmp_path / "gt", tmp_path / "pred"
    for city, frame in (("aachen", "000000_000019"), ("bonn", "000001_000019")):
        (gt_root / city).mkdir(parents=True, exist_ok=True)
        _save(gt_root / city / f"{city}_{frame}_gtFine_labelIds.png", np.full((2, 2), 7))
        (pred_root / "x").mkdir(parents=True, exist_ok=True)
        _save(pred_root / "x" / f"{city}_{frame}_leftImg8bit_pred.png", np.full((2, 2), 7))
    _save(pred_root / "notes.png", np.zeros((2, 2)))  # fewer than three name parts: not a prediction
    pairs = seg.cityscapes_pairs(gt_root, pred_root)
    assert [(p.name, g.name) for p, g in pairs] == [
        ("aachen_000000_000019_leftImg8bit_pred.png", "aachen_000000_000019_gtFine_labelIds.png"),
        ("bonn_000001_000019_leftImg8bit_pred.png", "bonn_000001_000019_gtFine_labelIds.png")]
    assert seg.evaluate_cityscapes(gt_root, pred_root, workers=1)["per_class"]["road"] == 1.0
    _save(pred_root / "bonn_000001_000019_second.png", np.full((2, 2), 7))
    with pytest.raises(ValueError, match="2 predictions named bonn_000001_000019"):
        seg.cityscapes_pairs(gt_root, pred_root)
    (pred_root / "bonn_000001_000019_second.png").unlink()
    (pred_root / "x/bonn_000001_000019_leftImg8bit_pred.png").unlink()
    _save(pred_root / "bonn_000001_000019.png", np.full((2, 2), 7))  # exactly {city}_{seq}_{frame}.png
    assert seg.cityscapes_pairs(gt_root, pred_root)[1][0].name == "bonn_000001_000019.png"
    (pred_root / "bonn_000001_000019.png").unlink()
    with pytest.raises(FileNotFoundError, match="no prediction named bonn_000001_000019\\*.png under"):
        seg.cityscapes_pairs(gt_root, pred_root)
    with pytest.raises(FileNotFoundError, match="ground-truth root not found"):
        seg.cityscapes_pairs(tmp_path / "none", pred_root)
    with pytest.raises(FileNotFoundError, match="prediction root not found"):
        seg.cityscapes_pairs(gt_root, tmp_path / "none")
    with pytest.raises(ValueError, match="no \\*_gtFine_labelIds.png files under"):
        seg.cityscapes_pairs(pred_root, pred_root)


def test_read_ids_low_bit_depths_and_int32_images(tmp_path):
    ids = np.arange(12, dtype=np.uint8).reshape(3, 4)
    Image.fromarray(ids).save(tmp_path / "grey4.png", bits=4)  # 4-bit greyscale PNG: PIL mode L
    Image.fromarray(ids).convert("P").save(tmp_path / "pal4.png", bits=4)  # 4-bit palette PNG
    Image.fromarray(ids % 2 == 1).save(tmp_path / "bits.png")  # 1-bit PNG: PIL mode 1
    Image.fromarray(ids.astype(np.int32) * 1000).save(tmp_path / "wide.tif")  # 32-bit integers: PIL mode I
    # what PIL (the official tools' decoder) gives: 4-bit grey samples scaled to 8 bits (x17), palette indices as is
    assert seg.read_ids(tmp_path / "grey4.png").tolist() == np.asarray(Image.open(tmp_path / "grey4.png")).tolist() \
        == (ids * 17).tolist()
    assert seg.read_ids(tmp_path / "pal4.png").tolist() == ids.tolist()
    assert seg.read_ids(tmp_path / "bits.png").tolist() == (ids % 2).tolist()
    assert seg.read_ids(tmp_path / "wide.tif").tolist() == (ids.astype(np.int64) * 1000).tolist()


def test_file_errors_name_the_file_and_the_sizes(tmp_path):
    _save(tmp_path / "a.png", np.zeros((4, 6)))  # 6 wide, 4 high
    _save(tmp_path / "b.png", np.zeros((5, 6)))
    _save(tmp_path / "bad.png", np.full((4, 6), 7))
    with pytest.raises(ValueError, match=r"^size mismatch: prediction .*a\.png is \(6, 4\) \(WxH\) but ground truth "
                                         r".*b\.png is \(6, 5\)$"):
        seg.evaluate_pairs([(tmp_path / "a.png", tmp_path / "b.png")], "apolloscape", workers=1)
    with pytest.raises(ValueError, match=r"^prediction of .*bad\.png contains label ID 7, not in the apolloscape table$"):
        seg.evaluate_pairs([(tmp_path / "a.png", tmp_path / "a.png"), (tmp_path / "bad.png", tmp_path / "a.png")],
                           "apolloscape", workers=1)
    ok = np.zeros((2, 2), np.uint8)
    with pytest.raises(ValueError, match="^prediction of image 1 contains label ID 7"):
        seg.evaluate_arrays([(ok, ok), (np.full((2, 2), 7, np.uint8), ok)], "apolloscape")
    gt = _marks()
    res = seg.evaluate_arrays([(np.full_like(gt, 200), gt)], "apolloscape", exclude_void=True)
    assert res["miou"] == pytest.approx(18 / 48) and "void" not in res["per_class"]


def test_confusion_counts_and_unnamed_messages():
    ev = seg.SegEvaluator("apolloscape")
    gt = _marks((2, 4))  # row-major: s_w_d at columns 0..2, void at column 3
    pred = np.array([[200, 204, 0, 0], [200, 200, 200, 255]], np.uint8)
    ev.update(pred.astype(np.int64), gt.astype(np.int64))  # 255 (ignored) is a valid ID for integer maps too
    # confusion[gt ID, predicted ID] = pixel count
    assert ev.confusion[200, 200] == 4 and ev.confusion[200, 204] == 1 and ev.confusion[200, 0] == 1
    assert ev.confusion[0, 0] == 1 and ev.confusion[0, 255] == 1 and ev.confusion.sum() == 8
    with pytest.raises(ValueError, match=r"^size mismatch for image: prediction \(2, 4\) vs ground truth \(2, 3\)$"):
        ev.update(pred, gt[:, :3])
    with pytest.raises(ValueError, match=r"^image: expected single-channel label maps, got shape \(2, 2, 2\)$"):
        ev.update(np.zeros((2, 2, 2), np.uint8), np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="^prediction of img9 contains label ID 100, not in the apolloscape table$"):
        ev.update(np.full((2, 2), 100, np.int64), np.zeros((2, 2), np.int64), name="img9")
    with pytest.raises(ValueError, match=r"^no images were evaluated \(empty list\?\)$"):
        seg.SegEvaluator("cityscapes").result()
    with pytest.raises(ValueError, match="^empty list of image pairs: nothing to evaluate$"):
        seg.evaluate_pairs([], "apolloscape")


def test_counts_stay_exact_beyond_float32_histograms():
    # 4097 x 4097 = 16,785,409 pixels > 2**24: a float32 histogram would round the (void, void) count to 16,785,408
    n = 4097
    gt = np.zeros((n, n), np.uint8)
    pred = np.zeros((n, n), np.uint8)
    gt[0, :5] = 200
    pred[0, :3] = 204
    pred[1, 0] = 201
    counts = seg.SegEvaluator("apolloscape").pair_counts(pred, gt).reshape(256, 256)
    assert counts[0, 0] == n * n - 6 and counts[200, 204] == 3 and counts[200, 0] == 2 and counts[0, 201] == 1
    assert counts.sum() == n * n


def test_default_evaluator_is_apolloscape_with_void_averaged():
    ev = seg.SegEvaluator()
    gt = _marks()
    ev.update(np.full_like(gt, 200), gt)  # s_w_d 18/48, void 0/30, averaged as the released script does
    res = ev.result()
    assert ev.table == "apolloscape" and list(res["per_class"])[:2] == ["void", "s_w_d"]
    assert res["miou"] == pytest.approx(18 / 48 / 2)
    assert ev.confusion.dtype.kind == "i"  # pooled pixel counts stay exact integers
