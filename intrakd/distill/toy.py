"""A tiny :class:`~intrakd.models.base.SegModel` for tests and benchmarks of the distillation methods only.

Five stride-2 / stride-1 conv blocks with taps at strides 2, 4, 4, 8, 8; roles "mid" (1/4), "high" (1/8),
"encoder"; groups "blocks" and "stages". Logits are upsampled to the input size.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from intrakd.models.base import SegModel, Tap


class ToySegModel(SegModel):
    def __init__(self, num_classes: int = 5, width: int = 8, exist_head: bool = False):
        super().__init__()
        self.num_classes = num_classes
        c = [width, width * 2, width * 2, width * 4, width * 4]
        strides = [2, 2, 1, 2, 1]
        names = ["b1", "b2", "b3", "b4", "b5"]
        blocks, cin = [], 3
        for co, s in zip(c, strides):
            blocks.append(nn.Sequential(nn.Conv2d(cin, co, 3, s, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU()))
            cin = co
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, num_classes, 1)
        self.feature_info = [Tap(n, ch, st) for n, ch, st in zip(names, c, [2, 4, 4, 8, 8])]
        self.tap_roles = {"mid": "b3", "high": "b5", "encoder": "b5"}
        self.tap_groups = {"blocks": ["b2", "b3", "b4", "b5"], "stages": ["b1", "b3", "b5"]}

    def forward(self, x):
        feats = {}
        h = x
        for name, block in zip([t.name for t in self.feature_info], self.blocks):
            h = block(h)
            feats[name] = h
        logits = F.interpolate(self.head(h), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return {"logits": logits, "feats": feats}
