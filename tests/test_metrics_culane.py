"""CULane F1: rasterisation, matching and counting as the SCNN C++ evaluator; hand-built cases."""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import pytest
from scipy.interpolate import CubicSpline
from scipy.optimize import linear_sum_assignment

from intrakd.metrics import culane as C

CLIP = "culane/driver_23_30frame/05151649_0422.MP4"
OUTS = "culane/evaluator_outputs"


def vertical(x, y0=590, y1=300, step=10):
    ys = np.arange(y0, y1 - 1, -step, dtype=np.float32)
    return np.stack([np.full_like(ys, x), ys], 1)


def test_read_lines_every_text_line_is_a_lane(tmp_path):
    p = tmp_path / "a.lines.txt"
    p.write_text("1 590 2.5 580 \n\n10 20 30\n-14.0619 510 5 x 7 8\n")
    lanes = C.read_lines(p)
    assert len(lanes) == 4
    assert lanes[0].dtype == np.float32 and lanes[0].tolist() == [[1, 590], [2.5, 580]]
    assert lanes[1].shape == (0, 2)  # blank line = a lane with no points
    assert lanes[2].tolist() == [[10, 20]]  # dangling x dropped
    assert lanes[3].tolist() == [[np.float32(-14.0619), 510]]  # reading stops at a non-number
    C.write_lines(p, lanes[:1] + [np.array([[1 / 3, 2]])])
    assert p.read_text().splitlines()[0] == "1 590 2.5 580 "
    assert C.read_lines(p)[1][0, 0] == np.float32(1 / 3)


def test_spline_matches_scipy_natural_chord_length():
    pts = np.array([[100, 590], [130, 540], [190, 470], [300, 400], [330, 380]], np.float32)
    s = C.spline_samples(pts)
    assert s.dtype == np.float32 and len(s) == 50 * 4 + 1
    p = pts.astype(np.float64)
    knots = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
    t = np.concatenate([np.linspace(a, b, 50, endpoint=False) for a, b in zip(knots[:-1], knots[1:])] + [knots[-1:]])
    ref = CubicSpline(knots, p, bc_type="natural")(t)
    np.testing.assert_allclose(s, ref, atol=1e-3)
    assert (s[::50] == pts).all()


def test_cropped_mask_equals_full_canvas_segment_loop(real_samples):
    rng = np.random.default_rng(0)
    lanes = C.read_lines(real_samples / CLIP / "00000.lines.txt")
    for _ in range(40):
        n = int(rng.integers(2, 7))
        lanes.append(np.stack([rng.uniform(-300, 1900, n), np.sort(rng.uniform(-80, 680, n))[::-1]], 1))
    for lane in lanes:
        full = C.full_mask(lane)
        m = C.rasterise(lane)
        got = np.zeros_like(full)
        got[m.y0 : m.y0 + m.mask.shape[0], m.x0 : m.x0 + m.mask.shape[1]] = m.mask
        assert (got == full).all()


def test_rounding_is_half_to_even():
    # 2.5 -> 2 and 3.5 -> 4 (cvRound), truncation would give 2 and 3.
    ipts = C.lane_pixels(np.array([[2.5, 10.5], [3.5, 40.5]], np.float32))
    assert ipts.tolist() == [[2, 10], [4, 40]]
    m = C.rasterise(np.array([[800.5, 100.5], [800.5, 300.5]], np.float32), width=1)
    assert m.mask[:, 800 - m.x0].any() and not m.mask[:, 801 - m.x0].any()


def test_iou_of_parallel_vertical_lanes():
    a, b = vertical(400), vertical(410)
    m = C.iou_matrix([a], [b])
    # two 30-px wide vertical bands 10 px apart, round caps; compare with a direct drawing
    ca = np.zeros((590, 1640), np.uint8)
    cb = np.zeros_like(ca)
    cv2.line(ca, (400, 590), (400, 300), 1, 30)
    cv2.line(cb, (410, 590), (410, 300), 1, 30)
    ref = np.sum(ca & cb) / np.sum(ca | cb)
    assert m[0, 0] == pytest.approx(ref) and 0.4 < ref < 0.6


def test_hand_built_counts():
    g = [vertical(200), vertical(600), vertical(1000)]
    assert C.image_counts(g, [vertical(202), vertical(605)]) == (2, 0, 1)
    assert C.image_counts(g, [vertical(260)]) == (0, 1, 3)  # 60 px away: no overlap
    assert C.image_counts([], [vertical(1)]) == (0, 1, 0)
    assert C.image_counts(g, []) == (0, 0, 3)
    # a one-point lane and an empty lane still count (as FP / FN), never match
    assert C.image_counts(g + [np.zeros((0, 2), np.float32)], [vertical(200), np.array([[5, 5]], np.float32)]) \
        == (1, 1, 3)
    # a lane fully outside the canvas has an empty mask: IoU 0, not NaN
    assert C.image_counts([vertical(-500)], [vertical(-500)]) == (0, 1, 1)
    # threshold is strict and configurable
    iou = C.iou_matrix([vertical(400)], [vertical(410)])[0, 0]
    assert C.image_counts([vertical(400)], [vertical(410)], iou=iou) == (0, 1, 1)
    assert C.image_counts([vertical(400)], [vertical(410)], iou=iou - 1e-9) == (1, 0, 0)
    # a wider line makes the 10 px offset count
    assert C.image_counts([vertical(400)], [vertical(420)])[0] == 0
    assert C.image_counts([vertical(400)], [vertical(420)], width=80)[0] == 1


