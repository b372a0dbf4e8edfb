"""One ``fit``: the checked inputs as a `DataBundle`, the pipeline's phases, the fitted attributes.

The phases are the ``supernet`` command's (`supernet.commands.pipeline.run_pipeline`): the
supernet trains (`supernet.train.fit.train_supernet`), the search scores candidates on its
inherited weights (`supernet.commands.search.run` -> `supernet.search.runner.run_search`), the
winner is exported (`supernet.io.export.export_subnet`) and retrained
(`supernet.train.retrain.retrain_subnet`); the fit reads the retrained export back
(`supernet.io.subnet.load_subnet`) as ``model_``. The data skips the loaders: `bundle_from_raw`
makes load_data's split (or takes ``eval_set``), task and normalisation from fit's rows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from supernet.sklearn.config import fit_budget, fit_config, in_param_terms
from supernet.sklearn.inputs import FitData, fit_inputs
from supernet.sklearn.phases import PhaseClock, global_state_kept, quiet, run_dir, torch_threads

SOURCE = "fit(X)"
REFERENCE_ROWS = 256  # training rows kept to check the export's raw-rows ONNX graph against predict_proba


@contextlib.contextmanager
def param_terms() -> Iterator[None]:
    """A UsageError (a ValueError) from the library, its config keys named as the parameters."""
    from supernet.errors import UsageError

    try:
        yield
    except UsageError as exc:
        raise UsageError(in_param_terms(str(exc))) from exc


@dataclass
class Outcome:
    """What a fit leaves: the retrained model, the run's result, the search's records."""

    model: Any
    result: dict[str, Any]
    search: dict[str, Any]
    history: Any
    run_dir: Path | None
    epochs: list[dict]


def fit_estimator(est: Any, x: Any, y: Any, eval_set: Any, sample_weight: Any = None) -> None:
    """Fit `est` (a `SupernetClassifier` or `SupernetRegressor`) on X, y; sets its attributes."""
    started = time.perf_counter()
    regression = est._task == "regression"
    est._validate_params()  # scikit-learn's: _parameter_constraints, one InvalidParameterError
    with param_terms():
        overrides = est.overrides.items() if isinstance(est.overrides, dict) else est.overrides or []
        rerank = "search__finetune__top" in est.get_params() or any(
            str(o).lstrip("+").startswith("search.finetune.top") for o in overrides
        )
        clock = PhaseClock(est.time_limit_s, started, int(est.verbose), rerank)
        data = fit_inputs(est, x, y, eval_set, regression, sample_weight)
        cfg = fit_config(est.get_params(), est._task)
        with quiet(int(est.verbose)), global_state_kept(), torch_threads(est.n_jobs), clock.watching():
            bundle = fit_bundle(data, cfg)
            cfg = resolved_recipe(cfg, bundle)  # logs what each auto became, the encoding's too, in one line
            bundle = replace(bundle, autos=())  # said: the pipeline's step has none left to say
            settings = check_search(cfg, bundle)
            if est.verbose:
                print(f"[supernet] {bundle.summary()}")
            outcome = run_phases(cfg, bundle, est.output_dir, clock, settings)
    _store(est, data, outcome)


# ---------------------------------------------------------------------------- data
def fit_bundle(data: FitData, cfg: Any) -> Any:
    """The pipeline's data from fit's rows: `RawData` (DataFrames through the table encoder),
    then load_data's split (or ``eval_set``), task and normalisation (`bundle_from_raw`). What
    the encoding's ``auto`` became is not logged here: the bundle carries it to the fit's line
    (`resolved_recipe`)."""
    import torch

    from supernet.data.datasets import RawData, bundle_from_raw
    from supernet.data.table_recipe import reported_later

    y = torch.from_numpy(np.ascontiguousarray(data.y))
    val_y = None if data.val is None else torch.from_numpy(np.ascontiguousarray(data.val[1]))
    class_names = [] if data.classes is None else [str(c) for c in data.classes]
    with reported_later():
        xs, preprocess, autos = _encoded(data, cfg, y, class_names)
    targets = data.targets or []
    raw = RawData(xs[0], y, None, None, [xs[0].shape[1]], class_names, preprocess, "feature", targets, autos)
    bundle = bundle_from_raw(raw, cfg.data, None if data.val is None else (xs[1], val_y))
    _resample(bundle, data, cfg, y)
    return bundle


def _check_split(n: int, keep: Any, held: Any, cfg: Any) -> None:
    """Both sides of the validation split hold rows (checked before the encoder fits on them)."""
    if len(keep) == 0 or len(held) == 0:
        raise ValueError(
            f"n_samples={n} is too few to hold out a validation split (data.val_size={cfg.data.val_size}): "
            "pass more samples or eval_set=(X_val, y_val)"
        )


def _resample(bundle: Any, data: FitData, cfg: Any, y: Any) -> None:
    """``sample_weight`` as a weighted draw of the training split's rows: as many rows as it has,
    with replacement, each row's chance in proportion to its weight (seeded by ``seed``), so each
    row counts in the loss as often as its weight says on average. The validation split the search
    ranks on, the normalisation and the class weights stay those of the rows as given."""
    if data.weight is None:
        return
    import torch

    from supernet.data.datasets import holdout_indices

    if data.val is None:
        keep, _ = holdout_indices(y, float(cfg.data.val_size), int(cfg.data.split_seed))
        weight = data.weight[keep.numpy()]
    else:
        weight = data.weight
    rng = np.random.default_rng(int(cfg.seed))  # a local generator: the caller's global state stays
    rows = torch.from_numpy(rng.choice(len(weight), size=len(weight), p=weight / weight.sum()))
    bundle.train_x, bundle.train_y = bundle.train_x[rows], bundle.train_y[rows]


def _encoded(data: FitData, cfg: Any, y: Any, class_names: list[str]) -> tuple[list[Any], dict[str, Any], tuple]:
    """X's rows encoded as ``data=csv`` encodes a table (its scaler and periodic features
    included), fitted on the rows the net trains on: without eval_set the ones load_data's
    validation split leaves, else all of X. An array is a table of numeric columns x0, x1, ...
    (`array_frame`); its spec says so (``array_width``), so that the export takes arrays."""
    from supernet.data.datasets import holdout_indices
    from supernet.data.tables import TableColumns, array_frame, encode_features

    width = None if data.columns is not None else data.x.shape[1]
    x = data.x if width is None else array_frame(data.x)
    targets = list(data.targets or ["y"])
    columns = TableColumns([str(c) for c in x.columns], [], targets, class_names)
    frames = [(x, SOURCE)]
    if data.val is None:
        keep, held = holdout_indices(y, float(cfg.data.val_size), int(cfg.data.split_seed))
        _check_split(len(y), keep, held, cfg)
        fit_rows = x.iloc[keep.numpy()]
    else:
        fit_rows = x
        frames.append((data.val[0] if width is None else array_frame(data.val[0]), "eval_set"))
    prep, encoded, autos = encode_features(fit_rows, frames, cfg.data, columns, SOURCE)
    spec = prep.spec()
    if width is not None:
        spec["array_width"] = width
    return encoded, spec, autos


def resolved_recipe(cfg: Any, bundle: Any) -> Any:
    """The table recipe's ``auto`` keys resolved on the fit's rows by the pipeline's own step
    (`supernet.commands.pipeline.resolved_for_data`, what ``supernet data=csv`` runs), then the
    budget capped at the space (`fit_budget`): a search of 500 over a smaller space scores it all."""
    from supernet.commands.pipeline import resolved_for_data

    cfg = resolved_for_data(cfg, bundle)
    fit_budget(cfg, None)
    return cfg


def check_search(cfg: Any, bundle: Any) -> Any:
    """The run's settings (`RunSettings`, built once), the search's against the real space (its
    smallest arch's size depends on the features and classes): an impossible budget fails here,
    before the supernet trains."""
    from supernet.commands.pipeline import check_pipeline_config

    return check_pipeline_config(cfg, sizes=(bundle.in_features, bundle.num_classes))


# ---------------------------------------------------------------------------- the phases
def run_phases(cfg: Any, bundle: Any, output_dir: Any, clock: PhaseClock, settings: Any = None) -> Outcome:
    """`run_pipeline` in a run dir (temporary, or a new one under `output_dir`), locked and with
    its ``pipeline_request.json`` like the command's; the winner read back from its export."""
    import pandas as pd

    from supernet.commands.pipeline import run_pipeline, write_request
    from supernet.files import run_dir_lock
    from supernet.io.subnet import load_subnet
    from supernet.train.callbacks import EpochHistory, observed

    epochs: list[dict] = []
    with run_dir(output_dir) as (path, temporary):
        with run_dir_lock(path, "pipeline"), observed(lambda phase: EpochHistory(phase, epochs)):
            write_request(cfg, path)
            result, state = run_pipeline(cfg, path, bundle=bundle, hooks=clock.hooks(), settings=settings)
        model = load_subnet(result["paths"]["model"])  # the bagged ensemble where the recipe bags
        history = search_history(pd.read_csv(path / "search" / "history.csv", dtype={"arch": str}), clock)
        search = state.results["search"]
        if temporary:  # nothing may point into the folder about to be removed
            model.meta = _scrubbed(model.meta, str(path))
            result = _scrubbed(result, str(path))
    return Outcome(model, result, search, history, None if temporary else path, epochs)


def search_history(history: Any, clock: PhaseClock) -> Any:
    """``history.csv`` with each arch as a tuple of widths (as ``best_arch_`` and ``pareto_``
    hold it) and ``time_s``: its generation's wall time shared by the candidates it scored."""
    from supernet.core.space import parse_arch

    history["arch"] = [tuple(parse_arch(a)) for a in history["arch"]]
    seconds = clock.progress.seconds()
    counts = history["generation"].value_counts()
    history["time_s"] = [seconds.get(int(g), float("nan")) / counts[g] for g in history["generation"]]
    return history


def _scrubbed(doc: Any, prefix: str) -> Any:
    """`doc` with every string under `prefix` (a temporary run dir's paths) set to None."""
    if isinstance(doc, dict):
        return {k: _scrubbed(v, prefix) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_scrubbed(v, prefix) for v in doc]
    return None if isinstance(doc, str) and doc.startswith(prefix) else doc


def _store(est: Any, data: FitData, outcome: Outcome) -> None:
    """The fitted attributes (``n_features_in_`` and ``feature_names_in_`` are validate_data's)."""
    import pandas as pd

    from supernet.io.subnet import label_fields

    best = outcome.search["best"]
    est.model_ = outcome.model.cpu().eval()
    est.best_arch_ = tuple(int(w) for w in best["arch"])
    est.best_params_count_ = int(best["params"])
    est.best_flops_ = int(best["flops"])
    est.search_history_ = outcome.history
    est.history_ = pd.DataFrame(outcome.epochs)
    if len(outcome.search.get("objectives") or []) > 1:
        est.pareto_ = pd.DataFrame(outcome.search["pareto"])
        est.pareto_["arch"] = [tuple(int(w) for w in a) for a in est.pareto_["arch"]]
    elif hasattr(est, "pareto_"):
        del est.pareto_
    est.result_ = outcome.result
    est.run_dir_ = outcome.run_dir
    est._columns = data.columns
    rows = data.x.iloc[:REFERENCE_ROWS] if data.columns is not None else data.x[:REFERENCE_ROWS].astype(np.float32)
    est._reference_rows = rows  # as predict reads them: an array in float32
    if data.classes is not None:
        est.classes_ = data.classes
        est.model_.meta.update(label_fields(data.classes))  # an export predicts these, not strings
    else:
        est._y_2d = data.y_2d
