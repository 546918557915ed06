"""Floors (the all-background predictor on the same images and metric), common random numbers (runs of one seed
share initial weights and data order whatever their method) and the world knob that keeps markings learnable."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from intrakd.data import DATASETS, build_dataset
from intrakd.data.io import SYNTH_MARKER
from intrakd.data.synth.apolloscape import save_label
from intrakd.distill import METHOD_REGISTRY, register_method
from intrakd.method_cards import METHOD_CARDS, MethodCard
from intrakd.distill.base import Distiller
from intrakd.engine import train
from intrakd.engine.evaluate import FLOOR_PREDICTOR, floor
from intrakd.models import build_model
from intrakd.models.checkpoint import save_weights

from helpers import tiny_apollo, tiny_cfg


@pytest.fixture(scope="module")
def apollo_root(tmp_path_factory) -> Path:
    return tiny_apollo(tmp_path_factory, num=4)


def _hand_made_tree(root: Path) -> None:
    """Two 64 x 48 val images: void everywhere but a 4 x 10 block of s_w_d (ID 200) in the first label and a
    3 x 5 block of a_w_t (ID 220) in the second, both below the rows the recipe drops (round(1700 * 48 / 2710) = 30)."""
    lines = []
    for k, (label_id, (y, x, h, w)) in enumerate([(200, (34, 10, 4, 10)), (220, (40, 30, 3, 5))]):
        img = f"ColorImage_road04/ColorImage/Record015/Camera 5/17_{k}_Camera_5.jpg"
        lab = f"Labels_road04/Label/Record015/Camera 5/17_{k}_Camera_5_bin.png"
        for rel in (img, lab):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / img), np.full((48, 64, 3), 90, np.uint8))
        ids = np.zeros((48, 64), np.uint8)
        ids[y : y + h, x : x + w] = label_id
        save_label(root / lab, ids)
        lines.append(f"{img} {lab}")
    (root / "list").mkdir()
    (root / "list" / "val.txt").write_text("\n".join(lines) + "\n")


def test_floor_of_a_hand_made_tree(tmp_path):
    _hand_made_tree(tmp_path)
    ds = build_dataset("apolloscape", tmp_path, "val", train=False, input_size=(64, 16))
    result = floor(ds, DATASETS["apolloscape"], torch.device("cpu"))
    # background everywhere: void IoU = void pixels / (void pixels + the 55 marking pixels it swallows);
    # s_w_d and a_w_t (in the ground truth, never predicted) score 0; every other class is absent from both: NaN
    void = 2 * 64 * 48 - 40 - 15
    expected = 100 * (void / (void + 55) + 0 + 0) / 3
    assert result["value"] == pytest.approx(expected, abs=1e-9)
    assert result["per_class"]["void"] == pytest.approx(void / (void + 55))
    assert result["per_class"]["s_w_d"] == 0 and result["per_class"]["a_w_t"] == 0
    assert result["per_class"]["b_w_g"] is None
    assert result["predictor"] == FLOOR_PREDICTOR


class _RandomDraws(Distiller):
    """A test method that draws from torch's global RNG at every step, as a stochastic method would."""

    name = "_test_random_draws"
    needs_teacher = False

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        noise = torch.rand(997)  # an odd amount: it would shift every later global draw
        return {"zero": (noise * 0).sum() + 0 * s_out["logits"].sum()}


@pytest.fixture(scope="module")
def crn_runs(apollo_root, tmp_path_factory):
    """Same seed with three methods (one drawing random numbers, one with a teacher), and another seed."""
    tmp = tmp_path_factory.mktemp("crn")
    METHOD_CARDS.register(_RandomDraws.name, MethodCard(_RandomDraws.name, "+ random draws"))  # every method has one
    register_method(_RandomDraws)
    try:
        teacher = build_model("pspnet_r101", 37, width=0.125)
        save_weights(tmp / "teacher.pt", teacher, name="pspnet_r101", num_classes=37, width=0.125, exist_head=False)
        kw = dict(epochs=2, rotate_deg=10.0, batch_size=1)  # two steps an epoch: a draw can shift the next item
        runs = {
            "baseline": train(tiny_cfg(apollo_root, tmp / "baseline", **kw)),
            "random": train(tiny_cfg(apollo_root, tmp / "random", method="_test_random_draws", **kw)),
            "intrakd": train(tiny_cfg(apollo_root, tmp / "intrakd", method="intrakd", teacher="pspnet_r101",
                                      teacher_width=0.125, teacher_checkpoint=str(tmp / "teacher.pt"), **kw)),
            "seed1": train(tiny_cfg(apollo_root, tmp / "seed1", seed=1, **kw)),
        }
    finally:
        METHOD_REGISTRY.unregister(_RandomDraws.name)  # other tests list the registry
        METHOD_CARDS.unregister(_RandomDraws.name)
    return runs, tmp


