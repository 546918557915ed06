"""``intrakd methods [--json]``: list the registered distillation methods."""

from __future__ import annotations

import json


def _methods(args) -> int:
    from intrakd.distill import list_methods

    rows = list_methods()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        taps = ",".join(r["taps"]["student"]) or "-"
        weights = ",".join(f"{k}={v:g}" for k, v in r["default_weights"].items()) or "-"
        teacher = "teacher" if r["needs_teacher"] else "no-teacher"
        print(f"{r['name']:<9} {teacher:<10} taps={taps:<20} w={weights:<28} {r['description']}")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("methods", help="list the distillation methods (registry names, taps, weights)")
    p.add_argument("--json", action="store_true", help="print a JSON list of method descriptions")
    p.set_defaults(func=_methods)
