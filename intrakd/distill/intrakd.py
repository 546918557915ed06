"""IntRA-KD (Hou et al., CVPR 2020): inter-region affinity distillation.

Per distilled tap (default the 1/4 "mid" and 1/8 "high" taps of both networks):
1. AOI maps from the label: one-hot (255 = no class) -> box smoothing (kernel k) and downsampling to the
   feature size, the kernel counted in feature or label pixels (``kernel_unit``).
2. AOI-grounded moment pooling: per class and channel, mean / variance / standardised skewness of the
   features weighted by the AOI, by one batched matmul on [F, F^2, F^3] (no loops over classes, positions or
   channels).
3. Cosine affinity graph between class nodes (n x n per moment order, or one graph on concatenated
   moments); MSE between the student's graph and the detached teacher's graph over present-class pairs.
Graphs are n x n for both networks, so teacher and student channel counts never need an adaptor.

Open questions of the reference brief (§6) as switches (option = default | alternatives):
1. Moment formulas: ``normaliser`` "mass" (Z_j = sum_p M_j(p), the paper reading) | "constant"
   (Z = h_f w_f, the official example); ``second`` "variance" | "std"; ``third`` "skewness"
   (third / (var + eps)^1.5) | "central" (unnormalised third central moment); ``eps`` 1e-6 on the variance;
   ``moments`` (1, 2, 3) or any subset (moment-order ablation).
2. ``graph`` "per_order" (one n x n graph per order, losses summed) | "concat" (one graph on [mu1; mu2; mu3]);
   ``diagonal`` True (the full n x n matrix) | False.
3. AOI: ``kernel`` 5 (supplement §1); ``kernel_unit`` "feature" (paper reading: downsample the one-hot label to
   the feature size, then a k x k box filter there, k counting feature pixels) | "label" (the author's example:
   box filter at label resolution, k counting label pixels, then downsample); ``downsample`` "area" (every
   feature cell gets the fraction of its label pixels in each class, so a marking thinner than the stride keeps
   its mass at every offset) | "nearest" (one label pixel per cell: a 4-px line at 1/8 keeps 0 or 8 of its
   4 px depending on where it falls) | "bilinear" (the author's example's cv2.resize); ``pad`` "reflect" (= cv2.blur) | "zeros" | "valid".
4. Layers: ``taps`` ("mid", "high") = the models' declared 1/4 and 1/8 distillation points (or tap names);
   ``teacher_taps`` None (the same specs on the teacher) or the teacher's own specs, paired in order.
5. Objective: ``with_at`` / ``with_kd`` True: "intrakd" = IntRA + AT (code form, same taps) + pixel-wise KD
   (supplement Table 4 gains 1.9 + 0.7 + 0.3 ~ 43.2 - 40.4); "intra" = IntRA alone (Table 4's graph row).
   Weights are unknown in the sources; defaults intra 1, at 500 (beta/2 of AT's code), kd 1 (T = 1).
Further choices: ``reduction`` "present" (mean over the pairs of classes present in the image; absent
classes contribute nothing) | "all" (sum over present pairs / n^2: the official example, where absent rows are
zero in both graphs); ``presence_tau`` 1e-3 (AOI mass, in feature pixels, below which a class is absent);
``precision`` "float64": the raw moments in double precision, because the algebraic central moments
(E[F^3] - 3 mu E[F^2] + 2 mu^3) cancel catastrophically in float32 when a class region is nearly constant
and the skewness divides by sigma^3 (float32 is ~1e-3 off the two-pass loop form; float64 ~1e-12); moments within
the round-off of that cancellation are reported as zero rather than as noise, in either precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._ops import downsample_mass, paired_taps, pixel_kl, resize, resize_label
from .at import at_loss
from .base import Distiller, register_method


KERNEL_UNITS = ("feature", "label")
DOWNSAMPLES = ("area", "nearest", "bilinear")
PADS = ("reflect", "zeros", "valid")


def _class_index(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Labels with every ignore value (>= n, e.g. 255) folded into one extra class n."""
    return torch.where(label < num_classes, label, torch.full_like(label, num_classes))


