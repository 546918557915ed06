"""Distillation methods behind one interface (:mod:`intrakd.distill.base`), one file each, registered by name in
:data:`METHOD_REGISTRY` (:class:`intrakd.registry.Registry`), each with its card in :mod:`intrakd.method_cards` (the
label and row place the tables give it, readable without torch).

Registry: "baseline" (none), "intrakd" (IntRA + AT + KD, the headline method), "intra" (IntRA only), "kd",
"at", "skd", "skd_pair", "psn" (PS-N / FSP), "irg", "bifpn", "dks", "sad", "mimic".

Supplement Table 4 knowledge forms (ERFNet student, ApolloScape), as registered methods:
  probability map -> "kd"; feature map -> "mimic"; pairwise similarity map -> "skd_pair" (SKD's pair-wise term
  on all 1/8 positions); attention map -> "at"; inter-region affinity graph -> "intra".
``intrakd methods --json`` lists every method as ``Distiller.describe()``: name, label, needs_teacher, taps
(student / teacher), default_weights, description, default_options and knowledge_form (Table 4 row).
"""

from . import at, baseline, bifpn, dks, intrakd, irg, kd, mimic, psn, sad, skd  # noqa: F401  (registration)
from .base import METHOD_REGISTRY, Distiller, build_method, register_method

TABLE4_FORMS = {cls.knowledge_form: name for name, cls in METHOD_REGISTRY.items() if cls.knowledge_form}


def list_methods() -> list[dict]:
    """``describe()`` of every registered method, sorted by name."""
    return [METHOD_REGISTRY[n].describe() for n in sorted(METHOD_REGISTRY)]


__all__ = ["METHOD_REGISTRY", "Distiller", "build_method", "register_method", "list_methods", "TABLE4_FORMS"]
