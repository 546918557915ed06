"""Evaluation paths against hand-made cases: Cityscapes upsamples the logits before the argmax; ApolloScape's
official multi-scale test (crop-coverage averaging, the released scales); ``intrakd data check`` reports images
shared between splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from intrakd.data import build_dataset, check_dataset
from intrakd.data.apolloscape import TEST_SCALES, MultiScaleTest, multiscale_test
from intrakd.data.spec import DATASETS
from intrakd.engine.evaluate import evaluate, label_size_logits, multiscale_logits

torch.set_num_threads(1)
A, B, C = 0, 1, 2  # Cityscapes trainIds road, sidewalk, building


class FixedLogits(nn.Module):
    """Returns the same C x h x w logits for every image of a batch (the network's input size must match)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        assert x.shape[-2:] == self.logits.shape[-2:]
        return {"logits": self.logits.expand(len(x), -1, -1, -1)}


def _columns_logits(h: int, w: int, num_classes: int = 19) -> torch.Tensor:
    """Even columns say A (+1, B -1), odd columns B (+1, A -1); C is 0.8 everywhere, every other class -5."""
    z = torch.full((num_classes, h, w), -5.0)
    even = torch.arange(w) % 2 == 0
    z[A] = torch.where(even, 1.0, -1.0)
    z[B] = torch.where(even, -1.0, 1.0)
    z[C] = 0.8
    return z


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory) -> Path:
    from intrakd.data.synth import generate

    return generate("cityscapes", tmp_path_factory.mktemp("cs") / "cityscapes", num=3, seed=0, size=(32, 16))


def test_cityscapes_upsamples_the_logits_before_the_argmax(cityscapes_root):
    """16 x 8 logits to a 32 x 16 label: bilinear x2 (align_corners False) gives every interior pixel 3/4 of one
    column and 1/4 of its neighbour, A and B +-0.5 against C's 0.8, so C wins everywhere but the two border
    columns (clamped: A on the left, B on the right); an argmax first, nearest-resized, gives A A B B ... instead."""
    ds = build_dataset("cityscapes", cityscapes_root, "val")
    assert ds.input_size == (16, 8) and ds.full_size(0) == (32, 16) and DATASETS["cityscapes"].upsample_logits
    logits = _columns_logits(8, 16)
    upsampled = label_size_logits(logits, ds, 0).argmax(0)
    expected = torch.full((16, 32), C)
    expected[:, 0], expected[:, 31] = A, B
    assert torch.equal(upsampled, expected)
    nearest = logits.argmax(0).repeat_interleave(2, dim=1).repeat_interleave(2, dim=0)  # what the old path kept
    assert torch.equal(nearest[0, :4], torch.tensor([A, A, B, B]))
    # evaluate() scores exactly the upsampled prediction (label IDs at full size) against the ground truth
    result = evaluate(FixedLogits(logits), ds, ds.spec, torch.device("cpu"))
    pred_ids = ds.restore_prediction(0, expected.numpy().astype(np.uint8))
    gt = ds.raw_label(0)
    assert result["pixel_accuracy"] == pytest.approx(float((pred_ids == gt).mean()))
    assert not DATASETS["apolloscape"].upsample_logits  # ApolloScape keeps argmax-then-nearest (its pipeline)


def test_multiscale_geometry_is_the_released_scripts_at_genuine_size():
    erf = multiscale_test((1692, 505), "erfnet", "official")
    assert erf.sizes == TEST_SCALES == ((1692, 505), (1861, 556), (1624, 485), (2030, 606))
    assert erf.crop == (1440, 480) and erf.used == (1, 2, 3)  # scale 0 computed but never added, as released
    assert multiscale_test((1692, 505), "pspnet_r101", "all").crop == (1408, 472)  # 1410 x 470 to multiples of 8
    assert multiscale_test((1692, 505), "pspnet_r101", "all").used == (0, 1, 2, 3)
    assert multiscale_test((1692, 505), "enet", "official").crop == (1440, 480)
    assert multiscale_test((1692, 505), "erfnet", "single") is None
    with pytest.raises(ValueError, match="eval_scales 'four'"):
        multiscale_test((1692, 505), "erfnet", "four")


class _ConstantImages:
    """A stand-in dataset: every scale's image is constant, its value the scale's width."""

    def eval_image(self, idx, size):
        w, h = size
        return torch.full((1, h, w), float(w))


class _CropStatistics(nn.Module):
    """Logits of a batch of crops: channel 0 = the crop's batch position (0 TL, 1 TR, 2 BL, 3 BR), channel 1 =
    the crop's mean value."""

    def forward(self, x):
        b, _, h, w = x.shape
        pos = torch.arange(b, dtype=torch.float32)[:, None, None].expand(b, h, w)
        mean = x.mean(dim=(1, 2, 3))[:, None, None].expand(b, h, w)
        return {"logits": torch.stack([pos, mean], 1)}


def test_multiscale_divides_by_the_crop_coverage():
    """One 10 x 6 scale, 8 x 4 corner crops: columns 0-1 only in the left crops, 8-9 only in the right ones, rows
    0-1 only in the top ones, 4-5 only in the bottom ones; the middle is covered by all four (mean index 1.5)."""
    test = MultiScaleTest(sizes=((10, 6),), crop=(8, 4), used=(0,))
    out = multiscale_logits(_CropStatistics(), _ConstantImages(), 0, torch.device("cpu"), test)
    pos = out[0]
    assert pos.shape == (6, 10)
    assert pos[0, 0] == 0 and pos[0, 9] == 1 and pos[5, 0] == 2 and pos[5, 9] == 3  # one crop each
    assert pos[0, 5] == pytest.approx(0.5) and pos[3, 0] == pytest.approx(1.0)  # TL+TR; TL+BL
    assert pos[3, 5] == pytest.approx(1.5)  # all four
    assert torch.all(out[1] == 10.0)


