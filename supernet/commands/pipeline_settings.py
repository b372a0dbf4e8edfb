"""The pipeline's settings checked before any work, and its ``auto`` keys resolved once the data
is read.

`check_pipeline_config` checks everything a value alone decides (before the data is loaded) and
returns the run's typed settings (`RunSettings`, built once: the trainer and the retraining
recipe are checked there, not again per retraining); `resolved_settings` is the run's one
``auto`` step: it turns each ``auto`` of `RUN_AUTO` into its value for the counted training rows
and classes (`supernet.data.table_recipe.decide`), logs in one line what each ``auto`` of the run
became and why (the loader's ``data.task``, ``data.scaler``, ``data.periodic``, which the bundle
carries, then these), checks what needed the data (an ensemble's folds, the archs a search can
score, the search against the real space) and returns the config and the settings resolved;
`resolved_for_data` is its config alone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.commands.pipeline_record import REQUEST_FILE, finished
from supernet.commands.run_settings import ExportSettings, RunSettings
from supernet.config import SpaceSettings, TrainingSettings, check_trainer_config, frozen
from supernet.data.datasets import DataBundle
from supernet.data.table_recipe import AUTO, RECIPE_KEYS, RECIPES, Auto, auto_line, decide
from supernet.errors import UsageError
from supernet.files import to_plain
from supernet.io.checkpoint import resolve_checkpoint
from supernet.search import validate_search_config
from supernet.train.ensemble import check_ensemble_config
from supernet.train.recipe_settings import EnsembleSettings, RetrainSettings, recipe_keys
from supernet.train.retrain import AUTO_KEYS, resolved_recipe

log = logging.getLogger("supernet.commands.pipeline")

# Keys the tables' data configs may leave at auto, resolved once the training rows and classes are counted
# (the data's own, data.task, data.scaler, data.periodic, where the table is read, and the bundle
# carries them: `DataBundle.autos`).
DATA_AUTO = {
    key: RECIPE_KEYS[key] for key in ("search.budget", "retrain.init", "retrain.ensemble", "retrain.ensemble_from")
}
RUN_AUTO = (*DATA_AUTO, *(f"retrain.{key}" for key in AUTO_KEYS))  # and the retraining recipe's


def recipe_of(cfg: DictConfig) -> dict[str, Any]:
    """The retraining recipe out of ``retrain.*``: the optimiser and the keys of the shared recipe
    block (conf/blocks/retrain.yaml), not the pipeline's own (init, max_epochs, ensemble...)."""
    return recipe_keys(cfg.retrain)


def check_pipeline_config(cfg: DictConfig, sizes: tuple[int, int] | None = None) -> RunSettings:
    """Everything that can be checked before the first phase starts; the run's settings, built once.
    `sizes`: the data's input and class counts where it is already in memory (the estimators'), so
    the search is checked against the real space, not the placeholder one."""
    training = None
    if cfg.ckpt_path is None:
        training = TrainingSettings.build(cfg)
    elif not cfg.get("resume"):  # a resume keeps the run's own ckpt_path, accepted when it started
        check_finished_training(cfg.ckpt_path)
    space = SpaceSettings.build(cfg.space, cfg.data)
    search = validate_search_config(_early_search(cfg), space.space(*(sizes or ())))
    retrain = RetrainSettings.build(cfg.retrain)  # the recipe checked: once a run
    check_ensemble_budget(cfg, space.space().size())
    if training is None:  # checked with the training's sections otherwise: once a run either way
        check_trainer_config(cfg.trainer)
    return RunSettings(
        seed=int(cfg.seed),
        ckpt_path=None if cfg.ckpt_path is None else str(cfg.ckpt_path),
        space=space,
        training=training,
        trainer=training.trainer if training is not None else frozen(cfg.trainer),
        search=search,
        retrain=retrain,
        export=ExportSettings.build(cfg.get("export") or {}),
        tensorboard=cfg.logger.name == "tensorboard",
    )


def check_ensemble_budget(cfg: DictConfig, space_size: int) -> None:
    """``retrain.ensemble=K`` from the search's top K: refused before training when the search
    cannot score K distinct archs (its budget, the space's size); the feasible count waits for the
    search, and a resume accepts a lower K then (`ENSEMBLE_KEYS`)."""
    k, budget = cfg.retrain.ensemble, cfg.search.budget
    if cfg.retrain.ensemble_from != "top" or not isinstance(k, int) or k <= 1:
        return
    by_budget = isinstance(budget, int) and budget <= space_size
    most = budget if by_budget else space_size
    if k > most:
        scored = f"search.budget={budget} scores" if by_budget else "the space has"
        raise UsageError(
            f"retrain.ensemble={k} with retrain.ensemble_from=top but {scored} at most {most} distinct archs; "
            "lower retrain.ensemble, use retrain.ensemble_from=seeds, or raise search.budget"
        )


def check_ensemble_data(cfg: DictConfig, bundle: DataBundle) -> None:
    """``retrain.ensemble_from=folds``: the K folds must fit the training rows (checked once the
    data is read, before training)."""
    if cfg.retrain.ensemble_from == "folds" and ensemble_size(cfg) > 1:
        from supernet.train.folds import make_folds

        make_folds(bundle, ensemble_size(cfg), int(cfg.seed))


