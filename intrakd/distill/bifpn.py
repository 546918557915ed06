"""BiFPN baseline (Zhu et al., ECCV 2018, BDRAR) as a training-only adaptor that mimics the teacher (H1).

The supplement lists "BiFPN" as a teacher-student baseline without saying how; this is reconstruction H1
of the reference brief. The student's taps (default 1/4 and 1/8, shallow to deep) are reduced to ``width``
channels (1x1 + BN + ReLU) and brought to the finest tap's resolution; a bidirectional pyramid of recurrent
attention residual (RAR) modules aggregates them deep->shallow and shallow->deep. RAR(d, s):
r = ReLU(refine([d, s]) + d); r = (1 + att([d, s])) r; applied twice with shared weights (second pass on
(r, s)); refine = 1x1, grouped 3x3, 1x1 (BN); att = 1x1 then three residual grouped 3x3 blocks with dilations
2, 3, 4, 1x1 and a sigmoid. A shared prediction head (3x3 + BN + ReLU + Dropout 0.1 + 1x1 to n classes) maps
both directions to logits, fused by a 2-channel sigmoid attention. Losses at the pyramid's resolution:
"mimic" = KL(teacher || fused) (teacher logits bilinearly downsized) and "deep" = BDRAR's deep supervision
with multi-class CE (ignore 255) on the fused and both directional predictions. All dropped at inference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._ops import IGNORE, pixel_kl, resize, resize_label, resolve_taps, tap_channels
from .base import Distiller, register_method


def cbr(cin: int, cout: int, k: int = 1, dilation: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class RAR(nn.Module):
    """Recurrent attention residual module (two recurrent steps, shared weights)."""

    def __init__(self, width: int, groups: int):
        super().__init__()
        self.refine = nn.Sequential(cbr(2 * width, width), cbr(width, width, 3, groups=groups),
                                    nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width))
        self.att_in = cbr(2 * width, width)
        self.att_blocks = nn.ModuleList(cbr(width, width, 3, dilation=d, groups=groups) for d in (2, 3, 4))
        self.att_out = nn.Conv2d(width, width, 1)

    def step(self, d, s):
        x = torch.cat([d, s], 1)
        r = F.relu(self.refine(x) + d)
        a = self.att_in(x)
        for block in self.att_blocks:
            a = a + block(a)
        return (1 + torch.sigmoid(self.att_out(a))) * r

    def forward(self, d, s):
        return self.step(self.step(d, s), s)


class BiPyramid(nn.Module):
    def __init__(self, in_channels: list[int], num_classes: int, width: int = 32, groups: int | None = None):
        super().__init__()
        groups = groups or width
        n = len(in_channels)
        self.reduce = nn.ModuleList(cbr(c, width) for c in in_channels)
        self.down = nn.ModuleList(RAR(width, groups) for _ in range(n - 1))
        self.up = nn.ModuleList(RAR(width, groups) for _ in range(n - 1))
        self.predict = nn.Sequential(cbr(width, width, 3), nn.Dropout(0.1), nn.Conv2d(width, num_classes, 1))
        self.fuse = nn.Sequential(cbr(2 * width, max(2, width // 2), 3), nn.Conv2d(max(2, width // 2), 2, 1))

    def forward(self, feats: list[torch.Tensor]):
        size = feats[0].shape[-2:]
        r = [resize(red(f), size) for red, f in zip(self.reduce, feats)]
        x = r[-1]
        for lvl in reversed(range(len(r) - 1)):  # deep -> shallow
            x = self.down[lvl](x, r[lvl])
        y = r[0]
        for lvl in range(1, len(r)):  # shallow -> deep
            y = self.up[lvl - 1](y, r[lvl])
        p_down, p_up = self.predict(x), self.predict(y)
        att = torch.sigmoid(self.fuse(torch.cat([x, y], 1)))
        return att[:, :1] * p_down + att[:, 1:] * p_up, p_down, p_up


@register_method
class BiFPN(Distiller):
    name = "bifpn"
    needs_teacher = True
    student_taps = ("mid", "high")
    teacher_taps = ("logits",)
    default_weights = {"mimic": 1.0, "deep": 1.0}
    default_options = {"taps": ("mid", "high"), "width": 32, "groups": None, "temperature": 1.0}
    description = "BiFPN (BDRAR) training-only bidirectional RAR pyramid on student taps; fused output mimics teacher."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names = resolve_taps(student, self.options["taps"])
        if len(self.s_names) < 2:
            raise ValueError("BiFPN needs at least 2 student taps (shallow to deep)")
        width, groups = self.options["width"], self.options["groups"] or self.options["width"]
        if not (isinstance(width, int) and width >= 2 and width % groups == 0):
            raise ValueError(f"method 'bifpn' options width={width!r}, groups={groups!r}: width an int >= 2 "
                             "divisible by groups")
        self.pyramid = BiPyramid([tap_channels(student, n) for n in self.s_names], num_classes,
                                 self.options["width"], self.options["groups"])

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        feats = [s_out["feats"][n] for n in self.s_names]
        # The pyramid runs in float32 outside autocast: under CPU bf16 autocast its recurrent attention residuals
        # turned the adaptor's weights non-finite within two Adam steps (ENet, measured); it is training-only.
        with torch.autocast(feats[0].device.type, enabled=False):
            fused, p_down, p_up = self.pyramid([f.float() for f in feats])
        size = fused.shape[-2:]
        label = resize_label(batch["label"], size)
        t = resize(t_out["logits"].detach(), size)
        mimic = pixel_kl(fused, t, self.options["temperature"])
        deep = sum(F.cross_entropy(z, label, ignore_index=IGNORE) for z in (fused, p_down, p_up))
        return {"mimic": self.weights["mimic"] * mimic, "deep": self.weights["deep"] * deep}
