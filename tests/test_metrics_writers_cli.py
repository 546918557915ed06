"""Submission writers round-trip through the evaluators; ``intrakd evaluate`` prints one JSON object."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from intrakd.cli import main
from intrakd.labels import APOLLO_LABELS, APOLLO_TRAIN_TO_ID, CITYSCAPES_TRAIN_TO_ID
from intrakd.metrics import culane as C
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


def test_cli_culane_and_official_files(tmp_path, capsys):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    ys = np.arange(590, 300, -10, dtype=np.float32)
    for name, xs in (("a", (300, 900)), ("b", (500,))):
        C.write_lines(gt / f"d/{name}.lines.txt", [np.stack([np.full_like(ys, x), ys], 1) for x in xs])
    C.write_lines(pred / "d/a.lines.txt", [np.stack([np.full_like(ys, 302), ys], 1)])
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits/test0_normal.txt").write_text("d/a.jpg\n")
    (tmp_path / "splits/test7_cross.txt").write_text("d/b.jpg\n")
    (tmp_path / "all.txt").write_text("/d/a.jpg\n/d/b.jpg\n")
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