def test_duplicate_points_are_removed_not_nan():
    lane = np.array([[100, 590], [100, 590], [120, 500], [140, 400]], np.float32)
    assert C.image_counts([lane], [lane]) == (1, 0, 0)


def test_matching_maximises_iou_sum_like_brute_force():
    rng = np.random.default_rng(2)
    for trial in range(30):  # spread lanes (IoUs in distinct rows/columns) and crowded ones (the solver's case)
        lo, hi = (100, 1500) if trial % 2 else (400, 460)
        g = [vertical(x) for x in rng.uniform(lo, hi, rng.integers(1, 5))]
        d = [vertical(x) for x in rng.uniform(lo, hi, rng.integers(1, 5))]
        m = C.iou_matrix(g, d)
        best = max(
            (sum(m[i, j] for i, j in zip(rows, perm)), sum(m[i, j] > 0.5 for i, j in zip(rows, perm)))
            for k in [min(len(g), len(d))]
            for rows in itertools.combinations(range(len(g)), k)
            for perm in itertools.permutations(range(len(d)), k)
        )
        r, c = linear_sum_assignment(-m)
        assert m[r, c].sum() == pytest.approx(best[0])
        assert C.image_counts(g, d)[0] == best[1]


@pytest.mark.real_samples
def test_evaluate_real_annotations(real_samples, tmp_path):
    root = real_samples / "culane"
    frames = ["00000", "00030", "00060", "00090", "00120"]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"/driver_23_30frame/05151649_0422.MP4/{f}.jpg\n" for f in frames))
    pred = tmp_path / "pred"
    for f in frames[:4]:  # frame 00120 has no prediction file: all its GT lanes are FN
        lanes = C.read_lines(root / "driver_23_30frame/05151649_0422.MP4" / f"{f}.lines.txt")
        lanes = [lane + np.float32([3, 0]) for lane in lanes[:3]] + [vertical(1500, 590, 400)]
        C.write_lines(pred / "driver_23_30frame/05151649_0422.MP4" / f"{f}.lines.txt", lanes)
    res = C.evaluate(root, pred, lst, per_image=True)
    assert (res["tp"], res["fp"], res["fn"]) == (12, 4, 8)
    assert res["f1"] == pytest.approx(2 * 12 / (2 * 12 + 4 + 8))
    assert res["per_image"]["driver_23_30frame/05151649_0422.MP4/00120.jpg"] == {"tp": 0, "fp": 0, "fn": 4}
    same = C.evaluate(root, root, lst)
    assert (same["tp"], same["fp"], same["fn"], same["f1"]) == (20, 0, 0, 1.0)


def test_evaluate_errors(tmp_path):
    (tmp_path / "l.txt").write_text("\n")
    with pytest.raises(ValueError, match="l.txt is empty"):
        C.evaluate(tmp_path, tmp_path, tmp_path / "l.txt")
    (tmp_path / "l.txt").write_text("a/b.jpg\n")
    with pytest.raises(FileNotFoundError, match="b.lines.txt"):
        C.evaluate(tmp_path, tmp_path, tmp_path / "l.txt")
    with pytest.raises(FileNotFoundError, match="nolist"):
        C.evaluate(tmp_path, tmp_path, tmp_path / "nolist.txt")


@pytest.mark.real_samples
def test_official_output_files(real_samples, tmp_path):
    d = real_samples / OUTS
    total = C.read_official_output(d / "vgg_SCNN_DULR_w9_iou0.5.txt")
    assert (total["tp"], total["fp"], total["fn"]) == (77540, 27317, 27346)
    assert total["f1"] == pytest.approx(0.739381, abs=5e-7)
    split = C.read_official_output(d / "vgg_SCNN_DULR_w9_iou0.5_split.txt")
    assert len(split["blocks"]) == 9 and (split["tp"], split["fp"], split["fn"]) == (77540, 27317, 27346)
    for f in sorted(d.glob("out*.txt")):
        b = C.read_official_output(f)["blocks"][0]
        # our arithmetic reproduces what the C++ counter printed, -1 conventions included
        ours = C.official_scores(b["tp"], b["fp"], b["fn"])
        for k in ("precision", "recall", "f1"):
            assert ours[k] == pytest.approx(b[k], abs=5e-7), (f.name, k)
        # and writing it back gives the same bytes
        C.write_official_output(tmp_path / f.name, b["tp"], b["fp"], b["fn"], file_label=b["file"])
        assert (tmp_path / f.name).read_text() == f.read_text()
    cross = C.read_official_output(d / "out7_cross.txt")
    assert cross["blocks"][0]["recall"] == -1 and cross["f1"] == 0.0
    (tmp_path / "bad.txt").write_text("file: x\ntp: 1 fp: 2\n")
    with pytest.raises(ValueError, match="bad.txt"):
        C.read_official_output(tmp_path / "bad.txt")


