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
from intrakd.engine.evaluate import (FLOOR_PREDICTOR, BackgroundPredictor, evaluate, floor, label_size_logits,
                                     multiscale_logits, paper_units, per_class)

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


# ------------------------------------------------- the engine's scoring on hand-made cases (mutation testing, issue 17)
class _Stub(torch.utils.data.Dataset):
    """A dataset stand-in: image i is a 1 x 2 x 2 tensor of the constant i (what :class:`_Lookup` reads), the
    ground truth ``truth[i]``; the metric-specific hooks are set per case."""

    def __init__(self, truth, **hooks):
        self.truth = truth
        self.records = [type("Rec", (), {"image": f"img{i}", "__str__": lambda r, i=i: f"rec{i}"})()
                        for i in range(len(truth))]
        self.__dict__.update(hooks)

    def __len__(self):
        return len(self.truth)

    def __getitem__(self, i):
        return {"image": torch.full((1, 2, 2), float(i)), "index": i}

    def raw_label(self, i):
        return self.truth[i]

    def lanes(self, i):
        return self.truth[i]


class _Lookup(nn.Module):
    """The stored logits (and lane-existence logits) of the image whose constant value it is given."""

    def __init__(self, logits, exist=None):
        super().__init__()
        self.logits, self.exist = logits, exist

    def forward(self, x):
        idx = x[:, 0, 0, 0].long().tolist()
        out = {"logits": torch.stack([self.logits[i] for i in idx])}
        if self.exist is not None:
            out["exist"] = torch.stack([self.exist[i] for i in idx])
        return out


def _spec(name, metric, **extra):
    from types import SimpleNamespace

    return SimpleNamespace(name=name, metric=metric, upsample_logits=False, **extra)


def _train_ids_logits(ids):
    """3-class logits whose argmax is the train-id map ``ids``."""
    return torch.nn.functional.one_hot(torch.tensor(ids), 3).permute(2, 0, 1).float() * 4 - 2


CS_IDS = np.array([7, 8, 11], np.uint8)  # Cityscapes label IDs of train ids 0, 1, 2 (road, sidewalk, building)


def _segmentation_case():
    gt = [np.array([[7, 7, 8], [11, 11, 8]], np.uint8), np.array([[7, 8, 8], [0, 7, 7]], np.uint8)]  # 0: unlabeled
    logits = [_train_ids_logits([[0, 0, 0], [2, 1, 1]]), _train_ids_logits([[0, 1, 1], [0, 0, 0]])]
    ds = _Stub(gt, restore_prediction=lambda i, pred: CS_IDS[pred])
    return ds, _Lookup(logits)


def test_segmentation_score_by_hand():
    """Pooled confusion (gt, pred): (7,7) 5, (8,7) 1, (8,8) 3, (11,11) 1, (11,8) 1, (0,7) 1 (unlabeled: no FP).
    IoU road 5/6 (1 FP), sidewalk 3/5 (1 FN, 1 FP), building 1/2 (1 FN); 9 of 12 pixels right."""
    ds, model = _segmentation_case()
    result = evaluate(model, ds, _spec("cityscapes", "miou"), torch.device("cpu"))
    assert result["metric"] == "miou" and result["value"] == pytest.approx(100 * (5 / 6 + 3 / 5 + 1 / 2) / 3)
    assert {k: v for k, v in result["per_class"].items() if v is not None} == pytest.approx(
        {"road": 5 / 6, "sidewalk": 3 / 5, "building": 1 / 2})
    assert result["pixel_accuracy"] == pytest.approx(9 / 12) and result["num_images"] == 2
    assert "multiscale" not in result and per_class(result) == result["per_class"]
    first = evaluate(model, ds, _spec("cityscapes", "miou"), torch.device("cpu"), batch_size=1, max_images=1)
    assert first["num_images"] == 1 and first["pixel_accuracy"] == pytest.approx(4 / 6)  # image 0 alone
    assert first["value"] == pytest.approx(100 * (2 / 3 + 1 / 3 + 1 / 2) / 3)  # road 2/3, sidewalk 1/3, building 1/2
    one_pixel = _Stub([np.array([[8]], np.uint8)], restore_prediction=lambda i, pred: CS_IDS[pred])
    result = evaluate(_Lookup([_train_ids_logits([[1]])]), one_pixel, _spec("cityscapes", "miou"), torch.device("cpu"))
    assert result["pixel_accuracy"] == 1.0 and result["value"] == 100.0
    wrong_size = _Stub(ds.truth, restore_prediction=lambda i, pred: CS_IDS[pred][:, :2])
    with pytest.raises(ValueError, match="size mismatch for rec0"):
        evaluate(model, wrong_size, _spec("cityscapes", "miou"), torch.device("cpu"))


