"""What the tables, figures and verdict say of each distillation method: its label and its row's place. Torch-free.

Every method registered in :mod:`intrakd.distill` has one :class:`MethodCard` here, declared in table order (the
order of the rows under each model; a teacher row comes first). The card is the only place its label is written:
:func:`intrakd.distill.base.register_method` refuses a method that has no card (a new method cannot fall to the
end of the tables unnoticed) and sets the class's ``label`` from it, and the report layer reads the cards without
importing torch (:func:`row_label`, :func:`row_rank`).
"""

from __future__ import annotations

from dataclasses import dataclass

from intrakd.grid import TEACHER  # a teacher run's method name: its row comes first
from intrakd.registry import Registry


@dataclass(frozen=True)
class MethodCard:
    name: str  # the registry name (intrakd.distill)
    label: str  # how tables, figures and the verdict name the method ("+ KD")


#: {method: card}, in table order.
METHOD_CARDS: Registry[MethodCard] = Registry("method card")
for _name, _label in (
    ("baseline", "baseline"),
    ("intrakd", "+ IntRA-KD"),
    ("intra", "+ IntRA (graph only)"),
    ("kd", "+ KD"),
    ("at", "+ AT"),
    ("skd", "+ SKD"),
    ("skd_pair", "+ SKD (pair-wise only)"),
    ("psn", "+ PS-N"),
    ("irg", "+ IRG"),
    ("bifpn", "+ BiFPN"),
    ("dks", "+ DKS"),
    ("sad", "+ SAD"),
    ("mimic", "+ feature mimicking"),
):
    METHOD_CARDS.register(_name, MethodCard(_name, _label))


def row_label(method: str) -> str:
    """The label of a table row's method: ``teacher``, a card's label, or the name itself for a name without a
    card (a configured variant of a method, such as the kernel sweep's ``intra_k9``)."""
    card = METHOD_CARDS.get(method)
    return card.label if card is not None else method


def row_rank(method: str) -> tuple[int, str]:
    """Sort key of rows by method: the teacher, then the cards in declaration order, then names without a card
    (configured variants) by name."""
    if method == TEACHER:
        return (0, "")
    for i, name in enumerate(METHOD_CARDS, start=1):
        if name == method:
            return (i, "")
    return (len(METHOD_CARDS) + 1, method)