def test_prob2lines_hand_built():
    h, w = 208, 976
    maps = np.zeros((4, h, w), np.float32)
    maps[1, :, 500:509] = 0.9  # a vertical lane at columns 500..508; blurred maximum at column 504
    maps[2, :, 100:109] = 0.2  # too weak (<= 0.3 after blur)
    maps[3, :, 700:709] = 0.9  # strong but its existence is 0.4
    lanes = C.prob2lines(maps, [0.9, 0.9, 0.9, 0.4])
    assert len(lanes) == 1
    lane = lanes[0]
    assert lane[:, 1].tolist() == [589 - 20 * i for i in range(18)]
    assert (lane[:, 0] == round(505 * 1640 / 976) - 1).all()
    u8 = C.prob2lines((maps * 255).astype(np.uint8), [0.9, 0.9, 0.9, 0.4])
    assert np.array_equal(u8[0], lane)
    with pytest.raises(ValueError, match="exist has 3 entries"):
        C.prob2lines(maps, [1, 1, 1])


def test_enumerated_tp_agrees_with_scipy_and_declines_ambiguous_ties():
    rng = np.random.default_rng(7)
    for _ in range(200):  # random sparse IoU matrices, both orientations, up to the enumeration limit
        shape = tuple(rng.integers(1, 7, 2))
        m = np.where(rng.random(shape) < 0.5, rng.random(shape), 0.0)
        r, c = linear_sum_assignment(m, maximize=True)
        assert C.enumerated_tp(m, 0.5) == np.count_nonzero(m[r, c] > 0.5)
    # equal sums (0.6 + 0.4 = 0.5 + 0.5) with different TP: left to the solver
    assert C.enumerated_tp(np.array([[0.6, 0.5], [0.5, 0.4]]), 0.5) is None
    assert C.enumerated_tp(np.array([[0.6, 0.6], [0.6, 0.6]]), 0.5) == 2  # ties, same TP
    assert C.enumerated_tp(np.full((8, 8), 0.7), 0.5) is None  # 8! assignments > MAX_ENUMERATED
    assert C.enumerated_tp(np.full((2, 3), 0.7), 0.5) == 2  # wide: 2 rows into 3 columns
    assert C.enumerated_tp(np.full((3, 2), 0.7), 0.5) == 2


# ----------------------------------------------------------------------------- files, lists, splits, prob2lines
def test_parse_lines_stops_at_non_finite_and_keeps_line_structure():
    assert C.parse_lines("") == []
    assert [len(x) for x in C.parse_lines("\n")] == [0]  # one empty lane
    assert [len(x) for x in C.parse_lines("1 2 3 4")] == [2]  # no final newline: still one lane
    assert [len(x) for x in C.parse_lines("1 2\n\n")] == [1, 0]
    assert C.parse_lines("5 6 nan 7 8 9\n")[0].tolist() == [[5, 6]]  # ``>>`` fails on nan / inf
    assert C.parse_lines("5 6 7 inf\n")[0].tolist() == [[5, 6]]
    lanes = C.parse_lines("1e3 2.5\n")
    assert lanes[0].dtype == np.float32 and lanes[0].shape == (1, 2) and lanes[0].tolist() == [[1000, 2.5]]


def test_write_lines_format_and_float32_round_trip(tmp_path):
    third = np.float32(1 / 3)
    path = tmp_path / "deep/er/x.lines.txt"  # folders are created
    C.write_lines(path, [np.array([[300, 590], [third, -14.5]]), np.zeros((0, 2))])
    assert path.read_text() == "300 590 0.333333343 -14.5 \n\n"  # integers bare, others 9 significant digits
    back = C.read_lines(path)
    assert back[0][1, 0] == third and back[1].shape == (0, 2)
    C.write_lines(path, [np.array([1e8 + 3, 5.0])])  # float32(100000003) = 100000000: written as stored
    assert path.read_text() == "100000000 5 \n"


def test_degenerate_lanes_draw_a_dot_or_nothing():
    dot = C.rasterise(np.array([[400, 300]] * 3, np.float32))  # three equal points: one round dot
    canvas = np.zeros((590, 1640), np.uint8)
    cv2.line(canvas, (400, 300), (400, 300), 1, thickness=30)
    full = np.zeros((590, 1640), bool)
    full[dot.y0 : dot.y0 + dot.mask.shape[0], dot.x0 : dot.x0 + dot.mask.shape[1]] = dot.mask
    assert dot.area == int(canvas.sum()) > 600 and np.array_equal(full, canvas.view(bool))
    two = C.lane_pixels(np.array([[10, 20], [10, 20], [30, 40]], np.float32))  # 2 distinct of 3: a segment
    assert two.tolist() == [[10, 20], [30, 40]]
    near = C.lane_pixels(np.array([[10.2, 20], [9.8, 20]], np.float32))  # both round to (10, 20): a dot
    assert near.tolist() == [[10, 20], [10, 20]]
    assert C.lane_pixels(np.array([[1, 2]], np.float32)) is None and C.rasterise(np.zeros((0, 2))) is None
    assert C.iou_matrix([np.zeros((0, 2))], [np.array([[1, 2]], np.float32)]).tolist() == [[0.0]]
    # lanes whose boxes touch but whose pixels do not: IoU 0 from the empty overlap
    assert C.iou_matrix([vertical(100)], [vertical(300)]).tolist() == [[0.0]]


