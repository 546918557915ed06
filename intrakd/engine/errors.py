"""The engine's own errors, in one place (below every engine module: the trainer raises them, the launcher raises a
failed worker's error again from its report, the CLI reports them in one line)."""

from __future__ import annotations

import builtins
import functools


class NonFiniteLossError(FloatingPointError):
    """A training loss became NaN or infinite (the run stops; its last checkpoint is kept)."""


class DistributedRunError(RuntimeError):
    """The torchrun job of a multi-process run failed (the message names its log). A failure a worker reported is
    raised as a subclass of this and of the worker's own error type (:func:`worker_error`)."""


def type_names(err: BaseException) -> list[str]:
    """``module.qualname`` of each class of ``err``, most derived first: what a worker reports of its error's
    type, so that the launcher can raise the nearest type it knows (:func:`worker_error`)."""
    return [f"{cls.__module__}.{cls.__qualname__}" for cls in type(err).__mro__]


def _known_type(name: str) -> type[Exception] | None:
    """The exception class named ``module.qualname`` when it is a built-in one or one of this module's."""
    module, _, qualname = name.rpartition(".")
    found = {"builtins": vars(builtins), __name__: globals()}.get(module, {}).get(qualname)
    return found if isinstance(found, type) and issubclass(found, Exception) else None


@functools.lru_cache(maxsize=None)
def _worker_type(base: type[Exception]) -> type[DistributedRunError]:
    """A :class:`DistributedRunError` that is also a ``base`` (``except ValueError`` catches a worker's bad value as
    it would catch the same error of a one-process run); every built-in exception combines with it."""
    if issubclass(base, DistributedRunError):
        return base
    return type(f"Worker{base.__name__}", (DistributedRunError, base), {"__module__": __name__})


def worker_error(names: list[str], message: str) -> DistributedRunError:
    """The error to raise for a worker's failure: its first class (``names``, from :func:`type_names`) that is a
    built-in exception or an engine error, combined with DistributedRunError; plain DistributedRunError when none
    is (an interrupt, or only classes of other modules)."""
    base = next((cls for cls in map(_known_type, names) if cls is not None), DistributedRunError)
    return _worker_type(base)(message)
