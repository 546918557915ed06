"""Paper numbers, tables (paper / ours / delta) and figures, rebuilt from run sidecars alone."""

from __future__ import annotations

from pathlib import Path

from intrakd.report.tables import collect_runs, data_note, paper_results, paper_table, write_table


def build_tables(metrics_paths, tables, out_tables, out_figures, commit: str) -> dict:
    """Write ``<out_tables>/<t>.{csv,md,html}`` and ``<out_figures>/<t>.png`` for each table id; returns the frames."""
    from intrakd.report.figures import paper_vs_ours

    runs = collect_runs(metrics_paths)
    frames = {}
    for table in tables:
        df = write_table(table, runs, out_tables, commit)
        paper_vs_ours(df, Path(out_figures) / f"{table}.png", paper_results()["tables"][table]["title"],
                      data=data_note(runs, df["dataset"]))
        frames[table] = df
    return frames


__all__ = ["build_tables", "collect_runs", "paper_results", "paper_table", "write_table"]
