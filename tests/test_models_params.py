"""Full-width parameter counts against the published ones, and the ResNet parts against torchvision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torchvision.models._utils import IntermediateLayerGetter

from intrakd.models import build_model
from intrakd.models.common import ExistHead, ResNetEncoder, basic_layer_with_skip
from intrakd.models.pspnet import PSPP
from intrakd.models.summary import PUBLISHED_PARAMS, full_width_params


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_published_parameter_counts_within_1pct(name):
    published, classes = PUBLISHED_PARAMS[name]
    assert abs(full_width_params(name, classes) / published - 1) < 0.01


def test_exact_counts_of_the_reference_builds():
    from helpers import deeplabv3plus_r101_params, pspnet_r101_params, resnet101_params

    # SwiftNetRN-18: 11,797,071 at 19 classes, the count of the reference code run (models_baselines.md, SwiftNet)
    assert full_width_params("swiftnet_rn18", 19) == 11_797_071
    # the teachers: torchvision's ResNet-101 without fc (the oracle) + their heads counted by hand (tests/helpers.py)
    assert resnet101_params() == 44_549_160 - (2048 * 1000 + 1000)  # ResNet101_Weights.IMAGENET1K_V1 meta num_params, less the fc
    assert full_width_params("pspnet_r101", 37) == pspnet_r101_params(37) == 65_592_933
    assert full_width_params("deeplabv3plus_r101", 19) == deeplabv3plus_r101_params(19) == 58_753_459
    # the paper's two 3x3 decoder convs add one 256->256 conv + BN
    assert full_width_params("deeplabv3plus_r101", 19, decoder_convs=2) == 58_753_459 + 256 * 256 * 9 + 512
    # reference counts given to 4 decimals in M: ENet 0.3517/0.3541, ERFNet 2.0666/2.0699 at 19/36
    # classes; ERFNet's include the unused encoder.output_conv (128*C + C), which ours leaves out
    assert [round(full_width_params("enet", c) / 1e6, 4) for c in (19, 36)] == [0.3517, 0.3541]
    assert [round((full_width_params("erfnet", c) + 129 * c) / 1e6, 4) for c in (19, 36)] == [2.0666, 2.0699]


def test_resnet18_student_is_light():
    # option (b) of §A.5: backbone 11.18M + reducer + SCNN head, far from the 24M PSP variant
    assert 11.2e6 < full_width_params("resnet18", 37) < 11.4e6


def _tv_resnet(depth, **kw):
    return getattr(torchvision.models, f"resnet{depth}")(weights=None, **kw).eval()


def test_dilated_r101_matches_torchvision():
    torch.set_num_threads(1)
    tv = _tv_resnet(101, replace_stride_with_dilation=[False, True, True])
    ours = ResNetEncoder(101, dilate=(False, True, True), first_dilation="previous").eval()
    state = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    ours.load_state_dict(state, strict=True)
    getter = IntermediateLayerGetter(tv, {"layer1": "l1", "layer4": "l4"})
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        ref = getter(x)
        y = ours.layer1(ours.stem(x))
        l1 = y
        for i in (2, 3, 4):
            y = getattr(ours, f"layer{i}")(y)
    torch.testing.assert_close(l1, ref["l1"])
    torch.testing.assert_close(y, ref["l4"])
    assert y.shape[-2:] == (6, 8)


def test_resnet18_skips_match_torchvision():
    torch.set_num_threads(1)
    tv = _tv_resnet(18)
    ours = ResNetEncoder(18).eval()
    ours.load_state_dict({k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}, strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        y_tv = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        y = ours.stem(x)
        for i in range(1, 5):
            y_tv = getattr(tv, f"layer{i}")(y_tv)
            y, skip = basic_layer_with_skip(getattr(ours, f"layer{i}"), y)
            torch.testing.assert_close(y, y_tv)
            torch.testing.assert_close(F.relu(skip), y_tv)
            assert (skip < 0).any()  # pre-ReLU, as SwiftNet's skip


def test_dilated_basic_blocks_patched_to_os8():
    enc = ResNetEncoder(18, width=0.25, dilate=(False, True, True), first_dilation="same")
    assert enc.strides == [4, 8, 8, 8]
    assert enc.layer3[0].conv1.dilation == (2, 2) and enc.layer4[1].conv2.dilation == (4, 4)
    assert enc.layer4[0].conv1.padding == (4, 4) and enc.layer3[0].conv1.stride == (1, 1)
    tv_style = ResNetEncoder(18, width=0.25, dilate=(False, True, True), first_dilation="previous")
    assert tv_style.layer3[0].conv1.dilation == (1, 1) and tv_style.layer4[0].conv1.dilation == (2, 2)


def test_pspp_coarse_scale_gives_constant_branch():
    # scale 60 on an 8x16 map: one cell -> the branch output is spatially constant
    psp = PSPP(6, 4, scales=(60,)).eval()
    x = torch.randn(1, 6, 8, 16)
    feats = {}
    psp.branches[0].register_forward_hook(lambda m, i, o: feats.update(cell=o))
    with torch.no_grad():
        out = psp(x)
    assert feats["cell"].shape[-2:] == (1, 1)
    assert out.shape == (1, 4, 8, 16)


def test_pspp_cells_of_size_s_when_divisible():
    # scale 4 on an 8x12 map: no padding, 2x3 cells, each a bilinear sample of its 4x4 block
    psp = PSPP(3, 2, scales=(4,)).eval()
    seen = {}
    psp.branches[0][0].register_forward_hook(lambda m, i, o: seen.update(inp=i[0]))
    x = torch.randn(1, 3, 8, 12)
    with torch.no_grad():
        psp(x)
    # bilinear x1/4 without antialias samples the mean of the two central pixels per axis
    expect = x.unfold(2, 4, 4).unfold(3, 4, 4)[..., 1:3, 1:3].mean((-1, -2))
    torch.testing.assert_close(seen["inp"], expect)


def test_exist_head_pools_like_the_recipe_at_culane_size():
    x = torch.rand(2, 5, 26, 122)  # 1/8 map of a 208x976 CULane input
    torch.testing.assert_close(F.adaptive_max_pool2d(x, ExistHead.GRID), F.max_pool2d(x, 2))
    head = ExistHead(128, 5)
    assert head.fc1.in_features == 3965  # the recipe's FC 3965 -> 128 -> 4
    assert head(torch.randn(2, 128, 36, 120)).shape == (2, 4)  # LLAMAS 288x960 works too


def test_teacher_roles_follow_the_method_brief():
    m = build_model("pspnet_r101", 37, width=0.125)
    assert (m.tap_roles["high"], m.tap_roles["mid"], m.tap_roles["encoder"]) == ("psp", "layer1", "layer4")
    e = build_model("erfnet", 37, width=0.25)
    assert (e.tap_roles["high"], e.tap_roles["mid"]) == ("enc3", "dec1")
