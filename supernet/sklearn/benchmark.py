"""The estimators' figures (docs/experiments/sklearn.md), each one command:

    python -m supernet.sklearn.benchmark cv                        # 5-fold CV, breast cancer, max_params=20_000
    python -m supernet.sklearn.benchmark cv --data digits --folds 5
    python -m supernet.sklearn.benchmark time_limit --limit 30     # digits, time_limit_s=30
    python -m supernet.sklearn.benchmark defaults --threads 1      # the estimators at their defaults, 5 sets
    python -m supernet.sklearn.benchmark checks                    # scikit-learn's checks at the defaults

``cv``: `cross_val_score` (the same folds) of `SupernetClassifier` against scikit-learn's
`MLPClassifier` (hidden (100,), standardised inputs) and `HistGradientBoostingClassifier`, with
each model's wall clock. ``time_limit``: one fit on digits with epochs far above what the limit
allows, in a fresh process (torch's import counts, as in a notebook's first fit): the fit's wall
clock against the limit, and each phase's. ``defaults``: `SupernetClassifier()` /
`SupernetRegressor()` at their defaults against `MLPClassifier`/`MLPRegressor`,
`HistGradientBoosting*` and, where pytabkit is installed, RealMLP-TD, by 5-fold `cross_validate`
on breast cancer, digits, wine, diabetes and a generated imbalanced table (`defaults_table`),
each model limited to ``--threads`` threads. ``checks``: scikit-learn's `check_estimator` on both
estimators at their default settings, with its wall clock.
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


# ---------------------------------------------------------------------------- at the defaults
DEFAULT_SETS = ("breast_cancer", "digits", "wine", "diabetes", "imbalanced")


def _default_set(name: str) -> tuple[Any, Any, bool]:
    """(X, y, regression): scikit-learn's sets as arrays; ``imbalanced``: 1,000 rows of 20
    features (8 informative), one class in ten, seed 0."""
    import sklearn.datasets

    if name == "imbalanced":
        X, y = sklearn.datasets.make_classification(
            n_samples=1000, n_features=20, n_informative=8, weights=[0.9, 0.1], random_state=0
        )
        return X, y, False
    if name == "diabetes":
        return (*sklearn.datasets.load_diabetes(return_X_y=True), True)
    return (*_load(name, frame=False), False)


def _default_models(regression: bool, threads: int, seed: int) -> dict[str, Any]:
    """The estimators at their defaults beside scikit-learn's (standardised MLP, gradient
    boosting) and pytabkit's RealMLP-TD where it is installed."""
    from sklearn import ensemble, neural_network
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from supernet.sklearn import SupernetClassifier, SupernetRegressor

    kind = "Regressor" if regression else "Classifier"
    mlp = getattr(neural_network, f"MLP{kind}")
    models = {
        f"Supernet{kind}()": (SupernetRegressor if regression else SupernetClassifier)(n_jobs=threads),
        f"MLP{kind}(max_iter=1000), standardised": make_pipeline(
            StandardScaler(), mlp(max_iter=1000, random_state=seed)
        ),
        f"HistGradientBoosting{kind}()": getattr(ensemble, f"HistGradientBoosting{kind}")(random_state=seed),
    }
    try:
        import pytabkit
    except ImportError:
        return models
    realmlp = getattr(pytabkit, f"RealMLP_TD_{kind}")
    models[f"RealMLP_TD_{kind}()"] = realmlp(random_state=seed, n_threads=threads, device="cpu", verbosity=0)
    return models


