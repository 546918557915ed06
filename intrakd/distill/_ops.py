"""Small tensor helpers shared by the distillation methods (tap lookup, resizing, pixel-wise KL).

Conventions fixed once for every method: spatial mismatches are resolved by bilinearly resizing the
(detached) teacher-side target to the student's size (``align_corners=False``); labels use 255 = ignore.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from intrakd.models.common import resize  # noqa: F401  (the methods resize through _ops)

IGNORE = 255


def tap_names(model, spec: str) -> list[str]:
    """Tap names for a role, a tap name, or ``"group:<g>"`` (the whole group, shallow to deep)."""
    kind = type(model).__name__
    if not isinstance(spec, str):
        raise ValueError(f"tap spec must be a role, a tap name or 'group:<g>', got {spec!r}")
    if spec.startswith("group:"):
        group = spec.split(":", 1)[1]
        if group not in model.tap_groups:
            raise ValueError(f"{kind} has no tap group {group!r}; valid: {sorted(model.tap_groups)}")
        return list(model.tap_groups[group])
    try:
        return [model.tap(spec).name]
    except KeyError as err:  # the models' lookup error, re-raised as the one bad-input error type
        raise ValueError(err.args[0]) from None


def resolve_taps(model, specs) -> list[str]:
    """Tap names of every spec in ``specs`` (see :func:`tap_names`), in order."""
    if isinstance(specs, str):
        specs = (specs,)
    return [name for spec in specs for name in tap_names(model, spec)]


def paired_taps(student, teacher, specs, teacher_specs=None) -> tuple[list[str], list[str]]:
    """Student tap names for ``specs`` and teacher tap names for ``teacher_specs`` (None: the same specs).

    The methods' ``teacher_taps`` option lands here: a deep teacher's 1/4 role may be a shallow block
    (ResNet-101's ``layer1`` is 3 of its 33 blocks), so the teacher side can be chosen on its own.
    The two lists must pair up one to one.
    """
    t_specs = specs if teacher_specs is None else teacher_specs
    s_names, t_names = resolve_taps(student, specs), resolve_taps(teacher, t_specs)
    if len(s_names) != len(t_names):
        raise ValueError(f"student taps {specs!r} resolve to {len(s_names)} maps {s_names} and teacher taps "
                         f"{t_specs!r} to {len(t_names)} maps {t_names}; they must pair up one to one")
    return s_names, t_names


def tap_channels(model, name: str) -> int:
    return model.tap(name).channels


def downsample_mass(x: torch.Tensor, size) -> torch.Tensor:
    """Area (box-average) resize of a B x C x H x W map to ``size``: every output cell is the mean of the input
    cells it covers, so sum(out) * (H*W)/(h*w) == sum(in) and a 4-px line keeps its mass whatever its offset
    (a nearest resize keeps 0 or 8 of it at 1/8)."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.adaptive_avg_pool2d(x, size)


def resize_label(label: torch.Tensor, size) -> torch.Tensor:
    """Nearest-neighbour resize of a B x H x W label map (OpenCV INTER_NEAREST sampling)."""
    return resize(label[:, None].float(), size, mode="nearest")[:, 0].long()


#: elements of each side's chunk of rows in :class:`_PixelKL` on a CPU (a few hundred kB: the chunk's temporaries stay
#: in cache)
KL_CHUNK = 1 << 16


def _kl_rows(logits: torch.Tensor) -> int:
    """Rows of a B x C x H x W map per chunk: the whole map on a GPU; on a CPU ~:data:`KL_CHUNK` elements, in a
    multiple of rows whose row-major size is a multiple of 64 elements, so every vectorised kernel meets the same
    element at the same vector lane as on the whole map (a partial vector takes a scalar path that can round
    differently): the chunked result is the whole map's, bit for bit, whenever the whole map has no partial vector."""
    b, c, h, w = logits.shape
    if logits.device.type != "cpu":
        return h
    step = 64 // math.gcd(w, 64)
    return min(h, max(step, KL_CHUNK // max(1, b * c * w) // step * step))


class _PixelKL(torch.autograd.Function):
    """T^2 x masked mean over pixels of KL(p_t || p_s) with p = softmax(z / T) over dim 1, in float32.

    Fused because the KL's gradient has a closed form, d/dz_s = T (p_s - p_t) x (pixel weight): autograd would
    keep and walk back through the product, the channel sum and the log-softmax (its backward alone re-reads
    two full-resolution maps). The forward computes p_s - p_t with the KL, chunk by chunk of rows on a CPU
    (:func:`_kl_rows`): a full-resolution map's temporaries, page-faulted afresh at every step, and the transposes
    of channels-last logits cost more than the arithmetic (2.5x faster on ERFNet's channels-last bf16 logits,
    1.4x on float32 ones); the backward scales the saved difference. The teacher side is a target, never
    differentiated. Float32 (float64 when either side is float64)."""

    @staticmethod
    def forward(ctx, s_logits, t_logits, temperature, mask):
        dtype = torch.float64 if torch.float64 in (s_logits.dtype, t_logits.dtype) else torch.float32
        b, c, h, w = s_logits.shape
        kl = s_logits.new_empty((b, h, w), dtype=dtype)
        diff = s_logits.new_empty((b, c, h, w), dtype=dtype)
        rows = _kl_rows(s_logits)
        for y in range(0, h, rows):
            s, t = s_logits[:, :, y:y + rows].to(dtype), t_logits[:, :, y:y + rows].to(dtype)
            if temperature != 1:
                s, t = s / temperature, t / temperature
            log_pt = F.log_softmax(t, dim=1)
            pt = log_pt.exp()
            log_ps = F.log_softmax(s, dim=1)
            torch.sum(log_pt.sub_(log_ps).mul_(pt), 1, out=kl[:, y:y + rows])  # sum_c p_t (log p_t - log p_s)
            torch.sub(log_ps.exp_(), pt, out=diff[:, :, y:y + rows])  # p_s - p_t
        if mask is None:
            weight = None
            loss = kl.mean()
        else:
            mask = mask.to(kl.dtype)
            weight = mask / mask.sum().clamp_min(1.0)
            loss = (kl * weight).sum()
        ctx.save_for_backward(diff, weight)
        ctx.scale = float(temperature)
        ctx.s_dtype = s_logits.dtype
        return loss * temperature**2

    @staticmethod
    def backward(ctx, grad):
        diff, weight = ctx.saved_tensors
        # scaled in place (no fresh full-resolution buffer); a second backward through the same graph is refused by
        # autograd's check of the saved tensor's version
        if weight is None:
            g = diff.mul_(grad * ctx.scale / (diff.numel() // diff.shape[1]))
        else:
            g = diff.mul_(weight[:, None] * (grad * ctx.scale))
        return g.to(ctx.s_dtype), None, None, None


def pixel_kl(s_logits: torch.Tensor, t_logits: torch.Tensor, temperature: float = 1.0,
             mask: torch.Tensor | None = None) -> torch.Tensor:
    """T^2 x mean over pixels (``mask`` True = counted) of KL(softmax(t/T) || softmax(s/T)), differentiable in the
    student logits only: the teacher logits (bilinearly resized to the student's size when they differ) are a
    target here, detached whatever the caller passes. Float32 inside (float64 for float64 logits), also under
    autocast."""
    t_logits = resize(t_logits.detach(), s_logits.shape[-2:])
    with torch.autocast(s_logits.device.type, enabled=False):
        return _PixelKL.apply(s_logits, t_logits, temperature, mask)


def valid_mask(label: torch.Tensor, num_classes: int) -> torch.Tensor:
    return label < num_classes


def zero_like(ref: torch.Tensor) -> torch.Tensor:
    return ref.new_zeros(())


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the gradient multiplied by ``k`` on the way back."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.k = k
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.k, None


def global_batch(x: torch.Tensor) -> torch.Tensor:
    """The batch of every process of the default ``torch.distributed`` group, concatenated in rank order (``x``
    itself in one process), for terms that relate the images of a batch to each other (IRG's edges).

    The other processes' slices are constants here; this process's slice keeps its graph, its gradient multiplied
    by the world size W: every process computes the same loss L of the global batch, so the gradient it reaches
    for its own images is W x dL/df_local after DDP averages the processes' parameter gradients (divides by W),
    the sum over processes is exactly the one-process gradient of L on the global batch. Every process must hold
    a batch of the same shape (the engine's DistributedSampler pads the data set to equal shares)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    world, rank = dist.get_world_size(), dist.get_rank()
    send = x.detach().contiguous()
    if dist.get_backend() == "gloo" and send.dtype not in (torch.float32, torch.float64):
        send = send.float()  # not every gloo build gathers bf16/fp16: gather in fp32, hand back x's dtype
    parts = [torch.empty_like(send) for _ in range(world)]
    dist.all_gather(parts, send)
    parts = [p.to(x.dtype) for p in parts]
    parts[rank] = _ScaleGrad.apply(x, float(world)) if x.requires_grad else x
    return torch.cat(parts)
