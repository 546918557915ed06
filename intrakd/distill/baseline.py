"""No distillation: the student trained on its segmentation loss alone."""

from __future__ import annotations

from .base import Distiller, register_method


@register_method
class Baseline(Distiller):
    name = "baseline"
    needs_teacher = False
    description = "No distillation (segmentation loss only); returns no extra loss terms."

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        return {}
