"""The ``intrakd`` console script.

Each sub-package may contribute sub-commands through a module ``intrakd/<pkg>/cli.py`` that defines
``register(subparsers)``; every parser it adds must set ``func`` (called with the parsed namespace,
returning an exit code).  Sub-packages are listed here explicitly so the command tree is predictable.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from intrakd import __version__

SUBCOMMAND_MODULES = (
    "intrakd.data.cli",
    "intrakd.metrics.cli",
    "intrakd.models.cli",
    "intrakd.distill.cli",
    "intrakd.engine.cli",
    "intrakd.report.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intrakd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"intrakd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BAD_INPUT as err:  # one clear line, no traceback
        print(f"intrakd {args.command}: error: {one_line(err)}", file=sys.stderr)
        return 1


#: Exit codes: 0 success, 1 bad input (a missing or unreadable file, a bad value, a full disk, a training stopped
#: by a non-finite loss, a failed distributed run), 2 usage (argparse's own errors, a missing sub-command).
#: FloatingPointError is the engine's NonFiniteLossError; RuntimeError its DistributedRunError.
BAD_INPUT = (OSError, ValueError, KeyError, FloatingPointError, RuntimeError)


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; an OSError as ``reason: PATH`` (its errno and Python's quoting
    dropped), a KeyError without its quotes."""
    if isinstance(err, OSError) and err.strerror:
        text = err.strerror[:1].lower() + err.strerror[1:]
        text += f": {err.filename}" if err.filename else ""
    elif isinstance(err, KeyError) and err.args:
        text = str(err.args[0])
    else:
        text = str(err) or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
