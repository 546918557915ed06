"""``intrakd tables`` / ``figures`` / ``verdict``: rebuild tables, figures and the claims verdict from the run
folders (``metrics.json``, ``history.csv``, ``model.pt``); nothing here trains."""

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

    from intrakd.report.figures import FIGURE_FILES

    f = sub.add_parser("figures", help="the paper's figures (Fig. 1-3, training curves) from the run folders")
    f.add_argument("runs", nargs="+", type=Path, metavar="RUNS_DIR", help="folders searched for metrics.json")
    f.add_argument("--out", type=Path, default=Path("results/figures"))
    f.add_argument("--which", default=",".join(FIGURE_FILES), help=f"comma-separated among {','.join(FIGURE_FILES)}")
    f.add_argument("--seed", type=int, default=None, help="seed of the Fig. 2/3 runs (default: smallest common)")
    f.add_argument("--data-root", type=Path, default=None, help="dataset root overriding the runs' recorded one")
    f.set_defaults(func=_figures)

    v = sub.add_parser("verdict", help="the paper's claims against the runs (Welch intervals) as CSV and Markdown")
    v.add_argument("runs", nargs="+", type=Path, metavar="RUNS_DIR", help="folders searched for metrics.json")
    v.add_argument("--out", type=Path, default=Path("results/tables"))
    v.add_argument("--commit", default=None, help="commit to stamp (default: this checkout's)")
    v.add_argument("--stable-margin", type=float, default=None,
                   help="tolerance of 'almost the same' (Fig. 1, metric units; default 0.5)")
    v.add_argument("--figures", type=Path, default=None, metavar="DIR",
                   help="folder holding the Fig. 2/3 per-image scores written by `intrakd figures` "
                        "(fig2_scores.csv, fig3_scores.csv); without it those claims are 'not run'")
    v.set_defaults(func=_verdict)


def _tables(args) -> int:
    from intrakd.vcs import git_commit
    from intrakd.report import build_tables
    from intrakd.report.tables import find_metrics

    paths = find_metrics(args.metrics)
    build_tables(paths, args.table, args.out_tables, args.out_figures, args.commit or git_commit())
    for t in args.table:
        print((args.out_tables / f"{t}.md").read_text())
    return 0


def _figures(args) -> int:
    from intrakd.report.figures import build_figures

    for name, path in build_figures(args.runs, args.out, args.which, args.seed, args.data_root).items():
        print(f"{name}: {path}")
    return 0


def _verdict(args) -> int:
    from intrakd.vcs import git_commit
    from intrakd.report.tables import collect_runs, find_metrics
    from intrakd.report.verdict import DEFAULT_STABLE_MARGIN, load_scores, write_verdict

    runs = collect_runs(find_metrics(args.runs), with_options=True)
    margin = DEFAULT_STABLE_MARGIN if args.stable_margin is None else args.stable_margin
    if args.figures is not None and not args.figures.is_dir():
        raise FileNotFoundError(f"--figures {args.figures}: no such folder (expected the output folder of "
                                "`intrakd figures`)")
    scores = load_scores(args.figures) if args.figures is not None else None
    write_verdict(runs, args.out, args.commit or git_commit(), margin, scores=scores)
    print((args.out / "verdict.md").read_text())
    return 0
