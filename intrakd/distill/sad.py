"""SAD (Hou et al., ICCV 2019): self attention distillation, no teacher, late start.

a_m = sum_c F_m^2 per block of the student's "blocks" group (shallow to deep); each later block's map is the
target of the block before it: the later map is bilinearly resized to the earlier map's size, both pass a
spatial softmax, and L = sum over consecutive pairs of MSE (mean). Target detached (``detach_target``; the
cleaner reading of "target"). Weight 0.1 (official Lua). Active only once ``epoch >= start_epoch`` and
``step >= start_step``; default start_epoch 12 = half of the 24-epoch ApolloScape schedule (SAD starts when
the net is "reasonably trained", ~40-50 % of training); set it per schedule in the config.
"""

from __future__ import annotations

import torch

from ._ops import resize, tap_names
from .base import Distiller, register_method


def sad_map(feat: torch.Tensor, size=None) -> torch.Tensor:
    a = feat.pow(2).sum(1, keepdim=True)
    if size is not None:
        a = resize(a, size)
    return torch.softmax(a.flatten(1), dim=1)


@register_method
class SAD(Distiller):
    name = "sad"
    needs_teacher = False
    student_taps = ("group:blocks",)
    teacher_taps = ()
    default_weights = {"sad": 0.1}
    default_options = {"group": "blocks", "start_epoch": 12, "start_step": 0, "detach_target": True}
    description = "SAD: each block's spatial-softmax attention mimics the next block's; starts late (epoch 12)."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names = tap_names(student, "group:" + self.options["group"])
        if len(self.s_names) < 2:
            raise ValueError(f"SAD needs at least 2 taps in group {self.options['group']!r}")

    def active(self, step: int, epoch: int) -> bool:
        return epoch >= self.options["start_epoch"] and step >= self.options["start_step"]

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        feats = [s_out["feats"][n] for n in self.s_names]
        if not self.active(step, epoch):
            return {"sad": feats[0].new_zeros(())}
        loss = 0.0
        for early, late in zip(feats[:-1], feats[1:]):
            target = sad_map(late, early.shape[-2:])
            if self.options["detach_target"]:
                target = target.detach()
            loss = loss + (sad_map(early) - target).pow(2).mean()
        return {"sad": self.weights["sad"] * loss}