def test_canvas_size_clips_the_masks():
    lane = vertical(1630)  # 30 px wide: columns 1615..1645, the canvas ends at 1639
    m = C.rasterise(lane)
    assert m.x0 + m.mask.shape[1] == 1640 and m.area == int(C.full_mask(lane).sum())
    wide = C.rasterise(lane, size=(1700, 590))
    assert wide.area > m.area and wide.area == int(C.full_mask(lane, size=(1700, 590)).sum())
    low = C.rasterise(vertical(400), size=(1640, 400))  # rows 300..590 on a 400-row canvas
    assert low.y0 + low.mask.shape[0] == 400 and low.area == int(C.full_mask(vertical(400), size=(1640, 400)).sum())
    assert C.full_mask(np.array([[1, 2]], np.float32)).sum() == 0  # fewer than 2 points: nothing drawn
    # IoU on a bigger canvas counts the pixels beyond 1640: the same pair scores differently
    a, b = vertical(1630), vertical(1638)
    assert C.iou_matrix([a], [b], size=(1700, 590))[0, 0] != C.iou_matrix([a], [b])[0, 0]


def test_scores_and_official_conventions():
    assert C.scores(0, 0, 0) == {"tp": 0, "fp": 0, "fn": 0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    s = C.scores(3, 1, 2)
    assert (s["precision"], s["recall"]) == (0.75, 0.6) and s["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert C.scores(0, 4, 2)["f1"] == 0.0
    o = C.official_scores(0, 0, 5)  # no prediction: precision -1 (undefined), recall 0, F 0
    assert (o["precision"], o["recall"], o["f1"]) == (-1.0, 0.0, 0.0)
    o = C.official_scores(0, 0, 0)  # both undefined: F = 2(-1)(-1)/(-2) = -1, as the C++ counter prints
    assert (o["precision"], o["recall"], o["f1"]) == (-1.0, -1.0, -1.0)
    o = C.official_scores(2, 2, 0)
    assert (o["precision"], o["recall"], o["f1"]) == (0.5, 1.0, pytest.approx(2 / 3))
    assert C.format_official(2, 2, 0, "x.txt") == \
        "file: x.txt\ntp: 2 fp: 2 fn: 0\nprecision: 0.5\nrecall: 1\nFmeasure: 0.666667\n\n"


def test_official_output_default_label_and_bad_files(tmp_path):
    out = tmp_path / "new/out.txt"
    C.write_official_output(out, 3, 1, 2)
    assert out.read_text().splitlines()[0] == f"file: {out}"  # the tool prints the output path
    back = C.read_official_output(out)
    assert (back["tp"], back["fp"], back["fn"]) == (3, 1, 2) and back["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert back["blocks"][0]["f1"] == pytest.approx(2 / 3, abs=1e-6) and back["blocks"][0]["file"] == str(out)
    bad = {"orphan.txt": "tp: 1 fp: 2 fn: 3\n",  # numbers before any 'file:' line
           "key.txt": "file: a\nrecall 1\n", "word.txt": "file: a\ntp: one fp: 2 fn: 3\n",
           "short.txt": "file: a\ntp: 1 fp: 2 fn: 3\nprecision: 1\nrecall: 1\n", "empty.txt": "\n"}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=name):
            C.read_official_output(tmp_path / name)
    with pytest.raises(ValueError, match="unexpected line 'recall 1'"):
        C.read_official_output(tmp_path / "key.txt")
    with pytest.raises(ValueError, match="not a complete CULane evaluator output"):
        C.read_official_output(tmp_path / "short.txt")
    with pytest.raises(FileNotFoundError, match="evaluator output file not found"):
        C.read_official_output(tmp_path / "none.txt")


def test_lists_paths_and_splits(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    C.write_lines(gt / "d/a.lines.txt", [vertical(300), vertical(900)])
    C.write_lines(gt / "d/b.lines.txt", [vertical(500)])
    C.write_lines(gt / "d/c.lines.txt", [])
    C.write_lines(pred / "d/a.lines.txt", [vertical(302)])
    C.write_lines(pred / "d/c.lines.txt", [vertical(700)])
    (tmp_path / "l.txt").write_text("/d/a.jpg 1 1 0 0\n\nd/b.PNG\nd/c\n")  # extra columns, blank, .PNG, no suffix
    assert C.read_list(tmp_path / "l.txt") == ["d/a.jpg", "d/b.PNG", "d/c"]
    res = C.evaluate(gt, pred, tmp_path / "l.txt", per_image=True, workers=1)
    assert res["per_image"] == {"d/a.jpg": {"tp": 1, "fp": 0, "fn": 1}, "d/b.PNG": {"tp": 0, "fp": 0, "fn": 1},
                                "d/c": {"tp": 0, "fp": 1, "fn": 0}}
    assert (res["tp"], res["fp"], res["fn"], res["images"]) == (1, 1, 2, 3) and "per_image" not in C.evaluate(
        gt, pred, tmp_path / "l.txt")
    assert C.evaluate(gt, pred, tmp_path / "l.txt", width=80)["tp"] == 1  # options reach the counting
    assert C.evaluate(gt, pred, tmp_path / "l.txt", iou=0.99)["tp"] == 0
    assert C.evaluate(gt, pred, tmp_path / "l.txt", size=(200, 590))["tp"] == 0
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/s1.txt").write_text("d/a.jpg\nd/c.jpg\n")
    (tmp_path / "splits/s2.txt").write_text("d/b.jpg\n")
    (tmp_path / "splits/notes.md").write_text("not a list\n")
    sp = C.evaluate_splits(gt, pred, tmp_path / "splits", workers=1)
    assert list(sp["splits"]) == ["s1", "s2"] and (sp["tp"], sp["fp"], sp["fn"]) == (1, 1, 2)
    assert sp["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 2)) and sp["splits"]["s2"]["fn"] == 1
    assert C.evaluate_splits(gt, pred, tmp_path / "splits", iou=0.99)["tp"] == 0  # options reach each split
    with pytest.raises(ValueError, match="no \\*.txt split lists in"):
        C.evaluate_splits(gt, pred, tmp_path / "gt")
    with pytest.raises(FileNotFoundError, match="prediction root not found: .*nowhere"):
        C.evaluate(gt, tmp_path / "nowhere", tmp_path / "l.txt")
    with pytest.raises(FileNotFoundError, match=r"ground-truth lane file not found: .*x\.lines\.txt \(listed in .*l2"):
        (tmp_path / "l2.txt").write_text("d/x.jpg\n")
        C.evaluate(gt, pred, tmp_path / "l2.txt")


def test_prob2lines_rows_columns_and_thresholds_by_hand():
    # h x w = 30 x 40 maps of a W x H = 100 x 60 image (no crop), rows = 10 samples every step = 7 px, no blur:
    # sample i reads map row round(30 - i*7/60*30) - 1 (MATLAB round, half away from zero): i=0 -> 29, i=1 -> 26
    # (26.5 rounds up), i=9 -> a negative row (30 - 31.5 = -1.5): outside, skipped (not row 28 from the end);
    # column c gives x = round((c + 1) * 100/40) - 1: c=0 -> round(2.5) - 1 = 2, c=3 -> 9; y = 60 - 7i - 1
    maps = np.zeros((4, 30, 40), np.uint8)
    maps[1, 29, 0] = 255
    maps[1, 26, 3] = 77  # 77/255 = 0.302 > 0.3
    maps[1, 28, 20] = 255  # no sample reads row 28 (29, 26, 22, 19, ...); only index -2 would
    maps[2, 29, 5] = 255
    maps[2, 26, 5] = 76  # 76/255 = 0.298: too weak, so lane 2 keeps one point and is dropped
    kw = dict(crop_top=0, orig_size=(100, 60), rows=10, step=7, blur=1)
    lanes = C.prob2lines(maps, [0.9, 0.9, 0.9, 0.9], **kw)
    assert [lane.tolist() for lane in lanes] == [[[2, 59], [9, 52]]]
    assert lanes[0].dtype == np.float32
    assert C.prob2lines(maps, [0.9, 0.5, 0.9, 0.9], **kw) == []  # existence must exceed 0.5
    assert len(C.prob2lines(maps, [0.9, 0.5, 0.9, 0.9], exist_thresh=0.4, **kw)) == 1
    assert C.prob2lines(maps, [0, 1, 0, 0], thresh=0.31, **kw) == []  # 0.302 no longer counts: one point left
    assert len(C.prob2lines(maps, [0, 0, 1, 0], thresh=0.29, **kw)) == 1  # 0.298 counts now: lane 2 has 2 points
    # float maps are scaled by 255 and truncated (0.3019 * 255 = 76.98 -> 76, too weak) and clipped above
    fl = maps.astype(np.float64) / 255
    fl[1, 29, 0] = 1.7
    assert [lane.tolist() for lane in C.prob2lines(fl, [0, 1, 0, 0], **kw)] == [[[2, 59], [9, 52]]]
    fl[1, 26, 3] = 0.3019
    assert C.prob2lines(fl, [0, 1, 0, 0], **kw) == []
    # crop_top: the maps cover rows 30..59: sample i reads row round(30 - i*7/30*30) - 1 = 29 - 7i
    crop = np.zeros((4, 30, 40), np.uint8)
    crop[0, 29, 0], crop[0, 22, 3] = 255, 255
    assert [lane.tolist() for lane in C.prob2lines(crop, [1, 0, 0, 0], **(kw | {"crop_top": 30}))] \
        == [[[2, 59], [9, 52]]]
    # the default 9 x 9 box blur spreads one bright pixel to 255/81 < 0.3: nothing survives
    assert C.prob2lines(maps, [0, 1, 0, 0], **(kw | {"blur": 9})) == []
    with pytest.raises(ValueError, match="prob_maps must be \\(lanes, h, w\\), got shape \\(30, 40\\)"):
        C.prob2lines(maps[0], [1])


def _spline_vertices(points):
    """Independent oracle: scipy's natural chord-length spline, 50 samples per segment + the last point, rounded
    half-to-even, consecutive repeats dropped (what the official per-segment cv2.line loop draws)."""
    p = np.asarray(points, np.float32).astype(np.float64)
    knots = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(p, axis=0).T))])
    t = np.concatenate([np.linspace(a, b, 50, endpoint=False) for a, b in zip(knots[:-1], knots[1:])] + [knots[-1:]])
    v = np.rint(CubicSpline(knots, p, bc_type="natural")(t).astype(np.float32)).astype(np.int32)
    return v[np.r_[True, np.any(v[1:] != v[:-1], axis=1)]]