def one_hot(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    """B x H x W labels -> B x n x H x W float one-hot; ignore (>= n, e.g. 255) rows are all zero."""
    b, h, w = label.shape
    out = torch.zeros(b, num_classes + 1, h, w, device=label.device)
    # scattered straight into channel-first float32: no int64 one-hot and no permuted copy
    return out.scatter_(1, _class_index(label, num_classes)[:, None], 1.0)[:, :num_classes]


def class_fractions(label: torch.Tensor, num_classes: int, size) -> torch.Tensor:
    """Per cell of a ``size`` grid, the fraction of its label pixels in each class: B x n x h x w, equal to
    ``downsample_mass(one_hot(label, n), size)`` but counted with one ``bincount`` instead of building the
    full-resolution one-hot. Where the grid divides the label the counts are exact integers: bit for bit the
    pooling's result when the cell area is a power of two (strides 4 and 8), within one rounding otherwise. Where
    it does not divide, adaptive pooling's windows overlap and the one-hot path is taken."""
    b, hl, wl = label.shape
    h, w = (int(s) for s in size)
    if hl % h or wl % w:
        return downsample_mass(one_hot(label, num_classes), (h, w))
    sy, sx = hl // h, wl // w
    dev = label.device
    cell = (torch.arange(hl, device=dev) // sy)[:, None] * w + torch.arange(wl, device=dev)[None] // sx  # H x W
    code = (torch.arange(b, device=dev)[:, None, None] * (h * w) + cell) * (num_classes + 1)
    counts = torch.bincount((code + _class_index(label, num_classes)).flatten(), minlength=b * h * w * (num_classes + 1))
    counts = counts.view(b, h, w, num_classes + 1)[..., :num_classes].permute(0, 3, 1, 2)
    return counts.float() / (sy * sx)


def box_filter(x: torch.Tensor, kernel: int, pad: str = "reflect") -> torch.Tensor:
    """Mean filter of size ``kernel`` on B x C x h x w, stride 1, same size; even kernels anchor like cv2.blur.

    ``pad``: "reflect" (OpenCV's default BORDER_REFLECT_101, what ``cv2.blur`` does), "zeros" (zero padding
    counted in the mean, ``count_include_pad=True``) or "valid" (mean over the in-image part of the window).
    Separable (a 1 x k then a k x 1 mean), so large kernels of the kernel-size ablation stay cheap.
    """
    if pad not in PADS:
        raise ValueError(f"AOI pad must be one of {PADS}, got {pad!r}")
    if kernel <= 1:
        return x
    lo = kernel // 2
    hi = kernel - 1 - lo

    def mean(t):
        return F.avg_pool2d(F.avg_pool2d(t, (1, kernel), stride=1), (kernel, 1), stride=1)

    if pad == "reflect":
        if lo >= min(x.shape[-2:]):
            raise ValueError(f"AOI kernel {kernel} too large for a {tuple(x.shape[-2:])} map with reflect padding")
        return mean(F.pad(x, (lo, hi, lo, hi), mode="reflect"))
    summed = mean(F.pad(x, (lo, hi, lo, hi)))
    if pad == "zeros":
        return summed
    count = mean(F.pad(x.new_ones(1, 1, *x.shape[-2:]), (lo, hi, lo, hi)))
    return summed / count


def needs_full_onehot(kernel_unit: str, downsample: str) -> bool:
    """Whether :func:`aoi_maps` builds the full-resolution one-hot for these options: it does not when the label is
    resized (``nearest``) or counted (``area``: :func:`class_fractions`) straight to the feature size."""
    return kernel_unit == "label" or downsample == "bilinear"


def aoi_maps(label: torch.Tensor, num_classes: int, size, kernel: int = 5, kernel_unit: str = "feature",
             downsample: str = "area", pad: str = "reflect", onehot: torch.Tensor | None = None) -> torch.Tensor:
    """Soft AOI maps B x n x h_f x w_f from a B x H x W label map (255 = ignore, belongs to no AOI).

    ``onehot``: ``one_hot(label, num_classes)`` when the caller already has it (one per label for every tap).
    """
    size = tuple(int(s) for s in size)
    if kernel_unit not in KERNEL_UNITS:
        raise ValueError(f"AOI kernel_unit must be one of {KERNEL_UNITS}, got {kernel_unit!r}")
    if downsample not in DOWNSAMPLES:
        raise ValueError(f"AOI downsample must be one of {DOWNSAMPLES}, got {downsample!r}")
    if not needs_full_onehot(kernel_unit, downsample):
        small = (one_hot(resize_label(label, size), num_classes) if downsample == "nearest"
                 else class_fractions(label, num_classes, size))
        return box_filter(small, kernel, pad)
    full = one_hot(label, num_classes) if onehot is None else onehot
    if kernel_unit == "label":
        full = box_filter(full, kernel, pad)
    small = downsample_mass(full, size) if downsample == "area" else resize(full, size, downsample)
    return small if kernel_unit == "label" else box_filter(small, kernel, pad)


class _RawMoments(torch.autograd.Function):
    """E_k = M (F^k)^T / Z for k = 1..order (M: B x n x P weights, F: B x c x P features, Z: B x n x 1 or a scalar):
    one batched GEMM per order on transposed views, and the gradient in closed form, dL/dF = sum_k k F^(k-1) G_k with
    G_k = (dL/dE_k / Z)^T M, all orders in one GEMM and summed by Horner's rule: autograd would keep F^2 and F^3 and
    walk back through each power and each GEMM apart (four times the forward's cost at the 1/4 tap)."""

    @staticmethod
    def forward(ctx, f, m, z, order):
        power, e = f, []
        for k in range(order):
            if k:  # F^2 is a fresh buffer, F^3 is made in it
                power = power * f if k == 1 else power.mul_(f)
            e.append(torch.bmm(m, power.transpose(1, 2)) / z)  # B x n x c
        ctx.save_for_backward(f, m, z)
        ctx.order = order
        return tuple(e)

    @staticmethod
    def backward(ctx, *grads):
        f, m, z = ctx.saved_tensors
        (b, c, p), order = f.shape, ctx.order
        g = torch.cat([gk / z for gk in grads], 2)  # B x n x order c (unused outputs' grads come as zeros)
        per_order = torch.bmm(g.transpose(1, 2), m).view(b, order, c, p)  # G_k, B x order x c x P
        grad = per_order[:, order - 1] * order
        for k in range(order - 1, 0, -1):
            grad = grad.mul_(f).add_(per_order[:, k - 1], alpha=k)
        return grad, None, None, None


def moment_pool(feat: torch.Tensor, aoi: torch.Tensor, moments=(1, 2, 3), normaliser: str = "mass",
                eps: float = 1e-6, precision: str = "float64", second: str = "variance",
                third: str = "skewness") -> tuple[torch.Tensor, torch.Tensor]:
    """AOI-grounded moments: returns (B x K x n x c moments in ``moments`` order, B x n AOI mass).

    With weights M (B x n x P), features F (B x c x P), Z the normaliser and m0 = mass / Z, one batched
    matmul per order gives E_k = M @ (F^k)^T / Z for k = 1..3, then the weighted central moments sum_p M (F - mu)^k / Z
    follow exactly for either normaliser: mean mu = E_1; var = E_2 - (2 - m0) mu^2;
    third = E_3 - 3 mu E_2 + (3 - m0) mu^3. Order 2 is ``second`` = "variance" | "std" (sqrt(var + eps));
    order 3 is ``third`` = "skewness" (third / (var + eps)^1.5) | "central" (third itself).
    Absent classes (zero mass) give exactly zero vectors; a variance or third moment within the round-off of its
    algebraic form is zero (a channel constant over a class region has zero variance and skewness; see the body).
    The gradient is in closed form (:class:`_RawMoments`). Autocast is off inside (the cancellation in the
    algebraic central moments needs full precision; ``precision`` "float64" by default). The options are trusted:
    :class:`IntraKD` checks them once, when the method is built.
    """
    if feat.dim() != 4 or aoi.dim() != 4 or feat.shape[0] != aoi.shape[0] or feat.shape[-2:] != aoi.shape[-2:]:
        raise ValueError(f"moment_pool needs B x c x h x w features and B x n x h x w AOIs of the same B, h, w; "
                         f"got {tuple(feat.shape)} and {tuple(aoi.shape)}")
    dtype = torch.float64 if precision == "float64" else torch.float32
    with torch.autocast(feat.device.type, enabled=False):
        f = feat.flatten(2).to(dtype)  # B x c x P
        # the shift is subtracted in place when the cast made a copy (autograd's cast backward keeps no output):
        # one fewer freshly allocated (and page-faulted) feature-sized float64 buffer
        inplace = f.data_ptr() != feat.data_ptr()
        m = aoi.flatten(2).to(dtype)  # B x n x P
        mass = m.sum(-1, keepdim=True)  # B x n x 1
        shift = None
        if normaliser == "mass":
            z = mass.clamp_min(1e-12)
            # normalised weights: central moments are shift-invariant, so centre each channel (conditioning)
            shift = f.mean(-1, keepdim=True).detach()
            f = f.sub_(shift) if inplace else f - shift
        else:
            z = mass.new_full((), float(f.shape[-1]))
        m0 = mass / z
        order = max(moments)
        e = _RawMoments.apply(f, m, z, order)
        mu = e[0]
        out = {1: mu if shift is None else (mu + shift.transpose(1, 2)) * (mass > 0)}
        # the algebraic central moments cancel terms of size mu^2 and mu^3 (mu: the class mean less the channel
        # shift) down to residues of their round-off (each E_k a P-term sum with ~sqrt(P) roundings): a variance or a
        # third moment within that round-off is not resolved and is zero. Otherwise a channel constant over a class
        # region (a ReLU feature at 0 there) leaves a third-moment residue that the skewness divides by
        # (0 + eps)^1.5 = 1e-9 into a value of order 1.
        tiny = 4 * f.shape[-1] ** 0.5 * torch.finfo(dtype).eps
        if order >= 2:
            mu2 = mu * mu
            var = e[1] - (2 - m0) * mu2
            flat = var <= tiny * (e[1] + (2 - m0) * mu2)
            var = var.masked_fill(flat, 0.0)
            out[2] = var if second == "variance" else torch.sqrt(var + eps) * (mass > 0)
        if order >= 3:
            third_c = e[2] - 3 * mu * e[1] + (3 - m0) * mu2 * mu
            scale = e[2].abs() + 3 * mu.abs() * e[1] + (3 - m0) * mu2 * mu.abs()
            third_c = third_c.masked_fill(flat | (third_c.abs() <= tiny * scale), 0.0)
            out[3] = third_c if third == "central" else third_c / (var + eps) ** 1.5
        stacked = torch.stack([out[k] for k in moments], 1)
    return stacked.to(feat.dtype if feat.dtype in (torch.float32, torch.float64) else torch.float32), mass[..., 0]


def affinity_graph(nodes: torch.Tensor, graph: str = "per_order") -> torch.Tensor:
    """Cosine affinity between class nodes: B x K x n x c -> B x K x n x n ("per_order") or B x 1 x n x n.

    A zero node vector (absent class) has cosine 0 with every node, itself included (sklearn's convention).
    """
    if graph == "concat":
        b, k, n, c = nodes.shape
        nodes = nodes.permute(0, 2, 1, 3).reshape(b, 1, n, k * c)
    elif graph != "per_order":
        raise ValueError(f"graph must be 'per_order' or 'concat', got {graph!r}")
    with torch.autocast(nodes.device.type, enabled=False):  # n x n in full precision, also under AMP
        v = F.normalize(nodes.float() if nodes.dtype != torch.float64 else nodes, dim=-1, eps=1e-8)
        return v @ v.transpose(-1, -2)


def graph_loss(gs: torch.Tensor, gt: torch.Tensor, present: torch.Tensor, diagonal: bool = True,
               reduction: str = "present") -> torch.Tensor:
    """Squared graph difference over pairs of present classes; mean per graph, summed over graphs, batch mean."""
    n = gs.shape[-1]
    pair = present[:, :, None] & present[:, None, :]  # B x n x n
    if not diagonal:
        pair = pair & ~torch.eye(n, dtype=torch.bool, device=pair.device)
    pair = pair[:, None].to(gs.dtype)
    sq = (gs - gt.detach()).pow(2) * pair
    if reduction == "present":
        denom = pair.sum((-1, -2)).clamp_min(1.0)
    elif reduction == "all":
        denom = float(n * n if diagonal else n * (n - 1))
    else:
        raise ValueError(f"reduction must be 'present' or 'all', got {reduction!r}")
    return (sq.sum((-1, -2)) / denom).sum(1).mean()


@register_method
class IntraKD(Distiller):
    name = "intrakd"
    needs_teacher = True
    student_taps = ("mid", "high", "logits")
    teacher_taps = ("mid", "high", "logits")
    default_weights = {"intra": 1.0, "at": 500.0, "kd": 1.0}
    default_options = {
        "taps": ("mid", "high"), "teacher_taps": None, "kernel": 5, "kernel_unit": "feature", "downsample": "area",
        "pad": "reflect",
        "normaliser": "mass", "moments": (1, 2, 3), "second": "variance", "third": "skewness",
        "graph": "per_order", "diagonal": True, "reduction": "present", "eps": 1e-6, "presence_tau": 1e-3,
        "precision": "float64", "with_at": True, "with_kd": True, "at_mode": "code", "kd_temperature": 1.0,
    }
    description = "IntRA-KD: AOI moment-pooled inter-region cosine affinity graphs (1/4, 1/8 taps) + AT + KD."

    def __init__(self, student, teacher, num_classes, weights=None, **options):
        super().__init__(student, teacher, num_classes, weights, **options)
        o = self.options
        for key, valid in (("kernel_unit", KERNEL_UNITS), ("downsample", DOWNSAMPLES), ("pad", PADS), ("normaliser", ("mass", "constant")),
                           ("second", ("variance", "std")), ("third", ("skewness", "central")),
                           ("graph", ("per_order", "concat")), ("reduction", ("present", "all")),
                           ("precision", ("float64", "float32")), ("at_mode", ("code", "paper"))):
            if key in o:
                self.check_choice(key, valid)
        o["moments"] = tuple(o["moments"])
        if not o["moments"] or len(set(o["moments"])) != len(o["moments"]) or set(o["moments"]) - {1, 2, 3}:
            raise ValueError(f"method {self.name!r} option moments={o['moments']!r}: distinct orders among (1, 2, 3)")
        if not (isinstance(o["kernel"], int) and o["kernel"] >= 1):
            raise ValueError(f"method {self.name!r} option kernel={o['kernel']!r}: an int >= 1")
        self.s_names, self.t_names = paired_taps(student, teacher, o["taps"], o["teacher_taps"])

    def _aoi(self, label, size, onehot=None):
        o = self.options
        return aoi_maps(label, self.num_classes, size, o["kernel"], o["kernel_unit"], o["downsample"], o["pad"], onehot)

    def _nodes(self, feat, aoi):
        o = self.options
        return moment_pool(feat, aoi, o["moments"], o["normaliser"], o["eps"], o["precision"], o["second"], o["third"])

    def intra_loss(self, fs: torch.Tensor, ft: torch.Tensor, label: torch.Tensor,
                   onehot: torch.Tensor | None = None) -> torch.Tensor:
        """IntRA term for one student/teacher feature pair (the teacher side detached, computed without grad).

        Each side gets AOIs at its own feature size (one AOI set when the sizes agree).
        """
        o = self.options
        aoi_s = self._aoi(label, fs.shape[-2:], onehot)
        aoi_t = aoi_s if fs.shape[-2:] == ft.shape[-2:] else self._aoi(label, ft.shape[-2:], onehot)
        vs, mass_s = self._nodes(fs, aoi_s)
        with torch.no_grad():
            vt, mass_t = self._nodes(ft.detach(), aoi_t)
            gt = affinity_graph(vt, o["graph"])
        gs = affinity_graph(vs, o["graph"])
        present = (mass_s > o["presence_tau"]) & (mass_t > o["presence_tau"])
        return graph_loss(gs, gt, present, o["diagonal"], o["reduction"])

    def forward(self, s_out, t_out, batch, step=0, epoch=0):
        o = self.options
        label = batch["label"]
        pairs = [(s_out["feats"][s], t_out["feats"][t]) for s, t in zip(self.s_names, self.t_names)]
        # the full-resolution one-hot, built once for every tap when the AOI path needs it
        onehot = one_hot(label, self.num_classes) if needs_full_onehot(o["kernel_unit"], o["downsample"]) else None
        out = {"intra": self.weights["intra"] * sum(self.intra_loss(fs, ft, label, onehot) for fs, ft in pairs)}
        if o.get("with_at", False):
            out["at"] = self.weights["at"] * sum(at_loss(fs, ft, 2.0, o["at_mode"]) for fs, ft in pairs)
        if o.get("with_kd", False):
            out["kd"] = self.weights["kd"] * pixel_kl(s_out["logits"], t_out["logits"].detach(), o["kd_temperature"])
        return out

    def matched_size(self, s_out, t_out):
        """n^2 per graph (graphs = moment orders, or 1 for "concat") per tap, + AT maps + KD map when enabled."""
        o = self.options
        graphs = 1 if o["graph"] == "concat" else len(o["moments"])
        size = len(self.s_names) * graphs * self.num_classes**2
        if o.get("with_at", False):
            size += sum(s_out["feats"][s].shape[-2:].numel() for s in self.s_names)
        if o.get("with_kd", False):
            size += s_out["logits"][0].numel()
        return int(size)


@register_method
class Intra(IntraKD):
    name = "intra"
    student_taps = ("mid", "high")
    teacher_taps = ("mid", "high")
    default_weights = {"intra": 1.0}
    default_options = {k: v for k, v in IntraKD.default_options.items()
                       if k not in ("with_at", "with_kd", "at_mode", "kd_temperature")}
    knowledge_form = "inter-region affinity graph"
    description = "IntRA only (Table 4 row): inter-region affinity graph distillation without AT and KD."


__all__ = ["aoi_maps", "box_filter", "class_fractions", "moment_pool", "affinity_graph", "graph_loss", "one_hot", "IntraKD", "Intra"]
