"""Submission writers round-trip through the evaluators; ``intrakd evaluate`` prints one JSON object."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from intrakd.cli import build_parser, main
from intrakd.labels import APOLLO_LABELS, APOLLO_TRAIN_TO_ID, CITYSCAPES_TRAIN_TO_ID
from intrakd.metrics import cli
from intrakd.metrics import culane as C
from intrakd.metrics import llamas as L
from intrakd.metrics import segmentation as seg
from intrakd.metrics import writers as W


def test_apollo_submission_geometry_and_ids(tmp_path):
    t = np.zeros((4, 6), np.int64)
    t[:, 3:] = 36  # merged noise/ignored -> 249
    t[0, 0] = 1  # s_w_d -> 200
    out = W.apollo_submission(t, full_size=(12, 18), crop_top=10)
    assert out.shape == (18, 12) and out.dtype == np.uint8
    assert (out[:10] == 0).all()
    assert (out[10:, 6:] == 249).all() and (out[10:12, 0:2] == 200).all()
    p = W.write_apollo_submission(tmp_path / "s.png", t, full_size=(12, 18), crop_top=10)
    img = Image.open(p)
    assert img.mode == "P" and np.array_equal(np.asarray(img), out)
    assert tuple(img.getpalette()[3 * 200 : 3 * 201]) == APOLLO_LABELS[1].color
    with pytest.raises(ValueError, match="trainId 37"):
        W.apollo_submission(np.full((2, 2), 37))


def test_apollo_submission_of_gt_scores_one(tmp_path):
    ids = np.zeros((18, 12), np.uint8)
    ids[12:, 2:5] = 200
    ids[14:, 8:] = 224
    train = np.argmax(APOLLO_TRAIN_TO_ID[None, None, :] == ids[10:, :, None], axis=2)
    W.write_apollo_submission(tmp_path / "p.png", train, full_size=(12, 18), crop_top=10)
    Image.fromarray(ids).save(tmp_path / "g.png")
    assert seg.evaluate_pairs([(tmp_path / "p.png", tmp_path / "g.png")], "apolloscape")["miou"] == 1.0


def test_cityscapes_label_ids(tmp_path):
    t = np.arange(19).reshape(1, 19)
    p = W.write_cityscapes_label_ids(tmp_path / "c.png", t)
    assert np.array_equal(np.asarray(Image.open(p)), CITYSCAPES_TRAIN_TO_ID[t])
    with pytest.raises(ValueError, match="trainId 255"):
        W.cityscapes_label_ids(np.full((2, 2), 255))


def test_culane_writer_from_softmax(tmp_path):
    probs = np.full((5, 208, 976), 0.01, np.float32)
    probs[2, :, 300:309] = 0.95
    maps = W.culane_prob_maps(probs)
    assert maps.shape == (4, 208, 976) and maps[1, 0, 304] == int(0.95 * 255)
    lanes = W.write_culane_lines(tmp_path / "x.lines.txt", maps, [0.1, 0.9, 0.1, 0.1])
    back = C.read_lines(tmp_path / "x.lines.txt")
    assert len(back) == 1 and np.array_equal(back[0], lanes[0])


def _run(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _culane_tree(tmp_path, pred_x=302):
    """GT: image d/a with vertical lanes at x = 300 and 900, d/b with one at 500; prediction: one lane at
    ``pred_x`` in d/a. Lists: all.txt (both), splits/test0_normal (a), splits/test7_cross (b)."""
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    ys = np.arange(590, 300, -10, dtype=np.float32)
    for name, xs in (("a", (300, 900)), ("b", (500,))):
        C.write_lines(gt / f"d/{name}.lines.txt", [np.stack([np.full_like(ys, x), ys], 1) for x in xs])
    C.write_lines(pred / "d/a.lines.txt", [np.stack([np.full_like(ys, pred_x), ys], 1)])
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/test0_normal.txt").write_text("d/a.jpg\n")
    (tmp_path / "splits/test7_cross.txt").write_text("d/b.jpg\n")
    (tmp_path / "all.txt").write_text("/d/a.jpg\n/d/b.jpg\n")
    return gt, pred


def test_cli_culane_and_official_files(tmp_path, capsys):
    gt, pred = _culane_tree(tmp_path)
    out_file = tmp_path / "out/total.txt"
    code, out, _ = _run(capsys, ["evaluate", "culane", "--gt-root", str(gt), "--pred-root", str(pred),
                                 "--list", str(tmp_path / "all.txt"), "--splits", str(tmp_path / "splits"),
                                 "--write-official", str(out_file), "--json"])
    res = json.loads(out)
    assert code == 0 and (res["tp"], res["fp"], res["fn"]) == (1, 0, 2)
    assert res["f1"] == pytest.approx(0.5) and res["splits"]["test7_cross"]["fn"] == 1
    back = C.read_official_output(out_file)
    assert (back["tp"], back["fp"], back["fn"]) == (1, 0, 2)
    assert len(C.read_official_output(tmp_path / "out/total_split.txt")["blocks"]) == 2
    code, out, _ = _run(capsys, ["evaluate", "culane", "--read-official", str(out_file), "--json"])
    assert json.loads(out)["tp"] == 1


def test_cli_segmentation_and_errors(tmp_path, capsys):
    g = np.zeros((6, 8), np.uint8)
    g[:, :3] = 200
    Image.fromarray(g).save(tmp_path / "g.png")
    Image.fromarray(g).save(tmp_path / "p.png")
    (tmp_path / "gl.csv").write_text("./g.png\n")
    (tmp_path / "pl.csv").write_text("./p.png\n")
    base = ["evaluate", "apolloscape", "--gt-root", str(tmp_path), "--pred-root", str(tmp_path),
            "--gt-list", str(tmp_path / "gl.csv")]
    code, out, _ = _run(capsys, base + ["--pred-list", str(tmp_path / "pl.csv"), "--json"])
    res = json.loads(out)
    assert code == 0 and res["miou"] == 1.0 and res["per_class"]["s_w_d"] == 1.0
    assert res["per_class"]["s_y_d"] is None
    (tmp_path / "bad.csv").write_text("./nothere.png\n")
    code, out, err = _run(capsys, base + ["--pred-list", str(tmp_path / "bad.csv")])
    assert code == 1 and "nothere.png" in err and len(err.strip().splitlines()) == 1


@pytest.mark.real_samples
def test_cli_cityscapes_real(real_samples, tmp_path, capsys):
    gt_dir = real_samples / "cityscapes/pseudo_cityscapes_dataset/gtFine/val"
    gt = np.asarray(Image.open(gt_dir / "frankfurt/frankfurt_000000_000294_gtFine_labelIds.png"))
    Image.fromarray(gt).save(tmp_path / "frankfurt_000000_000294_pred.png")
    code, out, _ = _run(capsys, ["evaluate", "cityscapes", "--gt-root", str(gt_dir), "--pred-root", str(tmp_path),
                                 "--json"])
    assert code == 0 and json.loads(out)["miou"] == 1.0


# ----------------------------------------------------------------------------- writers: geometry, ranges, files
def test_apollo_submission_default_is_the_server_geometry():
    # datasets_metrics.md: the server reads 3384x2710 label-ID images; the network saw rows 1700..2709
    t = np.full((5, 8), 2, np.int64)  # trainId 2 -> label ID 204 (APOLLO_TRAIN_TO_ID)
    out = W.apollo_submission(t)
    assert out.shape == (2710, 3384) and (out[:1700] == 0).all() and (out[1700:] == APOLLO_TRAIN_TO_ID[2]).all()
    # crop_top 0: the whole image is the (resized) prediction
    assert (W.apollo_submission(t, full_size=(16, 10), crop_top=0) == APOLLO_TRAIN_TO_ID[2]).all()


def test_apollo_submission_rejects_bad_input_by_value():
    with pytest.raises(ValueError, match=r"trainId -1 outside 0\.\.36"):
        W.apollo_submission(np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"trainId 37 outside 0\.\.36"):
        W.apollo_submission(np.array([[0, 37]]))  # the max is reported, not the (valid) min 0
    with pytest.raises(ValueError, match="expected a 2-D trainId map"):
        W.apollo_submission(np.zeros((2, 2, 2), np.int64))
    with pytest.raises(ValueError, match="crop_top 18 outside the image height 18"):
        W.apollo_submission(np.zeros((2, 2), np.int64), full_size=(12, 18), crop_top=18)
    with pytest.raises(ValueError, match="crop_top -1 outside"):
        W.apollo_submission(np.zeros((2, 2), np.int64), full_size=(12, 18), crop_top=-1)


def test_cityscapes_label_ids_range_is_0_to_18():
    assert W.cityscapes_label_ids(np.array([[18, 0]])).tolist() == [[CITYSCAPES_TRAIN_TO_ID[18], 7]]  # 0 = road = 7
    for bad in (19, 255):
        with pytest.raises(ValueError, match=f"trainId {bad} outside 0..18"):
            W.cityscapes_label_ids(np.array([[0, bad]]))
    with pytest.raises(ValueError, match="trainId -1 outside"):
        W.cityscapes_label_ids(np.array([[5, -1]]))


def test_writers_create_folders_and_always_write_png(tmp_path):
    # nested folders that do not exist yet; a name without .png still gets PNG bytes (the evaluators' format)
    p = W.write_cityscapes_label_ids(tmp_path / "a/b/frankfurt_000000_000294_pred", np.array([[0, 1]]))
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and np.asarray(Image.open(p)).tolist() == [[7, 8]]
    W.write_cityscapes_label_ids(tmp_path / "a/b/second.png", np.array([[1]]))  # existing folder is fine
    probs = np.zeros((5, 2, 3))
    probs[:, 0, 0] = [0.0, 0.2, 0.5, 1.0, 1.7]  # -> rint(p * 255) clipped: 0, 51, 128 (half-even 127.5), 255, 255
    probs[0, 1, 1] = -0.3  # clipped to 0
    probs[1, 1, 2] = 0.6  # 153 (rint(153.0); a scale of 256 would give 154)
    paths = W.write_llamas_probs(tmp_path / "new/root", "rec/17_42.json", probs)
    assert paths == [tmp_path / f"new/root/rec/17_42.json_{c}.png" for c in range(5)]
    back = [cv2.imread(str(q), cv2.IMREAD_UNCHANGED) for q in paths]
    assert all(b.dtype == np.uint8 and b.shape == (2, 3) for b in back)
    assert [int(b[0, 0]) for b in back] == [0, 51, 128, 255, 255] and back[0][1, 1] == 0 and back[1][1, 2] == 153
    u8 = np.arange(30, dtype=np.uint8).reshape(5, 2, 3)  # uint8 is written as it is, not scaled again
    back = [cv2.imread(str(q), cv2.IMREAD_UNCHANGED) for q in W.write_llamas_probs(tmp_path, "r/u.json", u8)]
    assert np.array_equal(np.stack(back), u8)
    with pytest.raises(ValueError, match=r"expected \(5, H, W\) class probabilities, got shape \(4, 2, 3\)"):
        W.write_llamas_probs(tmp_path, "r/x.json", np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match="class probabilities, got shape"):
        W.write_llamas_probs(tmp_path, "r/x.json", np.zeros((5, 2)))
    (tmp_path / "r/d.json_0.png").mkdir()  # a folder where the PNG should go: the write fails
    with pytest.raises(ValueError, match=r"could not write .*d\.json_0\.png"):
        W.write_llamas_probs(tmp_path, "r/d.json", u8)


def test_culane_prob_maps_truncate_the_exact_product():
    # int(p * 255) of each value as Python computes it (float64), also for half-precision softmax outputs, whose
    # float16 product would round up (e.g. 0.06274 * 255 = 15.999 -> 15, not 16); clipped to 0..255
    p16 = np.zeros((5, 1, 4096), np.float16)
    p16[1:, 0] = np.arange(4096) / 4096
    maps = W.culane_prob_maps(p16)
    assert maps.dtype == np.uint8 and maps.shape == (4, 1, 4096)
    assert maps[0, 0].tolist() == [int(float(v) * 255) for v in p16[1, 0]]
    p = np.zeros((5, 1, 4))
    p[:, 0] = [0.0, 1.0, 1.5, -0.2]
    assert W.culane_prob_maps(p)[:, 0].tolist() == [[0, 255, 255, 0]] * 4  # channel 0 (background) dropped
    for shape in ((4, 2, 2), (5, 2)):
        with pytest.raises(ValueError, match=r"expected \(5, h, w\) softmax probabilities"):
            W.culane_prob_maps(np.zeros(shape))


def test_write_culane_lines_passes_prob2lines_options(tmp_path):
    maps = np.zeros((4, 208, 976), np.uint8)
    maps[0, :, 500:509] = 230
    assert len(W.write_culane_lines(tmp_path / "a.lines.txt", maps, [0.9, 0, 0, 0])) == 1
    # a stricter existence threshold drops the lane: nothing is written
    assert W.write_culane_lines(tmp_path / "b.lines.txt", maps, [0.9, 0, 0, 0], exist_thresh=0.95) == []
    assert C.read_lines(tmp_path / "b.lines.txt") == []


# ----------------------------------------------------------------------------- intrakd evaluate: options and output
@pytest.fixture
def pool_workers(monkeypatch):
    """The ``workers`` each evaluator hands to its process pool, recorded (the pool itself still runs)."""
    seen = []
    for module in (C, seg, L):
        real = module.map_chunks

        def recording(fn, items, workers=None, real=real):
            seen.append(workers)
            return real(fn, items, workers)

        monkeypatch.setattr(module, "map_chunks", recording)
    return seen


def test_cli_culane_defaults_are_the_official_evaluator_settings():
    # datasets_metrics.md: SCNN's lane_evaluation runs with lane width 30, IoU threshold 0.5 on a 1640x590 canvas
    args = build_parser(["evaluate"]).parse_args(["evaluate", "culane"])
    assert (args.width, args.iou, args.im_width, args.im_height) == (30, 0.5, 1640, 590)
    assert args.workers is None and args.json is False


def test_cli_culane_options_reach_the_evaluator(tmp_path, capsys, pool_workers):
    gt, pred = _culane_tree(tmp_path, pred_x=320)  # 20 px beside the GT lane at 300: IoU about 0.2 at width 30
    base = ["evaluate", "culane", "--gt-root", str(gt), "--pred-root", str(pred), "--list", str(tmp_path / "all.txt"),
            "--json"]

    def counts(*extra):
        code, out, _ = _run(capsys, base + list(extra))
        assert code == 0
        res = json.loads(out)
        return res["tp"], res["fp"], res["fn"]

    assert counts() == (0, 1, 3)
    assert counts("--width", "80") == (1, 0, 2)  # 80 px wide lanes 20 px apart overlap by far more than half
    assert counts("--iou", "0.1") == (1, 0, 2)
    # a canvas narrower / shorter than where the lanes are: every mask is empty, nothing matches
    assert counts("--im-width", "200") == (0, 1, 3)
    assert counts("--im-height", "250") == (0, 1, 3)
    assert counts("--width", "80", "--im-width", "200") == (0, 1, 3)
    pool_workers.clear()
    assert counts("--workers", "1") == (0, 1, 3) and pool_workers == [1]
    assert counts("--splits", str(tmp_path / "splits"), "--workers", "1") == (0, 1, 3)
    assert pool_workers == [1] * 4  # the list, then each of the two splits


def test_cli_culane_splits_only_and_text_output(tmp_path, capsys):
    gt, pred = _culane_tree(tmp_path)
    base = ["evaluate", "culane", "--gt-root", str(gt), "--pred-root", str(pred), "--splits", str(tmp_path / "splits")]
    code, out, _ = _run(capsys, base + ["--json", "--write-official", str(tmp_path / "o/total.txt")])
    res = json.loads(out)
    # split totals summed (as calTotal.m): a has TP 1 FN 1, b has FN 1
    assert code == 0 and list(res) == ["tp", "fp", "fn", "precision", "recall", "f1", "splits"]
    assert (res["tp"], res["fp"], res["fn"]) == (1, 0, 2) and res["recall"] == pytest.approx(1 / 3)
    assert (res["splits"]["test0_normal"]["tp"], res["splits"]["test0_normal"]["fn"]) == (1, 1)
    # SCNN's run script: one out_<split>.txt per split, their concatenation, and the total
    per_split = [tmp_path / "o/out_test0_normal.txt", tmp_path / "o/out_test7_cross.txt"]
    assert (tmp_path / "o/total_split.txt").read_text() == "".join(p.read_text() for p in per_split)
    assert [(b["tp"], b["fp"], b["fn"]) for b in C.read_official_output(tmp_path / "o/total_split.txt")["blocks"]] \
        == [(1, 0, 1), (0, 0, 1)]
    assert C.read_official_output(tmp_path / "o/total.txt")["blocks"][0]["recall"] == pytest.approx(1 / 3, abs=1e-6)
    # plain text: one "key: value" line per entry, floats with 6 decimals, nested results one line each
    code, out, _ = _run(capsys, base[:-2] + ["--list", str(tmp_path / "all.txt"), "--splits", str(tmp_path / "splits")])
    assert code == 0 and out.splitlines() == [
        "tp: 1", "fp: 0", "fn: 2", "precision: 1.000000", "recall: 0.333333", "f1: 0.500000", "images: 2", "splits:",
        "  test0_normal: tp=1 fp=0 fn=1 precision=1.000000 recall=0.500000 f1=0.666667 images=1",
        "  test7_cross: tp=0 fp=0 fn=1 precision=0.000000 recall=0.000000 f1=0.000000 images=1"]
    # --list alone writes only the total file
    code, out, _ = _run(capsys, base[:-2] + ["--list", str(tmp_path / "all.txt"), "--write-official",
                                             str(tmp_path / "p/total.txt")])
    assert code == 0 and sorted(f.name for f in (tmp_path / "p").iterdir()) == ["total.txt"]


@pytest.mark.parametrize("drop", ["--gt-root", "--pred-root", "--list"])
def test_cli_culane_missing_input_is_one_clear_error(tmp_path, capsys, drop):
    opts = {"--gt-root": str(tmp_path), "--pred-root": str(tmp_path), "--list": str(tmp_path / "l.txt")}
    code, out, err = _run(capsys, ["evaluate", "culane"] + [x for k, v in opts.items() if k != drop for x in (k, v)])
    assert code == 1 and out == ""
    assert err.strip() == ("intrakd evaluate: error: culane needs --gt-root, --pred-root and --list (or --splits), "
                           "or --read-official FILE")


def test_cli_read_official_missing_file(tmp_path, capsys):
    code, _, err = _run(capsys, ["evaluate", "culane", "--read-official", str(tmp_path / "none.txt")])
    assert code == 1 and "evaluator output file not found" in err and "none.txt" in err


@pytest.mark.parametrize(("benchmark", "required"), [
    ("apolloscape", ["--gt-root", "--pred-root", "--gt-list", "--pred-list"]),
    ("cityscapes", ["--gt-root", "--pred-root"]),
    ("llamas", ["--label-root", "--pred-root"]),
])
def test_cli_required_options_are_usage_errors(capsys, benchmark, required):
    for drop in required:
        argv = ["evaluate", benchmark] + [x for k in required if k != drop for x in (k, "somewhere")]
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2 and f"required: {drop}" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:  # no benchmark at all
        main(["evaluate"])
    assert stop.value.code == 2 and "required: BENCHMARK" in capsys.readouterr().err


def test_cli_apolloscape_exclude_void_nan_and_key_order(tmp_path, capsys, pool_workers):
    g = np.zeros((6, 8), np.uint8)
    g[:, :3] = 200  # s_w_d on 18 pixels, void (0) on 30
    Image.fromarray(g).save(tmp_path / "g.png")
    Image.fromarray(np.full_like(g, 200)).save(tmp_path / "p.png")  # all s_w_d: IoU 18/48, void IoU 0
    (tmp_path / "gl.csv").write_text("./g.png\n")
    (tmp_path / "pl.csv").write_text("./p.png\n")
    base = ["evaluate", "apolloscape", "--gt-root", str(tmp_path), "--pred-root", str(tmp_path),
            "--gt-list", str(tmp_path / "gl.csv"), "--pred-list", str(tmp_path / "pl.csv"), "--json"]
    code, out, _ = _run(capsys, base + ["--workers", "1"])
    res = json.loads(out)
    assert code == 0 and res["miou"] == pytest.approx((18 / 48 + 0) / 2) and pool_workers == [1]
    assert list(res) == ["miou", "per_class", "images"] and list(res["per_class"])[:2] == ["void", "s_w_d"]
    code, out, _ = _run(capsys, base + ["--exclude-void"])
    res = json.loads(out)
    assert res["miou"] == pytest.approx(18 / 48) and "void" not in res["per_class"]
    # only ignored pixels (255): no class is defined, mIoU NaN -> JSON null, and "None" in the text output
    Image.fromarray(np.full_like(g, 255)).save(tmp_path / "g.png")
    Image.fromarray(np.full_like(g, 255)).save(tmp_path / "p.png")
    code, out, _ = _run(capsys, base)
    assert code == 0 and json.loads(out)["miou"] is None and "NaN" not in out
    code, out, _ = _run(capsys, base[:-1])
    assert "miou: nan" in out.splitlines() and "  s_w_d: None" in out.splitlines() and "per_class:" in out


def test_cli_json_cleaning_reaches_lists_and_tuples():
    nan = float("nan")
    assert cli._clean({"a": [1.5, nan], "b": (nan, {"c": nan}), "d": "x"}) == \
        {"a": [1.5, None], "b": [None, {"c": None}], "d": "x"}


def test_cli_cityscapes_workers(tmp_path, capsys, pool_workers):
    (tmp_path / "gt/frankfurt").mkdir(parents=True)
    (tmp_path / "pred").mkdir()
    gt = np.full((4, 6), 7, np.uint8)  # road
    gt[:, :2] = 26  # car
    Image.fromarray(gt).save(tmp_path / "gt/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png")
    pred = gt.copy()
    pred[0, 0] = 7  # one car pixel predicted as road: car 7/8, road 16/17
    Image.fromarray(pred).save(tmp_path / "pred/frankfurt_000000_000294_pred.png")
    code, out, _ = _run(capsys, ["evaluate", "cityscapes", "--gt-root", str(tmp_path / "gt"), "--pred-root",
                                 str(tmp_path / "pred"), "--workers", "1", "--json"])
    assert code == 0 and json.loads(out)["miou"] == pytest.approx((7 / 8 + 16 / 17) / 2) and pool_workers == [1]


def test_cli_llamas_keys_labels_and_errors(tmp_path, capsys, pool_workers):
    from intrakd.data.llamas import multiclass_label
    from intrakd.data.synth import generate

    generate("llamas", tmp_path / "llamas", num=2, seed=0, size=(160, 90))
    label_root = tmp_path / "llamas/labels"  # above the split folders: keys are still <rec>/<ts>.json
    jsons = sorted(label_root.rglob("*.json"))
    assert len(jsons) == 2
    present = []
    for j in jsons:  # perfect 0/255 predictions: AP 1 where the class is present, 0 where absent (official quirk)
        lab = multiclass_label(j)
        present.append([bool((lab == c).any()) for c in range(5)])
        W.write_llamas_probs(tmp_path / "pred", f"{j.parent.name}/{j.name}", np.stack([lab == c for c in range(5)]))
    expect = np.mean(present, axis=0)
    code, out, _ = _run(capsys, ["evaluate", "llamas", "--label-root", str(label_root), "--pred-root",
                                 str(tmp_path / "pred"), "--workers", "1", "--json"])
    res = json.loads(out)
    assert code == 0 and res["images"] == 2 and pool_workers == [1]
    assert res["ap"] == pytest.approx(dict(zip(L.LANE_CLASSES, expect[1:])))
    assert res["map"] == pytest.approx(expect[1:].mean()) and res["ap_background"] == 1.0
    code, _, err = _run(capsys, ["evaluate", "llamas", "--label-root", str(tmp_path / "nowhere"), "--pred-root",
                                 str(tmp_path)])
    assert code == 1 and "LLAMAS label root not found" in err and "nowhere" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, ["evaluate", "llamas", "--label-root", str(tmp_path / "empty"), "--pred-root",
                                 str(tmp_path)])
    assert code == 1 and "no LLAMAS label *.json files under" in err and "empty" in err
