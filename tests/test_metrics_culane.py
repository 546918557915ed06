"""CULane F1: rasterisation, matching and counting as the SCNN C++ evaluator; hand-built cases."""

from __future__ import annotations

import itertools

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
