"""Plain baselines to put a searched subnet's scores in context.

scikit-learn models trained on exactly the split and normalisation the supernet sees
(`supernet.data.datasets.load_data`), scored on the validation and test splits with every metric
of the task (`supernet.core.metrics.task_metrics`; regression in the targets' own units):

  * classification: `MLPClassifier` (one hidden layer of 100 units by default) and
    `HistGradientBoostingClassifier`; ``data.class_weight`` becomes their sample weights.
  * regression: `MLPRegressor` and `HistGradientBoostingRegressor` (one per target, through
    `MultiOutputRegressor`, for several), both fitted on the standardised targets the supernet
    learns and scored after mapping their predictions back to the targets' units.
  * a constant: the majority class, or the training mean; what a model has to beat.

    python -m supernet.baseline data=tabular_demo
    python -m supernet.baseline data=csv data.path=measurements.csv data.target=label
    python -m supernet.baseline data=tabular_demo data.dataset=wine hidden=[64,32] seed=1
    python -m supernet.baseline data=diabetes            # regression: rmse, mae, r2
    python -m supernet.baseline data=friedman hgb=false  # the MLP and the constant only

The printed result keeps the MLP's fields at the top (``model``, ``hidden``, ``params``,
``converged``, ``fit_s``, ``val_acc``, ``test_acc``... one ``val_<metric>`` and ``test_<metric>``
per metric; accuracy is ``val_acc``), with ``gradient_boosting`` and ``constant`` beside them.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.core.metrics import Metric, task_metrics, y_true
from supernet.data.datasets import DataBundle, load_data

CONF_DATA = Path(__file__).resolve().parent.parent / "conf" / "data"


# ---------------------------------------------------------------------------- scoring
def metric_field(metric: Metric, split: str) -> str:
    """``val_acc``/``test_acc`` for accuracy (the name supernet has always written), else
    ``<split>_<metric>``."""
    return f"{split}_acc" if metric.name == "accuracy" else f"{split}_{metric.name}"


def _predictor(model: Any, bundle: DataBundle) -> Callable[[np.ndarray, str], np.ndarray]:
    """``predict(x, needs)``: labels, probabilities over every class, or values in the targets'
    units (the model is fitted on standardised targets), as the metric needs."""
    task, n_out = bundle.task, bundle.num_classes

    def predict(x: np.ndarray, needs: str) -> np.ndarray:
        if needs == "values":
            out = np.asarray(model.predict(x), dtype=np.float64).reshape(len(x), n_out)
            return task.to_units(torch.from_numpy(out)).numpy()
        if needs == "probabilities":
            proba = np.zeros((len(x), n_out))
            proba[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(x)
            return proba / proba.sum(axis=1, keepdims=True)  # float32 models: sums off by ~1e-7
        return np.asarray(model.predict(x))

    return predict


def score(model: Any, bundle: DataBundle) -> dict[str, float | None]:
    """Every metric of the task on the validation and test splits (test: None without one)."""
    metrics = task_metrics(bundle.task, bundle.num_classes)
    predict = _predictor(model, bundle)
    out: dict[str, float | None] = {}
    for split, x, y in (("val", bundle.val_x, bundle.val_y), ("test", bundle.test_x, bundle.test_y)):
        cache: dict[str, np.ndarray] = {}
        for m in metrics:
            if x is None or y is None:
                out[metric_field(m, split)] = None
                continue
            if m.needs not in cache:
                cache[m.needs] = predict(x.numpy(), m.needs)
            out[metric_field(m, split)] = float(m.score(y_true(y, bundle.task), cache[m.needs]))
    return out


def _fit(model: Any, bundle: DataBundle) -> tuple[float, bool]:
    """Fit on the training split (class weights as sample weights): (wall seconds, converged)."""
    from sklearn.exceptions import ConvergenceWarning

    x, y = bundle.train_x.numpy(), bundle.train_y.numpy()
    if y.ndim == 2 and y.shape[1] == 1:  # one regression target: the 1-d y scikit-learn expects
        y = y.ravel()
    kwargs = {}
    if bundle.task.class_weight is not None:
        kwargs["sample_weight"] = np.asarray(bundle.task.class_weight, dtype=np.float64)[y]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x, y, **kwargs)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return round(time.perf_counter() - t0, 3), converged


# ---------------------------------------------------------------------------- the models
def mlp_baseline(bundle: DataBundle, hidden: Sequence[int] = (100,), max_iter: int = 300, seed: int = 0) -> dict:
    """`MLPClassifier` / `MLPRegressor` on `bundle`: ``{"model", "hidden", "params", "converged",
    "fit_s", "val_acc", "test_acc", ...}`` (every metric of the task, see `score`)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = bundle.task.choose(MLPClassifier, MLPRegressor)
    layers = tuple(int(h) for h in hidden)
    model = cls(hidden_layer_sizes=layers, max_iter=int(max_iter), random_state=int(seed))
    fit_s, converged = _fit(model, bundle)
    params = sum(w.size for w in model.coefs_) + sum(b.size for b in model.intercepts_)
    return {
        "model": f"sklearn {cls.__name__}(hidden_layer_sizes={layers})",
        "hidden": list(layers),
        "params": int(params),
        "converged": converged,
        "fit_s": fit_s,
        **score(model, bundle),
    }


