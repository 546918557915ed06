"""ApolloScape loader: both label encodings, 37-class mapping, recipe geometry, submission restore."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from intrakd.data import DATASETS, build_dataset
from intrakd.data.apolloscape import decode_label_ids, ids_to_train
from intrakd.data.synth import generate
from intrakd.labels import APOLLO_LABELS, APOLLO_TRAIN_TO_ID

REAL_IDS = {0, 200, 201, 204, 214, 217, 219, 220, 222, 224, 225, 250, 255}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate("apolloscape", tmp_path_factory.mktemp("apollo"), num=4, seed=3, size=(420, 336))


def test_spec_matches_recipe():
    s = DATASETS["apolloscape"]
    assert s.num_classes == 37 and s.ignore_index == 255 and s.metric == "miou" and not s.has_exist
    assert s.class_weights[0] == s.class_weights[36] == 0.05 and set(s.class_weights[1:36]) == {1.0}
    assert s.paper_input_size == (1692, 505) and s.paper_train_crop == (1488, 496)


def test_eval_items_and_geometry(tree):
    ds = build_dataset("apolloscape", tree, "train")
    assert len(ds) == 2
    assert ds.crop_top == round(1700 * 336 / 2710)  # the official row boundary, scaled
    assert ds.input_size == (208, 64)  # 1692x505 scaled by 420/3384, multiples of 8
    item = ds[0]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 64, 208)
    assert item["label"].dtype == torch.int64 and item["label"].shape == (64, 208)
    assert item["name"].startswith("ColorImage_road0") and item["name"].endswith(".jpg")
    # normalisation: BGR minus the recipe mean, std 1
    img = cv2.imread(str(ds.records[0].image))[ds.crop_top :]
    img = cv2.resize(img, (208, 64), interpolation=cv2.INTER_LINEAR).astype(np.float32) - np.float32(DATASETS["apolloscape"].mean)
    assert torch.allclose(item["image"], torch.from_numpy(img.transpose(2, 0, 1)), atol=1e-4)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 64, 208) and len(batch["name"]) == 2


def test_training_crop_and_rotation_padding(tree):
    ds = build_dataset("apolloscape", tree, "train", train=True, input_size=(208, 64), crop=(160, 48),
                       rotate_deg=30)
    labels = [ds[0]["label"] for _ in range(6)]
    assert all(lab.shape == (48, 160) for lab in labels)
    assert any((lab == 255).any() for lab in labels)  # rotation pads with ignore
    assert all(set(lab.unique().tolist()) <= set(range(37)) | {255} for lab in labels)


def test_palette_png_decodes_by_index_and_by_colour(tree):
    ds = build_dataset("apolloscape", tree, "val")
    path = ds.records[0].label
    assert Image.open(path).mode == "P"
    ids = decode_label_ids(path)
    # cv2 expands the palette to the table colours: decode them with the IntRA-KD colour key
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR).astype(np.int64)
    key = bgr[..., 0] * 5 + bgr[..., 1] * 3 + bgr[..., 2]
    table = {lab.color[2] * 5 + lab.color[1] * 3 + lab.color[0]: lab.id for lab in APOLLO_LABELS}
    assert np.array_equal(np.vectorize(table.__getitem__)(key), ids)


def test_rgb_table_colour_png_gives_same_ids(tree, tmp_path):
    ds = build_dataset("apolloscape", tree, "val")
    ids = decode_label_ids(ds.records[0].label)
    colours = np.zeros((256, 3), np.uint8)
    for lab in APOLLO_LABELS:
        colours[lab.id] = lab.color
    Image.fromarray(colours[ids]).save(tmp_path / "rgb_bin.png")
    assert np.array_equal(decode_label_ids(tmp_path / "rgb_bin.png"), ids)
    bad = colours[ids].copy()
    bad[3, 5] = (1, 2, 3)
    Image.fromarray(bad).save(tmp_path / "bad_bin.png")
    with pytest.raises(ValueError, match=r"bad_bin.png.*\(1, 2, 3\).*x=5, y=3"):
        decode_label_ids(tmp_path / "bad_bin.png")


def test_merged_class_and_mapping():
    ids = np.array([[0, 200, 249, 255, 250, 213]], np.uint8)
    assert ids_to_train(ids).tolist() == [[0, 1, 36, 36, 35, 3]]


def test_restore_prediction_is_submission_geometry(tree):
    ds = build_dataset("apolloscape", tree, "val")
    w, h = ds.orig_size
    ds_full = build_dataset("apolloscape", tree, "val", input_size=(w, h - ds.crop_top))
    pred = ds_full[0]["label"].numpy()
    out = ds_full.restore_prediction(0, pred)
    raw = ds_full.raw_label(0)
    assert out.shape == (h, w) and out.dtype == np.uint8
    assert (out[: ds.crop_top] == 0).all()
    expect = raw[ds.crop_top :].copy()
    expect[expect == 255] = 249  # class 36 is written as noise, as the official submission script
    assert np.array_equal(out[ds.crop_top :], expect)
    # a prediction at the network size is nearest-resized into the kept rows
    small = np.full((64, 208), 12, np.int64)
    assert set(np.unique(ds.restore_prediction(0, small)[ds.crop_top :])) == {int(APOLLO_TRAIN_TO_ID[12])}


@pytest.mark.real_samples
def test_real_evaluator_labels_decode_to_official_ids(real_samples):
    base = real_samples / "apolloscape_lane" / "test_eval_data"
    gts = [base / line.strip().lstrip("./") for line in (base / "gt_list.csv").read_text().splitlines() if line]
    preds = [base / line.strip().lstrip("./") for line in (base / "pred_list.csv").read_text().splitlines() if line]
    assert len(gts) == len(preds) == 6
    seen = set()
    for g, p in zip(gts, preds):
        ids = decode_label_ids(g)
        assert ids.shape == (2710, 3384)
        assert np.array_equal(ids, np.asarray(Image.open(g)))  # palette indices, not colours
        assert np.array_equal(ids, decode_label_ids(p))
        seen |= set(np.unique(ids).tolist())
        assert (ids_to_train(ids) <= 36).all()
    assert seen == REAL_IDS
    # the embedded palette is not the table: a colour reader would get other values
    bgr = cv2.imread(str(gts[0]), cv2.IMREAD_COLOR)
    assert not np.array_equal(bgr[..., 0], decode_label_ids(gts[0]))


def test_missing_listed_file_is_file_not_found_naming_list_line(tmp_path):
    root = generate("apolloscape", tmp_path / "apollo", num=3, seed=1, size=(420, 336))
    lst = root / "list" / "train.txt"
    image = root / (lst.read_text().splitlines()[0].split(".jpg ")[0] + ".jpg")  # paths hold "Camera 5"
    image.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"train.txt:1: image {image} does not exist")):
        build_dataset("apolloscape", root, "train")
