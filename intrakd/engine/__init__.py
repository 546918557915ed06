"""Training engine: one run = ``RunConfig`` -> :func:`train` -> ``metrics.json`` / ``history.csv`` / ``model.pt``."""

from intrakd.engine.config import RunConfig
from intrakd.engine.train import NonFiniteLossError, train

__all__ = ["RunConfig", "train", "NonFiniteLossError"]