def test_label_size_logits_resize_the_kept_rows_by_hand():
    """Logits [0, 4] on one row, to a 4 x 3 image whose top row is dropped: 2 x 4 bilinear (align_corners False):
    source x = (x + 0.5) / 2 - 0.5 = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped) -> 0, 1, 3, 4 on both rows."""
    ds = _Stub([None], full_size=lambda i: (4, 3), top_rows=lambda h: 1 if h == 3 else 99)
    out = label_size_logits(torch.tensor([[[0.0, 4.0]]]), ds, 0)
    assert out.shape == (1, 2, 4)
    np.testing.assert_allclose(out[0].numpy(), [[0, 1, 3, 4], [0, 1, 3, 4]], atol=1e-6)


def _lane_logits(columns, h=30, w=40):
    """5-class CULane logits: background 5 everywhere, lane slot k 15 on its whole column ``columns[k]``."""
    z = torch.zeros(5, h, w)
    z[0] = 5.0
    for k, col in columns.items():
        z[k, :, col] = 15.0
    return z


def _culane_case(with_exist=True):
    """A 40 x 30 canvas, rows sampled every 5 px (blur off): a predicted slot on column c gives the points
    (c, 29), (c, 24), ..., (c, 4), the same lane as a ground truth (c, 29)-(c, 4).
    Image 0: ground truth on columns 5 and 20; slots 1 (col 5), 2 (col 20, existence logit -3) and 3 (col 33).
    Image 1: ground truth on column 10; slots 1 (col 12: 2 px off, IoU 1/5 for the 3-px lines) and 4 (col 30)."""
    gt = [[np.array([[c, 29], [c, 4]], np.float32) for c in cols] for cols in ((5, 20), (10,))]
    logits = [_lane_logits({1: 5, 2: 20, 3: 33}), _lane_logits({1: 12, 4: 30})]
    exist = [torch.tensor([3.0, -3.0, 3.0, -3.0]), torch.tensor([3.0, -3.0, -3.0, 3.0])] if with_exist else None
    ds = _Stub(gt, prob2lines_kwargs=lambda: {"crop_top": 0, "orig_size": (40, 30), "step": 5, "rows": 6, "blur": 1},
               metric_kwargs=lambda: {"width": 3, "size": (40, 30)})
    return ds, _Lookup(logits, exist)


def test_culane_f1_by_hand():
    spec = _spec("culane", "f1")
    ds, model = _culane_case()
    # image 0: TP (col 5), FN (col 20: slot 2 said absent), FP (col 33); image 1: FP + FN (col 12 for 10), FP
    # (col 30). The 3-px line width is the dataset's: at the official 30 px, col 12 would match col 10
    result = evaluate(model, ds, spec, torch.device("cpu"))
    assert (result["tp"], result["fp"], result["fn"]) == (1, 3, 2)
    assert result["precision"] == pytest.approx(1 / 4) and result["recall"] == pytest.approx(1 / 3)
    assert result["value"] == pytest.approx(100 * 2 / 7) and result["f1"] == pytest.approx(2 / 7)
    assert result["metric"] == "f1" and result["line_width"] == 3 and result["num_images"] == 2
    assert per_class(result) is None
    # without an existence head every slot with a lane counts: col 20 is found too
    ds, model = _culane_case(with_exist=False)
    result = evaluate(model, ds, spec, torch.device("cpu"))
    assert (result["tp"], result["fp"], result["fn"]) == (2, 3, 1) and result["value"] == pytest.approx(50.0)
    # the trivial floor: every lane marked absent, every ground-truth lane missed
    low = floor(ds, _spec("culane", "f1", num_classes=5, num_lanes=4, has_exist=True), torch.device("cpu"),
                max_images=1)
    assert low["predictor"] == FLOOR_PREDICTOR and low["num_images"] == 1
    assert (low["tp"], low["fp"], low["fn"], low["value"]) == (0, 0, 2, 0.0)


def test_llamas_map_by_hand():
    """2 x 4 images, one-hot-like logits (softmax 1 or 0, maps 255 or 0). Image 0: l1 exact (AP 1); l0 ground
    truth (1,0), (1,1), predicted (1,0), (1,2): AP = 1 x 1/2 at t = 1, then + (1 - 1/2) x 1/2 at t = 0 = 3/4;
    r0, r1 absent (AP 0, the official quirk). Image 1: r0, r1 exact, l1, l0 absent. Per class over the images:
    l1 1/2, l0 3/8, r0 1/2, r1 1/2. Background: image 0 AP 3/4 + 1/4 x 3/4 = 15/16, image 1 exact."""
    gt = [np.array([[0, 1, 1, 0], [2, 2, 0, 0]]), np.array([[3, 3, 0, 4], [0, 0, 0, 4]])]
    pred = [[[0, 1, 1, 0], [2, 0, 2, 0]], [[3, 3, 0, 4], [0, 0, 0, 4]]]
    logits = [torch.nn.functional.one_hot(torch.tensor(p), 5).permute(2, 0, 1).float() * 40 - 20 for p in pred]
    restored = []  # the images whose maps were restored, by index
    ds = _Stub(gt, restore_prediction=lambda i, probs: restored.append(i) or np.rint(probs * 255).astype(np.uint8))
    result = evaluate(_Lookup(logits), ds, _spec("llamas", "map"), torch.device("cpu"))
    assert restored == [0, 1] and result["metric"] == "map"
    assert result["ap"] == pytest.approx({"l1": 1 / 2, "l0": 3 / 8, "r0": 1 / 2, "r1": 1 / 2})
    assert result["value"] == pytest.approx((1 / 2 + 3 / 8 + 1 / 2 + 1 / 2) / 4)  # a fraction, as in the paper
    assert result["ap_background"] == pytest.approx((15 / 16 + 1) / 2)
    assert result["num_images"] == 2 and per_class(result) == result["ap"]
    wrong_size = _Stub(gt, restore_prediction=lambda i, probs: np.rint(probs * 255).astype(np.uint8)[:, :1])
    with pytest.raises(ValueError, match="size mismatch for img0"):
        evaluate(_Lookup(logits), wrong_size, _spec("llamas", "map"), torch.device("cpu"))


