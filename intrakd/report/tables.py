"""Sidecar metrics -> tidy runs table -> paper-layout tables (paper / ours / delta), CSV and Markdown.

Tables are rebuilt from ``metrics.json`` files alone: nothing here trains or imports torch.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from intrakd import atomic
from intrakd.data.spec import get_spec
from intrakd.method_cards import row_label, row_rank
from intrakd.report.common import fmt_number, paper_results

RUN_COLUMNS = ["dataset", "student", "method", "teacher", "seed", "metric", "value", "floor", "data_source",
               "params", "wall_seconds", "matched_size", "seconds_per_step", "init_sha256", "data_sha256",
               "git_commit", "path"]
#: A score less than this far above its floor (the all-background predictor on the same images, same metric) has
#: not learned: 2 points in the paper's units (mIoU and F1 in percent; LLAMAS mAP as a fraction, so 0.02).
LEARNED_MARGIN = {"miou": 2.0, "f1": 2.0, "map": 0.02}
NOT_LEARNED = "not learned"
OPTION_COLUMNS = ["base_method", "kernel"]


def paper_cells(table: str) -> pd.DataFrame:
    cells = [c for c in paper_results()["cells"] if c["table"] == table]
    if not cells:
        raise KeyError(f"no paper cells for table {table!r}; valid: {sorted(paper_results()['tables'])}")
    return pd.DataFrame(cells).rename(columns={"value": "paper"})


def find_metrics(paths) -> list[Path]:
    """``metrics.json`` files given directly or found recursively under the folders given; sorted, one error
    naming a path that does not exist or a search that finds nothing."""
    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(p.rglob("metrics.json"))
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such metrics.json file or folder")
    if not found:
        raise FileNotFoundError(f"no metrics.json found under {', '.join(str(p) for p in paths) or 'nothing'}")
    return found


def collect_runs(paths, with_options: bool = False) -> pd.DataFrame:
    """One row per finished run from its ``metrics.json`` (teacher runs have method ``teacher``).

    ``with_options`` adds ``OPTION_COLUMNS``: the registry method behind a variant (``base_method``) and the AOI
    ``kernel`` of its ``method_options`` (NaN when the run sets none), for the kernel-size sweep (Fig. 1).
    """
    rows = []
    for path in sorted(Path(p) for p in paths):
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: unreadable metrics.json ({err})") from err
        missing = [k for k in ("dataset", "student", "method", "seed", "metric", "value") if k not in m]
        if missing:
            raise KeyError(f"{path}: metrics.json lacks {missing}")
        row = {k: m.get(k) for k in RUN_COLUMNS if k not in ("path", "floor")} | {"path": str(path)}
        row["floor"] = (m.get("floor") or {}).get("value")  # runs older than the floor record have none
        if m.get("role") == "teacher":
            row["method"] = "teacher"
        if with_options:
            options = m.get("method_options") or {}
            row["base_method"] = "teacher" if m.get("role") == "teacher" else m.get("base_method", m["method"])
            kernel = options.get("kernel")
            if kernel is not None and not (isinstance(kernel, int) and not isinstance(kernel, bool) and kernel >= 1):
                raise ValueError(f"{path}: method_options.kernel must be an int >= 1, got {kernel!r}")
            row["kernel"] = kernel
        rows.append(row)
    out = pd.DataFrame(rows, columns=RUN_COLUMNS + (OPTION_COLUMNS if with_options else []))
    out["floor"] = out["floor"].astype(float)
    if with_options:
        out["kernel"] = out["kernel"].astype(float)
    return out


def learned(value, floor, metric: str) -> bool | None:
    """Whether ``value`` lies at least ``LEARNED_MARGIN[metric]`` above ``floor`` (None when either is unknown)."""
    if value is None or floor is None or pd.isna(value) or pd.isna(floor):
        return None
    return bool(value - floor >= LEARNED_MARGIN[metric])


def not_learned(flag) -> bool:
    """True for a ``learned`` value that is known and false (None / NaN: no floor recorded, nothing to say)."""
    return flag is not None and not (isinstance(flag, float) and np.isnan(flag)) and not bool(flag)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample sd and n over seeds per (dataset, model, method), with the mean floor of those runs and
    ``learned`` (the mean at least ``LEARNED_MARGIN`` above it; None without a recorded floor)."""
    runs = runs.rename(columns={"student": "model"})
    if "floor" not in runs:
        runs = runs.assign(floor=np.nan)
    groups = runs.groupby(["dataset", "model", "method"], sort=False)
    out = groups["value"].agg(ours="mean", sd="std", n="count")
    out["floor"] = groups["floor"].mean()
    out["metric"] = groups["metric"].first()
    out["learned"] = [learned(o, f, m) for o, f, m in zip(out["ours"], out["floor"], out["metric"])]
    for col, name in (("matched_size", "ours_size"), ("seconds_per_step", "ours_step_s")):  # Table 4 complexity
        if col in runs:
            out[name] = groups[col].mean()
    return out.reset_index()


