"""IRG (Liu et al., CVPR 2019): instance relationship graph over the images of a batch.

Instances = images (the faithful reading for segmentation). Per tap and for the logits, edges
A(b, b') = ||f_b - f_b'||^2 of the flattened maps, divided by the matrix max (AberHu's normalisation);
transformation Lambda(b) = ||pool(f_b^mid) - chanpool(f_b^high)||^2 / max, the 1/4 map average-pooled to the
1/8 size and both maps' channels average-pooled to the smaller count (AberHu's pair averaging when c2 = 2 c1);
vertex term = MSE of the logits. L = 0.1 vertex + 5 mean-edge + 5 transformation (AberHu weights). Edges
and transformation are channel-agnostic, so no adaptor. Needs B >= 3: with B = 2 the max-normalised edge
matrix is the constant [[0, 1], [1, 0]] for both networks (no gradient), with B = 1 everything is zero.

Under DDP the instances are the *global* batch: the edge and transformation terms (relations between the images
of a batch, normalised by the batch's max) are computed on every process's maps gathered in rank order
(:func:`intrakd.distill._ops.global_batch`), so their value and, once DDP has averaged the processes' gradients,
their gradient equal one process's on the same global batch (tested with 2 gloo processes). Without it, 4
processes at batch 8 would see 2 images each and an edge term of exactly 0. The vertex term is a per-pixel mean:
computed per process, DDP's average makes it the global batch's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._ops import global_batch, paired_taps, resize
from .base import Distiller, register_method


def edge_matrix(x: torch.Tensor) -> torch.Tensor:
    """B x ... -> B x B squared Euclidean distances of the flattened instances, zero diagonal, / max."""
    x = x.flatten(1)
    sq = (x * x).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * x @ x.t()).clamp_min(0)
    d = d * (1 - torch.eye(len(x), device=x.device, dtype=x.dtype))
    return d / d.max().clamp_min(1e-12)


def transformation(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """Per-instance squared distance between layer l1 (pooled to l2's size) and l2, channels pooled to match."""
    f1 = F.adaptive_avg_pool2d(f1, f2.shape[-2:])
    c = min(f1.shape[1], f2.shape[1])

    def chan(f):
        if f.shape[1] == c:
            return f
        b, _, h, w = f.shape
        return F.adaptive_avg_pool1d(f.flatten(2).transpose(1, 2), c).transpose(1, 2).reshape(b, c, h, w)

    lam = (chan(f1) - chan(f2)).pow(2).flatten(1).sum(1)
    return lam / lam.max().clamp_min(1e-12)


@register_method
class IRG(Distiller):
    name = "irg"
    needs_teacher = True
    student_taps = ("mid", "high", "logits")
    teacher_taps = ("mid", "high", "logits")
    default_weights = {"vertex": 0.1, "edge": 5.0, "transform": 5.0}
    default_options = {"taps": ("mid", "high"), "teacher_taps": None}
    description = "IRG: batch instance graph (edge distances per tap and logits), mid->high transformation, logit vertices."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        self.s_names, self.t_names = paired_taps(student, teacher, self.options["taps"], self.options["teacher_taps"])

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        zs, zt = s_out["logits"], resize(t_out["logits"].detach(), s_out["logits"].shape[-2:])
        vertex = F.mse_loss(zs, zt)  # per pixel: the processes' mean (DDP) is the global batch's
        # instances = the global batch (every process's images, in rank order; one process: its own batch)
        fs = [global_batch(s_out["feats"][n]) for n in self.s_names] + [global_batch(zs)]
        ft = [global_batch(t_out["feats"][n].detach()) for n in self.t_names] + [global_batch(zt)]
        edge = sum(F.mse_loss(edge_matrix(a), edge_matrix(b)) for a, b in zip(fs, ft)) / len(fs)
        out = {"vertex": self.weights["vertex"] * vertex, "edge": self.weights["edge"] * edge}
        if len(self.s_names) >= 2:
            trans = F.mse_loss(transformation(fs[0], fs[1]), transformation(ft[0], ft[1]))
            out["transform"] = self.weights["transform"] * trans
        return out
