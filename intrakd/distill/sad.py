"""SAD (Hou et al., ICCV 2019): self attention distillation, no teacher, late start.

a_m = sum_c F_m^2 per block of the student's "blocks" group (shallow to deep); each later block's map is the
target of the block before it: the later map is bilinearly resized to the earlier map's size, both pass a
spatial softmax, and L = sum over consecutive pairs of MSE (mean). Target detached (``detach_target``; the
cleaner reading of "target"). Weight 0.1 (official Lua).

Schedule: SAD switches on once the net is "reasonably trained", after ``start_fraction`` of the run's training
iterations: the term is zero for global steps ``step < switch_step`` and on from ``switch_step = ceil(start_fraction
x total_steps)`` (``total_steps`` from the engine; 0 = on from the first step, 1 = never). Default 2/3, the SAD
paper's ENet schedule: on TuSimple SAD is added at episode 1,200 of the paper's 1,800 (the author in
cardwing/Codes-for-Lane-Detection#340), on CULane at 40K (#208) of what we recall as the paper's 60K episodes
(the 60K is from memory, not re-read here); both are 2/3. A fraction rather than an epoch, so the switch moves
with each dataset's budget (the paper preset's 12 CULane epochs and 24 ApolloScape epochs alike).
"""

from __future__ import annotations

import math

import torch

from ._ops import resize, tap_names
from .base import Distiller, register_method


def sad_map(feat: torch.Tensor, size=None) -> torch.Tensor:
    a = feat.pow(2).sum(1, keepdim=True)
    if size is not None:
        a = resize(a, size)
    return torch.softmax(a.flatten(1), dim=1)


#: The SAD paper's switch-on point as a fraction of training: 1,200 of 1,800 TuSimple episodes, 40K of 60K on CULane.
START_FRACTION = 2 / 3


@register_method
class SAD(Distiller):
    name = "sad"
    needs_teacher = False
    student_taps = ("group:blocks",)
    teacher_taps = ()
    default_weights = {"sad": 0.1}
    default_options = {"group": "blocks", "start_fraction": START_FRACTION, "detach_target": True}
    description = ("SAD: each block's spatial-softmax attention mimics the next block's; switches on after "
                   "start_fraction of the run's iterations (2/3, the SAD paper's schedule).")

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names = tap_names(student, "group:" + self.options["group"])
        if len(self.s_names) < 2:
            raise ValueError(f"SAD needs at least 2 taps in group {self.options['group']!r}")
        f = self.options["start_fraction"]
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 <= f <= 1:
            raise ValueError(f"method 'sad' option start_fraction={f!r}: expected a number in [0, 1] (the fraction "
                             "of the run's training iterations after which SAD switches on)")
        if f > 0 and self.total_steps is None:
            raise ValueError(f"method 'sad' option start_fraction={f!r} needs the run's total_steps (the engine "
                             "passes it; build_method(..., total_steps=N)); start_fraction 0 needs none")
        self.switch_step = 0 if f == 0 else math.ceil(f * self.total_steps - 1e-9)

    def active(self, step: int, epoch: int = 0) -> bool:
        """Whether the SAD term is on at global training step ``step`` (0-based)."""
        return step >= self.switch_step

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
