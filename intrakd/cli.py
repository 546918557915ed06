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
    except (FileNotFoundError, ValueError, KeyError) as err:  # one clear line, no traceback
        print(f"intrakd {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
