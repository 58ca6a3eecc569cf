"""Reference data (CTCAE workbook, ODM schemas) from the folder named by EDC_REFERENCE_DATA."""

import os
from pathlib import Path

import pytest


def reference_path(name: str) -> Path:
    """Skip when EDC_REFERENCE_DATA is unset; fail when it is set but the file is missing,
    so CI (which sets it) can never skip these tests silently."""
    folder = os.environ.get("EDC_REFERENCE_DATA")
    if not folder:
        pytest.skip("EDC_REFERENCE_DATA is not set")
    path = Path(folder) / name
    if not path.exists():
        pytest.fail(f"EDC_REFERENCE_DATA={folder} has no {name}")
    return path
