"""PS-N (Yim et al., CVPR 2017, "A Gift from KD"): FSP (flow of solution procedure) matrix distillation.

FSP between two maps F1 (m ch), F2 (n ch): G = F1 F2^T / (h w), the larger map first adaptive-pooled to the
smaller size (``pool`` "max" as torchdistill | "avg" as AberHu). Pairs = consecutive taps of the "stages"
group (stage k's output is stage k+1's input), deep ends aligned when the two networks have different stage
counts. The student's maps pass training-only bias-free 1x1 adaptors A_k (c_s -> c_t) so G_s and G_t have the
same m x n; since the adaptors are linear per pixel, FSP(A_1 F1, A_2 F2) = A_1 FSP(F1, F2) A_2^T, which is
how it is computed (no c_t-channel student maps; pooling acts on the raw student maps, which for "avg" is
identical to pooling the adapted ones).
``form``: "paper" (default: batch mean of the sum over pairs of squared Frobenius norms) | "mse" (mean of
squared entries = "paper" / (m n), AberHu) | "torchdistill" (``FSPLoss``: sum of column L2 norms / B, not
squared). ``normalise`` True (default): both matrices are divided by their Frobenius norm first. This is a
deviation from the paper, forced by the heterogeneous pair: the R101 teacher's deep FSP entries are ~1e2
while the adapted student's start near 0, and the unnormalised loss (~6e4) drives the bilinear
A_1 G A_2^T to NaN within 7 SGD steps at the engine's lr 0.01 (measured with ERFNet / PSPNet-R101); normalised,
each pair contributes at most 4 and training is stable. ``normalise=False`` gives the paper's form.
Single stage (L_seg + w L_FSP), the usual modern form; the paper's FSP-only first stage is not reproduced.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._ops import resolve_taps, tap_channels
from .base import Distiller, register_method


def fsp_matrix(f1: torch.Tensor, f2: torch.Tensor, pool: str = "max") -> torch.Tensor:
    size = (min(f1.shape[-2], f2.shape[-2]), min(f1.shape[-1], f2.shape[-1]))
    op = {"max": F.adaptive_max_pool2d, "avg": F.adaptive_avg_pool2d}[pool]
    f1 = op(f1, size) if tuple(f1.shape[-2:]) != size else f1
    f2 = op(f2, size) if tuple(f2.shape[-2:]) != size else f2
    f1, f2 = f1.flatten(2), f2.flatten(2)
    return f1 @ f2.transpose(1, 2) / f1.shape[-1]


def fsp_distance(gs: torch.Tensor, gt: torch.Tensor, form: str = "mse") -> torch.Tensor:
    d = gs - gt.detach()
    if form == "mse":
        return d.pow(2).mean()
    if form == "paper":
        return d.pow(2).sum((1, 2)).mean()
    if form == "torchdistill":
        return d.norm(dim=1).sum() / d.shape[0]
    raise ValueError(f"FSP form must be 'mse', 'paper' or 'torchdistill', got {form!r}")


@register_method
class PSN(Distiller):
    name = "psn"
    needs_teacher = True
    student_taps = ("group:stages",)
    teacher_taps = ("group:stages",)
    default_weights = {"fsp": 1.0}
    default_options = {"group": "stages", "pool": "max", "form": "paper", "normalise": True}
    description = "PS-N / FSP: Gram matrices between consecutive stages (student via 1x1 adaptors), L2 to the teacher's."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        s = resolve_taps(student, "group:" + self.options["group"])
        t = resolve_taps(teacher, "group:" + self.options["group"])
        k = min(len(s), len(t))
        if k < 2:
            raise ValueError(f"method 'psn' needs at least 2 taps in group {self.options['group']!r} of both networks")
        self.s_names, self.t_names = s[-k:], t[-k:]
        self.check_choice("pool", ("max", "avg"))
        self.check_choice("form", ("mse", "paper", "torchdistill"))
        self.check_choice("normalise", (True, False))
        self.adaptors = nn.ModuleList(
            nn.Conv2d(tap_channels(student, a), tap_channels(teacher, b), 1, bias=False)
            for a, b in zip(self.s_names, self.t_names)
        )

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        pool, form = self.options["pool"], self.options["form"]
        fs = [s_out["feats"][n] for n in self.s_names]
        ft = [t_out["feats"][n].detach() for n in self.t_names]
        w = [ad.weight[:, :, 0, 0] for ad in self.adaptors]  # c_t x c_s
        loss = 0.0
        for i in range(len(fs) - 1):
            gs = w[i] @ fsp_matrix(fs[i], fs[i + 1], pool) @ w[i + 1].t()
            with torch.no_grad():
                gt = fsp_matrix(ft[i], ft[i + 1], pool)
            if self.options["normalise"]:
                # each B x m x n matrix over its Frobenius norm (scale-free FSP)
                gs, gt = (F.normalize(g.flatten(1), dim=1).view_as(g) for g in (gs, gt))
            loss = loss + fsp_distance(gs, gt, form)
        return {"fsp": self.weights["fsp"] * loss}

    def matched_size(self, s_out, t_out):
        ch = [t_out["feats"][n].shape[1] for n in self.t_names]
        return int(sum(a * b for a, b in zip(ch[:-1], ch[1:])))
