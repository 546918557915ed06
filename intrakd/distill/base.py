"""The one interface every distillation method implements (RepDistiller ``distiller_zoo`` style).

A method is one file in ``intrakd/distill/`` plus its card (label, table place) in :mod:`intrakd.method_cards`,
registered by name with :func:`register_method`, and built by
the engine as ``build_method(name, student, teacher, num_classes, weights=..., total_steps=..., **options)``.
It is an ``nn.Module`` whose own parameters are its training-only extras (adaptors, auxiliary heads, the
SKD discriminator...): the engine puts ``method.parameters()`` into its optimiser, saves ``method.state_dict()``
in the resume checkpoint and never exports them with the student (they are dropped at inference).

Class attributes
  ``name``; ``label`` (set at registration from the method's card in :mod:`intrakd.method_cards`, which also
  places its row in the tables); ``needs_teacher``; ``student_taps`` / ``teacher_taps`` (what the method reads from the models'
  output dicts: roles such as ``"mid"``/``"high"``, tap names, ``"group:<g>"`` or ``"logits"``);
  ``default_weights`` (loss-term name -> weight: the recorded defaults, overridable with ``weights=``);
  ``default_options`` (option name -> default, schedules included; unknown names raise ``ValueError``);
  ``description`` (one line); ``knowledge_form`` (the supplement's Table 4 row the method stands for, or None).
Construction
  ``Method(student, teacher, num_classes, weights=None, total_steps=None, **options)``: ``student``/``teacher``
  are :class:`intrakd.models.base.SegModel` instances (teacher ``None`` for self-distillation); the method reads
  their ``feature_info`` / ``tap_roles`` / ``tap_groups`` to size its extras and never registers a model as a
  sub-module (so no teacher or student parameter is ever one of its own). ``total_steps`` is the run's number of
  training iterations (the engine passes it; ``step`` below counts from 0 to ``total_steps - 1``): methods with a
  schedule in fractions of the run (SAD's ``start_fraction``) read it as ``self.total_steps``; it is not an option
  (it belongs to the run, not to the method's settings) and stays None outside a run.
Call (inside the engine's autocast region)
  ``losses = method(s_out, t_out, batch, step=it, epoch=epoch)`` with the models' output dicts (``t_out``
  computed under ``torch.no_grad()``; ``None`` without teacher), the batch dict (``image``, ``label``
  B x H x W long with 255 = ignore, optional ``exist``), ``step`` the global iteration and ``epoch`` the
  0-based epoch. Returns ``{term: weighted scalar tensor}``; the engine adds them to the segmentation loss.
Engine hook
  ``after_student_step(s_out, t_out, batch, step=..., epoch=...)``: called after the main optimiser's step
  of every training step. A no-op here; adversarial methods (SKD's holistic term) update their own
  discriminator with their own optimiser in it and return ``{term: float}`` for logging.
Reporting
  ``matched_size(s_out, t_out)``: entries of the object(s) the student is trained to match per image (the
  Table 4 complexity column as a count), or ``None`` when the notion does not apply.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from intrakd.method_cards import METHOD_CARDS
from intrakd.registry import Registry, UnknownNameError


class Distiller(nn.Module):
    name: ClassVar[str] = ""
    label: ClassVar[str] = ""  # set by register_method from the method's card (intrakd.method_cards)
    needs_teacher: ClassVar[bool] = True
    student_taps: ClassVar[tuple[str, ...]] = ()
    teacher_taps: ClassVar[tuple[str, ...]] = ()
    default_weights: ClassVar[dict[str, float]] = {}
    description: ClassVar[str] = ""
    default_options: ClassVar[dict] = {}
    knowledge_form: ClassVar[str | None] = None

    def __init__(self, student, teacher, num_classes: int, weights: dict[str, float] | None = None, *,
                 total_steps: int | None = None, **options):
        super().__init__()
        if total_steps is not None and (isinstance(total_steps, bool) or not isinstance(total_steps, int)
                                        or total_steps < 1):
            raise ValueError(f"method {self.name!r}: total_steps must be a positive integer (the run's training "
                             f"iterations) or None, got {total_steps!r}")
        self.total_steps = total_steps
        unknown = set(weights or {}) - set(self.default_weights)
        if unknown:
            raise ValueError(
                f"method {self.name!r} has no loss term(s) {sorted(unknown)}; valid: {sorted(self.default_weights)}"
            )
        self.weights = {**self.default_weights, **{k: float(v) for k, v in (weights or {}).items()}}
        if int(num_classes) < 2:
            raise ValueError(f"method {self.name!r}: num_classes must be >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        unknown = set(options) - set(self.default_options)
        if unknown:
            raise ValueError(
                f"method {self.name!r} has no option(s) {sorted(unknown)}; valid: {sorted(self.default_options)}"
            )
        self.options = {**self.default_options, **options}

    def check_choice(self, key: str, valid) -> None:
        """One clear error for an option outside its allowed values."""
        if self.options[key] not in valid:
            raise ValueError(f"method {self.name!r} option {key}={self.options[key]!r}; valid: {list(valid)}")

    def forward(self, s_out: dict, t_out: dict | None, batch: dict, step: int = 0, epoch: int = 0) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_student_step(self, s_out: dict, t_out: dict | None, batch: dict, step: int = 0, epoch: int = 0) -> dict:
        return {}

    def matched_size(self, s_out: dict, t_out: dict | None) -> int | None:
        return None

    @classmethod
    def describe(cls) -> dict:
        """The method as a JSON-ready dict (what ``intrakd methods --json`` prints)."""
        return {
            "name": cls.name,
            "label": cls.label,
            "needs_teacher": cls.needs_teacher,
            "taps": {"student": list(cls.student_taps), "teacher": list(cls.teacher_taps)},
            "default_weights": dict(cls.default_weights),
            "description": cls.description,
            "default_options": {k: list(v) if isinstance(v, tuple) else v for k, v in cls.default_options.items()},
            "knowledge_form": cls.knowledge_form,
        }


#: {name: Distiller subclass}, filled by :func:`register_method`.
METHOD_REGISTRY: Registry[type[Distiller]] = Registry("method")


def register_method(cls: type[Distiller]) -> type[Distiller]:
    """Class decorator registering ``cls`` under ``cls.name``, its ``label`` taken from its card
    (:mod:`intrakd.method_cards`): a method without a card is refused (UnknownNameError naming the file), a name
    registered twice or empty is a ValueError."""
    if cls.name not in METHOD_CARDS:
        raise UnknownNameError(f"method {cls.name!r} has no card in intrakd/method_cards.py (its label and its place "
                               f"in the tables); cards: {', '.join(METHOD_CARDS.names())}")
    METHOD_REGISTRY.register(cls.name, cls)
    cls.label = METHOD_CARDS[cls.name].label
    return cls


def build_method(name: str, student, teacher, num_classes: int, **options) -> Distiller:
    """``METHOD_REGISTRY[name](student, teacher, num_classes, **options)`` with the name (UnknownNameError listing
    the valid ones) and the teacher checked."""
    cls = METHOD_REGISTRY[name]
    if cls.needs_teacher and teacher is None:
        raise ValueError(f"method {name!r} needs a teacher but none was given")
    return cls(student, teacher, num_classes, **options)