def test_lane_vertices_spline_for_three_points_and_duplicates_removed_first():
    three = np.array([[100.3, 590.2], [160.7, 480.1], [300.2, 402.6]], np.float32)
    assert np.array_equal(C.lane_pixels(three), _spline_vertices(three))
    four = np.array([[500.1, 580.3], [520.6, 500.2], [560.4, 430.7], [630.9, 360.8]], np.float32)
    assert np.array_equal(C.lane_pixels(four), _spline_vertices(four))
    # consecutive duplicates are dropped before the spline (the C++ tool would divide by zero)
    dup = np.insert(four, [1, 3, 3], four[[0, 2, 2]], axis=0)
    assert len(dup) == 7 and np.array_equal(C.lane_pixels(dup), C.lane_pixels(four))
    assert np.array_equal(C.lane_pixels(np.insert(three, 2, three[1], axis=0)), C.lane_pixels(three))
    # a repeat that is not consecutive stays (a lane may come back to a point)
    back = np.array([[100, 500], [200, 400], [100, 500], [300, 300]], np.float32)
    assert np.array_equal(C.lane_pixels(back), _spline_vertices(back))
    # three points with two equal ones: a straight segment, not a spline
    seg = np.array([[100, 500], [100, 500], [300, 300]], np.float32)
    assert C.lane_pixels(seg).tolist() == [[100, 500], [300, 300]]
    assert C.lane_pixels(seg.reshape(-1)).tolist() == [[100, 500], [300, 300]]  # flat x y x y ... accepted