def test_paper_units_and_the_background_predictor():
    assert paper_units("miou", 0.25) == 25.0 and paper_units("f1", 0.5) == 50.0 and paper_units("map", 0.5) == 0.5
    out = BackgroundPredictor(3, 2)(torch.zeros(2, 3, 4, 5, dtype=torch.float64))
    assert out["logits"].dtype == torch.float32 and out["logits"].shape == (2, 3, 4, 5)
    assert torch.equal(torch.softmax(out["logits"], 1)[:, 0], torch.ones(2, 4, 5))  # class 0, certain
    assert out["exist"].dtype == torch.float32 and torch.equal(torch.sigmoid(out["exist"]), torch.zeros(2, 2))
    assert "exist" not in BackgroundPredictor(3)(torch.zeros(1, 3, 4, 5))


def test_evaluate_refuses_unknown_metrics_and_a_misplaced_multiscale_test():
    ds, model = _segmentation_case()
    with pytest.raises(ValueError, match="unknown metric 'ap'"):
        evaluate(model, ds, _spec("cityscapes", "ap"), torch.device("cpu"))
    with pytest.raises(ValueError, match="multi-scale test is ApolloScape's"):
        evaluate(model, ds, _spec("cityscapes", "miou"), torch.device("cpu"),
                 multiscale=MultiScaleTest(sizes=((2, 2),), crop=(2, 2), used=(0,)))


@pytest.mark.parametrize("case", ["miou", "f1", "map"])
def test_the_amp_switch_reaches_the_predictor(monkeypatch, case):
    """AMP only acts on CUDA, so a CPU run cannot see it in the values: the flag handed to ``predict`` is checked."""
    import intrakd.engine.evaluate as module

    seen = []
    real = module.predict

    def spy(model, loader, device, amp=False):
        seen.append(amp)
        return real(model, loader, device, amp)

    monkeypatch.setattr(module, "predict", spy)
    if case == "miou":
        ds, model = _segmentation_case()
        spec = _spec("cityscapes", "miou")
    elif case == "f1":
        ds, model = _culane_case()
        spec = _spec("culane", "f1")
    else:
        ds = _Stub([np.zeros((2, 2), np.int64)], restore_prediction=lambda i, probs: np.rint(probs * 255).astype(np.uint8))
        model, spec = _Lookup([torch.zeros(5, 2, 2)]), _spec("llamas", "map")
    evaluate(model, ds, spec, torch.device("cpu"), amp=True)
    evaluate(model, ds, spec, torch.device("cpu"))
    assert seen == [True, False]  # off unless asked


def test_the_multiscale_test_scores_its_own_logits(monkeypatch):
    """ApolloScape with a multi-scale test: each kept image's logits come from ``multiscale_logits`` (stubbed
    here: exact for image 0) with the run's test and AMP flag, not from the single-scale pass (class 0 only)."""
    import intrakd.engine.evaluate as module

    ids = np.array([0, 200, 204], np.uint8)  # ApolloScape label IDs of train ids 0, 1, 2 (void, s_w_d, s_y_d)
    gt = [np.array([[0, 200], [204, 204]], np.uint8), np.array([[200, 200], [0, 0]], np.uint8)]
    multi = {0: _train_ids_logits([[0, 1], [2, 2]])}
    seen = []

    def fake(model, dataset, idx, device, test, amp=False):
        seen.append((idx, test, amp))
        return multi[idx]

    monkeypatch.setattr(module, "multiscale_logits", fake)
    ds = _Stub(gt, restore_prediction=lambda i, pred: ids[pred])
    single = _Lookup([_train_ids_logits([[0, 0], [0, 0]])] * 2)
    test = MultiScaleTest(sizes=((2, 2),), crop=(2, 2), used=(0,))
    result = evaluate(single, ds, _spec("apolloscape", "miou"), torch.device("cpu"), multiscale=test, amp=True,
                      max_images=1)
    assert seen == [(0, test, True)]
    assert result["value"] == 100.0 and result["pixel_accuracy"] == 1.0 and result["num_images"] == 1
    assert result["multiscale"] == {"sizes": [[2, 2]], "crop": [2, 2], "used_scales": [0]}
