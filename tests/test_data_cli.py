"""`intrakd synth` / `intrakd data check`, the loaders' error contract and training-RNG resumability."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from intrakd.cli import main
from intrakd.data import DATASETS, build_dataset
from intrakd.data.io import read_image, read_list
from intrakd.labels import APOLLO_LABELS


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "apollo"
    assert main(["synth", "apolloscape", str(out), "--num", "4", "--seed", "2", "--size", "160x128"]) == 0
    return out


@pytest.fixture
def copy(tree, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(tree, dst)
    return dst


def _check(capsys, *args):
    rc = main(["data", "check", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_synth_then_check_json(tree, capsys):
    rc, out, _ = _check(capsys, "apolloscape", tree, "--split", "train", "--json")
    assert rc == 0
    summary = json.loads(out)
    assert summary["dataset"] == "apolloscape" and summary["split"] == "train" and summary["images"] == 2
    assert set(summary["label_values"]) <= {lab.id for lab in APOLLO_LABELS} and 0 in summary["label_values"]
    assert len(summary["label_values"]) >= 3
    assert sum(summary["class_pixels"].values()) == 2 * 160 * 128
    assert set(map(int, summary["class_pixels"])) <= set(range(37))


def test_workflow_command_line_prints_root(tmp_path):
    out = tmp_path / "wf"
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    res = subprocess.run([sys.executable, "-m", "intrakd.cli", "synth", "apolloscape", str(out), "--num", "2",
                          "--seed", "0", "--size", "64x48"], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out) and (out / "list" / "train.txt").is_file()


def test_bad_size_string_is_one_clear_error(tmp_path, capsys):
    assert main(["synth", "apolloscape", str(tmp_path / "x"), "--size", "640by480"]) == 1
    assert "640by480" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_check_names_a_missing_file(copy, capsys):
    lst = copy / "list" / "val.txt"
    label = copy / lst.read_text().splitlines()[0].split(".jpg ")[1]
    label.unlink()
    rc, _, err = _check(capsys, "apolloscape", copy)
    assert rc == 1 and str(label) in err and "val.txt:1" in err


def test_check_names_an_out_of_table_value(copy, capsys):
    ds = build_dataset("apolloscape", copy, "val")
    path = ds.records[1].label
    ids = np.asarray(Image.open(path)).copy()
    ids[5, 7] = 7  # not an ApolloScape label ID
    im = Image.fromarray(ids, mode="P")
    im.putpalette(Image.open(path).getpalette())
    im.save(path)
    rc, _, err = _check(capsys, "apolloscape", copy)
    assert rc == 1 and path.name in err and "[7]" in err


def test_check_names_a_truncated_image(copy, capsys):
    ds = build_dataset("apolloscape", copy, "train")
    img = ds.records[0].image
    img.write_bytes(img.read_bytes()[:-200])
    rc, _, err = _check(capsys, "apolloscape", copy, "--split", "train")
    assert rc == 1 and img.name in err and "truncated" in err
    with pytest.raises(ValueError, match="truncated"):
        read_image(img)
    (copy / "junk.jpg").write_bytes(b"\xff\xd8 not a jpeg \xff\xd9")
    with pytest.raises(ValueError, match="junk.jpg.*cannot be decoded"):
        read_image(copy / "junk.jpg")


def test_empty_list_and_missing_root(copy, tmp_path, capsys):
    (copy / "list" / "val.txt").write_text("\n")
    rc, _, err = _check(capsys, "apolloscape", copy)
    assert rc == 1 and "val.txt" in err and "empty" in err
    rc, _, err = _check(capsys, "apolloscape", tmp_path / "nowhere")
    assert rc == 1 and "nowhere" in err and "does not exist" in err
    rc, _, err = _check(capsys, "apolloscape", copy, "--split", "trainval")
    assert rc == 1 and "list/trainval.txt" in err


def test_unknown_dataset_lists_valid_names(tree):
    with pytest.raises(ValueError, match=r"unknown dataset 'kitti'; valid: apolloscape, cityscapes, culane, llamas"):
        build_dataset("kitti", tree, "train")


def test_list_parser_handles_spaces_and_flags(tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("a/Camera 5/x.jpg b/Camera 5/x_bin.png\n\n/d/1.jpg /seg/1.png 1 0 1 1\n/d/2.jpg\n")
    e = read_list(lst)
    assert [(x.image, x.label, x.flags) for x in e] == [
        ("a/Camera 5/x.jpg", "b/Camera 5/x_bin.png", None), ("/d/1.jpg", "/seg/1.png", (1, 0, 1, 1)),
        ("/d/2.jpg", None, None)]
    with pytest.raises(ValueError, match=r"l.txt:4: no label"):
        read_list(lst, need_label=True)
    with pytest.raises(ValueError, match=r"l.txt:3: 4 flags"):
        read_list(lst, num_flags=2)


def test_training_augmentation_follows_torch_seed(tree):
    ds = build_dataset("apolloscape", tree, "train", train=True, input_size=(96, 32), crop=(64, 24), rotate_deg=10)
    assert ds.crop == (64, 24) and ds.rotate_deg == 10
    torch.manual_seed(7)
    a = [ds[0]["label"] for _ in range(4)]
    torch.manual_seed(7)
    b = [ds[0]["label"] for _ in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(a[0], x) for x in a[1:])  # the crop really is random


def test_default_geometry_is_the_recipe_scaled(tree):
    ds = build_dataset("apolloscape", tree, "train", train=True)
    spec = DATASETS["apolloscape"]
    assert ds.orig_size == (160, 128) and ds.rotate_deg == spec.rotate_deg
    assert ds.input_size == (80, 24)  # 1692x505 * 160/3384 -> multiples of 8
    assert ds.crop == (72, 24)  # the paper's 1488x496 crop of 1692x505, same ratio
    item = ds[0]
    assert item["image"].shape == (3, 24, 72) and item["exist"].numel() == 0


def test_list_flags_must_be_integers(tmp_path):
    from intrakd.data.io import read_list

    lst = tmp_path / "train_gt.txt"
    lst.write_text("/a.jpg /a.png 1 0 1 1\n/b.jpg /b.png 1 0.7 1 1\n")
    with pytest.raises(ValueError, match=r"train_gt.txt:2: flags .*'0.7'.* must be integers"):
        read_list(lst, num_flags=4)
    lst.write_text("/a.jpg /a.png 1 0 1 1\n")
    assert read_list(lst, num_flags=4)[0].flags == (1, 0, 1, 1)
