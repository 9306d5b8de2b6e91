"""Test setup: offline, CPU (unless ``-m gpu`` selects the GPU tests), and ``fakes`` importable."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config) -> None:
    """Hide CUDA from the default (CPU) suite; ``-m gpu`` keeps the GPUs visible."""
    expr = config.getoption("markexpr") or ""
    if "gpu" not in expr or "not gpu" in expr:
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
