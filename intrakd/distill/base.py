"""The one interface every distillation method implements (RepDistiller ``distiller_zoo`` style).

A method is one file in ``intrakd/distill/``, registered by name with :func:`register_method`.
It is an ``nn.Module`` whose own parameters are the trainable extras (adaptors, auxiliary heads,
discriminator...): the engine adds them to the optimiser and drops them at inference.

Class attributes
  ``name``, ``needs_teacher``, ``student_taps`` / ``teacher_taps`` (roles, tap names or ``"group:<g>"``),
  ``default_weights`` (loss-term name -> weight), ``description`` (one line); added:
  ``default_options`` (option name -> default; unknown options raise ``KeyError``) and ``knowledge_form``
  (the supplement's Table 4 row the method stands for, or ``None``).
Construction
  ``Method(student, teacher, num_classes, **options)`` where ``student``/``teacher`` are
  :class:`intrakd.models.base.SegModel` instances (teacher ``None`` for self-distillation) — the method
  reads their ``feature_info`` / ``tap_roles`` to size its extras; it never keeps a reference that makes the
  teacher's parameters its own.
Call
  ``losses = method(s_out, t_out, batch, step=..., epoch=...)`` with the models' output dicts and the batch
  dict (``image``, ``label`` B x H x W long with 255 ignore, optional ``exist``). Returns
  ``{term: weighted scalar tensor}``; the engine sums them with the segmentation loss. ``t_out`` is
  produced under ``torch.no_grad()``.
Engine hooks (added)
  ``main_parameters()``: the extras that go into the main optimiser (everything except modules with their
  own optimiser). ``extra_optimizers()``: optimisers the method owns (SKD's discriminator). After the main
  ``optimizer.step()`` of every training step the engine calls
  ``method.adversarial_step(s_out_detached, t_out, batch, step=..., epoch=...)`` (a no-op returning ``{}``
  unless the method is adversarial); it zeroes, back-propagates and steps its own optimiser and returns
  ``{term: float}`` for logging. ``matched_size(s_out, t_out)``: entries of the object the student matches
  per image (the Table 4 complexity column as a count), or ``None``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class Distiller(nn.Module):
    name: ClassVar[str] = ""
    needs_teacher: ClassVar[bool] = True
    student_taps: ClassVar[tuple[str, ...]] = ()
    teacher_taps: ClassVar[tuple[str, ...]] = ()
    default_weights: ClassVar[dict[str, float]] = {}
    description: ClassVar[str] = ""
    default_options: ClassVar[dict] = {}
    knowledge_form: ClassVar[str | None] = None

    def __init__(self, student, teacher, num_classes: int, weights: dict[str, float] | None = None, **options):
        super().__init__()
        unknown = set(weights or {}) - set(self.default_weights)
        if unknown:
            raise KeyError(
                f"method {self.name!r} has no loss term(s) {sorted(unknown)}; valid: {sorted(self.default_weights)}"
            )
        self.weights = {**self.default_weights, **(weights or {})}
        self.num_classes = num_classes
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise KeyError(
                f"method {self.name!r} has no option(s) {sorted(unknown)}; valid: {sorted(self.default_options)}"
            )
        self.options = {**self.default_options, **options}

    def forward(self, s_out: dict, t_out: dict | None, batch: dict, step: int = 0, epoch: int = 0) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def main_parameters(self):
        """Trainable extras for the main optimiser (all own parameters unless a method says otherwise)."""
        return [p for p in self.parameters() if p.requires_grad]

    def extra_optimizers(self) -> list:
        return []

    def adversarial_step(self, s_out: dict, t_out: dict | None, batch: dict, step: int = 0, epoch: int = 0) -> dict:
        return {}

    def matched_size(self, s_out: dict, t_out: dict | None) -> int | None:
        return None

    @classmethod
    def describe(cls) -> dict:
        return {
            "name": cls.name,
            "needs_teacher": cls.needs_teacher,
            "student_taps": list(cls.student_taps),
            "teacher_taps": list(cls.teacher_taps),
            "default_weights": dict(cls.default_weights),
            "description": cls.description,
            "default_options": {k: list(v) if isinstance(v, tuple) else v for k, v in cls.default_options.items()},
            "knowledge_form": cls.knowledge_form,
        }


METHOD_REGISTRY: dict[str, type[Distiller]] = {}


def register_method(cls: type[Distiller]) -> type[Distiller]:
    if not cls.name or cls.name in METHOD_REGISTRY:
        raise ValueError(f"method name {cls.name!r} is empty or registered twice")
    METHOD_REGISTRY[cls.name] = cls
    return cls


def build_method(name: str, student, teacher, num_classes: int, **options) -> Distiller:
    if name not in METHOD_REGISTRY:
        raise KeyError(f"unknown method {name!r}; valid: {', '.join(sorted(METHOD_REGISTRY))}")
    cls = METHOD_REGISTRY[name]
    if cls.needs_teacher and teacher is None:
        raise ValueError(f"method {name!r} needs a teacher but none was given")
    return cls(student, teacher, num_classes, **options)