def check_finished_training(ckpt_path: Any) -> None:
    """``ckpt_path=`` hands the search a supernet: one whose training ended (its run dir's
    result.json says ok), not a killed run's first epochs."""
    ckpt = resolve_checkpoint(str(ckpt_path))
    run_dir = ckpt.parent.parent
    if ckpt.parent.name != "checkpoints" or finished(run_dir) is not None:
        return
    pipeline_dir = run_dir.parent if (run_dir.parent / REQUEST_FILE).is_file() else None
    fix = f"supernet resume={pipeline_dir}" if pipeline_dir else f"supernet-train ckpt_path={run_dir}"
    raise UsageError(
        f"ckpt_path={ckpt_path} is an unfinished training run ({run_dir} has no result.json): "
        f"finish it with {fix}, or pass a finished one"
    )


def _early_search(cfg: DictConfig) -> dict[str, Any]:
    """The search block as checked before the data is read: an ``auto`` budget, which waits for
    the number of training rows, is checked as the smallest value it can become."""
    search = to_plain(cfg.search)
    if search.get("budget") == AUTO:
        search["budget"] = min(r["search_budget"] for r in RECIPES)
    return search


def data_autos(cfg: DictConfig, bundle: DataBundle) -> tuple[dict[str, Any], tuple[Auto, ...]]:
    """What each ``auto`` of `RUN_AUTO` stands for on `bundle`'s training rows and classes
    (`supernet.data.table_recipe.decide`), and every ``auto`` of the run, in order: the loader's
    (``bundle.autos``), then these."""
    rows, regression = len(bundle.train_x), bundle.task.is_regression
    classes = None if regression else bundle.num_classes
    chosen, autos = {}, list(bundle.autos)
    for key in RUN_AUTO:
        value, auto = decide(key, OmegaConf.select(cfg, key), rows, regression, classes)
        if auto is not None:
            chosen[key] = value
            autos.append(auto)
    return chosen, tuple(autos)


def resolved_for_data(cfg: DictConfig, bundle: DataBundle) -> DictConfig:
    """`cfg` with each ``auto`` of `RUN_AUTO` (``search.budget``, ``retrain.init``,
    ``retrain.ensemble``, ``retrain.ensemble_from``, ``retrain.dropout``,
    ``retrain.label_smoothing``) replaced by what it stands for on `bundle`'s training rows and
    classes, logged in one line with the loader's (`data_autos`); checked again once resolved."""
    return _resolved(cfg, bundle)[0]


def _resolved(cfg: DictConfig, bundle: DataBundle) -> tuple[DictConfig, dict[str, Any], tuple[Auto, ...], str | None]:
    """`cfg` resolved and checked, the values chosen, every ``auto`` of the run and the one line
    that says what each became (logged here; None: no auto)."""
    chosen, autos = data_autos(cfg, bundle)
    line = auto_line(autos)
    if line is not None:
        log.info("%s", line)
    return _resolved_config(cfg, chosen, bundle), chosen, autos, line


def _resolved_config(cfg: DictConfig, chosen: dict[str, Any], bundle: DataBundle) -> DictConfig:
    """`cfg` with the `chosen` values, checked again where they change what the data must hold."""
    if not chosen:
        check_ensemble_data(cfg, bundle)
        return cfg
    cfg = OmegaConf.create(to_plain(cfg))
    for key, value in chosen.items():
        OmegaConf.update(cfg, key, value)
    check_ensemble_config(cfg.retrain.ensemble, cfg.retrain.ensemble_from)
    space = SpaceSettings.build(cfg.space, cfg.data).space(bundle.in_features, bundle.num_classes)
    check_ensemble_budget(cfg, space.size())
    check_ensemble_data(cfg, bundle)
    return cfg


def resolved_settings(cfg: DictConfig, settings: RunSettings, bundle: DataBundle) -> tuple[DictConfig, RunSettings]:
    """The one ``auto`` step of a run, once the data is read: `cfg` resolved (`resolved_for_data`)
    and `settings` with the same values (the retraining recipe's ``auto`` too: retraining reads
    it from here), ``settings.autos`` what each ``auto`` of the run became and why and
    ``settings.resolved`` the one line logged; the search checked against the real space (the
    smallest arch's size depends on the features and classes)."""
    cfg, chosen, autos, line = _resolved(cfg, bundle)
    r = cfg.retrain
    recipe = {**settings.retrain.recipe, **{key: r[key] for key in AUTO_KEYS if f"retrain.{key}" in chosen}}
    retrain = replace(
        settings.retrain,
        recipe=MappingProxyType(resolved_recipe(recipe, bundle)),  # no auto left: a regression's smoothing off
        init=str(r.init),
        ensemble=EnsembleSettings(1 if r.get("ensemble") is None else int(r.ensemble), str(r.ensemble_from)),
    )
    space = settings.space.space(bundle.in_features, bundle.num_classes)
    if "search.budget" in chosen:  # checked before the data as its smallest value: checked as it is now
        search = validate_search_config(to_plain(cfg.search), space)
    else:
        search = settings.search.for_space(space)
    return cfg, replace(settings, search=search, retrain=retrain, autos=autos, resolved=line)


def ensemble_size(cfg: DictConfig) -> int:
    """``retrain.ensemble`` (a run saved before ensembles existed has none: the winner alone)."""
    k = cfg.retrain.get("ensemble")
    return 1 if k is None else int(k)
