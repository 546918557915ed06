"""Pretrained backbones (``backbone_weights``) and the official optimiser recipes (parameter groups, schedules).

State dicts come from torchvision's own constructors (``weights=None``), saved to tmp: nothing is downloaded.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
import torchvision
import yaml

from intrakd.cli import main as cli_main
from intrakd.engine import RunConfig, train
from intrakd.engine.optim import param_groups, scheduled_lr, student_groups
from intrakd.models import build_model
from intrakd.models.pretrained import (OFFLINE_ENV, BackboneWeightsError, backbone_keys, imagenet_file,
                                       load_backbone)

from helpers import tiny_apollo, tiny_cfg


@pytest.fixture(scope="module")
def apollo_root(tmp_path_factory):
    return tiny_apollo(tmp_path_factory, num=9)


def _saved(tmp_path, state: dict, name="w.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


# ----------------------------------------------------------------------------------------------- loading
@pytest.mark.parametrize("model, arch", [("resnet18", "resnet18"), ("swiftnet_rn18", "resnet18"),
                                         ("pspnet_r101", "resnet101"), ("deeplabv3plus_r101", "resnet101")])
def test_a_torchvision_state_dict_fills_every_backbone_tensor(tmp_path, model, arch):
    state = getattr(torchvision.models, arch)(weights=None).state_dict()
    net = build_model(model, 5)
    record = load_backbone(net, str(_saved(tmp_path, state)), model)
    wanted = backbone_keys(net)
    assert len(wanted) == {"resnet18": 100, "resnet101": 520}[arch]  # 62 / 314 parameters + BN running stats
    assert record["loaded_tensors"] == len(wanted)
    assert record["skipped"] == ["fc.bias", "fc.weight"]
    own = net.state_dict()
    for key in wanted:
        assert torch.equal(own[key], state[key[len("backbone."):]]), key


def test_the_projects_own_weights_file_loads_the_backbone_only(tmp_path):
    from intrakd.models.checkpoint import save_weights

    donor = build_model("resnet18", 37, width=0.25)
    path = save_weights(tmp_path / "model.pt", donor, name="resnet18", num_classes=37, width=0.25, exist_head=False)
    net = build_model("resnet18", 5, width=0.25, exist_head=True)
    record = load_backbone(net, str(path), "resnet18")
    assert record["loaded_tensors"] == len(backbone_keys(net))
    assert record["skipped"] and all(k.startswith(("reducer.", "head.")) for k in record["skipped"])
    assert torch.equal(net.backbone.layer4[1].conv2.weight, donor.backbone.layer4[1].conv2.weight)


def test_an_official_erfnet_checkpoint_starts_every_layer_but_the_output_convs(tmp_path):
    """The ERFNet-CULane recipe: a Cityscapes ERFNet (20 classes, Eromera's names, DataParallel prefix) loaded into
    a 5-class lane ERFNet with an existence head; its output convolutions are not loaded."""
    donor = build_model("erfnet", 20, width=0.25)
    official = {}
    for k, v in donor.state_dict().items():
        k = ("encoder.initial_block." + k[len("initial_block."):] if k.startswith("initial_block.") else
             "encoder.layers." + k[len("encoder."):] if k.startswith("encoder.") else
             "decoder.layers." + k[len("decoder."):] if k.startswith("decoder.") else
             "decoder.output_conv." + k[len("output_conv."):])
        official["module." + k] = v
    official["module.encoder.output_conv.weight"] = torch.zeros(20, 32, 1, 1)
    net = build_model("erfnet", 5, width=0.25, exist_head=True)
    record = load_backbone(net, str(_saved(tmp_path, {"state_dict": official})), "erfnet")
    assert record["loaded_tensors"] == len(backbone_keys(net))
    assert record["skipped"] == ["decoder.output_conv.bias", "decoder.output_conv.weight",
                                 "encoder.output_conv.weight"]
    assert not any(k.startswith(("output_conv.", "exist.")) for k in backbone_keys(net))
    assert torch.equal(net.encoder[14].conv1x3_2.weight, donor.encoder[14].conv1x3_2.weight)
    assert torch.equal(net.decoder[3].conv.weight, donor.decoder[3].conv.weight)


def test_a_missing_backbone_tensor_is_named(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    del state["layer3.1.bn2.running_var"]
    with pytest.raises(BackboneWeightsError, match=r"'backbone\.layer3\.1\.bn2\.running_var'"):
        load_backbone(build_model("resnet18", 5), str(_saved(tmp_path, state)), "resnet18")


def test_a_shape_mismatch_is_named(tmp_path):
    state = torchvision.models.resnet18(weights=None).state_dict()
    message = r"'conv1\.weight' is \(64, 3, 7, 7\).*'backbone\.conv1\.weight' has \(16, 3, 7, 7\)"
    with pytest.raises(BackboneWeightsError, match=message):
        load_backbone(build_model("resnet18", 5, width=0.25), str(_saved(tmp_path, state)), "resnet18")


def test_a_file_that_is_no_state_dict_is_refused(tmp_path):
    with pytest.raises(BackboneWeightsError, match="expected a state dict"):
        load_backbone(build_model("resnet18", 5), str(_saved(tmp_path, {"epoch": 3})), "resnet18")


def test_none_changes_nothing():
    torch.manual_seed(0)
    a = build_model("resnet18", 5, width=0.25)
    torch.manual_seed(0)
    b = build_model("resnet18", 5, width=0.25)
    assert load_backbone(b, "none", "resnet18") == {"source": "none", "file": None, "loaded_tensors": 0,
                                                    "skipped": []}
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ----------------------------------------------------------------------------------------------- imagenet requests
def test_the_imagenet_file_is_torchvisions_v1_checkpoint_in_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert imagenet_file("resnet18") == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert imagenet_file("resnet101") == tmp_path / "hub" / "checkpoints" / "resnet101-63fe2227.pth"
    assert torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url.endswith("/resnet18-f37072fd.pth")


def test_a_cached_imagenet_file_is_loaded_from_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    state = torchvision.models.resnet18(weights=None).state_dict()
    imagenet_file("resnet18").parent.mkdir(parents=True)
    torch.save(state, imagenet_file("resnet18"))
    net = build_model("swiftnet_rn18", 19)
    record = load_backbone(net, "imagenet", "swiftnet_rn18")
    assert record["source"] == "imagenet (torchvision ResNet18_Weights.IMAGENET1K_V1)"
    assert record["loaded_tensors"] == 100 and record["file"] == str(imagenet_file("resnet18"))
    assert torch.equal(net.backbone.conv1.weight, state["conv1.weight"])


def _run_file(tmp_path, root, **kw):
    cfg = tiny_cfg(root, tmp_path / "run", student="resnet18", width=1.0, epochs=1, max_iters_per_epoch=1,
                   max_eval_images=2, **kw)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    return path


def test_offline_imagenet_with_an_empty_cache_stops_before_training_in_one_line(apollo_root, tmp_path, monkeypatch,
                                                                                capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv(OFFLINE_ENV, "1")
    assert cli_main(["train", str(_run_file(tmp_path, apollo_root, backbone_weights="imagenet"))]) == 1
    err = capsys.readouterr().err
    expected = tmp_path / "empty" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert err.count("\n") == 1 and str(expected) in err and f"put it at {expected}" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())  # nothing trained or written


def test_a_failed_download_names_the_file_too(tmp_path, monkeypatch):
    from urllib.error import URLError

    def no_network(url, dst, *a, **k):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(OFFLINE_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(BackboneWeightsError, match=r"resnet101-63fe2227\.pth not found \(download failed: URLError"):
        load_backbone(build_model("pspnet_r101", 37, width=1.0), "imagenet", "pspnet_r101")


@pytest.mark.parametrize("model, width, fragment", [("erfnet", 1.0, "model erfnet has no ImageNet backbone"),
                                                    ("enet", 1.0, "model enet has no ImageNet backbone"),
                                                    ("resnet18", 0.5, "needs width 1.0")])
def test_impossible_imagenet_requests_are_refused_at_validation(apollo_root, tmp_path, model, width, fragment):
    with pytest.raises(ValueError, match=fragment):
        tiny_cfg(apollo_root, tmp_path, student=model, width=width, backbone_weights="imagenet").validate()


def test_a_missing_weights_path_is_refused_at_validation(apollo_root, tmp_path):
    with pytest.raises(ValueError, match="expected none, imagenet or the path of a weights file"):
        tiny_cfg(apollo_root, tmp_path, backbone_weights=str(tmp_path / "nope.pth")).validate()


def test_a_tiny_run_from_a_torchvision_state_dict_records_and_keeps_the_backbone(apollo_root, tmp_path):
    """backbone_lr_mult 0: the backbone's convolutions cannot move, so model.pt holds the file's tensors exactly."""
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = _saved(tmp_path, state)
    metrics = train(tiny_cfg(apollo_root, tmp_path / "run", student="resnet18", width=1.0, epochs=1,
                             max_iters_per_epoch=2, max_eval_images=2, backbone_weights=str(path),
                             backbone_lr_mult=0.0))
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["backbone_weights"]
    assert record == metrics["backbone_weights"]
    assert record["source"] == str(path) and record["loaded_tensors"] == 100
    assert record["skipped"] == ["fc.bias", "fc.weight"]
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    convs = [k for k in state if k.endswith(".weight") and state[k].dim() == 4]
    assert len(convs) == 20
    for k in convs:
        assert torch.equal(saved["backbone." + k], state[k]), k
    torch.manual_seed(0)
    fresh = build_model("resnet18", 37, width=1.0)
    assert not torch.equal(saved["head.4.weight"], fresh.state_dict()["head.4.weight"])  # the head trained


# ----------------------------------------------------------------------------------------------- recipes
def _groups_by_name(cfg, model):
    return {n: (g["lr_mult"], g["weight_decay"]) for g in student_groups(cfg, model) for n in g["names"]}


def test_pspnet_teacher_groups_follow_get_optim_policies():
    """Codes-for-IntRA-KD: head conv weights x10, head biases x20, head BN x10 without decay; backbone weights x1,
    backbone BN x1 without decay (the backbone convs have no bias)."""
    net = build_model("pspnet_r101", 37, width=0.125)
    cfg = RunConfig(student="pspnet_r101", weight_decay=1e-4, head_lr_mult=10, bias_lr_mult=2,
                    no_decay_norm_bias=True)
    by_name = _groups_by_name(cfg, net)
    assert set(by_name) == {n for n, _ in net.named_parameters()}
    assert by_name["backbone.conv1.weight"] == (1.0, 1e-4)
    assert by_name["backbone.layer3.22.conv2.weight"] == (1.0, 1e-4)
    assert by_name["backbone.bn1.weight"] == by_name["backbone.layer4.2.bn3.bias"] == (1.0, 0.0)
    assert by_name["psp.branches.0.0.weight"] == by_name["psp.out.0.weight"] == (10.0, 1e-4)
    assert by_name["psp.branches.3.1.weight"] == by_name["psp.out.1.bias"] == (10.0, 0.0)  # BN
    assert by_name["classifier.weight"] == (10.0, 1e-4)
    assert by_name["classifier.bias"] == (20.0, 0.0)
    assert sorted(set(by_name.values())) == [(1.0, 0.0), (1.0, 1e-4), (10.0, 0.0), (10.0, 1e-4), (20.0, 0.0)]


def test_swiftnet_groups_follow_the_fine_tune_factor():
    """orsic/swiftnet: the backbone (BN included) at lr/4 and weight decay/4, the rest at lr and weight decay."""
    net = build_model("swiftnet_rn18", 19, width=0.25)
    cfg = RunConfig(student="swiftnet_rn18", optimizer="adam", lr=4e-4, weight_decay=1e-4, backbone_lr_mult=0.25,
                    backbone_wd_mult=0.25)
    by_name = _groups_by_name(cfg, net)
    for name, value in by_name.items():
        assert value == ((0.25, 2.5e-5) if name.startswith("backbone.") else (1.0, 1e-4)), name
    groups = param_groups(cfg, net, [])
    assert [(g["lr_mult"], g["weight_decay"], len(g["params"])) for g in groups] == [
        (0.25, 2.5e-5, 60), (1.0, 1e-4, len(list(net.parameters())) - 60)]  # ResNet-18: 60 tensors but fc


def test_the_default_recipe_keeps_one_student_group_and_the_method_group():
    net = build_model("erfnet", 37, width=0.125)
    extra = [torch.nn.Parameter(torch.zeros(3))]
    groups = param_groups(RunConfig(), net, extra)
    assert len(groups) == 2 and set(groups[0]) == {"params"} and groups[1]["params"] == extra
    assert groups[0]["params"] == list(net.parameters())


def test_schedules_by_hand():
    cfg = RunConfig(lr=0.01, poly_power=0.9)
    assert scheduled_lr(cfg, 0, 100) == 0.01
    assert scheduled_lr(cfg, 50, 100) == 0.01 * 0.5 ** 0.9
    assert scheduled_lr(cfg, 50, 100, 10.0) == pytest.approx(0.1 * 0.5 ** 0.9, rel=1e-15)
    cos = RunConfig(lr=4e-4, lr_schedule="cosine", min_lr=1e-6)
    assert scheduled_lr(cos, 0, 100) == pytest.approx(4e-4, rel=1e-15)
    assert scheduled_lr(cos, 50, 100) == pytest.approx(1e-6 + (4e-4 - 1e-6) / 2, rel=1e-12)
    assert scheduled_lr(cos, 50, 100, 0.25) == pytest.approx(1e-6 + (1e-4 - 1e-6) / 2, rel=1e-12)
    assert scheduled_lr(cos, 100, 100) == pytest.approx(1e-6, rel=1e-12)
    assert scheduled_lr(cos, 25, 100) == pytest.approx(1e-6 + (4e-4 - 1e-6) * (1 + math.cos(math.pi / 4)) / 2)


def test_a_run_sets_each_groups_learning_rate_and_betas(apollo_root, tmp_path):
    from intrakd.engine.train import Trainer

    cfg = tiny_cfg(apollo_root, tmp_path / "run", student="swiftnet_rn18", width=0.25, optimizer="adam", lr=4e-4,
                   betas=[0.9, 0.99], backbone_lr_mult=0.25, backbone_wd_mult=0.25, lr_schedule="cosine",
                   min_lr=1e-6, epochs=1, max_iters_per_epoch=2)
    trainer = Trainer(cfg)
    trainer.wrap_student()
    trainer.train_epoch(0)
    total = trainer.total_iters
    last = total - 1
    lrs = [g["lr"] for g in trainer.optimizer.param_groups]
    assert lrs == [scheduled_lr(cfg, last, total, 0.25), scheduled_lr(cfg, last, total, 1.0)]
    assert all(g["betas"] == (0.9, 0.99) for g in trainer.optimizer.param_groups)
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [2.5e-5, 1e-4]


@pytest.mark.parametrize("key, value, fragment", [("lr_schedule", "step", "lr_schedule must be one of poly, cosine"),
                                                  ("min_lr", 0.5, "min_lr must be >= 0 and below lr"),
                                                  ("betas", [0.9], "betas must be"),
                                                  ("head_lr_mult", -1.0, "head_lr_mult must be >= 0")])
def test_bad_recipe_values_are_refused(apollo_root, tmp_path, key, value, fragment):
    with pytest.raises(ValueError, match=fragment):
        tiny_cfg(apollo_root, tmp_path, **{key: value}).validate()


def test_keys_at_their_defaults_leave_the_checkpoint_fingerprint_as_before(apollo_root, tmp_path):
    """A checkpoint written before these keys existed is still resumed: at their defaults they are not in it."""
    from intrakd.engine.train import LATER_KEYS, Trainer

    trainer = Trainer(tiny_cfg(apollo_root, tmp_path / "run"))
    fingerprint = trainer.fingerprint()
    assert not set(LATER_KEYS) & set(fingerprint["config"]) and "backbone" not in fingerprint
    assert set(LATER_KEYS) <= set(RunConfig().to_dict())


# ----------------------------------------------------------------------------------------------- workflow keys
def _config(path):
    from pathlib import Path

    return yaml.safe_load((Path(__file__).resolve().parent.parent / path).read_text())


def test_presets_without_the_new_keys_give_their_jobs_the_same_parameters():
    """Runs of the default and smoke presets keep their parameter sets (Snakemake's params trigger reruns nothing)."""
    from intrakd import grid
    from intrakd.engine.train import LATER_KEYS

    for path in ("config/config.yaml", ".test/config/config.yaml"):
        config = _config(path)
        for ds, st, me, seed in grid.grid_runs(config):
            assert not set(LATER_KEYS) & set(grid.student_params(config, ds, st, me, seed))
        for ds in config["teachers"]:
            params = grid.teacher_params(config, ds)
            assert not set(LATER_KEYS) & set(params) and params["crop"] == config["datasets"][ds].get("crop")


def test_the_paper_preset_sets_a_backbone_for_every_resnet_based_network():
    from intrakd import grid
    from intrakd.models.summary import meta_model

    config = _config("presets/paper/config/config.yaml")
    seen = set()
    for ds, st, me, _ in grid.grid_runs(config):
        params = grid.student_params(config, ds, st, me, 0)
        resnet = type(meta_model(st, 2)).imagenet_backbone is not None
        assert params.get("backbone_weights") == ("imagenet" if resnet else None) or (ds, st) == ("culane", "erfnet")
        seen.add((st, params.get("backbone_weights")))
    assert ("erfnet", "results/runs/cityscapes/erfnet/baseline/seed0/model.pt") in seen
    for ds in config["teachers"]:
        assert grid.teacher_params(config, ds)["backbone_weights"] == "imagenet"
    # the per-student, per-dataset recipe wins over the dataset's and the global one
    swift = grid.student_params(config, "cityscapes", "swiftnet_rn18", "baseline", 0)
    assert (swift["optimizer"], swift["batch_size"], swift["epochs"]) == ("adam", 14, 250)
    erf = grid.student_params(config, "cityscapes", "erfnet", "baseline", 0)
    assert "optimizer" not in erf and erf["batch_size"] == 8 and erf["epochs"] == 200


def test_imagenet_for_a_network_without_one_stops_the_workflow_naming_the_key(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    config = _config(".test/config/config.yaml")
    config["students"]["erfnet"] = {**(config["students"].get("erfnet") or {}), "backbone_weights": "imagenet"}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--snakefile",
                           str(repo / "Snakefile")], capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "students.erfnet.backbone_weights" in out and "model erfnet has no ImageNet backbone" in out