def test_absurd_coordinates_are_clipped_not_overflowed():
    # a segment from x = -1e12 (far outside int32) to x = 800 on row 300 draws what cv2.line draws from any point far
    # to the left: the band 0..815 (round cap), rows 285..315
    want = np.zeros((590, 1640), np.uint8)
    cv2.line(want, (-100000, 300), (800, 300), 1, thickness=30)
    for lane in (np.array([[-1e12, 300], [800, 300]], np.float32), np.array([[800, 300], [-1e12, 300]], np.float32)):
        m = C.rasterise(lane)
        assert m.area == int(want.sum()) and m.x0 == 0
    right = np.zeros((590, 1640), np.uint8)
    cv2.line(right, (800, 300), (100000, 300), 1, thickness=30)
    assert C.rasterise(np.array([[800, 300], [1e12, 300]], np.float32)).area == int(right.sum())


def test_iou_of_lanes_with_different_extents_equals_full_canvas_drawing():
    a = vertical(400, 590, 300)
    b = vertical(405, 500, 150)  # shorter at the bottom, longer at the top: the boxes overlap in part
    fa, fb = C.full_mask(a), C.full_mask(b)
    ref = np.sum(fa & fb) / np.sum(fa | fb)
    assert C.iou_matrix([a], [b])[0, 0] == pytest.approx(ref) and C.iou_matrix([b], [a])[0, 0] == pytest.approx(ref)
    assert 0.3 < ref < 0.9
    # lanes without pixels anywhere in the list do not stop the others from being scored
    assert C.iou_matrix([np.zeros((0, 2)), a], [np.array([[1, 2]], np.float32), a])[1, 1] == 1.0
    assert C.image_counts([vertical(-500), a], [np.array([[1, 2]], np.float32), a]) == (1, 1, 1)


def test_crowded_candidates_count_one_match_each():
    g = vertical(400)
    # two predictions both overlapping one GT lane by far more than half: one TP, one FP
    assert C.iou_matrix([g], [vertical(402), vertical(398)]).min() > 0.5
    assert C.image_counts([g], [vertical(402), vertical(398)]) == (1, 1, 0)
    assert C.image_counts([vertical(402), vertical(398)], [g]) == (1, 0, 1)
    # symmetric candidates with equal IoU v: the threshold stays strict in the assignment case too
    v = C.iou_matrix([g], [vertical(410)])[0, 0]
    assert C.iou_matrix([g], [vertical(390)])[0, 0] == v
    assert C.image_counts([g], [vertical(410), vertical(390)], iou=v) == (0, 2, 1)
    assert C.image_counts([g], [vertical(410), vertical(390)], iou=v - 1e-9) == (1, 1, 0)