def hgb_baseline(bundle: DataBundle, seed: int = 0) -> dict:
    """`HistGradientBoostingClassifier` / `HistGradientBoostingRegressor` (several targets: one
    per target through `MultiOutputRegressor`) with scikit-learn's defaults."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.multioutput import MultiOutputRegressor

    cls = bundle.task.choose(HistGradientBoostingClassifier, HistGradientBoostingRegressor)
    model: Any = cls(random_state=int(seed))
    name = f"sklearn {cls.__name__}()"
    if bundle.task.multi_output:
        model = MultiOutputRegressor(model)
        name = f"sklearn MultiOutputRegressor({cls.__name__}()) x{bundle.num_classes}"
    fit_s, _ = _fit(model, bundle)
    estimators = getattr(model, "estimators_", [model])
    return {"model": name, "iterations": [int(e.n_iter_) for e in estimators], "fit_s": fit_s, **score(model, bundle)}


PEER_PACKAGES = {"realmlp": "pytabkit", "lightgbm": "lightgbm"}  # the optional peers and their PyPI packages


def missing_peer(name: str) -> str | None:
    """The PyPI package peer `name` still needs (``pip install ".[bench]"`` has both), or None."""
    import importlib.util

    package = PEER_PACKAGES[name]
    return None if importlib.util.find_spec(package) is not None else package


def realmlp_baseline(bundle: DataBundle, seed: int = 0) -> dict:
    """pytabkit's RealMLP-TD (`RealMLP_TD_Classifier` / `RealMLP_TD_Regressor`) with its defaults,
    on torch's thread count (what the supernet runs use); it holds out its own validation rows."""
    from pytabkit import RealMLP_TD_Classifier, RealMLP_TD_Regressor

    cls = bundle.task.choose(RealMLP_TD_Classifier, RealMLP_TD_Regressor)
    model = cls(random_state=int(seed), n_threads=torch.get_num_threads(), device="cpu", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's and torch's notes on every fit
        fit_s, _ = _fit(model, bundle)
    return {"model": f"pytabkit {cls.__name__}()", "fit_s": fit_s, **score(model, bundle)}


def lightgbm_baseline(bundle: DataBundle, seed: int = 0) -> dict:
    """LightGBM's `LGBMClassifier` / `LGBMRegressor` with its defaults, on torch's thread count."""
    import lightgbm

    cls = bundle.task.choose(lightgbm.LGBMClassifier, lightgbm.LGBMRegressor)
    model = cls(random_state=int(seed), n_jobs=torch.get_num_threads(), verbose=-1)
    fit_s, _ = _fit(model, bundle)
    return {"model": f"lightgbm {cls.__name__}()", "fit_s": fit_s, **score(model, bundle)}


def constant_baseline(bundle: DataBundle) -> dict:
    """The training split's majority class (classification) or mean (regression) for every row."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    regression = bundle.task.is_regression
    model = DummyRegressor(strategy="mean") if regression else DummyClassifier(strategy="prior")
    fit_s, _ = _fit(model, bundle)
    what = "the training mean" if regression else "the majority class (training class shares as probabilities)"
    return {"model": f"predict {what}", "fit_s": fit_s, **score(model, bundle)}


def sklearn_mlp_baseline(
    cfg: Mapping,
    hidden: Sequence[int] = (100,),
    max_iter: int = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the MLP on the normalised train split of data config `cfg`; report its scores
    (`mlp_baseline`; ``test_*`` are None when the data set has no test split)."""
    return mlp_baseline(load_data(cfg), hidden, max_iter, seed)


def sklearn_baselines(
    cfg: Mapping,
    hidden: Sequence[int] = (100,),
    max_iter: int = 300,
    seed: int = 0,
    hgb: bool = True,
) -> dict[str, Any]:
    """Every baseline on one load of data config `cfg`: the MLP's fields at the top, beside
    ``data``, ``task``, ``gradient_boosting`` (unless `hgb` is false) and ``constant``."""
    bundle = load_data(cfg)
    result: dict[str, Any] = {"data": bundle.name, "task": bundle.task.kind}
    result.update(mlp_baseline(bundle, hidden, max_iter, seed))
    if hgb:
        result["gradient_boosting"] = hgb_baseline(bundle, seed)
    result["constant"] = constant_baseline(bundle)
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``data=<name>`` picks conf/data/<name>.yaml; ``data.key=value`` overrides it; ``hidden``,
    ``max_iter``, ``seed`` and ``hgb`` go to `sklearn_baselines`. Prints and returns the result."""
    import logging

    import yaml
    from omegaconf import OmegaConf

    from supernet.errors import UsageError

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    name = next((a.split("=", 1)[1] for a in args if a.startswith("data=")), "tabular_demo")
    file = CONF_DATA / f"{name}.yaml"
    if not file.exists():
        raise UsageError(f"data={name}: no {file}")
    cfg = OmegaConf.load(file)
    cfg.merge_with_dotlist([a[len("data.") :] for a in args if a.startswith("data.")])
    other = OmegaConf.from_dotlist([a for a in args if not a.startswith("data")])
    result = sklearn_baselines(cfg, **OmegaConf.to_container(other))
    print(yaml.safe_dump(result, sort_keys=False).strip())
    return result


if __name__ == "__main__":
    from supernet.errors import UsageError

    try:
        main()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line and exit code 2, as the CLI does
        sys.exit(2)
