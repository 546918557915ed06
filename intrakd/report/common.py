"""The bottom of the report layer: what tables, figures and the verdict share without computing anything -- the
files the figures step writes and the paper's numbers (``paper_results.yaml``). Imports no plotting library, no
pandas and no torch: the workflow reads it while building the DAG."""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import yaml

#: figure id -> file written by :func:`build_figures` (and ``intrakd figures``).
FIGURE_FILES = {"fig1": "fig1_kernel_sweep.png", "fig2": "fig2_qualitative.png", "fig3": "fig3_affinity_graphs.png",
                "curves": "training_curves.png"}
#: figure id -> per-image scores written beside it: the paired samples the verdict tests Fig. 2's and Fig. 3's
#: claims on (:func:`intrakd.report.qualitative.image_scores`, :func:`intrakd.report.affinity.graph_distances`).
SCORE_FILES = {"fig2": "fig2_scores.csv", "fig3": "fig3_scores.csv"}


@lru_cache(maxsize=1)
def paper_results() -> dict:
    text = resources.files("intrakd.report").joinpath("paper_results.yaml").read_text()
    return yaml.safe_load(text)


def fmt_number(value, digits: int) -> str:
    """A number of a Markdown table: ``digits`` decimals, an em dash for a missing one (None or NaN)."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
