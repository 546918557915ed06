"""Model facts without weights: parameter counts, taps and FLOPs, computed on the meta device
(no memory allocated, no real arithmetic), so full-width teachers are described in well under a second."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from intrakd.models.base import MODEL_REGISTRY, build_model, count_params

# Published parameter counts (full width) and the class count they were measured at
# (models_baselines.md §0/§A; the targets).
PUBLISHED_PARAMS = {
    "erfnet": (2.07e6, 37),
    "enet": (0.35e6, 19),
    "swiftnet_rn18": (11.80e6, 19),
    "pspnet_r101": (65.6e6, 37),
    "deeplabv3plus_r101": (58.75e6, 19),
}


def meta_model(name: str, num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs):
    """Build a model on the meta device (shapes only), in eval mode."""
    with torch.device("meta"):
        return build_model(name, num_classes, width=width, exist_head=exist_head, **kwargs).eval()


def full_width_params(name: str, num_classes: int, exist_head: bool = False, **kwargs) -> int:
    return count_params(meta_model(name, num_classes, 1.0, exist_head, **kwargs))


def count_flops(model: torch.nn.Module, input_hw: tuple[int, int], batch: int = 1) -> int:
    """Forward FLOPs of ``model`` at ``input_hw`` by ``torch.utils.flop_counter`` (2 FLOPs per
    multiply-accumulate; convs, matmuls and transposed convs only). The model may live on any device,
    the meta device included."""
    device = next(model.parameters()).device
    x = torch.empty(batch, 3, *input_hw, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def check_input_hw(input_hw) -> tuple[int, int]:
    h, w = (int(v) for v in input_hw)
    if h <= 0 or w <= 0 or h % 8 or w % 8:
        raise ValueError(f"input size {h}x{w}: height and width must be positive multiples of 8")
    return h, w


def describe(name: str, num_classes: int, input_hw=(256, 512), exist_head: bool = False) -> dict:
    """``{"name", "params", "taps", "roles", "groups", "flops", "input", "imagenet_backbone"}`` at full width."""
    h, w = check_input_hw(input_hw)
    model = meta_model(name, num_classes, 1.0, exist_head)
    return {
        "name": name,
        "num_classes": num_classes,
        "params": count_params(model),
        "taps": [t.as_dict() for t in model.feature_info],
        "roles": dict(model.tap_roles),
        "groups": {k: list(v) for k, v in model.tap_groups.items()},
        "input": [h, w],
        "flops": count_flops(model, (h, w)),
        "imagenet_backbone": type(model).imagenet_backbone,  # what backbone_weights: imagenet loads (None: nothing)
    }


def describe_all(num_classes: int, input_hw=(256, 512), exist_head: bool = False) -> list[dict]:
    return [describe(n, num_classes, input_hw, exist_head) for n in sorted(MODEL_REGISTRY)]
