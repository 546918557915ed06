"""The optimiser of a run: parameter groups (learning-rate multipliers, weight-decay exclusions) and the
learning-rate schedule (poly or cosine), as the official recipes set them.

With the defaults (every multiplier 1, decay on everything, poly) the groups are the ones the engine always had:
the student's parameters, then the method's extra ones (adaptors, discriminator heads), so runs, and the
optimiser state of their checkpoints, are unchanged. Otherwise the student's parameters are split by

* part: the *backbone* (what ``backbone_weights`` loads, :func:`intrakd.models.pretrained.backbone_keys`: the
  ResNet encoder of the ResNet-based networks; all but the output layer and existence head of ENet and ERFNet)
  against the *head* (every other student parameter, newly initialised when the backbone is pretrained);
* kind: normalisation-layer parameters (BatchNorm weight and bias), other biases, other weights;

and each group gets ``lr * (head_lr_mult | backbone_lr_mult) * (bias_lr_mult for biases)`` and
``weight_decay * (backbone_wd_mult on the backbone)``, with no decay on normalisation parameters and biases when
``no_decay_norm_bias``. The method's parameters keep ``lr`` and ``weight_decay``.

Which official code each key follows is in config/README.md (PSPNet teacher: ``get_optim_policies`` of
Codes-for-IntRA-KD; SwiftNet: ``orsic/swiftnet`` ``configs/rn18_single_scale.py``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from intrakd.engine.config import RunConfig

#: RunConfig keys of the parameter grouping (their defaults are neutral: one group for the student)
GROUPING_KEYS = ("head_lr_mult", "backbone_lr_mult", "backbone_wd_mult", "bias_lr_mult", "no_decay_norm_bias")


def grouped(cfg: RunConfig) -> bool:
    """Whether ``cfg`` asks for per-part or per-kind parameter groups."""
    defaults = RunConfig()
    return any(getattr(cfg, k) != getattr(defaults, k) for k in GROUPING_KEYS)


def _norm_params(model: nn.Module) -> set[str]:
    names = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
            names |= {f"{mod_name}.{p}" if mod_name else p for p, _ in mod.named_parameters(recurse=False)}
    return names


def student_groups(cfg: RunConfig, student: nn.Module) -> list[dict]:
    """The student's parameter groups under ``cfg``'s multipliers, each ``{"params", "lr_mult", "weight_decay",
    "names"}`` (``names``: for tests and inspection; removed before the optimiser sees the groups)."""
    from intrakd.models.pretrained import backbone_keys

    backbone, norm = set(backbone_keys(student)), _norm_params(student)
    groups: dict[tuple, dict] = {}
    for name, p in student.named_parameters():
        if not p.requires_grad:
            continue
        kind = "norm" if name in norm else "bias" if name.endswith("bias") else "weight"
        in_backbone = name in backbone
        lr_mult = (cfg.backbone_lr_mult if in_backbone else cfg.head_lr_mult) * (
            cfg.bias_lr_mult if kind == "bias" else 1.0)
        decay = 0.0 if cfg.no_decay_norm_bias and kind != "weight" else (
            cfg.weight_decay * (cfg.backbone_wd_mult if in_backbone else 1.0))
        group = groups.setdefault((lr_mult, decay), {"params": [], "lr_mult": lr_mult, "weight_decay": decay,
                                                     "names": []})
        group["params"].append(p)
        group["names"].append(name)
    return list(groups.values())


def param_groups(cfg: RunConfig, student: nn.Module, method_params: list) -> list[dict]:
    """What the optimiser is built over: the student's groups, then the method's parameters (empty groups
    dropped)."""
    if grouped(cfg):
        groups = [{k: v for k, v in g.items() if k != "names"} for g in student_groups(cfg, student)]
    else:
        groups = [{"params": [p for p in student.parameters() if p.requires_grad]}]
    groups.append({"params": method_params})
    return [g for g in groups if g["params"]]


def build_optimizer(cfg: RunConfig, params: list) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over ``params`` (the learning rate is then set every step by :func:`scheduled_lr`)."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    betas = {} if cfg.betas is None else {"betas": tuple(cfg.betas)}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **betas)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **betas)
    raise ValueError(f"optimizer must be one of sgd, adam, adamw, got {cfg.optimizer!r}")


def scheduled_lr(cfg: RunConfig, it: int, total: int, mult: float = 1.0) -> float:
    """Learning rate at iteration ``it`` of ``total`` for a group with multiplier ``mult``: poly,
    ``lr * mult * (1 - it / total) ** poly_power``, or cosine from ``lr * mult`` down to ``min_lr``
    (torch's ``CosineAnnealingLR``, whose ``eta_min`` is shared by every group), both per iteration."""
    if cfg.lr_schedule == "cosine":
        return cfg.min_lr + (cfg.lr * mult - cfg.min_lr) * 0.5 * (1.0 + math.cos(math.pi * it / total))
    lr = cfg.lr * (1.0 - it / total) ** cfg.poly_power
    return lr if mult == 1.0 else lr * mult
