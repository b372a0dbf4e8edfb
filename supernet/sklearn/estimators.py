"""`SupernetClassifier` and `SupernetRegressor`: the ``supernet`` pipeline behind ``fit(X, y)``.

Importing this module imports scikit-learn and NumPy only; torch and Lightning load on the first
``fit`` (or on unpickling a fitted estimator).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from supernet.sklearn.config import PARAMETER_CONSTRAINTS

_COMMON_DOC = """
    Every parameter left at None takes its value from ``conf/pipeline.yaml`` (the command's
    defaults, shown in brackets), so ``SupernetClassifier()`` runs what ``supernet`` runs.

    Parameters
    ----------
    max_params, max_flops : int or None
        The search's budget (``search.constraints.*``): the winner has at most this many
        parameters / FLOPs per sample. [none]
    objectives : list of str or None
        ``["val_acc"]`` (the search metric) [default], or with ``"params"``, ``"flops"``,
        ``"latency_ms"``: a Pareto search (``pareto_``).
    metric : str or None
        What the search ranks by (``search.metric``): accuracy, balanced_accuracy, log_loss,
        roc_auc, f1; rmse, mae, r2. [accuracy / rmse]
    strategy : {"evolution", "random", "bayes", "rl"} or None
        The search strategy. [evolution]
    budget : int or None
        Candidates scored (``search.budget``), capped at the number of archs in the space; a
        first batch larger than it (evolution's population, bayes' startup trials) shrinks.
        [auto: the table recipe's, 50 for a table under 1,000 training rows, else 500;
        supernet/data/table_recipe.py]
    supernet_epochs, retrain_epochs : int or None
        Epochs of the supernet's training and of the winner's retraining. [10, 10, raised on a
        small table to at least 500 and 300 optimizer steps: ``train.min_steps``,
        ``retrain.min_steps``]
    retrain_init : {"inherited", "scratch"} or None
        Fine-tune the winner's inherited weights, or retrain it from scratch. [auto: inherited]
    space : "auto" or dict
        ``{"depth": (min, max), "width": (min, max, step)}`` (any part); "auto": depth 1-3,
        widths 8-256 in steps of 8 (``conf/data/sklearn.yaml``).
    batch_size : int or None
        Training batch size. [128]
    time_limit_s : float or None
        A wall-clock cap over the whole fit, imports included, split across the phases (train
        50%, search 20%, retrain 30% of the time left; `supernet.sklearn.phases`); the re-ranking
        fine-tune is off under a limit. Epochs and budget stay upper bounds. A fit overruns by
        what a cap cannot interrupt (a step or a generation, the export): about a second,
        measured in docs/experiments/sklearn.md.
    random_state : int, RandomState or None
        Seeds everything (``seed`` and the validation split's ``data.split_seed``); None: the
        configs' seed 0, so repeated fits agree.
    device : {"auto", "cpu", "cuda"} or None
        Where the supernet trains and the search scores. ``predict`` always runs on the CPU. [auto]
    n_jobs : int or None
        torch's CPU threads during ``fit`` and ``predict`` (joblib's convention: None is 1, -1
        every core); the caller's thread count is put back afterwards. [1]
    class_weight : "balanced", dict or None
        A classifier's loss weight per class (``data.class_weight``): "balanced" (inverse class
        frequency of the training split) or ``{label: weight}``. The regressor refuses it. [none]
    verbose : int
        0: nothing; 1: one line per phase (its time and result) and one progress line for the
        search, rewritten in place; 2: also Lightning's progress bars and lines and the search's
        log. [0]
    output_dir : str, Path or None
        None: the run happens in a temporary folder, removed after fit (no TensorBoard, ONNX or
        figures are written). A folder: each fit writes a new ``<output_dir>/<stamp>/`` with the
        ``supernet`` command's layout (train/, search/, subnet/, retrain/, result.json,
        summary.md), ``run_dir_``.
    overrides : list of str, dict or None
        Hydra overrides of ``conf/pipeline.yaml`` applied last, as on the command line and checked
        as it checks them, e.g. ``["sampler=uniform", "search.finetune.top=0"]`` or
        ``{"sampler": "uniform"}``.
    **routed
        Any key of ``conf/pipeline.yaml`` with ``__`` for its dots, as skorch routes its
        settings: ``search__population=64``, ``retrain__dropout=0.2``, ``optim__lr=1e-3``,
        ``optim__weight_decay=0``. Each is a parameter (``get_params``, ``set_params``,
        ``GridSearchCV``); a mistyped name is refused at fit with the closest one.

    Attributes
    ----------
    model_ : torch.nn.Module
        The retrained winner (`supernet.io.subnet.Subnet`, on the CPU): raw features in
        (``model_.preprocess(df)`` encodes a DataFrame's rows), logits or target values out.
    best_arch_, best_params_count_, best_flops_ : tuple of int, int, int
        The winner's hidden widths, parameters and FLOPs per sample.
    search_history_ : pandas.DataFrame
        Every candidate the search scored (``search/history.csv``; ``arch`` a tuple of widths, as
        in ``best_arch_`` and ``pareto_``), with ``time_s``: the seconds of its generation shared
        by the candidates it scored.
    pareto_ : pandas.DataFrame
        The non-dominated candidates, when ``objectives`` names more than one.
    history_ : pandas.DataFrame
        One row per epoch of the supernet's training (``phase="train"``) and of the retraining
        (``"retrain"``): ``loss`` (the epoch's mean training loss), the validation figures
        (``acc_max``, ``acc``, ``rmse``...) and ``wall_s`` since that phase's start.
    result_ : dict
        The run's ``result.json`` (figures and wall time of each phase).
    run_dir_ : Path or None
        The run dir under ``output_dir`` (None without one).
    n_features_in_, feature_names_in_ :
        As in scikit-learn.
"""


class _SupernetEstimator(BaseEstimator):
    """What both estimators share (their docstrings list the parameters)."""

    _task = "classification"
    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(  # noqa: PLR0913 (scikit-learn estimators take their settings as parameters)
        self,
        *,
        max_params=None,
        max_flops=None,
        objectives=None,
        metric=None,
        strategy=None,
        budget=None,
        supernet_epochs=None,
        retrain_epochs=None,
        retrain_init=None,
        space="auto",
        batch_size=None,
        time_limit_s=None,
        random_state=None,
        device=None,
        n_jobs=None,
        class_weight=None,
        verbose=0,
        output_dir=None,
        overrides=None,
        **routed,
    ):
        self.max_params = max_params
        self.max_flops = max_flops
        self.objectives = objectives
        self.metric = metric
        self.strategy = strategy
        self.budget = budget
        self.supernet_epochs = supernet_epochs
        self.retrain_epochs = retrain_epochs
        self.retrain_init = retrain_init
        self.space = space
        self.batch_size = batch_size
        self.time_limit_s = time_limit_s
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs
        self.class_weight = class_weight
        self.verbose = verbose
        self.output_dir = output_dir
        self.overrides = overrides
        self._routed = tuple(routed)  # search__population=64 ...: checked at fit (with a typo's closest name)
        for name, value in routed.items():
            setattr(self, name, value)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The parameters of ``__init__`` and the routed ones set (``search__population``...)."""
        params = super().get_params(deep=deep)
        return params | {name: getattr(self, name) for name in getattr(self, "_routed", ())}

    def set_params(self, **params):
        """As scikit-learn's, with routed parameters (``optim__lr=1e-3``) set as they are given:
        like every parameter, checked at fit (a mistyped name there, with the closest one)."""
        own = set(self._parameter_constraints)
        routed = {k: v for k, v in params.items() if k not in own}
        self._routed = tuple(dict.fromkeys([*getattr(self, "_routed", ()), *routed]))
        for name, value in routed.items():
            setattr(self, name, value)
        return super().set_params(**{k: v for k, v in params.items() if k in own})

    def fit(self, X, y, eval_set=None, sample_weight=None):
        """Train the supernet, search it, retrain the winner; ``eval_set=(X_val, y_val)`` is the
        validation split the search ranks on (default: a seeded stratified 20% of X), given as
        the estimator's X (inside a `Pipeline`, the pipeline's steps do not transform it).
        ``sample_weight``: one weight >= 0 per row; rows of weight 0 are left out, and the
        training rows are drawn in proportion to the others (seeded; the search's validation
        split is unweighted)."""
        from supernet.sklearn.fitting import fit_estimator

        fit_estimator(self, X, y, eval_set, sample_weight)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _outputs(self, X) -> np.ndarray:
        """The model's outputs for X, float64: logits, or values in the targets' units."""
        check_is_fitted(self)
        import torch

        from supernet.sklearn.inputs import predict_features
        from supernet.sklearn.phases import torch_threads

        features = predict_features(self, X, self._columns)
        encoded = self._columns is not None or self.model_.meta.get("preprocess", {}).get("array_width")
        # not encoded: an array fit pickled by an earlier version (no encoder for arrays then)
        raw = self.model_.preprocess(features) if encoded else torch.from_numpy(features)
        # In float64: a float32 matmul's rounding depends on where a row sits in the batch, and
        # scikit-learn's checks ask that a row's outputs do not (check_methods_sample_order_invariance).
        model = copy.deepcopy(self.model_).double()
        with torch.no_grad(), torch_threads(getattr(self, "n_jobs", None)):
            return model(raw.cpu().double()).numpy()

    def export(self, path: str | Path, overwrite: bool = False, onnx: bool = True) -> dict[str, Any]:
        """Write ``model_`` as an export (``arch.yaml`` + ``model.safetensors`` + ``model.onnx``,
        verified, as ``supernet-export`` writes; `supernet.load_subnet` reads it without
        unpickling anything). ``model.onnx`` takes raw rows, the encoding in the graph: one input
        per DataFrame column, or an array fit's ``input`` (`supernet.io.onnx_rows`), checked
        with onnxruntime against the model on the first 256 training rows. Returns the export's
        summary (path, files...)."""
        check_is_fitted(self)
        import torch

        from supernet.io.export import write_export

        model = self.model_
        meta = {k: v for k, v in model.meta.items() if k not in ("weights", "verification", "onnx")}
        x = torch.randn(256, model.in_features, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            reference = model.mlp(x)
        return write_export(model, meta, path, (x, reference), overwrite, onnx, self._rows_onnx_writer())

    def _rows_onnx_writer(self) -> Any:
        """The raw-rows ONNX graph (`supernet.io.onnx_rows`), checked on the first training rows,
        where the fit kept them (None: an estimator pickled by an earlier version)."""
        rows = getattr(self, "_reference_rows", None)
        if rows is None or (self.model_.meta.get("preprocess") or {}).get("kind") != "table":
            return None
        from supernet.io.onnx_rows import rows_onnx

        return lambda written, file: rows_onnx(written, rows, written.preprocess(rows), file)

    # Pickling: the model as its ``arch.yaml`` meta and its tensors (state_dict), no file handles,
    # no paths into a run dir; everything else is plain data (NumPy arrays, a DataFrame).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may return __dict__ itself
        model = state.pop("model_", None)
        if model is not None:
            weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            state["_model_state"] = {"meta": copy.deepcopy(model.meta), "state_dict": weights}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        saved = state.pop("_model_state", None)
        super().__setstate__(state)
        if saved is not None:
            from supernet.io.ensemble import EnsembleSubnet, member_meta
            from supernet.io.subnet import ENSEMBLE_KIND, Subnet

            meta = saved["meta"]
            if meta.get("kind") == ENSEMBLE_KIND:  # the bagged members of a small table
                members = [Subnet.from_meta(member_meta(meta, i)) for i in range(len(meta["members"]))]
                model = EnsembleSubnet(members, meta)
            else:
                model = Subnet.from_meta(meta)
            model.load_state_dict(saved["state_dict"])
            self.model_ = model.eval()


class SupernetClassifier(ClassifierMixin, _SupernetEstimator):
    """One-shot architecture search of an MLP classifier: the ``supernet`` pipeline (train the
    supernet, search its subnets on inherited weights, retrain the winner) behind ``fit``.

        >>> clf = SupernetClassifier(max_params=20_000).fit(X, y)      # doctest: +SKIP
        >>> clf.predict(X[:5]), clf.best_arch_                           # doctest: +SKIP
    """

    __doc__ += (
        _COMMON_DOC
        + """
    classes_ : ndarray
        The labels, sorted (``predict`` returns them).
    """
    )
    _task = "classification"

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_samples, n_classes)``, in the order of ``classes_``."""
        logits = self._outputs(X)
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """The log of `predict_proba`, computed from the logits (no log of 0)."""
        logits = self._outputs(X)
        shifted = logits - logits.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def predict(self, X) -> np.ndarray:
        """The most probable label of each row."""
        proba = self.predict_proba(X)  # first: it checks that the estimator is fitted
        return self.classes_[np.argmax(proba, axis=1)]


class SupernetRegressor(RegressorMixin, _SupernetEstimator):
    """One-shot architecture search of an MLP regressor: the ``supernet`` pipeline (train the
    supernet, search its subnets on inherited weights, retrain the winner) behind ``fit``. y may
    have several columns (a multi-output regression); targets are standardised for training and
    predictions come back in their units.

        >>> reg = SupernetRegressor(max_params=5_000).fit(X, y)        # doctest: +SKIP
    """

    __doc__ += _COMMON_DOC
    _task = "regression"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X) -> np.ndarray:
        """Predicted targets: ``(n_samples,)``, or ``(n_samples, n_targets)`` when y was 2-D."""
        outputs = self._outputs(X)
        return outputs if self._y_2d else outputs[:, 0]
