"""``intrakd models`` and the FLOP counter behind it."""

from __future__ import annotations

import argparse
import json

import pytest
from torch import nn

from intrakd.models import cli
from intrakd.models.summary import count_flops, describe


def _run(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["models", *argv])
    return args.func(args)


def test_json_listing(capsys):
    assert _run(["--json", "--num-classes", "37", "--input", "64x128"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"enet", "erfnet", "resnet18", "swiftnet_rn18", "pspnet_r101", "deeplabv3plus_r101"}
    assert by_name["pspnet_r101"]["params"] == 65_592_933  # counted by hand: helpers.pspnet_r101_params(37)
    for r in rows:
        assert r["flops"] > 0 and r["taps"]
        assert {"name", "channels", "stride"} == set(r["taps"][0])
    erf = {t["name"]: t for t in by_name["erfnet"]["taps"]}
    assert erf["enc3"] == {"name": "enc3", "channels": 128, "stride": 8}


def test_bad_input_size_is_one_clear_error():
    with pytest.raises(ValueError, match="expected HxW"):
        _run(["--input", "abc"])
    with pytest.raises(ValueError, match="multiples of 8"):
        _run(["--input", "63x128"])


def test_flop_count_of_a_conv_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (16, 24)) == 2 * 3 * 8 * 9 * 16 * 24


def test_flops_scale_with_area():
    small, big = describe("erfnet", 19, (64, 128)), describe("erfnet", 19, (128, 256))
    assert big["flops"] == 4 * small["flops"]  # fully convolutional: FLOPs proportional to pixels
    assert big["params"] == small["params"]


def test_description_of_a_teacher():
    d = describe("deeplabv3plus_r101", 19, (64, 128))
    assert d["params"] == 58_753_459 and d["roles"]["high"] == "aspp"  # by hand: helpers.deeplabv3plus_r101_params
    assert d["groups"]["stages"] == ["stem", "layer1", "layer2", "layer3", "layer4"]
