"""AT (Zagoruyko & Komodakis, ICLR 2017): attention-map transfer (Table 4: attention map).

Q(F) = normalize(flatten(mean_c |F|^p)). ``mode="code"`` (authors' code, default):
mean((Q_s - Q_t)^2); ``mode="paper"``: batch mean of ||Q_s - Q_t||_2. Summed over taps, weight beta/2 = 500
(beta = 1000 as in the authors' code). The teacher's channel-mean map is bilinearly resized to the student's
map size before normalisation; same-size inputs equal torchdistill ``ATLoss`` exactly (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._ops import paired_taps, resize
from .base import Distiller, register_method


def attention_map(feat: torch.Tensor, p: float = 2.0, size=None) -> torch.Tensor:
    # |F|^p = F^p for an even integer p (bit for bit, gradient too): one feature-sized pass fewer
    even = float(p).is_integer() and int(p) % 2 == 0
    a = (feat if even else feat.abs()).pow(p).mean(1, keepdim=True)
    if size is not None:
        a = resize(a, size)
    return F.normalize(a.flatten(1), dim=1)


def at_loss(fs: torch.Tensor, ft: torch.Tensor, p: float = 2.0, mode: str = "code") -> torch.Tensor:
    a_s = attention_map(fs, p)
    a_t = attention_map(ft.detach(), p, size=fs.shape[-2:])
    if mode == "code":
        return (a_s - a_t).pow(2).mean()
    if mode == "paper":
        return torch.norm(a_s - a_t, dim=1).mean()
    raise ValueError(f"AT mode must be 'code' or 'paper', got {mode!r}")


@register_method
class AT(Distiller):
    name = "at"
    needs_teacher = True
    student_taps = ("mid", "high")
    teacher_taps = ("mid", "high")
    default_weights = {"at": 500.0}
    default_options = {"taps": ("mid", "high"), "teacher_taps": None, "p": 2.0, "mode": "code"}
    knowledge_form = "attention map"
    description = "Attention transfer: L2 between normalised channel-mean |F|^2 maps at the 1/4 and 1/8 taps."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names, self.t_names = paired_taps(student, teacher, self.options["taps"], self.options["teacher_taps"])
        self.check_choice("mode", ("code", "paper"))

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        p, mode = self.options["p"], self.options["mode"]
        loss = sum(at_loss(s_out["feats"][s], t_out["feats"][t], p, mode) for s, t in zip(self.s_names, self.t_names))
        return {"at": self.weights["at"] * loss}

    def matched_size(self, s_out, t_out):
        return int(sum(s_out["feats"][s].shape[-2:].numel() for s in self.s_names))
