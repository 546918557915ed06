"""The ``intrakd`` console script.

Each sub-package may contribute sub-commands through a module ``intrakd/<pkg>/cli.py`` that defines
``register(subparsers)``; every parser it adds must set ``func`` (called with the parsed namespace,
returning an exit code).  ``COMMANDS`` names the module of every top-level command, so the command tree is
predictable and a command imports only its own module: ``intrakd evaluate ...`` never loads the training stack
(torch, torchvision).  Only the top-level help (no known command given) imports every command module.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from intrakd import __version__

#: top-level command -> the module whose ``register`` adds it (one module may add several commands)
COMMANDS = {
    "synth": "intrakd.data.cli",
    "data": "intrakd.data.cli",
    "evaluate": "intrakd.metrics.cli",
    "models": "intrakd.models.cli",
    "methods": "intrakd.distill.cli",
    "train": "intrakd.engine.cli",
    "tables": "intrakd.report.cli",
    "figures": "intrakd.report.cli",
    "verdict": "intrakd.report.cli",
}


def _command_of(argv: list[str]) -> str | None:
    """The command word of ``argv`` (the top-level options take no values, so it is the first non-option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: only the module of its command is imported; all of them when it names none."""
    parser = argparse.ArgumentParser(prog="intrakd", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"intrakd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = _command_of(sys.argv[1:] if argv is None else argv)
    modules = [COMMANDS[command]] if command in COMMANDS else list(dict.fromkeys(COMMANDS.values()))
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
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
