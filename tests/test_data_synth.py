"""Synthetic world + ApolloScape writer: determinism, class variety, geometry, atomic output, sizes."""

from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from intrakd.data import build_dataset
from intrakd.data.apolloscape import decode_label_ids
from intrakd.data.io import SYNTH_MARKER
from intrakd.data.synth import generate, parse_size, scene_rng, split_counts
from intrakd.data.synth import apolloscape as apollo_writer
from intrakd.data.synth.markings import CLASS_ID, CLASSES, FIRST_MARKING
from intrakd.data.synth.world import render_scene


def _label_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*_bin.png"))}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return generate("apolloscape", tmp_path_factory.mktemp("a") / "apollo", num=9, seed=11, size=(320, 256))


def test_same_seed_same_bytes_other_seed_differs(tree, tmp_path):
    again = generate("apolloscape", tmp_path / "again", num=9, seed=11, size=(320, 256))
    assert _label_bytes(tree) == _label_bytes(again) and len(_label_bytes(tree)) == 9
    jpgs = sorted(p.relative_to(tree).as_posix() for p in tree.rglob("*.jpg"))
    assert all((tree / j).read_bytes() == (again / j).read_bytes() for j in jpgs)
    other = generate("apolloscape", tmp_path / "other", num=9, seed=12, size=(320, 256))
    a, b = _label_bytes(tree), _label_bytes(other)
    assert sorted(a) != sorted(b) or all(a[k] != b[k] for k in a)
    assert not np.array_equal(decode_label_ids(next(tree.rglob("*_bin.png"))),
                              decode_label_ids(next(other.rglob("*_bin.png"))))


def test_splits_lists_and_marker(tree):
    assert split_counts(9) == (6, 3) and split_counts(4) == (2, 2)
    assert len(build_dataset("apolloscape", tree, "train")) == 6
    assert len(build_dataset("apolloscape", tree, "val")) == 3
    test = build_dataset("apolloscape", tree, "test")
    assert len(test) == 1 and test.records[0].label is None and test[0]["label"].eq(255).all()
    assert all("ColorImage_road04" in r.name for r in build_dataset("apolloscape", tree, "val").records)
    assert (tree / SYNTH_MARKER).is_file() and not list(tree.parent.glob("*.tmp-*"))


def test_many_apollo_classes_and_void_above_crop(tree):
    ds = build_dataset("apolloscape", tree, "train")
    seen = set()
    for i in range(len(ds)):
        ids = ds.raw_label(i)
        assert ids.shape == (256, 320)
        seen |= set(np.unique(ids).tolist())
        top = ids[: ds.crop_top]
        assert (top == 0).mean() > 0.85  # markings lie in the kept lower part
        markings = ids[ds.crop_top :] != 0
        assert 0.002 < markings.mean() < 0.3
    assert len(seen - {0}) >= 12, seen  # many marking classes over a few images


def test_scene_vocabulary_and_lanes_are_consistent():
    classes_seen = set()
    lanes_seen = 0
    for s in range(6):
        sc = render_scene(scene_rng(5, s), (424, 340))
        assert sc.image.shape == (340, 424, 3) and sc.image.dtype == np.uint8
        assert sc.semantic.shape == (340, 424) and sc.instance.dtype == np.uint16
        present = set(np.unique(sc.semantic).tolist())
        assert {CLASS_ID[c] for c in ("sky", "road", "sidewalk", "building", "terrain")} <= present
        assert len([c for c in present if c < FIRST_MARKING]) >= 8  # enough for Cityscapes
        classes_seen |= present
        assert len(sc.lanes) == 4
        for lane in sc.lanes:
            if lane is None:
                continue
            lanes_seen += 1
            uvw = lane.cam_xyz @ sc.K.T
            assert np.allclose(uvw[:, :2] / uvw[:, 2:], lane.image_xy, atol=1e-6)
            assert (np.diff(lane.image_xy[:, 1]) < 0).all()  # near (bottom) to far (top)
            assert lane.pieces and all(p[0][2] > 0 and p[1][2] >= p[0][2] for p in lane.pieces)
        l0, r0 = sc.lanes[1], sc.lanes[2]
        if l0 is not None and r0 is not None:
            assert l0.image_xy[0, 0] < r0.image_xy[0, 0]
    assert lanes_seen >= 12
    assert len([c for c in classes_seen if c >= FIRST_MARKING]) >= 10, [CLASSES[c] for c in classes_seen]


def test_render_is_deterministic_for_a_seed():
    a = render_scene(np.random.default_rng(3), (200, 160))
    b = render_scene(np.random.default_rng(3), (200, 160))
    c = render_scene(np.random.default_rng(4), (200, 160))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.semantic, b.semantic)
    assert not np.array_equal(a.semantic, c.semantic)


def test_interrupted_write_leaves_no_complete_looking_tree(tmp_path, monkeypatch):
    original = apollo_writer.write

    def crash(root, **kw):
        original(root, **kw)
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(apollo_writer, "write", crash)
    with pytest.raises(KeyboardInterrupt):
        generate("apolloscape", tmp_path / "out", num=2, seed=0, size=(64, 48))
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_existing_outputs(tmp_path):
    root = generate("apolloscape", tmp_path / "t", num=2, seed=0, size=(64, 48))
    with pytest.raises(ValueError, match="already holds a generated tree"):
        generate("apolloscape", root, num=2, seed=1, size=(64, 48))
    before = _label_bytes(root)
    generate("apolloscape", root, num=2, seed=1, size=(64, 48), overwrite=True)
    assert _label_bytes(root) != before and not list(tmp_path.glob("t.*"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="not a generated tree"):
        generate("apolloscape", mine, num=2, overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (generate("apolloscape", empty, num=2, size=(64, 48)) / SYNTH_MARKER).is_file()


def test_size_and_argument_errors(tmp_path):
    assert parse_size("846x678") == (846, 678)
    for bad in ("846", "axb", "8x8", "10x20x30"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
    with pytest.raises(ValueError, match="at least 2"):
        generate("apolloscape", tmp_path / "n", num=1)
    with pytest.raises(ValueError, match="unknown dataset 'kitti'; valid: apolloscape"):
        generate("kitti", tmp_path / "k")


def test_image_and_label_sizes_follow_size(tmp_path):
    root = generate("apolloscape", tmp_path / "s", num=2, seed=0, size=(150, 120))
    for p in root.rglob("*.jpg"):
        assert Image.open(p).size == (150, 120)
    for p in root.rglob("*_bin.png"):
        assert Image.open(p).size == (150, 120) and Image.open(p).mode == "P"


@pytest.mark.slow
def test_genuine_size_smoke():
    """A scene at ApolloScape's genuine 3384 x 2710 renders with more than 15 of its classes (the generation speed
    is benchmarks/bench_data.py's, as a ratio to rendering alone)."""
    sc = render_scene(np.random.default_rng(0), (3384, 2710), horizon=apollo_writer.HORIZON)
    assert sc.semantic.shape == (2710, 3384) and len(np.unique(sc.semantic)) > 15
