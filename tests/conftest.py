"""Shared test fixtures.

Genuine dataset files are read from ``../shared/real_samples`` (beside the repository; never copied into
it, for licence reasons). Tests that need them use the ``real_samples`` fixture and skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
REAL_SAMPLES = Path(os.environ.get("INTRAKD_REAL_SAMPLES", REPO.parent / "shared" / "real_samples"))


@pytest.fixture(scope="session")
def real_samples() -> Path:
    if not REAL_SAMPLES.is_dir():
        pytest.skip(f"real samples not found at {REAL_SAMPLES}")
    return REAL_SAMPLES


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
