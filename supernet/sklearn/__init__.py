"""scikit-learn estimators: the ``supernet`` pipeline (train -> search -> export -> retrain) behind
``fit(X, y)``, for notebooks, ``Pipeline``, ``cross_val_score``, ``GridSearchCV`` and ``clone``.

    from supernet.sklearn import SupernetClassifier
    clf = SupernetClassifier(max_params=20_000).fit(X, y)   # X: an array or a DataFrame
    clf.predict(X), clf.best_arch_, clf.search_history_
    clf.export("subnets/mine")                                # supernet.load_subnet reads it

`SupernetClassifier` and `SupernetRegressor` (`supernet.sklearn.estimators`) compose the
command's configs (`supernet.sklearn.config`), read X and y by scikit-learn's rules
(`supernet.sklearn.inputs`) and run the command's phases (`supernet.sklearn.fitting`,
`supernet.sklearn.phases`). `EXPECTED_FAILED_CHECKS` lists, per estimator, the scikit-learn
estimator checks it is expected to fail and why (``parametrize_with_checks`` takes it).
"""

from __future__ import annotations

from supernet.sklearn.checks import EXPECTED_FAILED_CHECKS, expected_failed_checks
from supernet.sklearn.estimators import SupernetClassifier, SupernetRegressor

__all__ = ["EXPECTED_FAILED_CHECKS", "SupernetClassifier", "SupernetRegressor", "expected_failed_checks"]
