"""ERFNet (Romera et al., T-ITS 2017) as in the IntRA-KD code (``models/erfnet.py``: dropout 0.1 in
every encoder block). The unused ``encoder.output_conv`` of the original (128*C + C parameters, only used
in encoder-only pre-training) is left out, so every parameter takes part in the forward pass."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intrakd.models.base import Tap, register_model, scaled
from intrakd.models.common import TapModel, set_taps


class DownsamplerBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout - cin, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], 1)))


class NonBottleneck1d(nn.Module):
    def __init__(self, ch: int, dropprob: float, dilated: int):
        super().__init__()
        d = dilated
        self.conv3x1_1 = nn.Conv2d(ch, ch, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(ch, ch, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(ch, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(ch, ch, (3, 1), padding=(d, 0), dilation=(d, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(ch, ch, (1, 3), padding=(0, d), dilation=(1, d), bias=True)
        self.bn2 = nn.BatchNorm2d(ch, eps=1e-3)
        self.dropout = nn.Dropout2d(dropprob)

    def forward(self, x):
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.dropout(self.bn2(self.conv1x3_2(out)))
        return F.relu(out + x)


class UpsamplerBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1, bias=True)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ERFNet(TapModel):
    """ERFNet; input H, W divisible by 8. Taps: enc1 16@2, enc2 64@4, enc3a 128@8 (after the first
    dilated group), enc3 128@8 (encoder output), dec1 64@4, dec2 16@2."""

    head_prefixes = ("output_conv.", "exist.")
    # the official ERFNet's names (Eromera/erfnet_pytorch, ERFNet-CULane-PyTorch; its Cityscapes checkpoint
    # starts the CULane recipe); its unused encoder.output_conv matches nothing here
    layout_aliases = (("encoder.initial_block.", "initial_block."), ("encoder.layers.", "encoder."),
                      ("decoder.layers.", "decoder."), ("decoder.output_conv.", "output_conv."))

    def __init__(self, num_classes: int, width: float = 1.0, exist_head: bool = False, dropout: float = 0.1):
        super().__init__()
        self.num_classes = num_classes
        self.build_kwargs = {"dropout": dropout}
        c1, c2, c3 = (scaled(c, width) for c in (16, 64, 128))
        self.initial_block = DownsamplerBlock(3, c1)
        enc = [DownsamplerBlock(c1, c2)] + [NonBottleneck1d(c2, dropout, 1) for _ in range(5)]
        enc.append(DownsamplerBlock(c2, c3))
        for _ in range(2):
            enc += [NonBottleneck1d(c3, dropout, d) for d in (2, 4, 8, 16)]
        self.encoder = nn.ModuleList(enc)
        self.decoder = nn.ModuleList([
            UpsamplerBlock(c3, c2), NonBottleneck1d(c2, 0.0, 1), NonBottleneck1d(c2, 0.0, 1),
            UpsamplerBlock(c2, c1), NonBottleneck1d(c1, 0.0, 1), NonBottleneck1d(c1, 0.0, 1),
        ])
        self.output_conv = nn.ConvTranspose2d(c1, num_classes, 2, stride=2, bias=True)
        set_taps(
            self,
            [Tap("enc1", c1, 2), Tap("enc2", c2, 4), Tap("enc3a", c3, 8), Tap("enc3", c3, 8),
             Tap("dec1", c2, 4), Tap("dec2", c1, 2)],
            roles={"mid": "dec1", "high": "enc3", "encoder": "enc3"},
            groups={"blocks": ["enc2", "enc3a", "enc3"], "stages": ["enc1", "enc2", "enc3"]},
        )
        self._init_exist(exist_head, width)

    # encoder index after which each tap is read (models_baselines.md §A.2: layers[5], layers[14])
    _ENC_TAPS = {5: "enc2", 10: "enc3a", 14: "enc3"}
    _DEC_TAPS = {2: "dec1", 5: "dec2"}

    def forward(self, x: torch.Tensor) -> dict:
        size = x.shape[-2:]
        feats = {}
        x = feats["enc1"] = self.initial_block(x)
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in self._ENC_TAPS:
                feats[self._ENC_TAPS[i]] = x
        for i, layer in enumerate(self.decoder):
            x = layer(x)
            if i in self._DEC_TAPS:
                feats[self._DEC_TAPS[i]] = x
        return self._pack(self.output_conv(x), feats, size)


@register_model("erfnet")
def erfnet(num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs) -> ERFNet:
    return ERFNet(num_classes, width, exist_head, **kwargs)