def test_prob2lines_default_geometry_rows_blur_and_scnn_variant():
    # default (ERFNet-CULane): maps of rows 240..589 resized to 976 x 208; sample i of 18 reads map row
    # round(208 - i*20/350*208) - 1 (MATLAB round); x = round((col + 1) * 1640/976) - 1, y = 590 - 20i - 1
    # (datasets_metrics.md). A diagonal lane (column 3r in row r, no blur) shows which row each sample read.
    maps = np.zeros((4, 208, 976), np.uint8)
    rows = np.arange(208)
    maps[0, rows, 3 * rows] = 255
    lane = C.prob2lines(maps, [1, 0, 0, 0], blur=1)[0]
    want_rows = [math.floor(208 - i * 20 / 350 * 208 + 0.5) - 1 for i in range(18)]
    assert lane.tolist() == [[math.floor((3 * r + 1) * 1640 / 976 + 0.5) - 1, 589 - 20 * i]
                             for i, r in enumerate(want_rows)]
    # the default 9 x 9 box blur keeps the value of a 9-column strip at its centre: 84/255 = 0.33 > 0.3
    # (a 10 x 10 box would give 76/255 = 0.298 and lose the lane)
    strip = np.zeros((4, 208, 976), np.uint8)
    strip[2, :, 500:509] = 84
    lanes = C.prob2lines(strip, [0, 0, 1, 0])
    assert len(lanes) == 1 and len(lanes[0]) == 18 and (lanes[0][:, 0] == math.floor(505 * 1640 / 976 + 0.5) - 1).all()
    assert C.prob2lines(strip, [0, 0, 1, 0], blur=10) == []
    # SCNN's variant: no crop, 800 x 288 maps; its 18 samples all fall inside the map (a 19th would too)
    scnn = np.zeros((4, 288, 800), np.uint8)
    scnn[3, :, 400] = 255
    lane = C.prob2lines(scnn, [0, 0, 0, 1], crop_top=0, blur=1)[0]
    assert lane[:, 1].tolist() == [589 - 20 * i for i in range(18)]
    assert (lane[:, 0] == math.floor(401 * 1640 / 800 + 0.5) - 1).all()


def test_prob2lines_edges_of_the_map_and_of_the_thresholds():
    # h = w = 10 maps of a 100 x 100 image, step 10: sample i reads row 9 - i, so the last sample reads row 0
    m = np.zeros((1, 10, 10), np.uint8)
    m[0, 9, 4] = m[0, 0, 4] = 255
    kw = dict(crop_top=0, orig_size=(100, 100), rows=10, step=10, blur=1)
    assert [lane.tolist() for lane in C.prob2lines(m, [1], **kw)] == [[[49, 99], [49, 9]]]
    assert C.prob2lines(m, [1], **(kw | {"blur": 2})) == []  # a 2 x 2 box leaves 255/4 = 64 < 0.3 * 255
    # the value must exceed the threshold: 77/255 at thresh 77/255 is out; thresh 0.301 keeps 77/255 = 0.30196
    m[0, 0, 4] = 77
    assert C.prob2lines(m, [1], thresh=77 / 255, **kw) == []
    assert len(C.prob2lines(m, [1], thresh=0.301, **kw)) == 1
    # float maps: negative values count as 0 (no spurious point from row 5's -0.5)
    fl = np.zeros((1, 10, 10))
    fl[0, 9, 4] = fl[0, 0, 4] = 1.0
    fl[0, 5, 7] = -0.5
    assert [lane.tolist() for lane in C.prob2lines(fl, [1], **kw)] == [[[49, 99], [49, 9]]]
    with pytest.raises(ValueError, match="^exist has 2 entries but prob_maps has 1 lanes$"):
        C.prob2lines(m, [1, 1])


def test_official_numbers_by_hand(tmp_path):
    o = C.official_scores(2, 0, 2)
    assert (o["tp"], o["fp"], o["fn"], o["precision"], o["recall"], o["f1"]) == (2, 0, 2, 1.0, 0.5, pytest.approx(2 / 3))
    o = C.official_scores(3, 1, 1)  # P = R = 0.75
    assert o["f1"] == pytest.approx(0.75)
    assert C.official_scores(0, 3, 2)["f1"] == 0.0  # P = R = 0: F 0
    # C++ streams print 6 significant digits and switch to exponent notation like printf's %g
    assert C.format_official(1, 199999, 0, "x").splitlines()[2:5] == \
        ["precision: 5e-06", "recall: 1", "Fmeasure: 9.99995e-06"]
    out = tmp_path / "a/b/out.txt"  # folders created; the label defaults to the output path
    C.write_official_output(out, 1, 0, 0)
    assert out.read_text().startswith(f"file: {out}\n")


