"""The engine's own errors, in one place (below every engine module: the trainer raises them, the launcher rebuilds
them from a failed multi-process run, the CLI reports them in one line)."""

from __future__ import annotations


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite (the run stops; its last checkpoint is kept)."""


class DistributedRunError(RuntimeError):
    """The torchrun job of a multi-process run failed (the message names its log)."""