def test_multiscale_averages_the_used_scales_only():
    """Each scale's image is constant (its width), so its averaged logits are that width everywhere: "official"
    gives the mean of scales 1-3 (scale 0 is not added, as in the released script), "all" of the four."""
    official = multiscale_test((1692, 505), "erfnet", "official")
    out = multiscale_logits(_CropStatistics(), _ConstantImages(), 0, torch.device("cpu"), official)
    assert out.shape == (2, 505, 1692)
    assert torch.allclose(out[1], torch.tensor((1861 + 1624 + 2030) / 3))
    every = multiscale_logits(_CropStatistics(), _ConstantImages(), 0, torch.device("cpu"),
                              multiscale_test((1692, 505), "erfnet", "all"))
    assert torch.allclose(every[1], torch.tensor((1692 + 1861 + 1624 + 2030) / 4))


@pytest.fixture(scope="module")
def apollo_root(tmp_path_factory) -> Path:
    from helpers import tiny_apollo

    return tiny_apollo(tmp_path_factory, num=6)


def test_multiscale_run_option_on_a_tiny_apollo_tree(apollo_root, tmp_path):
    from helpers import tiny_cfg

    from intrakd.engine.train import Trainer
    from intrakd.models import build_model

    ds = build_dataset("apolloscape", apollo_root, "val", input_size=(104, 32))
    test = multiscale_test(ds.input_size, "erfnet", "official")
    assert test.sizes == ((104, 32), (114, 35), (100, 31), (125, 38)) and test.crop == (88, 24)
    torch.manual_seed(0)
    model = build_model("erfnet", 37, width=0.125)
    result = evaluate(model, ds, ds.spec, torch.device("cpu"), multiscale=test)
    assert result["multiscale"] == {"sizes": [[104, 32], [114, 35], [100, 31], [125, 38]], "crop": [88, 24],
                                    "used_scales": [1, 2, 3]}
    assert 0 <= result["value"] <= 100 and result["num_images"] == len(ds)
    single = evaluate(model, ds, ds.spec, torch.device("cpu"))
    assert "multiscale" not in single
    # the run option: off by default (the fingerprint keeps its old keys), checked against the dataset
    trainer = Trainer(tiny_cfg(apollo_root, tmp_path / "ms", eval_scales="official"))
    assert trainer.multiscale == test and trainer.fingerprint()["config"]["eval_scales"] == "official"
    plain = Trainer(tiny_cfg(apollo_root, tmp_path / "plain"))
    assert plain.multiscale is None and "eval_scales" not in plain.fingerprint()["config"]
    assert "multiscale" in trainer.validate_now() and "multiscale" not in trainer.validate_now(final=False)
    with pytest.raises(ValueError, match="eval_scales must be one of single, official, all, got 'four'"):
        tiny_cfg(apollo_root, tmp_path / "x", eval_scales="four").validate()
    with pytest.raises(ValueError, match="eval_scales 'official' is ApolloScape's multi-scale test; dataset 'culane'"):
        tiny_cfg(apollo_root, tmp_path / "x", dataset="culane", eval_scales="official").validate()


def test_data_check_reports_images_shared_between_splits(apollo_root, tmp_path, capsys):
    """A val list that names one training image (same path) and a byte copy of another (other path)."""
    from intrakd.cli import main

    root = tmp_path / "apolloscape"
    shutil.copytree(apollo_root, root)
    train = [line for line in (root / "list/train.txt").read_text().splitlines() if line.strip()]
    recs = build_dataset("apolloscape", root, "train").records
    first, second = recs[0].name, recs[1].name  # the images of the first two list lines
    assert first in train[0] and second in train[1]
    copy = str(Path(second).with_name("copy_" + Path(second).name).as_posix())
    shutil.copy(recs[1].image, root / copy)
    val = (root / "list/val.txt").read_text().rstrip("\n").splitlines()
    (root / "list/val.txt").write_text("\n".join(val + [train[0], train[1].replace(second, copy, 1)]) + "\n")
    assert check_dataset("apolloscape", apollo_root, "val")["shared_images"] == {}  # the clean tree
    shared = check_dataset("apolloscape", root, "val")["shared_images"]
    assert shared == {"train": {"same_path": [first], "same_content": [[copy, second]]}}
    assert main(["data", "check", "apolloscape", str(root), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["shared_images"] == shared
    assert ("intrakd data check: warning: apolloscape val shares 2 image(s) with split 'train' (1 at the same path, "
            "1 with identical bytes at another path") in err


def test_a_run_scores_its_final_model_with_the_multiscale_test(apollo_root, tmp_path):
    import pandas as pd
    from helpers import tiny_cfg

    from intrakd.engine import train

    metrics = train(tiny_cfg(apollo_root, tmp_path / "run", epochs=2, eval_scales="official"))
    assert metrics["result"]["multiscale"]["used_scales"] == [1, 2, 3]
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert history["val_miou"].iloc[-1] == pytest.approx(metrics["value"])  # the last row is the final score


def test_workflow_refuses_the_multiscale_test_for_another_dataset(tmp_path):
    import yaml
    from test_workflow_static import REPO, _copy_config, _snakemake

    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["train"]["eval_scales"] = "official"
    config["datasets"]["culane"] = {"source": "real", "root": "/data/CULane"}
    proc = _snakemake("-n", "--directory", str(_copy_config(tmp_path, config)), "--snakefile", str(REPO / "Snakefile"),
                      check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config eval_scales (train of erfnet on culane): 'official' is ApolloScape's multi-scale test" in out
