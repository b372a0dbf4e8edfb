"""The scikit-learn estimator checks each estimator is expected to fail, with the reason.

    from sklearn.utils.estimator_checks import parametrize_with_checks
    from supernet.sklearn import SupernetClassifier, SupernetRegressor, expected_failed_checks

    @parametrize_with_checks([SupernetClassifier(), SupernetRegressor()],
                             expected_failed_checks=expected_failed_checks)
    def test_sklearn(estimator, check):
        check(estimator)

One dict per estimator, check name -> one-line reason. With scikit-learn 1.9 every other check
passes on both estimators, at the tests' small settings (tests/test_sklearn.py) and at the
defaults (docs/experiments/sklearn.md). The README's list is `markdown()`'s output.
"""

from __future__ import annotations

from typing import Any

_WEIGHTS = "sample_weight draws the training rows in proportion to the weights: a weight of 2 is not a repeated row"
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "SupernetClassifier": {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS},
    "SupernetRegressor": {"check_sample_weight_equivalence_on_dense_data": _WEIGHTS},
}


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """`EXPECTED_FAILED_CHECKS` of the estimator's class (``parametrize_with_checks`` calls it)."""
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


def markdown() -> str:
    """The README's list of expected failures: one line per estimator and check."""
    lines = []
    for name, checks in EXPECTED_FAILED_CHECKS.items():
        if not checks:
            lines.append(f"- `{name}`: none, every check passes")
        lines += [f"- `{name}`, `{check}`: {reason}" for check, reason in checks.items()]
    return "\n".join(lines)