def paper_table(table: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Paper cells joined with our runs: one row per cell that we ran (or that the paper has and we ran)."""
    paper = paper_cells(table)
    ours = summarise(runs)
    if table == "table4":  # gains over our own ERFNet baseline, as the paper reports them
        base = ours[(ours.method == "baseline") & (ours.model == "erfnet") & (ours.dataset == "apolloscape")]
        ours = ours.copy()
        ours["ours_gain"] = ours["ours"] - (base["ours"].iloc[0] if len(base) else np.nan)
    key = ["dataset", "model", "method"]
    merged = paper.merge(ours, on=key, how="inner")
    # Our teachers are shown for context even where the paper's table has no teacher row (Table 5): the
    # gap between teacher and students is what distillation can close.
    teachers = ours[(ours.method == "teacher") & ours.dataset.isin(paper.dataset)]
    teachers = teachers.merge(merged[key], on=key, how="left", indicator=True)
    teachers = teachers[teachers["_merge"] == "left_only"].drop(columns="_merge")
    if len(merged) and len(teachers):
        merged = pd.concat([merged, teachers.assign(paper=np.nan)], ignore_index=True)
    merged["delta"] = merged["ours"] - merged["paper"]
    merged = merged.sort_values(
        by=["dataset", "model", "method"], key=lambda s: s.map(row_rank) if s.name == "method" else s, kind="stable"
    )
    extra = ("complexity", "ours_size", "ours_step_s", "gain", "ours_gain") if "complexity" in merged else ()
    cols = key + ["metric"] + [c for c in extra if c in merged]
    cols += ["paper", "floor", "ours", "sd", "n", "learned", "delta"]
    return merged[cols].reset_index(drop=True)


def to_markdown(table: str, df: pd.DataFrame, data_note: str, commit: str) -> str:
    meta = paper_results()
    title = meta["tables"][table]["title"]
    lines = [f"# {title}", "", f"**Data:** {data_note}", "",
             f"Generated by `intrakd.report` from the runs' `metrics.json` at commit `{commit}`. "
             "`ours` is the mean over seeds ± sample sd (n seeds); `delta` = ours − paper. `floor` is the score of "
             "a predictor that answers background everywhere, on the same images with the same metric; a mean "
             f"less than {LEARNED_MARGIN['miou']:g} points above it (mAP: {LEARNED_MARGIN['map']:g}) is marked "
             f"**{NOT_LEARNED}**: that network has not learned the task, and its number says nothing about the "
             "method.", ""]
    header = ["dataset", "model", "method"]
    if "complexity" in df:
        header += ["complexity (paper)", "matched entries per image (ours)", "s/step (ours)", "paper gain",
                   "ours gain"]
    header += ["paper", "floor", "ours", "delta"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in df.itertuples(index=False):
        digits = 3 if get_spec(row.dataset).metric == "map" else 1
        cells = [row.dataset, row.model, row_label(row.method)]
        if "complexity" in df:
            size = getattr(row, "ours_size", np.nan)
            cells += [f"`{row.complexity}`" if isinstance(row.complexity, str) else "—",
                      "—" if pd.isna(size) else f"{int(size):,}", fmt_number(getattr(row, "ours_step_s", np.nan), 3),
                      fmt_number(row.gain, 1), fmt_number(row.ours_gain, digits)]
        sd = "" if row.n < 2 else f" ± {fmt_number(row.sd, digits)}"
        flag = f" **{NOT_LEARNED}**" if not_learned(row.learned) else ""
        cells += [fmt_number(row.paper, digits), fmt_number(row.floor, digits),
                  f"{fmt_number(row.ours, digits)}{sd} (n={row.n}){flag}", fmt_number(row.delta, digits)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _inline_html(text: str) -> str:
    """Markdown's **bold** and `code` as HTML, everything else escaped."""
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def write_table_files(stem: Path, frame: pd.DataFrame, markdown: str) -> None:
    """``<stem>.csv`` (``frame``), ``<stem>.md`` (``markdown``) and ``<stem>.html`` (:func:`markdown_html` of it), each
    written through :mod:`intrakd.atomic`: a table or the verdict as every reader gets it."""
    atomic.write_text(stem.with_suffix(".csv"), frame.to_csv(index=False))
    atomic.write_text(stem.with_suffix(".md"), markdown)
    atomic.write_text(stem.with_suffix(".html"), markdown_html(markdown))


def markdown_html(md: str) -> str:
    """The Markdown this package writes (``# headings``, paragraphs, pipe tables, **bold**, `code`) as one standalone
    HTML page: what the Snakemake report shows inline for a table (its ``.md`` and ``.html`` say the same)."""
    out, table, para = [], [], []

    def flush():
        if para:
            out.append(f"<p>{_inline_html(' '.join(para))}</p>")
            para.clear()
        if table:
            cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in table]
            head, body = cells[0], [r for r in cells[1:] if not all(set(c) <= set("-: ") for c in r)]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline_html(c)}</th>" for c in head) + "</tr></thead>"
                       "<tbody>" + "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in r) + "</tr>"
                                           for r in body) + "</tbody></table>")
            table.clear()

    title = None
    for line in md.splitlines():
        if line.startswith("|"):
            if para:
                flush()
            table.append(line)
        elif not line.strip():
            flush()
        elif line.startswith("#"):
            flush()
            level = len(line) - len(line.lstrip("#"))
            text = line[level:].strip()
            title = title or text
            out.append(f"<h{level + 1}>{_inline_html(text)}</h{level + 1}>")
        else:
            if table:
                flush()
            para.append(line.strip())
    flush()
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{_inline_html(title or '')}</title>"
            f"<style>{HTML_STYLE}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


