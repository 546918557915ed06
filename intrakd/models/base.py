"""What every network in ``intrakd.models`` promises (timm's ``feature_info`` habit).

Contract
--------
* ``forward(x)`` takes a normalised image batch ``B x 3 x H x W`` and returns a plain ``dict``:

  - ``"logits"``: ``B x num_classes x H x W`` at the *input* resolution (models upsample internally);
  - ``"feats"``:  ``{tap_name: tensor}`` for every tap in ``feature_info`` (always all of them: they
    are intermediate tensors autograd keeps anyway);
  - ``"exist"``:  ``B x 4`` lane-existence logits (pre-sigmoid), only when built with ``exist_head=True``.

* ``feature_info``: a list of :class:`Tap` (name, channels, stride), in forward order.
* ``tap_roles``: ``{role: tap_name}`` for the roles distillation methods ask for:
  ``"mid"`` (the 1/4 distillation point), ``"high"`` (the 1/8 distillation point) and ``"encoder"``
  (the encoder's high-level output).
* ``tap_groups``: ``{group: [tap_name, ...]}``: ``"blocks"`` (successive blocks, shallow to deep,
  for SAD and DKS) and ``"stages"`` (stage boundaries, shallow to deep, for FSP pairs and IRG).
* The pretrained part (``backbone_weights``, :mod:`intrakd.models.pretrained`): ``imagenet_backbone`` names the
  torchvision ImageNet architecture it matches (``"resnet18"``, ``"resnet101"``; None: no ImageNet backbone);
  ``backbone_prefix`` its state-dict prefix (``"backbone."``); with no prefix the whole network but the
  ``head_prefixes`` (class-count-dependent output layers, the existence head) is the pretrained part;
  ``layout_aliases``: ``(other_prefix, own_prefix)`` pairs that read another code base's names for this network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

from intrakd.registry import Registry


@dataclass(frozen=True)
class Tap:
    name: str
    channels: int
    stride: int

    def as_dict(self) -> dict:
        return asdict(self)


class SegModel(nn.Module):
    """Base class: subclasses fill ``feature_info``, ``tap_roles`` and ``tap_groups`` in ``__init__``."""

    feature_info: list[Tap]
    tap_roles: dict[str, str]
    tap_groups: dict[str, list[str]]
    num_classes: int
    imagenet_backbone: str | None = None
    backbone_prefix: str = ""
    head_prefixes: tuple[str, ...] = ("exist.",)
    layout_aliases: tuple[tuple[str, str], ...] = ()

    def tap(self, name_or_role: str) -> Tap:
        """Resolve a role (``"mid"``, ``"high"``, ``"encoder"``) or a tap name to its :class:`Tap`."""
        name = self.tap_roles.get(name_or_role, name_or_role)
        for t in self.feature_info:
            if t.name == name:
                return t
        valid = sorted({t.name for t in self.feature_info} | set(self.tap_roles))
        raise KeyError(f"{type(self).__name__} has no tap {name_or_role!r}; valid: {', '.join(valid)}")


def scaled(channels: int, width: float, minimum: int = 4) -> int:
    """Channel count under a width multiplier (topology unchanged); at width 1.0 the published count."""
    if width == 1.0:
        return channels
    return max(minimum, int(round(channels * width)))


#: {name: factory(num_classes, width, exist_head, **kwargs) -> SegModel}, filled by :func:`register_model`.
MODEL_REGISTRY: Registry[Callable[..., SegModel]] = Registry("model")


def register_model(name: str):
    """Decorator registering a network factory under ``name`` (ValueError when the name is taken)."""
    return MODEL_REGISTRY.register(name)


def build_model(name: str, num_classes: int, width: float = 1.0, exist_head: bool = False, **kwargs) -> SegModel:
    """The network ``name``; :class:`intrakd.registry.UnknownNameError` listing the valid names otherwise."""
    return MODEL_REGISTRY[name](num_classes=num_classes, width=width, exist_head=exist_head, **kwargs)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def feats_of(out: dict, model: SegModel, name_or_role: str) -> torch.Tensor:
    return out["feats"][model.tap(name_or_role).name]
