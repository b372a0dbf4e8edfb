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
    ("ours", "verdict", "text"),
    [
        ([0.90, 0.92, 0.94, 0.96, 0.98], "within", "+0.0000, SE 0.0000"),  # the same folds: no difference
        ([0.89, 0.91, 0.93, 0.95, 0.97], "BELOW", "-0.0100, SE 0.0000"),  # one point lower on every fold
        ([0.88, 0.94, 0.92, 0.98, 0.96], "within", "-0.0040, SE 0.0098"),  # lower on average, inside the noise
    ],
)
def test_the_bar_is_the_paired_difference_against_its_standard_error(ours, verdict, text):
    line = _paired_line(_rows(ours, [0.90, 0.92, 0.94, 0.96, 0.98]), "accuracy")
    assert f"SupernetClassifier() - MLPClassifier = {text} ({verdict} 1 SE)" in line
