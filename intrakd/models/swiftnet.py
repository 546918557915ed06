"""SwiftNetRN-18, single scale (Oršić et al., CVPR 2019; ``orsic/swiftnet`` ``resnet_single_scale.py``):
ImageNet-style ResNet-18 (OS32) whose stages hand their pre-ReLU residual sum to a ladder decoder,
SPP on layer4, three upsampling modules to 1/4, a BN-ReLU-1x1 classifier, bilinear upsample.

Any H, W divisible by 8 is accepted without padding: each ladder step resizes to the size of its skip,
so a tap with stride s has spatial size ceil(H/s) x ceil(W/s) (exact for H, W divisible by 32)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intrakd.models.base import Tap, register_model, scaled
from intrakd.models.common import ResNetEncoder, TapModel, basic_layer_with_skip, init_conv_bn, set_taps, upsample_to


class BNReluConv(nn.Sequential):
    def __init__(self, cin, cout, k=3, bias=False, momentum=0.1):
        super().__init__()
        self.add_module("norm", nn.BatchNorm2d(cin, momentum=momentum))
        self.add_module("relu", nn.ReLU(inplace=True))
        self.add_module("conv", nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias))


class SPP(nn.Module):
    """SwiftNet's SPP: bottleneck, 3 levels on (g, round(aspect*g)) grids g = 8, 4, 2, fuse."""

    def __init__(self, cin, bt, level, cout, grids=(8, 4, 2)):
        super().__init__()
        m = 0.01 / 2  # the reference's BN momentum in the SPP
        self.grids = grids
        self.bottleneck = BNReluConv(cin, bt, k=1, momentum=m)
        self.levels = nn.ModuleList(BNReluConv(bt, level, k=1, momentum=m) for _ in grids)
        self.fuse = BNReluConv(bt + level * len(grids), cout, k=1, momentum=m)

    def forward(self, x):
        size = x.shape[-2:]
        ar = size[1] / size[0]
        x = self.bottleneck(x)
        outs = [x]
        for g, level in zip(self.grids, self.levels):
            pooled = F.adaptive_avg_pool2d(x, (g, max(1, round(ar * g))))
            outs.append(upsample_to(level(pooled), size))
        return self.fuse(torch.cat(outs, 1))


class Upsample(nn.Module):
    """Ladder step: project the skip (BN-ReLU-1x1), upsample x to it, add, blend (BN-ReLU-3x3)."""

    def __init__(self, ch, skip_ch):
        super().__init__()
        self.bottleneck = BNReluConv(skip_ch, ch, k=1)
        self.blend_conv = BNReluConv(ch, ch, k=3)

    def forward(self, x, skip):
        skip = self.bottleneck(skip)
        return self.blend_conv(upsample_to(x, skip.shape[-2:]) + skip)


class SwiftNetRN18(TapModel):
    """Taps: layer1..layer4 (pre-ReLU skips, 64@4, 128@8, 256@16, 512@32), spp 128@32,
    up16 128@16, up8 128@8, up4 128@4 (the features fed to the classifier)."""

    imagenet_backbone, backbone_prefix = "resnet18", "backbone."

    def __init__(self, num_classes: int, width: float = 1.0, exist_head: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNetEncoder(18, width)
        c = self.backbone.channels
        nf = scaled(128, width)
        self.spp = SPP(c[3], nf, nf // 3, nf)
        self.upsample = nn.ModuleList([Upsample(nf, c[2]), Upsample(nf, c[1]), Upsample(nf, c[0])])
        self.logits = BNReluConv(nf, num_classes, k=1, bias=True)
        init_conv_bn(self.spp)
        init_conv_bn(self.upsample)
        set_taps(
            self,
            [Tap("layer1", c[0], 4), Tap("layer2", c[1], 8), Tap("layer3", c[2], 16), Tap("layer4", c[3], 32),
             Tap("spp", nf, 32), Tap("up16", nf, 16), Tap("up8", nf, 8), Tap("up4", nf, 4)],
            roles={"mid": "up4", "high": "up8", "encoder": "spp"},
            groups={"blocks": ["layer2", "layer3", "layer4"], "stages": ["layer1", "layer2", "layer3", "layer4"]},
        )
        self._init_exist(exist_head, width)

    def forward(self, x: torch.Tensor) -> dict:
        size = x.shape[-2:]
        f = {}
        y = self.backbone.stem(x)
        for i in range(1, 5):
            y, f[f"layer{i}"] = basic_layer_with_skip(getattr(self.backbone, f"layer{i}"), y)
        y = f["spp"] = self.spp(f["layer4"])
        for name, skip, up in zip(("up16", "up8", "up4"), ("layer3", "layer2", "layer1"), self.upsample):
            y = f[name] = up(y, f[skip])
        return self._pack(self.logits(y), f, size)


@register_model("swiftnet_rn18")
def swiftnet_rn18(num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs) -> SwiftNetRN18:
    return SwiftNetRN18(num_classes, width, exist_head, **kwargs)
