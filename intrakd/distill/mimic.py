"""Feature mimicking (Hou et al., AAAI 2019; FitNets-style hints): Table 4's feature map form.

L = mean over taps of mean((A(F_s) - F_t)^2), A a training-only 1x1 conv adaptor c_s -> c_t (optional BN);
the teacher map is bilinearly resized to the student's size. Weight 0.1 (AberHu's FitNet setting; the
paper's value is unknown).
"""

from __future__ import annotations

from torch import nn

from ._ops import paired_taps, resize, tap_channels
from .base import Distiller, register_method


@register_method
class Mimic(Distiller):
    name = "mimic"
    needs_teacher = True
    student_taps = ("high",)
    teacher_taps = ("high",)
    default_weights = {"mimic": 0.1}
    default_options = {"taps": ("high",), "teacher_taps": None, "bn": False}
    knowledge_form = "feature map"
    description = "Feature mimicking: 1x1 adaptor on the student's 1/8 features, L2 to the teacher's features."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names, self.t_names = paired_taps(student, teacher, self.options["taps"], self.options["teacher_taps"])
        mods = []
        for a, b in zip(self.s_names, self.t_names):
            cs, ct = tap_channels(student, a), tap_channels(teacher, b)
            layers = [nn.Conv2d(cs, ct, 1, bias=not self.options["bn"])]
            if self.options["bn"]:
                layers.append(nn.BatchNorm2d(ct))
            mods.append(nn.Sequential(*layers))
        self.adaptors = nn.ModuleList(mods)

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        loss = 0.0
        for ad, s, t in zip(self.adaptors, self.s_names, self.t_names):
            fs = ad(s_out["feats"][s])
            loss = loss + (fs - resize(t_out["feats"][t].detach(), fs.shape[-2:])).pow(2).mean()
        return {"mimic": self.weights["mimic"] * loss / len(self.s_names)}

    def matched_size(self, s_out, t_out):
        return int(sum(t_out["feats"][t][0].numel() for t in self.t_names))
