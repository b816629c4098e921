from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def matrix_file() -> dict[str, Any]:
    with open(DATA / "negotiation-matrix.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data