def test_runs_of_one_seed_share_initial_weights_and_data_whatever_the_method(crn_runs):
    runs, _tmp = crn_runs
    base = runs["baseline"]
    for name in ("random", "intrakd"):
        assert runs[name]["init_sha256"] == base["init_sha256"], name
        assert runs[name]["data_sha256"] == base["data_sha256"], name
    assert runs["seed1"]["init_sha256"] != base["init_sha256"]
    assert runs["seed1"]["data_sha256"] != base["data_sha256"]


def test_initial_weights_digest_is_the_seeded_model(crn_runs):
    from intrakd.engine.distributed import parameter_digest

    runs, _tmp = crn_runs
    torch.manual_seed(123)  # whatever state the caller left: the engine seeds the student itself
    torch.manual_seed(0)
    fresh = build_model("erfnet", 37, width=0.125)
    assert parameter_digest(fresh) == runs["baseline"]["init_sha256"]


def test_augmented_items_depend_on_seed_and_index_only(apollo_root):
    ds = build_dataset("apolloscape", apollo_root, "train", train=True, input_size=(104, 32), rotate_deg=10.0)
    ds.set_augment_seed(7)
    first = ds[1]
    torch.rand(1234)  # global draws in between change nothing
    again = ds[1]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["label"], again["label"])
    ds.set_augment_seed(8)
    other = ds[1]
    assert not torch.equal(first["image"], other["image"])


def test_every_run_records_its_floor_and_per_class_scores(crn_runs):
    runs, tmp = crn_runs
    on_disk = json.loads((tmp / "baseline" / "metrics.json").read_text())
    fl = on_disk["floor"]
    assert fl["predictor"] == FLOOR_PREDICTOR and set(fl["per_class"]) == set(on_disk["per_class"])
    assert fl["per_class"]["void"] > 0.5 and all(v in (0, None) for k, v in fl["per_class"].items() if k != "void")
    assert on_disk["per_class"] == on_disk["result"]["per_class"]
    # same evaluation images for every method of the dataset: the same floor
    assert len({r["floor"]["value"] for r in runs.values()}) == 1


def test_paint_width_widens_markings_and_defaults_are_unchanged(tmp_path):
    from intrakd.data.synth import generate, scene_rng
    from intrakd.data.synth.world import WorldParams, render_scene

    plain = render_scene(scene_rng(0, 3), (424, 340))
    default = render_scene(scene_rng(0, 3), (424, 340), world=WorldParams())
    wide = render_scene(scene_rng(0, 3), (424, 340), world=WorldParams(paint_width=2.0))
    assert np.array_equal(plain.image, default.image) and np.array_equal(plain.semantic, default.semantic)
    from intrakd.data.synth.markings import FIRST_MARKING

    marked = [int((s.semantic >= FIRST_MARKING).sum()) for s in (plain, wide)]
    assert marked[1] > 1.5 * marked[0]
    with pytest.raises(ValueError, match="paint_width"):
        WorldParams(paint_width=0)
    with pytest.raises(ValueError, match="unknown world parameter"):
        generate("apolloscape", tmp_path / "x", num=2, world={"paint": 2})
    root = generate("apolloscape", tmp_path / "wide", num=2, world={"paint_width": 2.0})
    assert json.loads((root / SYNTH_MARKER).read_text())["world"] == {"paint_width": 2.0}


def test_git_commit_dirty_ignores_generated_results(tmp_path):
    """A modified tracked file marks the commit dirty; rewritten outputs under a results/ folder (the committed
    default results, at any depth) do not."""
    import subprocess

    from intrakd.vcs import git_commit

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    for rel in ("code.py", "results/tables/t.md", "presets/p/results/x.csv"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    sha = git_commit(tmp_path / "presets")
    assert len(sha) == 40
    (tmp_path / "results/tables/t.md").write_text("b\n")
    (tmp_path / "presets/p/results/x.csv").write_text("b\n")
    assert git_commit(tmp_path / "presets") == sha
    (tmp_path / "code.py").write_text("b\n")
    assert git_commit(tmp_path / "presets") == sha + "+dirty"
