"""Every network honours the tap contract at small widths and several input sizes."""

from __future__ import annotations

import math

import pytest
import torch

from intrakd.models import MODEL_REGISTRY, build_model
from intrakd.models.base import Tap

NAMES = sorted(MODEL_REGISTRY)
WIDTH = {"pspnet_r101": 0.125, "deeplabv3plus_r101": 0.125}  # others 0.25
SIZES = [(64, 128), (40, 72), (32, 96)]  # multiples of 8; the last two are not multiples of 32


def small(name, num_classes=5, exist_head=False):
    return build_model(name, num_classes, width=WIDTH.get(name, 0.25), exist_head=exist_head)


def test_registry_has_the_six_networks():
    assert set(NAMES) == {"enet", "erfnet", "resnet18", "swiftnet_rn18", "pspnet_r101", "deeplabv3plus_r101"}


@pytest.mark.parametrize("name", NAMES)
def test_taps_declared_consistently(name):
    m = small(name)
    names = [t.name for t in m.feature_info]
    assert len(names) == len(set(names)) and all(isinstance(t, Tap) for t in m.feature_info)
    assert set(m.tap_roles) >= {"mid", "high", "encoder"}
    assert m.tap("mid").stride == 4 and m.tap("high").stride == 8
    assert any(t.stride == 4 for t in m.feature_info) and any(t.stride == 8 for t in m.feature_info)
    for group in ("blocks", "stages"):
        members = m.tap_groups[group]
        assert len(members) >= 3 and set(members) <= set(names)
        order = [names.index(n) for n in members]
        assert order == sorted(order), f"{group} not shallow to deep"
        strides = [m.tap(n).stride for n in members]
        assert strides == sorted(strides)
    with pytest.raises(KeyError, match="no tap 'nope'"):
        m.tap("nope")


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_strides(name):
    torch.set_num_threads(1)
    m = small(name, exist_head=True).eval()
    for h, w in SIZES:
        with torch.no_grad():
            out = m(torch.randn(2, 3, h, w))
        assert out["logits"].shape == (2, 5, h, w)
        assert out["exist"].shape == (2, 4)
        assert list(out["feats"]) == [t.name for t in m.feature_info]
        for t in m.feature_info:
            f = out["feats"][t.name]
            assert f.shape == (2, t.channels, math.ceil(h / t.stride), math.ceil(w / t.stride)), (t, (h, w))
            assert torch.isfinite(f).all()


def test_exist_head_only_on_request():
    out = small("erfnet").eval()(torch.randn(1, 3, 32, 64))
    assert "exist" not in out


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    torch.set_num_threads(1)
    m = small(name, exist_head=True).train()
    out = m(torch.randn(2, 3, 32, 64))
    loss = (out["logits"] * torch.randn_like(out["logits"])).mean() + out["exist"].square().mean()
    loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    zero = [n for n, p in m.named_parameters() if p.grad.abs().sum() == 0]
    assert not zero


@pytest.mark.parametrize("name", ["erfnet", "swiftnet_rn18", "pspnet_r101"])
def test_channels_last_gives_the_same_output(name):
    torch.set_num_threads(1)
    m = small(name).eval().double()  # float64: layout must not change results beyond rounding
    x = torch.randn(2, 3, 32, 64, dtype=torch.float64)
    with torch.no_grad():
        ref = m(x)["logits"]
        got = m.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))["logits"]
    torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


def test_width_changes_channels_not_topology():
    a, b = build_model("erfnet", 5, width=0.25), build_model("erfnet", 5, width=0.5)
    assert [type(x).__name__ for x in a.modules()] == [type(x).__name__ for x in b.modules()]
    assert [t.stride for t in a.feature_info] == [t.stride for t in b.feature_info]
    assert a.tap("high").channels == 32 and b.tap("high").channels == 64


def test_unknown_model_name():
    with pytest.raises(KeyError, match="unknown model 'vgg'"):
        build_model("vgg", 5)
