"""LLAMAS loader: official cleaning / re-indexing, the marker-polygon labels (hand-computed), trees, errors."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from intrakd.data import DATASETS, build_dataset
from intrakd.data.llamas import (LANE_COLOURS, draw_lanes, marker_polygon, multiclass_label,
                                 read_label_json)
from intrakd.data.synth import generate
from intrakd.metrics.llamas import LlamasEvaluator

P = np.array([[1000.0, 0, 100], [0, 1000.0, 50], [0, 0, 1]])


def _marker(ws, we, as_str=False):
    def pix(w):
        u, v, s = P @ np.array(w, float)
        return {"x": int(u / s), "y": int(v / s)}

    m = {"lane_marker_id": "1", "world_start": dict(zip("xyz", ws)), "world_end": dict(zip("xyz", we)),
         "pixel_start": pix(ws), "pixel_end": pix(we)}
    if as_str:
        m = {k: ({a: str(b) for a, b in v.items()} if isinstance(v, dict) else v) for k, v in m.items()}
    return m


def _lane(lane_id, x=0.0, zs=((10, 20), (25, 40)), as_str=False):
    return {"lane_id": lane_id, "markers": [_marker((x, 1, a), (x, 1, b), as_str) for a, b in zs]}


def _write(path, lanes, proj=P):
    path.write_text(json.dumps({"image_name": "x", "projection_matrix": np.asarray(proj).tolist(), "lanes": lanes}))
    return path


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate("llamas", tmp_path_factory.mktemp("llamas"), num=6, seed=2, size=(320, 180))


# ------------------------------------------------------------------------------ hand-computed marker procedure
def test_marker_quadrilateral_by_hand():
    # start (0, 1, 10) -> (u, v) = (100, 150), half-width 1000 * 0.1 / 10 / 2 = 5;
    # end (0, 1, 20) -> (100, 100), half-width 2.5 -> corners 102.5 / 97.5 round half-to-even to 102 / 98.
    assert marker_polygon(P, (0, 1, 10), (0, 1, 20)).tolist() == [[95, 150], [105, 150], [102, 100], [98, 100]]
    # rows 51 and 50.999 both round to 51: the official code skips the marker
    assert marker_polygon(P, (0, 1, 1000), (0, 1, 1001)) is None


def test_label_is_exact_colour_interior_only(tmp_path):
    lab = multiclass_label(_write(tmp_path / "a.json", [_lane("l0")]), size=(200, 160))
    assert lab.shape == (160, 200) and lab.dtype == np.uint8
    # row 126: quad edges at x = 95 + 24*3/50 = 96.44 and 103.56 -> fully covered pixels 97..103 are l0 (= 2);
    # the partly covered anti-aliased pixels 96 and 104 are not the exact colour -> background
    assert np.flatnonzero(lab[126]).tolist() == list(range(97, 104)) and set(lab[126, 97:104]) == {2}
    assert lab[151:].max() == 0 and lab[:, :94].max() == 0
    drawn = draw_lanes(read_label_json(tmp_path / "a.json"), (200, 160))
    assert (drawn[126, 96] != 0).any() and lab[126, 96] == 0  # the AA rim exists in the drawing


def test_numeric_strings_equal_numbers(tmp_path):
    a = multiclass_label(_write(tmp_path / "a.json", [_lane("l0"), _lane("r0", x=3.0)]), size=(400, 160))
    b = multiclass_label(_write(tmp_path / "b.json", [_lane("l0", as_str=True), _lane("r0", x=3.0, as_str=True)]),
                         size=(400, 160))
    assert np.array_equal(a, b) and set(np.unique(a).tolist()) == {0, 2, 3}


def test_cleaning_and_reindexing(tmp_path):
    lanes = [_lane("l3", x=-9.0), _lane("l0"), _lane("l2", x=-6.0),
             _lane("l1", zs=((10, 11), (10.5, 11.2))),  # pixel_start rows 150 and 145.2 -> span < 20: dropped
             {"lane_id": "r5", "markers": [_marker((3, 1, 10), (3, 1, 30))]},  # one marker: dropped
             _lane("r1", x=3.0, zs=((10, 12), (10.4, 13)))]  # span 150 - 146 = 4 px: dropped
    out = read_label_json(_write(tmp_path / "a.json", lanes))
    assert [ln["lane_id"] for ln in out["lanes"]] == ["l2", "l0", "l1"]  # {l0, l2, l3} -> {l0, l1, l2}
    # exactly 20 px passes: rows 150 and 130
    ok = read_label_json(_write(tmp_path / "b.json", [_lane("r0", zs=((10, 11), (12.5, 13)))]))
    assert [ln["lane_id"] for ln in ok["lanes"]] == ["r0"]
    # lexicographic order, as the official sorted(): l10 sorts before l2
    lex = read_label_json(_write(tmp_path / "c.json", [_lane("l2"), _lane("l10", x=-3.0), _lane("l1", x=-6.0)]))
    assert [ln["lane_id"] for ln in lex["lanes"]] == ["l2", "l1", "l0"]


def test_other_lanes_are_drawn_but_background(tmp_path):
    # l2 is drawn after l0 on the same markers: l0 loses its pixels; l1 stays
    lab = multiclass_label(_write(tmp_path / "a.json", [_lane("l0"), _lane("l1", x=-3.0), _lane("l2")]),
                           size=(400, 160))
    assert not (lab == 2).any() and (lab == 1).any()


@pytest.mark.parametrize("bad, match", [
    (lambda d: d["lanes"][0]["markers"][0]["world_start"].update(z="abc"), r"a\.json.*world_start\.z.*'abc'"),
    (lambda d: d["lanes"][0].update(lane_id="x0"), r"a\.json.*'x0'"),
    (lambda d: d["lanes"][0]["markers"][0]["world_start"].update(z=-1.0), r"a\.json.*z <= 0"),
    (lambda d: d.update(projection_matrix=[[1, 0, 0], [0, 1, 0]]), r"a\.json.*3x3"),
    (lambda d: d["lanes"][0]["markers"][0].pop("pixel_end"), r"a\.json.*pixel_end"),
])
def test_bad_label_files(tmp_path, bad, match):
    d = {"projection_matrix": P.tolist(), "lanes": [_lane("l0")]}
    bad(d)
    (tmp_path / "a.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match=match):
        multiclass_label(tmp_path / "a.json", size=(200, 160))


def test_not_json_and_missing(tmp_path):
    (tmp_path / "a.json").write_text("{nope")
    with pytest.raises(ValueError, match=r"a\.json.*not valid JSON"):
        read_label_json(tmp_path / "a.json")
    with pytest.raises(FileNotFoundError, match=r"b\.json"):
        read_label_json(tmp_path / "b.json")


# ------------------------------------------------------------------------------ synthetic tree
def test_tree_layout_and_json_like_the_real_files(tree):
    jsons = sorted((tree / "labels").rglob("*.json"))
    assert {p.parts[-3] for p in jsons} == {"train", "valid"} and len(jsons) == 6
    assert len(list((tree / "color_images" / "test").rglob("*_color_rect.png"))) == 1
    for j in jsons:
        stem = j.name[: -len(".json")]
        assert (tree / "color_images" / j.parts[-3] / j.parts[-2] / f"{stem}_color_rect.png").is_file()
        assert (tree / "grayscale_images" / j.parts[-3] / j.parts[-2] / f"{stem}_gray_rect.png").is_file()
        d = json.loads(j.read_text())
        proj = np.array(d["projection_matrix"])
        assert proj.shape == (3, 3) and {ln["lane_id"] for ln in d["lanes"]} <= set(LANE_COLOURS)
        for ln in d["lanes"]:
            for mk in ln["markers"]:
                assert all(isinstance(v, str) for k in ("world_start", "pixel_start") for v in mk[k].values())
                for w, p in (("world_start", "pixel_start"), ("world_end", "pixel_end")):
                    u, v, s = proj @ np.array([float(mk[w][a]) for a in "xyz"])
                    assert (int(mk[p]["x"]), int(mk[p]["y"])) == (int(u / s), int(v / s))
                assert int(mk["pixel_start"]["y"]) >= int(mk["pixel_end"]["y"])  # start = nearer the car


def test_items_exist_and_geometry(tree):
    ds = build_dataset("llamas", tree, "train")
    assert len(ds) == 4 and ds.orig_size == (320, 180)
    assert ds.crop_top == round(333 * 180 / 717) and ds.input_size == (240, 72)  # 960x288 scaled, multiples of 8
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        lab = ds.raw_label(i)
        seen |= set(np.unique(lab).tolist())
        assert item["image"].shape == (3, 72, 240) and item["label"].shape == (72, 240)
        assert item["exist"].tolist() == [float((lab == k).any()) for k in range(1, 5)]
        assert np.array_equal(lab, multiclass_label(ds.records[i].label))  # size taken from the tree's image
    assert {0, 2, 3} <= seen <= {0, 1, 2, 3, 4}
    # RGB normalisation of the recipe
    s = DATASETS["llamas"]
    img = cv2.resize(ds.read_image(0)[ds.crop_top:], (240, 72), interpolation=cv2.INTER_LINEAR)[..., ::-1]
    expect = (img.astype(np.float32) - np.float32(s.mean)) / np.float32(s.std)
    assert torch.allclose(ds[0]["image"], torch.from_numpy(expect.transpose(2, 0, 1).copy()), atol=1e-4)
    assert len(build_dataset("llamas", tree, "val")) == len(build_dataset("llamas", tree, "valid")) == 2
    test = build_dataset("llamas", tree, "test")
    assert test.records[0].label is None and (test[0]["label"] == 255).all()


def test_training_items(tree):
    ds = build_dataset("llamas", tree, "train", train=True, rotate_deg=20)
    labels = [ds[0]["label"] for _ in range(5)]
    assert all(lab.shape == (72, 240) for lab in labels)
    assert all(set(lab.unique().tolist()) <= {0, 1, 2, 3, 4, 255} for lab in labels)


def test_restore_prediction_is_what_the_evaluator_reads(tree):
    ds = build_dataset("llamas", tree, "valid")
    w, h = ds.orig_size
    full = build_dataset("llamas", tree, "valid", input_size=(w, h - ds.crop_top))
    raw = full.raw_label(0)
    maps = full.restore_prediction(0, full[0]["label"].numpy())
    assert maps.shape == (5, h, w) and maps.dtype == np.uint8 and set(np.unique(maps).tolist()) <= {0, 255}
    top = ds.crop_top
    assert (maps[0, :top] == 255).all() and (maps[1:, :top] == 0).all()
    for c in range(5):
        assert np.array_equal(maps[c, top:] == 255, raw[top:] == c)
    # probabilities (5, h, w) at the network size: bilinear, value = round(p * 255)
    probs = np.full((5, 72, 240), 0.2, np.float32)
    pm = ds.restore_prediction(0, probs)
    assert pm.shape == (5, h, w) and set(np.unique(pm[:, top:]).tolist()) == {51}
    # the evaluator scores the restored GT of lanes lying entirely below the dropped rows as perfect
    ev = LlamasEvaluator()
    ev.update(maps, np.where(np.arange(h)[:, None] < top, 0, raw))
    present = [c for c in range(1, 5) if (raw[top:] == c).any()]
    assert present and all(ev.sums[c] == pytest.approx(1.0) for c in present)
    with pytest.raises(ValueError, match="outside 0..4"):
        ds.restore_prediction(0, np.full((72, 240), 5))


def test_grayscale_only_tree(tree, tmp_path):
    root = tmp_path / "gray"
    shutil.copytree(tree, root)
    shutil.rmtree(root / "color_images")
    gray = build_dataset("llamas", root, "train")
    color = build_dataset("llamas", tree, "train")
    assert gray.records[0].image.name.endswith("_gray_rect.png")
    img = gray.read_image(0)
    assert img.shape == (180, 320, 3) and (img[..., 0] == img[..., 2]).all()
    assert np.array_equal(gray.raw_label(0), color.raw_label(0))


def test_tree_errors(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_dataset("llamas", tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="'training'"):
        build_dataset("llamas", tree, "training")
    root = tmp_path / "t"
    shutil.copytree(tree, root)
    img = sorted((root / "color_images" / "train").rglob("*.png"))[0]
    img.unlink()
    with pytest.raises(FileNotFoundError, match=img.name):
        build_dataset("llamas", root, "train")
    # a corrupt (truncated) image is one clear error naming it
    other = sorted((root / "color_images" / "valid").rglob("*.png"))[0]
    other.write_bytes(other.read_bytes()[:200])
    with pytest.raises(ValueError, match=other.name):
        build_dataset("llamas", root, "valid")[0]
    for j in (root / "labels" / "valid").rglob("*.json"):
        j.unlink()
    with pytest.raises(ValueError, match="no <recording>/\\*.json"):
        build_dataset("llamas", root, "valid")


# ------------------------------------------------------------------------------ genuine sample
@pytest.mark.real_samples
def test_real_label_file(real_samples, tmp_path):
    src = real_samples / "llamas" / "labels" / "1419287247_0942030000.json"
    raw = json.loads(src.read_text())
    assert [ln["lane_id"] for ln in raw["lanes"]] == ["l5", "l4", "l3", "l2", "l1", "l0", "r0", "r1", "r2"]
    label = read_label_json(src)
    # l5 (1 marker), l4, l3 and l2 (rows spanning < 20 px) are dropped; the rest keep their names
    assert [(ln["lane_id"], len(ln["markers"])) for ln in label["lanes"]] == [
        ("l1", 2), ("l0", 18), ("r0", 18), ("r1", 17), ("r2", 130)]
    # the files' pixels are the truncated projections of the world points (0 <= projection - pixel < 1)
    proj = label["projection_matrix"]
    for ln in label["lanes"]:
        for mk in ln["markers"]:
            for w, p in (("world_start", "pixel_start"), ("world_end", "pixel_end")):
                u, v, s = proj @ np.array(mk[w])
                assert 0 <= u / s - mk[p][0] < 1 and 0 <= v / s - mk[p][1] < 1
    # through the loader: labels/valid/<rec>/<ts>.json + the image as the dataset's PNG
    rec = "images-2014-12-22-13-22-35_mapping_280S_2nd_lane"
    (tmp_path / "labels" / "valid" / rec).mkdir(parents=True)
    (tmp_path / "labels" / "valid" / rec / src.name).symlink_to(src)
    img = cv2.imread(str(real_samples / "llamas" / "color_images" / "1419287247_0942030000_color_rect.jpg"))
    (tmp_path / "color_images" / "valid" / rec).mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "color_images" / "valid" / rec / "1419287247_0942030000_color_rect.png"), img)
    ds = build_dataset("llamas", tmp_path, "valid")
    assert ds.orig_size == (1276, 717) and ds.crop_top == 333 and ds.input_size == (960, 288)
    lab = ds.raw_label(0)
    counts = np.bincount(lab.ravel(), minlength=5)
    assert lab.shape == (717, 1276) and (counts[1:] > 0).all()
    assert counts[2] > 2000 and counts[3] > 2000  # the ego-lane boundaries dominate (measured 3624, 3842)
    assert np.array_equal(lab, multiclass_label(src))  # genuine default size without an image
    item = ds[0]
    assert item["image"].shape == (3, 288, 960) and item["exist"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert ds.key(0) == f"{rec}/{src.name}"


@pytest.mark.real_samples
def test_real_grayscale_images(real_samples, tmp_path):
    rec = "images-2015-10-05-10-52-53_mapping_gilroy_day_1"
    d = tmp_path / "grayscale_images" / "test" / rec
    d.mkdir(parents=True)
    gray = cv2.imread(str(real_samples / "llamas" / "samples" / "sample_gray.jpg"), cv2.IMREAD_UNCHANGED)
    assert gray.ndim == 2 and gray.shape == (717, 1276)
    cv2.imwrite(str(d / "1444067573_0000000000_gray_rect.png"), gray)
    ds = build_dataset("llamas", tmp_path, "test")
    img = ds.read_image(0)
    assert img.shape == (717, 1276, 3) and all(np.array_equal(img[..., c], gray) for c in range(3))
    assert ds[0]["image"].shape == (3, 288, 960)


def test_metrics_cli_reads_labels_through_multiclass_label(tree, tmp_path, capsys):
    from intrakd.cli import main
    from intrakd.metrics.writers import write_llamas_probs

    ds = build_dataset("llamas", tree, "valid", input_size=(320, 180 - round(333 * 180 / 717)))
    for i in range(len(ds)):  # perfect predictions below the dropped rows, written as the server expects
        write_llamas_probs(tmp_path / "pred", ds.key(i), ds.restore_prediction(i, ds[i]["label"].numpy()))
    assert main(["evaluate", "llamas", "--label-root", str(tree / "labels" / "valid"),
                 "--pred-root", str(tmp_path / "pred"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 2
    for c, name in enumerate(("l1", "l0", "r0", "r1"), start=1):
        present = [(ds.raw_label(i) == c).any() for i in range(2)]
        assert out["ap"][name] == pytest.approx(sum(present) / 2)  # AP 1 where present, 0 where absent
