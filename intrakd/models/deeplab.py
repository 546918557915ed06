"""DeepLabv3+ ResNet-101 (Chen et al., ECCV 2018), the Cityscapes teacher, laid out as
``VainF/DeepLabV3Plus-Pytorch`` (``DeepLabHeadV3Plus``).

Choices: output stride 8 (layer3/4 dilated 2/4, ASPP rates 12/24/36) so the ASPP output is a 1/8
"high" tap like the other teachers'; ASPP from torchvision with VainF's dropout 0.1; decoder: layer1
reduced to 48 ch, concatenated with the 1/4-upsampled ASPP output, then ``decoder_convs`` 3x3 convs of
256 (default 1 = VainF, 58.75M at 19 classes; 2 = the paper, 59.34M), then 1x1 to C at 1/4."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from intrakd.models.base import Tap, register_model, scaled
from intrakd.models.common import RESNET_GROUPS, ResNetEncoder, TapModel, init_conv_bn, set_taps, upsample_to


class DeepLabV3PlusR101(TapModel):
    imagenet_backbone, backbone_prefix = "resnet101", "backbone."

    def __init__(self, num_classes: int, width: float = 1.0, exist_head: bool = False, decoder_convs: int = 1):
        super().__init__()
        if decoder_convs not in (1, 2):
            raise ValueError(f"decoder_convs must be 1 (VainF) or 2 (paper), got {decoder_convs!r}")
        self.num_classes = num_classes
        self.build_kwargs = {"decoder_convs": decoder_convs}
        self.backbone = ResNetEncoder(101, width, dilate=(False, True, True), first_dilation="previous")
        c = self.backbone.channels
        ch, low = scaled(256, width), scaled(48, width)
        self.aspp = ASPP(c[3], (12, 24, 36), ch)
        self.aspp.project[3].p = 0.1  # VainF's dropout (torchvision uses 0.5)
        self.project = nn.Sequential(nn.Conv2d(c[0], low, 1, bias=False), nn.BatchNorm2d(low), nn.ReLU(inplace=True))
        dec, cin = [], low + ch
        for _ in range(decoder_convs):
            dec += [nn.Conv2d(cin, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
            cin = ch
        self.decoder = nn.Sequential(*dec)
        self.classifier = nn.Conv2d(ch, num_classes, 1)
        for m in (self.aspp, self.project, self.decoder, self.classifier):
            init_conv_bn(m)
        set_taps(
            self,
            [*self.backbone.stage_taps(c), Tap("aspp", ch, 8), Tap("decoder", ch, 4)],
            roles={"mid": "decoder", "high": "aspp", "encoder": "layer4"},
            groups=RESNET_GROUPS,
        )
        self._init_exist(exist_head, width)

    def forward(self, x: torch.Tensor) -> dict:
        size = x.shape[-2:]
        f = self.backbone.features(x)
        f["aspp"] = self.aspp(f["layer4"])
        low = self.project(f["layer1"])
        f["decoder"] = self.decoder(torch.cat([low, upsample_to(f["aspp"], low.shape[-2:])], 1))
        return self._pack(self.classifier(f["decoder"]), f, size)


@register_model("deeplabv3plus_r101")
def deeplabv3plus_r101(num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs):
    return DeepLabV3PlusR101(num_classes, width, exist_head, **kwargs)
