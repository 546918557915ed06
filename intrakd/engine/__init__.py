"""Training engine: one run = ``RunConfig`` -> :func:`train` -> ``metrics.json`` / ``history.csv`` / ``model.pt``."""

from intrakd.engine.config import RunConfig
from intrakd.engine.errors import NonFiniteLossError
from intrakd.engine.train import train

__all__ = ["RunConfig", "train", "NonFiniteLossError"]
