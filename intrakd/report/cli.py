"""``intrakd tables``: rebuild paper tables and figures from metrics.json sidecars (never trains)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("tables", help="rebuild tables/figures from metrics.json files (no training)")
    p.add_argument("metrics", nargs="+", type=Path, help="metrics.json files or folders searched recursively")
    p.add_argument("--table", action="append", required=True, help="table id, e.g. table5 (repeatable)")
    p.add_argument("--out-tables", type=Path, default=Path("results/tables"))
    p.add_argument("--out-figures", type=Path, default=Path("results/figures"))
    p.add_argument("--commit", default=None, help="commit to stamp (default: this checkout's)")
    p.set_defaults(func=_tables)


def _tables(args) -> int:
    from intrakd.engine.provenance import git_commit
    from intrakd.report import build_tables

    paths = []
    for m in args.metrics:
        if m.is_dir():
            paths += sorted(m.rglob("metrics.json"))
        elif m.is_file():
            paths.append(m)
        else:
            raise FileNotFoundError(f"{m}: no such metrics.json file or folder")
    if not paths:
        raise FileNotFoundError(f"no metrics.json found under {[str(m) for m in args.metrics]}")
    build_tables(paths, args.table, args.out_tables, args.out_figures, args.commit or git_commit())
    for t in args.table:
        print((args.out_tables / f"{t}.md").read_text())
    return 0
