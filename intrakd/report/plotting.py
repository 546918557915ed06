"""The plotting utilities every figure of the report uses (one layer above :mod:`intrakd.report.common`, below
tables, figures, the qualitative and affinity figures and the verdict): matplotlib without a display."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_figure(fig, path) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; returns the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")  # legends and notes placed beside the axes are kept whole
    plt.close(fig)
    return path
