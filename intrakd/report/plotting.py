"""The plotting utilities every figure of the report uses (one layer above :mod:`intrakd.report.common`, below
tables, figures, the qualitative and affinity figures and the verdict): matplotlib without a display."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from intrakd import atomic  # noqa: E402


def save_figure(fig, path) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; returns the path."""
    fig.tight_layout()
    return write_figure(fig, path)


def write_figure(fig, path) -> Path:
    """Write a matplotlib figure as it is laid out to ``path`` (in the format of its suffix, through
    :mod:`intrakd.atomic`) and close it; legends and notes placed beside the axes are kept whole. Returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format=Path(path).suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return atomic.write_bytes(path, buf.getvalue())