#: Style of the HTML pages of the tables and the verdict (:func:`markdown_html`): readable inside the report's frame.
HTML_STYLE = ("body{font-family:sans-serif;font-size:13px;margin:8px} table{border-collapse:collapse} "
              "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top} "
              "td.num,th.num{text-align:right;white-space:nowrap} thead th{background:#f0f0f0;position:sticky;top:0} "
              "tbody tr:nth-child(even){background:#fafafa} p{max-width:70em}")


def check_one_data_source(runs: pd.DataFrame) -> None:
    """One ValueError when runs of one dataset were trained on different data (their ``data_source`` differs),
    naming each source with one of its runs: their numbers must not be pooled into one mean."""
    for ds, group in runs.groupby("dataset", sort=True):
        sources = group.groupby(group["data_source"].fillna("unknown"), sort=True)["path"].first()
        if len(sources) > 1:
            listed = "; ".join(f"{src!r} (e.g. {path})" for src, path in sources.items())
            raise ValueError(f"the {ds} runs given were trained on different data and would be pooled into one "
                             f"mean: {listed}. Pass the runs of one data set (e.g. one preset's results/runs).")


def data_note(runs: pd.DataFrame, datasets=None) -> str:
    """The data (and training commits) of ``runs``, of those of ``datasets`` only when given."""
    if datasets is not None:
        runs = runs[runs["dataset"].isin(set(datasets))]
    sources = sorted(set(runs["data_source"].dropna()))
    note = "; ".join(sources) if sources else "unknown"
    if any("synthetic" in s for s in sources):
        note += ". Synthetic-world numbers are NOT comparable in absolute value to the paper's real-data numbers."
    if "git_commit" in runs:
        commits = sorted({str(c)[:12] for c in runs["git_commit"].dropna()})
        note += f" Runs trained at commit {', '.join(commits) or 'unknown'}."
    return note


def write_table(table: str, runs: pd.DataFrame, out_dir: str | Path, commit: str) -> pd.DataFrame:
    """Write ``<out_dir>/<table>.csv``, ``.md`` and ``.html`` (one ValueError when the runs of a dataset were trained
    on different data); returns the table."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_one_data_source(runs)
    df = paper_table(table, runs)
    if df.empty:
        raise ValueError(f"{table}: none of the runs given matches a cell of the paper's {table}")
    note = data_note(runs, df["dataset"])
    write_table_files(out_dir / table, df.assign(data=note, commit=commit), to_markdown(table, df, note, commit))
    return df
