"""YAML as people write it, for every file and value a user hands intrakd (run files, ``--set`` values, the
workflow configuration): PyYAML's safe loader, except that ``1e-3`` and ``5E4`` are numbers (YAML 1.2), not the
strings YAML 1.1 makes of them, and a syntax error names the file (or value), line and column. Torch-free."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

#: YAML 1.2's exponent floats without a dot, which YAML 1.1 (PyYAML) reads as strings.
EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with :data:`EXPONENT_FLOAT` resolved as a float (on a copy of its resolver table)."""


_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789."))


def yaml_value(text: str, where: str):
    """``text`` parsed as YAML (``1e-3`` a float); ValueError naming ``where`` (a file, or ``--set KEY``) and the
    line and column of a syntax error."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where}{at}: invalid YAML ({problem})") from None


def load_file(path: Path | str):
    """The YAML (or JSON) document in ``path``; ValueError naming file, line and column of a syntax error."""
    return yaml_value(Path(path).read_text(), str(path))
