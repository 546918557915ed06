"""CULane loader: list formats (hand cases + the official lists), laneseg labels, .lines.txt, recipe geometry."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from intrakd.data import DATASETS, build_dataset
from intrakd.data.culane import TEST_SPLITS, lanes_to_label, read_list
from intrakd.data.synth import generate
from intrakd.metrics.culane import read_lines

SIZE = (328, 118)  # 1/5 of 1640x590: annotation rows are every 2 px


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate("culane", tmp_path_factory.mktemp("culane"), num=6, seed=4, size=SIZE)


# ------------------------------------------------------------------------------ list files by hand
def test_list_formats(tmp_path):
    p = tmp_path / "train_gt.txt"
    p.write_text("/driver_23_30frame/a.MP4/00000.jpg /laneseg_label_w16/driver_23_30frame/a.MP4/00000.png 1 0 1 1\r\n"
                 "\n"
                 "driver_23_30frame/a.MP4/00030.jpg laneseg_label_w16/driver_23_30frame/a.MP4/00030.png 0 0 0 0  \n")
    a, b = read_list(p)
    assert (a.line, a.image, a.label, a.flags) == (
        1, "/driver_23_30frame/a.MP4/00000.jpg", "/laneseg_label_w16/driver_23_30frame/a.MP4/00000.png", (1, 0, 1, 1))
    assert (b.line, b.image, b.flags) == (3, "driver_23_30frame/a.MP4/00030.jpg", (0, 0, 0, 0))
    q = tmp_path / "test.txt"
    q.write_text("/driver_100_30frame/b.MP4/00000.jpg\ndriver_100_30frame/b.MP4/00030.jpg\n")
    assert [(e.image, e.label, e.flags) for e in read_list(q)] == [
        ("/driver_100_30frame/b.MP4/00000.jpg", None, None), ("driver_100_30frame/b.MP4/00030.jpg", None, None)]


@pytest.mark.parametrize("text, match", [
    ("/a/0.jpg /l/0.png 1 1 1\n", r"bad\.txt:1.*3 flags"),
    ("/a/0.jpg /l/0.png 1 1 1 1\n/a/1.jpg /l/1.png 1 2 1 1\n", r"bad\.txt:2.*\[1, 2, 1, 1\]"),
    ("/a/0.jpg 1 1 1 1\n", r"bad\.txt:1.*label path"),
    ("\n  \n", r"bad\.txt is empty"),
    ("/a/0.txt\n", r"bad\.txt:1: cannot parse"),
])
def test_bad_list_lines(tmp_path, text, match):
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_list(tmp_path / "bad.txt")


def test_lanes_to_label_by_hand():
    lanes = [None, np.array([(10, 5), (10, 25)], float), None, np.array([(30, 25), (2, 25)], float)]
    lab = lanes_to_label(lanes, (40, 30), width=4)
    # thickness 4 -> columns 8..12 on the vertical lane (value = slot 2); slot 4 drawn later overwrites it at y=25
    assert lab[15, 8:13].tolist() == [2] * 5 and lab[15, 7] == 0 and lab[15, 13] == 0
    assert lab[25, 10] == 4 and lab[25, 32] == 4 and lab[25, 33] == 0
    assert set(np.unique(lab).tolist()) == {0, 2, 4}
    assert not lanes_to_label([np.array([(1.0, 1.0)]), None], (8, 8)).any()  # < 2 points: absent


# ------------------------------------------------------------------------------ synthetic tree
def test_tree_layout(tree):
    lst = tree / "list"
    for name in ("train_gt.txt", "val_gt.txt", "train.txt", "val.txt", "test.txt"):
        assert (lst / name).is_file()
    test = [ln for ln in (lst / "test.txt").read_text().splitlines()]
    splits = {s: (lst / "test_split" / f"{s}.txt").read_text().splitlines() for s in TEST_SPLITS}
    assert all(t.startswith("/driver_") for t in test) and len(test) == 9
    assert all(rows and not r.startswith("/") for rows in splits.values() for r in rows)
    assert sorted(f"/{r}" for rows in splits.values() for r in rows) == sorted(test)  # a partition of test.txt
    for r in splits["test7_cross"]:
        assert (tree / r.replace(".jpg", ".lines.txt")).read_text() == ""
    gt = read_list(lst / "train_gt.txt")
    assert len(gt) == 4 and len(read_list(lst / "val_gt.txt")) == 2
    scale = SIZE[1] / 590
    for e in gt:
        with Image.open(tree / e.label.lstrip("/")) as png:
            lab = np.asarray(png)
            assert png.mode == "L" and png.size == SIZE and set(np.unique(lab).tolist()) <= {0, 1, 2, 3, 4}
        assert e.flags == tuple(int((lab == k).any()) for k in range(1, 5))
        text = (tree / e.image.lstrip("/").replace(".jpg", ".lines.txt")).read_text()
        lanes = read_lines(tree / e.image.lstrip("/").replace(".jpg", ".lines.txt"))
        assert len(lanes) == sum(e.flags) and all(row.endswith(" ") for row in text.splitlines())
        for lane in lanes:  # CULane rows: 590, 580, ... scaled, bottom up, consecutive
            rows = lane[:, 1] / scale
            assert np.allclose(rows, np.round(rows / 10) * 10, atol=1e-3) and np.allclose(np.diff(rows), -10)
        # the label is the .lines.txt points drawn 16 px (scaled) wide in slot order
        slots = [None] * 4
        for k, lane in zip([k for k in range(4) if e.flags[k]], lanes):
            slots[k] = lane
        assert np.array_equal(lanes_to_label(slots, SIZE, width=round(16 * SIZE[0] / 1640)), lab)


def test_items_geometry_and_exist(tree):
    ds = build_dataset("culane", tree, "train")
    assert len(ds) == 4 and ds.orig_size == SIZE
    assert ds.crop_top == round(240 * 118 / 590) == 48
    assert ds.input_size == (192, 40)  # 976x208 scaled by 1/5, multiples of 8
    item = ds[1]
    img = cv2.resize(ds.read_image(1)[48:], (192, 40), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    expect = img - np.float32(DATASETS["culane"].mean)
    assert torch.allclose(item["image"], torch.from_numpy(expect.transpose(2, 0, 1)), atol=1e-4)
    lab = cv2.resize(ds.raw_label(1)[48:], (192, 40), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(item["label"].numpy(), lab)
    assert item["exist"].tolist() == [float(f) for f in ds.records[1].exist]
    assert item["name"] == ds.records[1].name and not item["name"].startswith("/")
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 40, 192) and batch["exist"].shape == (2, 4)


def test_training_items(tree):
    ds = build_dataset("culane", tree, "train", train=True, rotate_deg=15)
    labels = [ds[0]["label"] for _ in range(6)]
    assert all(lab.shape == (40, 192) for lab in labels)  # the recipe crops 976x208 out of the rescaled input
    assert all(set(lab.unique().tolist()) <= {0, 1, 2, 3, 4, 255} for lab in labels)
    assert any((lab == 255).any() for lab in labels)  # rotation padding


def test_restore_prediction(tree):
    ds = build_dataset("culane", tree, "val", input_size=(SIZE[0], SIZE[1] - 48))
    raw = ds.raw_label(0)
    out = ds.restore_prediction(0, ds[0]["label"].numpy())
    assert out.shape == (118, 328) and out.dtype == np.uint8
    assert (out[:48] == 0).all() and np.array_equal(out[48:], raw[48:])
    small = np.zeros((40, 192), np.int64)
    small[:, 96:] = 3
    assert set(np.unique(ds.restore_prediction(0, small)[48:, 200:]).tolist()) == {3}
    with pytest.raises(ValueError, match="outside 0..4"):
        ds.restore_prediction(0, small + 2)


def test_test_splits_and_lanes(tree):
    test = build_dataset("culane", tree, "test")
    assert len(test) == 9 and all(r.label is None for r in test.records)
    item = test[0]
    assert (item["label"] == 255).all() and item["exist"].tolist() == [0.0] * 4
    cross = build_dataset("culane", tree, "test7_cross")
    assert len(cross) == 1 and cross.lanes(0) == []
    normal = build_dataset("culane", tree, "normal")
    assert [r.name for r in normal.records] == [r.name for r in build_dataset("culane", tree, "test0_normal").records]
    assert all(len(lane) >= 2 for lane in normal.lanes(0))
    with pytest.raises(ValueError, match="no per-pixel labels"):
        test.raw_label(0)


def test_tree_errors(tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        build_dataset("culane", tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="'test9_rain'"):
        build_dataset("culane", tree, "test9_rain")
    root = tmp_path / "t"
    shutil.copytree(tree, root)
    gt = read_list(root / "list" / "train_gt.txt")
    # a listed image that is missing: one error naming the list line and the file
    (root / gt[1].image.lstrip("/")).unlink()
    with pytest.raises(FileNotFoundError, match=r"train_gt\.txt:2: image .*" + gt[1].image.split("/")[-1]):
        build_dataset("culane", root, "train")
    # a label with a value outside 0..4 names the file and the value
    bad = root / gt[2].label.lstrip("/")
    with Image.open(bad) as im:
        arr = np.asarray(im).copy()
    arr[0, 0] = 5
    Image.fromarray(arr).save(bad)
    (root / "list" / "val_gt.txt").write_text(f"{gt[2].image} {gt[2].label} 1 1 1 1\n")
    ds = build_dataset("culane", root, "val")
    with pytest.raises(ValueError, match=r"00\d\d0\.png.*\[5\]"):
        ds[0]
    # a corrupt image
    img = root / gt[3].image.lstrip("/")
    img.write_bytes(img.read_bytes()[:300])
    (root / "list" / "val_gt.txt").write_text(f"{gt[3].image} {gt[3].label} 1 1 1 1\n")
    with pytest.raises(ValueError, match=img.name):
        build_dataset("culane", root, "val")[0]
    (root / "list" / "val_gt.txt").unlink()
    (root / "list" / "val.txt").write_text("")
    with pytest.raises(ValueError, match="val.txt is empty"):
        build_dataset("culane", root, "val")
    (root / "list" / "train_gt.txt").unlink()
    with pytest.raises(FileNotFoundError, match="train_gt.txt"):
        build_dataset("culane", root, "train")
    missing = build_dataset("culane", tree, "test")
    missing.records[0].extra["lines"] = tmp_path / "none.lines.txt"
    with pytest.raises(FileNotFoundError, match="none.lines.txt"):
        missing.lanes(0)


# ------------------------------------------------------------------------------ genuine files
@pytest.mark.real_samples
def test_official_list_files(real_samples):
    lst = real_samples / "culane" / "list"
    test = read_list(lst / "test.txt")
    # the official lists' line counts (datasets_metrics.md §1.1: test 34,680 = the 9 scenario splits, val 9,675)
    assert len(test) == 34_680 and all(e.image.startswith("/driver_") and e.label is None for e in test)
    counts = {"test0_normal": 9621, "test1_crowd": 8113, "test2_hlight": 486, "test3_shadow": 930,
              "test4_noline": 4067, "test5_arrow": 890, "test6_curve": 422, "test7_cross": 3122, "test8_night": 7029}
    names = []
    for s in TEST_SPLITS:
        rows = read_list(lst / "test_split" / f"{s}.txt")
        assert len(rows) == counts[s] and not rows[0].image.startswith("/")
        names += [e.image for e in rows]
    assert sorted("/" + n for n in names) == sorted(e.image for e in test)
    val = read_list(lst / "val_gt.txt")
    assert len(val) == 9675 and all(len(e.flags) == 4 and e.label.startswith("/laneseg_label_w16/") for e in val)
    assert val[0].flags == (1, 1, 1, 0)


@pytest.mark.real_samples
def test_real_frames_and_annotations(real_samples, tmp_path):
    src = real_samples / "culane"
    gt = read_list(src / "list" / "train_gt.txt")
    assert len(gt) == 180 and gt[0].flags == (1, 1, 1, 1)
    # the genuine root lacks the laneseg PNGs: one error naming the list line and the missing file
    missing = r"laneseg_label_w16/driver_23_30frame/05151649_0422\.MP4/00000\.png"
    with pytest.raises(FileNotFoundError, match=r"train_gt\.txt:1: label .*" + missing):
        build_dataset("culane", src, "train")
    # the five present frames as a test list (links only; nothing is copied)
    (tmp_path / "driver_23_30frame").symlink_to(src / "driver_23_30frame")
    (tmp_path / "list").mkdir()
    frames = [e.image for e in gt if (src / e.image.lstrip("/")).is_file()]
    assert len(frames) == 5
    (tmp_path / "list" / "test.txt").write_text("\n".join(frames) + "\n")
    ds = build_dataset("culane", tmp_path, "test")
    assert ds.orig_size == (1640, 590) and ds.crop_top == 240 and ds.input_size == (976, 208)
    assert ds.read_image(0).shape == (590, 1640, 3) and ds[0]["image"].shape == (3, 208, 976)
    lanes = ds.lanes(0)
    assert len(lanes) == 4 and lanes[0][0].tolist() == pytest.approx([-14.0619, 510])  # the first point of
    # the frame's genuine .lines.txt as written there (negative x kept)
    for i in range(len(ds)):
        for lane in ds.lanes(i):
            assert len(lane) >= 2 and np.allclose(np.diff(lane[:, 1]), -10)
        # drawn like laneseg_label_w16, every annotated lane leaves pixels (flags of train_gt: 1 1 1 1)
        lab = lanes_to_label(ds.lanes(i), (1640, 590))
        assert set(np.unique(lab).tolist()) == {0, 1, 2, 3, 4}
    assert ds.restore_prediction(0, np.zeros((208, 976), np.uint8)).shape == (590, 1640)


def test_labels_and_lines_agree_under_the_f1_metric(tree):
    """Lines recovered (prob2lines, rows scaled to the tree) from the loader's label items match the .lines.txt."""
    from intrakd.metrics import culane as metric

    tp = fp = fn = 0
    for split in ("train", "val"):
        ds = build_dataset("culane", tree, split)
        assert ds.prob2lines_kwargs() == {"crop_top": 48, "orig_size": SIZE, "step": 4.0}
        assert ds.metric_kwargs() == {"width": 6, "size": SIZE}
        for i in range(len(ds)):
            item = ds[i]
            lab = item["label"].numpy()
            maps = np.stack([(lab == k).astype(np.float32) for k in range(1, 5)])
            lanes = metric.prob2lines(maps, item["exist"].numpy(), blur=3, **ds.prob2lines_kwargs())
            c = metric.image_counts(ds.lanes(i), lanes, **ds.metric_kwargs())
            tp, fp, fn = tp + c[0], fp + c[1], fn + c[2]
    assert tp >= 12 and fp == fn == 0
