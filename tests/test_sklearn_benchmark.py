"""The estimators' figures script: the bar's paired test (supernet/sklearn/benchmark.py)."""

from __future__ import annotations

import pytest

from supernet.sklearn.benchmark import _paired_line


def _rows(ours: list[float], mlp: list[float]) -> list[dict]:
    return [
        {"set": "wine", "model": "SupernetClassifier()", "accuracy_folds": ours},
        {"set": "wine", "model": "MLPClassifier", "accuracy_folds": mlp},
    ]


@pytest.mark.parametrize(
    ("ours", "text"),
    [
        ([0.90, 0.92, 0.94, 0.96, 0.98], "+0.0000; SE 0.0126 (within), paired SE 0.0000 (within)"),  # the same
        ([0.89, 0.91, 0.93, 0.95, 0.97], "-0.0100; SE 0.0126 (within), paired SE 0.0000 (BELOW)"),  # a point lower
        ([0.88, 0.94, 0.92, 0.98, 0.96], "-0.0040; SE 0.0154 (within), paired SE 0.0098 (within)"),  # noise
        ([0.89, 0.92, 0.93, 0.96, 0.97], "-0.0060; SE 0.0128 (within), paired SE 0.0024 (BELOW)"),  # paired sees it
    ],
)
def test_the_bar_is_the_difference_against_the_standard_errors(ours, text):
    line = _paired_line(_rows(ours, [0.90, 0.92, 0.94, 0.96, 0.98]), "accuracy")
    assert f"SupernetClassifier() - MLPClassifier = {text} |" in line
