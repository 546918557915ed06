"""ResNet-18 student: dilated ResNet-18 (output stride 8) with the light SCNN/SAD-style head.

Head choice (models_baselines.md §A.5, option b): reducer 1x1 512->128 + BN + ReLU, then the SCNN
decoder (3x3 conv 128->32 + BN + ReLU + Dropout2d(0.1) + 1x1 to C), logits at 1/8 upsampled
bilinearly; 11.28M parameters at 37 classes. Chosen over option (a), the teacher's PSPP head on
ResNet-18 (24.0M), because the paper uses ResNet-18 as a *light* student next to ENet and ERFNet and
the public lane-KD code it cites uses this head. Dilation: every block of layer3/layer4 dilated 2/4
with both 3x3 convs patched (§A.7 recipe)."""

from __future__ import annotations

import torch
from torch import nn

from intrakd.models.base import Tap, register_model, scaled
from intrakd.models.common import RESNET_GROUPS, ResNetEncoder, TapModel, init_conv_bn, set_taps


class ResNet18OS8(TapModel):
    imagenet_backbone, backbone_prefix = "resnet18", "backbone."

    def __init__(self, num_classes: int, width: float = 1.0, exist_head: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNetEncoder(18, width, dilate=(False, True, True), first_dilation="same")
        c = self.backbone.channels
        red, mid = scaled(128, width), scaled(32, width)
        self.reducer = nn.Sequential(nn.Conv2d(c[3], red, 1, bias=False), nn.BatchNorm2d(red), nn.ReLU(inplace=True))
        self.head = nn.Sequential(
            nn.Conv2d(red, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Dropout2d(0.1), nn.Conv2d(mid, num_classes, 1),
        )
        init_conv_bn(self.reducer)
        init_conv_bn(self.head)
        set_taps(
            self,
            [*self.backbone.stage_taps(c), Tap("reducer", red, 8)],
            roles={"mid": "layer1", "high": "layer4", "encoder": "layer4"},
            groups=RESNET_GROUPS,
        )
        self._init_exist(exist_head, width)

    def forward(self, x: torch.Tensor) -> dict:
        size = x.shape[-2:]
        feats = self.backbone.features(x)
        feats["reducer"] = self.reducer(feats["layer4"])
        return self._pack(self.head(feats["reducer"]), feats, size)


@register_model("resnet18")
def resnet18(num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs) -> ResNet18OS8:
    return ResNet18OS8(num_classes, width, exist_head, **kwargs)
