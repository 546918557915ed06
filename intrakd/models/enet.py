"""ENet (Paszke et al. 2016), the 0.35M network of ``davidtvs/PyTorch-ENet`` (same code as
``Codes-for-IntRA-KD@8168c05:models/enet.py``): PReLU in the encoder, ReLU in the decoder, a
separate (single-parameter) PReLU after every conv and every residual sum, which reproduces the
reference's measured 0.3517M parameters at 19 classes (its newest revision shares one PReLU per
bottleneck: 70 fewer)."""

from __future__ import annotations

import torch
from torch import nn

from intrakd.models.base import Tap, register_model, scaled
from intrakd.models.common import TapModel, set_taps


def _act(relu: bool) -> nn.Module:
    return nn.ReLU() if relu else nn.PReLU()


def _cba(cin, cout, k, relu, **kw):
    return nn.Sequential(nn.Conv2d(cin, cout, k, bias=False, **kw), nn.BatchNorm2d(cout), _act(relu))


class InitialBlock(nn.Module):
    def __init__(self, cout: int, relu: bool):
        super().__init__()
        self.main = nn.Conv2d(3, cout - 3, 3, stride=2, padding=1, bias=False)
        self.ext = nn.MaxPool2d(3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.act = _act(relu)

    def forward(self, x):
        return self.act(self.bn(torch.cat([self.main(x), self.ext(x)], 1)))


class RegularBottleneck(nn.Module):
    def __init__(self, ch, *, kernel=3, padding=1, dilation=1, asymmetric=False, dropout=0.0, relu=True):
        super().__init__()
        inner = max(1, ch // 4)
        self.act = _act(relu)
        self.conv1 = _cba(ch, inner, 1, relu)
        if asymmetric:
            self.conv2 = nn.Sequential(
                *_cba(inner, inner, (kernel, 1), relu, padding=(padding, 0), dilation=dilation),
                *_cba(inner, inner, (1, kernel), relu, padding=(0, padding), dilation=dilation),
            )
        else:
            self.conv2 = _cba(inner, inner, kernel, relu, padding=padding, dilation=dilation)
        self.conv3 = _cba(inner, ch, 1, relu)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x):
        return self.act(x + self.drop(self.conv3(self.conv2(self.conv1(x)))))


class DownsamplingBottleneck(nn.Module):
    def __init__(self, cin, cout, *, dropout=0.0, relu=True):
        super().__init__()
        inner = max(1, cin // 4)
        self.act = _act(relu)
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.conv1 = _cba(cin, inner, 2, relu, stride=2)
        self.conv2 = _cba(inner, inner, 3, relu, padding=1)
        self.conv3 = _cba(inner, cout, 1, relu)
        self.drop = nn.Dropout2d(dropout)
        self.pad = cout - cin

    def forward(self, x):
        main, idx = self.pool(x)
        ext = self.drop(self.conv3(self.conv2(self.conv1(x))))
        main = nn.functional.pad(main, (0, 0, 0, 0, 0, self.pad))  # zero channel padding
        return self.act(main + ext), idx


class UpsamplingBottleneck(nn.Module):
    def __init__(self, cin, cout, *, dropout=0.0, relu=True):
        super().__init__()
        inner = max(1, cin // 4)
        self.act = _act(relu)
        self.main_conv = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.unpool = nn.MaxUnpool2d(2)
        self.conv1 = _cba(cin, inner, 1, relu)
        self.tconv = nn.ConvTranspose2d(inner, inner, 2, stride=2, bias=False)
        self.tconv_bn = nn.BatchNorm2d(inner)
        self.tconv_act = _act(relu)
        self.conv2 = _cba(inner, cout, 1, relu)
        self.drop = nn.Dropout2d(dropout)

    def forward(self, x, idx, size):
        main = self.unpool(self.main_conv(x), idx, output_size=size)
        ext = self.tconv_act(self.tconv_bn(self.tconv(self.conv1(x), output_size=size)))
        return self.act(main + self.drop(self.conv2(ext)))


# (kind, dilation) of the 8 blocks of stages 2 and 3
_STAGE23 = [("r", 1), ("r", 2), ("a", 1), ("r", 4), ("r", 1), ("r", 8), ("a", 1), ("r", 16)]


class ENet(TapModel):
    """ENet; input H, W divisible by 8. Taps: initial 16@2, stage1 64@4 (regular1_4), stage2 128@8
    (dilated2_8), stage3 128@8 (dilated3_7, encoder output), stage4 64@4 (regular4_2), stage5 16@2."""

    head_prefixes = ("transposed_conv.", "exist.")

    def __init__(self, num_classes: int, width: float = 1.0, exist_head: bool = False):
        super().__init__()
        self.num_classes = num_classes
        c1, c2, c3 = (scaled(c, width) for c in (16, 64, 128))
        enc = dict(relu=False)
        self.initial_block = InitialBlock(c1, relu=False)
        self.downsample1_0 = DownsamplingBottleneck(c1, c2, dropout=0.01, **enc)
        self.stage1 = nn.Sequential(*[RegularBottleneck(c2, dropout=0.01, **enc) for _ in range(4)])
        self.downsample2_0 = DownsamplingBottleneck(c2, c3, dropout=0.1, **enc)
        self.stage2 = nn.Sequential(*[self._block(c3, k, d) for k, d in _STAGE23])
        self.stage3 = nn.Sequential(*[self._block(c3, k, d) for k, d in _STAGE23])
        self.upsample4_0 = UpsamplingBottleneck(c3, c2, dropout=0.1, relu=True)
        self.stage4 = nn.Sequential(*[RegularBottleneck(c2, dropout=0.1, relu=True) for _ in range(2)])
        self.upsample5_0 = UpsamplingBottleneck(c2, c1, dropout=0.1, relu=True)
        self.stage5 = RegularBottleneck(c1, dropout=0.1, relu=True)
        self.transposed_conv = nn.ConvTranspose2d(c1, num_classes, 3, stride=2, padding=1, bias=False)
        set_taps(
            self,
            [Tap("initial", c1, 2), Tap("stage1", c2, 4), Tap("stage2", c3, 8), Tap("stage3", c3, 8),
             Tap("stage4", c2, 4), Tap("stage5", c1, 2)],
            roles={"mid": "stage4", "high": "stage3", "encoder": "stage3"},
            groups={"blocks": ["stage1", "stage2", "stage3"], "stages": ["initial", "stage1", "stage2", "stage3"]},
        )
        self._init_exist(exist_head, width)

    @staticmethod
    def _block(ch, kind, dil):
        if kind == "a":
            return RegularBottleneck(ch, kernel=5, padding=2, asymmetric=True, dropout=0.1, relu=False)
        return RegularBottleneck(ch, padding=dil, dilation=dil, dropout=0.1, relu=False)

    def forward(self, x: torch.Tensor) -> dict:
        size = x.shape[-2:]
        f = {}
        y = f["initial"] = self.initial_block(x)
        y, idx1 = self.downsample1_0(y)
        y = f["stage1"] = self.stage1(y)
        y, idx2 = self.downsample2_0(y)
        y = f["stage2"] = self.stage2(y)
        y = f["stage3"] = self.stage3(y)
        y = f["stage4"] = self.stage4(self.upsample4_0(y, idx2, f["stage1"].shape[-2:]))
        y = f["stage5"] = self.stage5(self.upsample5_0(y, idx1, f["initial"].shape[-2:]))
        logits = self.transposed_conv(y, output_size=list(size))
        return self._pack(logits, f, size)


@register_model("enet")
def enet(num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs) -> ENet:
    return ENet(num_classes, width, exist_head, **kwargs)
