"""The test tree's own rules: pytest's default import mode needs unique test module
basenames across tests/ (a duplicate stops the whole run at collection)."""

from collections import Counter
from pathlib import Path


def test_test_module_basenames_are_unique() -> None:
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []
