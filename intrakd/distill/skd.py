"""SKD (Liu et al., CVPR 2019): structured KD = pixel-wise + pair-wise (+ optional holistic adversarial) terms.

* pixel-wise: per-pixel KL(teacher || student) at T = 1, mean over pixels and batch (the official code uses
  the cross-entropy to soft targets, summed over the batch: same gradient up to the factor B), weight 10.
* pair-wise: on the 1/8 "high" tap, nodes = max-pool with kernel = stride = floor(scale * size),
  ``ceil_mode`` (official ``pool_scale`` 0.5); a_ij = cosine of node vectors with the L2 norm detached as in
  the official ``sim_dis_compute`` (``detach_norm``); mean squared difference, weight 1.
  ``pool_scale=None`` keeps every position as a node: the dense pairwise similarity map of Table 4.
* holistic (``adversarial=True``): WGAN-GP with a spectral-norm SAGAN-style discriminator D on the score maps
  (bilinearly resized to 1/``adv_stride`` of the input, at least 16 px). Generator term -0.1 mean D(z_s),
  computed with D's parameters frozen, so the main loss never gives D a gradient. D is updated in
  :meth:`SKD.after_student_step` (the engine calls it after the main optimiser's step) by its own Adam
  optimiser (lr 4e-4, betas 0.9/0.99 as the official code): w_adv (mean D(z_s) - mean D(z_t) + 10 GP).
  D's weights are this module's parameters (saved with ``state_dict``; they sit in the engine's optimiser but
  never carry a gradient there) and its optimiser state travels in ``state_dict`` as extra state, so a resumed
  run continues exactly. Deviation from the official D (4 conv4x4/2 layers for 65 px inputs): 3 conv4x4/2
  layers, self-attention after the third, a 3x3 conv to 1 and a spatial mean, so small maps work.
"skd_pair" registers the pair-wise term alone (Table 4's pairwise similarity map).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ._ops import pixel_kl, resize, tap_names
from .base import Distiller, register_method


def pool_nodes(feat: torch.Tensor, scale: float | None) -> torch.Tensor:
    if scale is None:
        return feat
    h, w = feat.shape[-2:]
    k = (max(1, int(h * scale)), max(1, int(w * scale)))
    return F.max_pool2d(feat, kernel_size=k, stride=k, ceil_mode=True)


def pairwise_similarity(feat: torch.Tensor, detach_norm: bool = False) -> torch.Tensor:
    """B x c x h x w -> B x N x N cosine similarities between the N = h*w position vectors."""
    f = feat.flatten(2)
    norm = f.norm(dim=1, keepdim=True) + 1e-8
    if detach_norm:
        norm = norm.detach()
    v = f / norm
    return v.transpose(1, 2) @ v


def pairwise_loss(fs: torch.Tensor, ft: torch.Tensor, scale: float | None = 0.5, detach_norm: bool = True) -> torch.Tensor:
    ft = resize(ft.detach(), fs.shape[-2:])
    gs = pairwise_similarity(pool_nodes(fs, scale), detach_norm)
    gt = pairwise_similarity(pool_nodes(ft, scale))
    return (gs - gt).pow(2).mean()


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * softmax(q^T k) applied to v."""

    def __init__(self, ch: int):
        super().__init__()
        self.q = nn.Conv2d(ch, max(1, ch // 8), 1)
        self.k = nn.Conv2d(ch, max(1, ch // 8), 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        b, c, h, w = x.shape
        attn = torch.softmax(self.q(x).flatten(2).transpose(1, 2) @ self.k(x).flatten(2), dim=-1)  # B x N x N
        out = (self.v(x).flatten(2) @ attn.transpose(1, 2)).view(b, c, h, w)
        return x + self.gamma * out


class Discriminator(nn.Module):
    def __init__(self, in_ch: int, conv_dim: int = 64):
        super().__init__()
        d = conv_dim
        layers = []
        for i, (a, b) in enumerate([(in_ch, d), (d, 2 * d), (2 * d, 4 * d)]):
            layers += [spectral_norm(nn.Conv2d(a, b, 4, 2, 1)), nn.LeakyReLU(0.1)]
        self.body = nn.Sequential(*layers, SelfAttention(4 * d))
        self.last = nn.Conv2d(4 * d, 1, 3, 1, 1)

    def forward(self, x):
        return self.last(self.body(x)).mean((1, 2, 3))


@register_method
class SKD(Distiller):
    name = "skd"
    needs_teacher = True
    student_taps = ("high", "logits")
    teacher_taps = ("high", "logits")
    default_weights = {"pixel": 10.0, "pair": 1.0, "adv": 0.1}
    default_options = {"terms": ("pixel", "pair"), "pair_tap": "high", "pool_scale": 0.5, "detach_norm": True,
                       "adversarial": False, "conv_dim": 64, "adv_stride": 8, "gp_weight": 10.0, "d_lr": 4e-4}
    description = "Structured KD: pixel-wise KL (w 10) + pooled pair-wise cosine map MSE (w 1); WGAN-GP holistic optional."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        terms = self.options.setdefault("terms", ("pair",))
        self.options.setdefault("adversarial", False)
        if isinstance(terms, str) or not terms or set(terms) - {"pixel", "pair"}:
            raise ValueError(f"method {self.name!r} option terms={terms!r}: a non-empty subset of ('pixel', 'pair')")
        scale = self.options["pool_scale"]
        if scale is not None and not 0 < float(scale) <= 1:
            raise ValueError(f"method {self.name!r} option pool_scale={scale!r}: None or a number in (0, 1]")
        self.s_name = tap_names(student, self.options["pair_tap"])[0]
        self.t_name = tap_names(teacher, self.options["pair_tap"])[0]
        self.discriminator = Discriminator(num_classes, self.options["conv_dim"]) if self.options["adversarial"] else None
        self._d_opt = None  # built on first use, after the engine has moved the module to its device

    def _d_input(self, logits):
        s = self.options["adv_stride"]
        size = (max(16, logits.shape[-2] // s), max(16, logits.shape[-1] // s))
        return resize(logits, size)

    def _critic_frozen(self, x):
        """D(x) with D's parameters treated as constants (gradient flows to x only)."""
        params = list(self.discriminator.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            return self.discriminator(x)
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        out = {}
        if "pixel" in self.options["terms"]:
            out["pixel"] = self.weights["pixel"] * pixel_kl(s_out["logits"], t_out["logits"].detach())
        if "pair" in self.options["terms"]:
            fs, ft = s_out["feats"][self.s_name], t_out["feats"][self.t_name]
            out["pair"] = self.weights["pair"] * pairwise_loss(fs, ft, self.options["pool_scale"],
                                                               self.options["detach_norm"])
        if self.discriminator is not None:
            out["adv"] = -self.weights["adv"] * self._critic_frozen(self._d_input(s_out["logits"])).mean()
        return out

    def d_optimizer(self) -> torch.optim.Optimizer:
        if self._d_opt is None:
            self._d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=self.options["d_lr"], betas=(0.9, 0.99))
        return self._d_opt

    def after_student_step(self, s_out, t_out, batch, step=0, epoch=0):
        """One WGAN-GP discriminator update: w_adv * (mean D(z_s) - mean D(z_t) + gp_weight * GP)."""
        if self.discriminator is None:
            return {}
        zs = self._d_input(s_out["logits"].detach().float())
        zt = self._d_input(t_out["logits"].detach().float())
        alpha = torch.rand(zs.shape[0], 1, 1, 1, device=zs.device, dtype=zs.dtype)
        mix = (alpha * zs + (1 - alpha) * zt).requires_grad_(True)
        grad = torch.autograd.grad(self.discriminator(mix).sum(), mix, create_graph=True)[0]
        gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
        d_loss = self.weights["adv"] * (self.discriminator(zs).mean() - self.discriminator(zt).mean()
                                        + self.options["gp_weight"] * gp)
        opt = self.d_optimizer()
        opt.zero_grad(set_to_none=True)
        d_loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)  # the engine's optimiser never sees a gradient on D
        return {"d_loss": float(d_loss.detach())}

    def get_extra_state(self):
        return {"d_optimizer": None if self._d_opt is None else self._d_opt.state_dict()}

    def set_extra_state(self, state):
        if state and state.get("d_optimizer") is not None:
            if self.discriminator is None:
                raise ValueError("checkpoint holds SKD discriminator optimiser state but adversarial=False")
            self.d_optimizer().load_state_dict(state["d_optimizer"])

    def matched_size(self, s_out, t_out):
        fs = s_out["feats"][self.s_name]
        size = 0
        if "pair" in self.options["terms"]:
            size += pool_nodes(fs[:1], self.options["pool_scale"]).shape[-2:].numel() ** 2
        if "pixel" in self.options["terms"]:
            size += s_out["logits"][0].numel()
        return int(size)


@register_method
class SKDPair(SKD):
    name = "skd_pair"
    student_taps = ("high",)
    teacher_taps = ("high",)
    default_weights = {"pair": 1.0}
    default_options = {"pair_tap": "high", "pool_scale": None, "detach_norm": True}
    knowledge_form = "pairwise similarity map"
    description = "Table 4 pairwise similarity map: SKD's pair-wise term alone over all 1/8 positions (no pooling)."
