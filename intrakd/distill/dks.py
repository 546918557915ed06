"""DKS (Sun et al., CVPR 2019): deeply-supervised knowledge synergy, self-distillation (no teacher).

Training-only auxiliary heads (3x3 conv + BN + ReLU + 1x1 to n classes) on the student's 1/4 and 1/8 taps;
their logits are upsampled to the label size. Branches = the auxiliary heads and the main head.
L = sum_aux CE(z_b, y) ("ce", the main CE is the engine's segmentation loss)
  + sum over ordered pairs b != b' of mean over valid pixels of KL(softmax(z_b').detach() || softmax(z_b))
  ("synergy"), all weights 1 as in the official code.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ._ops import IGNORE, pixel_kl, resize, resolve_taps, tap_channels, valid_mask
from .base import Distiller, register_method


def aux_head(ch: int, num_classes: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(inplace=True),
                         nn.Conv2d(ch, num_classes, 1))


@register_method
class DKS(Distiller):
    name = "dks"
    needs_teacher = False
    student_taps = ("mid", "high", "logits")
    teacher_taps = ()
    default_weights = {"ce": 1.0, "synergy": 1.0}
    default_options = {"taps": ("mid", "high")}
    description = "DKS self-distillation: auxiliary heads on 1/4 and 1/8 taps, CE + pair-wise KL among all branches."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names = resolve_taps(student, self.options["taps"])
        self.heads = nn.ModuleList(aux_head(tap_channels(student, n), num_classes) for n in self.s_names)

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        label = batch["label"]
        size = label.shape[-2:]
        aux = [resize(h(s_out["feats"][n]), size) for h, n in zip(self.heads, self.s_names)]
        branches = aux + [resize(s_out["logits"], size)]
        ce = sum(F.cross_entropy(z, label, ignore_index=IGNORE) for z in aux)
        mask = valid_mask(label, self.num_classes)
        syn = sum(pixel_kl(a, b.detach(), 1.0, mask)
                  for i, a in enumerate(branches) for j, b in enumerate(branches) if i != j)
        return {"ce": self.weights["ce"] * ce, "synergy": self.weights["synergy"] * syn}
