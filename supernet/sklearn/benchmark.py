"""The estimators' figures (docs/experiments/sklearn.md), each one command:

    python -m supernet.sklearn.benchmark cv                        # 5-fold CV, breast cancer, max_params=20_000
    python -m supernet.sklearn.benchmark cv --data digits --folds 5
    python -m supernet.sklearn.benchmark time_limit --limit 30     # digits, time_limit_s=30

``cv``: `cross_val_score` (the same folds) of `SupernetClassifier` against scikit-learn's
`MLPClassifier` (hidden (100,), standardised inputs) and `HistGradientBoostingClassifier`, with
each model's wall clock. ``time_limit``: one fit on digits with epochs far above what the limit
allows, in a fresh process (torch's import counts, as in a notebook's first fit): the fit's wall
clock against the limit, and each phase's.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

DATA = {"breast_cancer": "load_breast_cancer", "digits": "load_digits", "wine": "load_wine", "iris": "load_iris"}


def _load(name: str, frame: bool = True) -> tuple[Any, Any]:
    """The set as a DataFrame (the table encoder's path) or as arrays."""
    import sklearn.datasets

    return getattr(sklearn.datasets, DATA[name])(return_X_y=True, as_frame=frame)


def cross_validation(data: str, folds: int, max_params: int, seed: int) -> list[dict[str, Any]]:
    """One row per model: mean and std of the fold accuracies, and the wall clock."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from supernet.sklearn import SupernetClassifier

    X, y = _load(data)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    models = {
        f"SupernetClassifier(max_params={max_params:_})": SupernetClassifier(max_params=max_params, random_state=seed),
        "MLPClassifier((100,)), standardised": make_pipeline(
            StandardScaler(), MLPClassifier((100,), max_iter=1000, random_state=seed)
        ),
        "HistGradientBoostingClassifier()": HistGradientBoostingClassifier(random_state=seed),
    }
    rows = []
    for name, model in models.items():
        started = time.perf_counter()
        scores = cross_val_score(model, X, y, cv=cv)
        wall = time.perf_counter() - started
        rows.append({"model": name, "mean": scores.mean(), "std": scores.std(), "folds": list(scores), "wall_s": wall})
    return rows


def time_limited_fit(data: str, limit: float, seed: int) -> dict[str, Any]:
    """The wall clock of one fit under ``time_limit_s=limit``, and its phases'."""
    from supernet.sklearn import SupernetClassifier

    X, y = _load(data, frame=False)
    clf = SupernetClassifier(supernet_epochs=10_000, retrain_epochs=10_000, time_limit_s=limit, random_state=seed)
    started = time.perf_counter()
    clf.fit(X, y)
    wall = time.perf_counter() - started
    phases = {k: v.get("wall_s") for k, v in clf.result_["phases"].items()}
    return {"limit_s": limit, "fit_wall_s": wall, "overrun_s": wall - limit, "phases": phases, "arch": clf.best_arch_}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m supernet.sklearn.benchmark", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="figure", required=True)
    cv = sub.add_parser("cv", help="k-fold cross_val_score against MLPClassifier and gradient boosting")
    cv.add_argument("--data", choices=sorted(DATA), default="breast_cancer")
    cv.add_argument("--folds", type=int, default=5)
    cv.add_argument("--max-params", type=int, default=20_000)
    tl = sub.add_parser("time_limit", help="one fit under time_limit_s")
    tl.add_argument("--data", choices=sorted(DATA), default="digits")
    tl.add_argument("--limit", type=float, default=30.0)
    for p in (cv, tl):
        p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.figure == "cv":
        print(f"| {args.folds}-fold accuracy, {args.data} | mean | std | wall s |\n|---|---:|---:|---:|")
        for r in cross_validation(args.data, args.folds, args.max_params, args.seed):
            print(f"| {r['model']} | {r['mean']:.4f} | {r['std']:.4f} | {r['wall_s']:.1f} |")
    else:
        r = time_limited_fit(args.data, args.limit, args.seed)
        print(
            f"time_limit_s={r['limit_s']:g} on {args.data}: fit took {r['fit_wall_s']:.2f} s "
            f"(overrun {r['overrun_s']:+.2f} s); winner {'-'.join(map(str, r['arch']))}"
        )
        print("phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in r["phases"].items()))


if __name__ == "__main__":
    main()
