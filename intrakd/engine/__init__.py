"""Training engine: one run = ``RunConfig`` -> :func:`train` -> ``metrics.json`` / ``history.csv`` / ``model.pt``.

:func:`train` (:mod:`intrakd.engine.launch`) trains in this process, or launches torchrun for ``nproc`` > 1."""

from intrakd.engine.config import RunConfig
from intrakd.engine.errors import NonFiniteLossError
from intrakd.engine.launch import train

__all__ = ["RunConfig", "train", "NonFiniteLossError"]
