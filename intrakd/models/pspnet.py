"""IntRA-KD's ApolloScape teacher: dilated ResNet-101 (output stride 8) + the official ``PSPP`` head
(``Codes-for-IntRA-KD: models/pspnet.py, fc_resnet.py, context_pooling.py``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from intrakd.models.base import Tap, register_model, scaled
from intrakd.models.common import RESNET_GROUPS, ResNetEncoder, TapModel, init_conv_bn, set_taps


class PSPP(nn.Module):
    """The official pyramid pooling: ``scales`` are cell sizes in feature pixels (not bin counts).

    For each scale s: zero-pad the map (centred) to a multiple of s, bilinearly resize it to
    ceil(size/s), 1x1 conv + BN + ReLU, upsample by s and crop back; concat with the input, then
    3x3 conv + BN + ReLU. Written by hand because no library ships this cell-size variant.
    """

    def __init__(self, cin: int, ch: int = 512, scales=(10, 20, 30, 60)):
        super().__init__()
        self.scales = tuple(scales)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, ch, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
            for _ in self.scales
        )
        self.out = nn.Sequential(
            nn.Conv2d(cin + ch * len(self.scales), ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        outs = [x]
        for s, branch in zip(self.scales, self.branches):
            sh, sw = max(1, (h - 1) // s + 1), max(1, (w - 1) // s + 1)
            ph, pw = sh * s - h, sw * s - w
            y = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)) if ph or pw else x
            y = branch(F.interpolate(y, size=(sh, sw), mode="bilinear", align_corners=False))
            y = F.interpolate(y, scale_factor=s, mode="bilinear", align_corners=False)
            outs.append(y[:, :, ph // 2: ph // 2 + h, pw // 2: pw // 2 + w])
        return self.out(torch.cat(outs, 1))


class PSPNetR101(TapModel):
    """Dilated ResNet-101 OS8 (every block of layer3/4 dilated 2/4, as ``fc_resnet``) + PSPP(512) +
    Dropout2d(0.1) + 1x1 classifier; logits predicted at 1/8 and upsampled bilinearly.
    BN momentum: PyTorch default 0.1 (the official 0.95 is a Caffe-convention leftover)."""

    imagenet_backbone, backbone_prefix = "resnet101", "backbone."

    def __init__(self, num_classes: int, width: float = 1.0, exist_head: bool = False, depth: int = 101):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNetEncoder(depth, width, dilate=(False, True, True), first_dilation="same")
        c = self.backbone.channels
        head = scaled(512, width)
        self.psp = PSPP(c[3], head)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(head, num_classes, 1)
        init_conv_bn(self.psp)
        set_taps(
            self,
            [*self.backbone.stage_taps(c), Tap("psp", head, 8)],
            roles={"mid": "layer1", "high": "psp", "encoder": "layer4"},
            groups=RESNET_GROUPS,
        )
        self._init_exist(exist_head, width)

    def forward(self, x: torch.Tensor) -> dict:
        size = x.shape[-2:]
        feats = self.backbone.features(x)
        feats["psp"] = self.psp(feats["layer4"])
        return self._pack(self.classifier(self.dropout(feats["psp"])), feats, size)


@register_model("pspnet_r101")
def pspnet_r101(num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs) -> PSPNetR101:
    return PSPNetR101(num_classes, width, exist_head, **kwargs)