def test_official_output_messages_are_complete(tmp_path):
    (tmp_path / "key.txt").write_text("file: a\nrecall 1\n")
    with pytest.raises(ValueError, match=r"^.*key\.txt: unexpected line 'recall 1'; expected the CULane evaluator's "
                                         r"'file:', 'tp: fp: fn:', 'precision:', 'recall:', 'Fmeasure:' lines$"):
        C.read_official_output(tmp_path / "key.txt")
    (tmp_path / "short.txt").write_text("file: a\ntp: 1 fp: 2 fn: 3\n")
    with pytest.raises(ValueError, match=r"^.*short\.txt: not a complete CULane evaluator output "
                                         r"\(need tp, fp, fn, precision, recall, f1 per block\)$"):
        C.read_official_output(tmp_path / "short.txt")


def test_many_crowded_lanes_are_matched_by_the_assignment():
    # 8 GT lanes 25 px apart (30 px wide: neighbours overlap) and each predicted 2 px beside its own: the
    # maximum-IoU-sum assignment pairs each with its own lane (IoU 0.877 against 0.15 for a neighbour)
    g = [vertical(300 + 25 * k) for k in range(8)]
    d = [vertical(302 + 25 * k) for k in range(8)]
    m = C.iou_matrix(g, d)
    assert (np.diag(m) > 0.8).all() and (m[np.eye(8) == 0] < 0.2).all() and ((m > 0).sum(1) >= 2).all()
    assert C.image_counts(g, d) == (8, 0, 0)
    assert C.image_counts(g, d[:5]) == (5, 0, 3) and C.image_counts(g[:6], d) == (6, 2, 0)
    v = m[3, 3]  # every own pair has exactly this IoU (translation): the threshold is strict here as well
    assert (np.diag(m) == v).all()
    assert C.image_counts(g, d, iou=v) == (0, 8, 8) and C.image_counts(g, d, iou=v - 1e-9) == (8, 0, 0)
    assert C.enumerated_tp(np.zeros((0, 3)), 0.5) == 0  # nothing to assign


def test_defaults_and_inputs_as_the_official_tool_reads_them(tmp_path):
    # evaluate's default lane width is 30: at IoU threshold v (the width-30 IoU of a 10 px offset) the pair fails
    a, b = vertical(400), vertical(410)
    v = C.iou_matrix([a], [b], width=30)[0, 0]
    C.write_lines(tmp_path / "gt/x.lines.txt", [a])
    C.write_lines(tmp_path / "pred/x.lines.txt", [b])
    (tmp_path / "l.txt").write_text("x.jpg\n")
    assert C.evaluate(tmp_path / "gt", tmp_path / "pred", tmp_path / "l.txt", iou=v, workers=1)["tp"] == 0
    assert C.evaluate(tmp_path / "gt", tmp_path / "pred", tmp_path / "l.txt", iou=v - 1e-9, workers=1)["tp"] == 1
    # coordinates are float32 (as the C++ reader stores them) before rounding: 100.50000001 is 100.5 -> 100
    assert C.lane_pixels(np.array([[100.50000001, 10.0], [300.49999999, 40.0]])).tolist() == [[100, 10], [300, 40]]
    # a stray non-UTF-8 byte does not stop the reading: it becomes a replacement character, a lane without points
    (tmp_path / "odd.lines.txt").write_bytes(b"1 2 3 4 \n\xff\n")
    lanes = C.read_lines(tmp_path / "odd.lines.txt")
    assert [lane.tolist() for lane in lanes] == [[[1, 2], [3, 4]], []]
    # only leading slashes are stripped from list entries
    (tmp_path / "x.txt").write_text("/X_dir/a.jpg\n//b.jpg\n")
    assert C.read_list(tmp_path / "x.txt") == ["X_dir/a.jpg", "b.jpg"]


def test_canvas_size_reaches_both_sides_and_float_maps_are_clipped():
    a, b = vertical(1630), vertical(1638)  # both cut by the 1640 canvas, not by a 1700 one
    for size in ((1640, 590), (1700, 590)):
        fa, fb = C.full_mask(a, size=size), C.full_mask(b, size=size)
        assert C.iou_matrix([a], [b], size=size)[0, 0] == pytest.approx(np.sum(fa & fb) / np.sum(fa | fb))
    # float maps above 1 saturate at 255: 1.7 beats 0.9 in its row (no wrap-around to 1.7*255 - 256 = 177)
    fl = np.zeros((1, 10, 10))
    fl[0, 9, 1], fl[0, 9, 6] = 1.7, 0.9
    fl[0, 0, 4] = 1.0
    kw = dict(crop_top=0, orig_size=(100, 100), rows=10, step=10, blur=1)
    assert [lane.tolist() for lane in C.prob2lines(fl, [1], **kw)] == [[[19, 99], [49, 9]]]
    # zeros stay zeros: with a threshold below 1/255 no empty row yields a point
    assert [len(lane) for lane in C.prob2lines(fl, [1], thresh=0.001, **kw)] == [2]