def defaults_table(threads: int, seed: int, sets: tuple[str, ...] = DEFAULT_SETS) -> list[dict[str, Any]]:
    """One row per set and model: the 5 folds' mean and standard deviation (accuracy, or R² for
    diabetes; the imbalanced table also balanced accuracy) and the seconds per fold (fit + score)."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
    from threadpoolctl import threadpool_limits

    rows = []
    for name in sets:
        X, y, regression = _default_set(name)
        cv = (KFold if regression else StratifiedKFold)(5, shuffle=True, random_state=seed)
        scoring = ["r2"] if regression else ["accuracy"] + (["balanced_accuracy"] if name == "imbalanced" else [])
        set_rows = []
        for model_name, model in _default_models(regression, threads, seed).items():
            with threadpool_limits(limits=threads):
                out = cross_validate(model, X, y, cv=cv, scoring=scoring)
            seconds = out["fit_time"] + out["score_time"]
            row = {"set": name, "model": model_name, "s_per_fold": float(seconds.mean())}
            for metric in scoring:
                row[metric] = (float(out[f"test_{metric}"].mean()), float(out[f"test_{metric}"].std()))
                row[f"{metric}_folds"] = [float(v) for v in out[f"test_{metric}"]]
            set_rows.append(row)
            print(_defaults_line(row, threads), flush=True)
        for metric in scoring:
            print(_paired_line(set_rows, metric), flush=True)
        rows += set_rows
    return rows


def _paired_line(rows: list[dict[str, Any]], metric: str) -> str:
    """The estimator minus the MLP on the same folds, against two standard errors: the estimator's
    own (its folds' sd over sqrt(folds), the "mean ± sd" columns' reading) and the paired one (the
    folds' differences' sd over sqrt(folds), which removes what the folds share)."""
    import numpy as np

    ours, mlp = (np.array(rows[i][f"{metric}_folds"]) for i in (0, 1))
    diff, root = ours - mlp, np.sqrt(len(ours))
    ses = {"SE": float(ours.std() / root), "paired SE": float(diff.std(ddof=1) / root)}
    tests = ", ".join(f"{name} {se:.4f} ({'within' if diff.mean() >= -se else 'BELOW'})" for name, se in ses.items())
    pair = f"{rows[0]['model']} - {rows[1]['model']}"
    return f"|   {rows[0]['set']} {metric}: {pair} = {diff.mean():+.4f}; {tests} |"


def _defaults_line(row: dict[str, Any], threads: int) -> str:
    figures = ", ".join(f"{m} {v[0]:.4f} ± {v[1]:.4f}" for m, v in row.items() if isinstance(v, tuple))
    return f"| {row['set']} | {row['model']} | {threads} | {figures} | {row['s_per_fold']:.1f} |"


def checks_at_defaults() -> dict[str, float]:
    """scikit-learn's `check_estimator` on each estimator at its defaults (the expected failures
    listed in `supernet.sklearn.checks`): seconds per estimator; a failing check raises."""
    from sklearn.utils.estimator_checks import check_estimator

    from supernet.sklearn import SupernetClassifier, SupernetRegressor, expected_failed_checks

    seconds = {}
    for est in (SupernetClassifier(), SupernetRegressor()):
        started = time.perf_counter()
        results = check_estimator(est, expected_failed_checks=expected_failed_checks(est), on_fail=None)
        seconds[type(est).__name__] = time.perf_counter() - started
        failed = [r for r in results if r["status"] == "failed"]
        for r in failed:
            print(f"{type(est).__name__} {r['check_name']}: {r['exception']!r}"[:300], flush=True)
        print(f"{type(est).__name__}: {len(results)} checks, {len(failed)} failed, {seconds[type(est).__name__]:.0f} s")
    return seconds


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
    de = sub.add_parser("defaults", help="the estimators at their defaults on five sets, 5-fold")
    de.add_argument("--threads", type=int, default=1)
    de.add_argument("--sets", nargs="+", choices=DEFAULT_SETS, default=list(DEFAULT_SETS))
    sub.add_parser("checks", help="scikit-learn's estimator checks at the default settings")
    for p in (cv, tl, de):
        p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.figure == "defaults":
        print("| set | model | threads | 5-fold mean ± sd | s per fold |\n|---|---|---:|---|---:|")
        defaults_table(args.threads, args.seed, tuple(args.sets))
    elif args.figure == "checks":
        checks_at_defaults()
    elif args.figure == "cv":
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
