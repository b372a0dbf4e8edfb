"""The pipeline's settings checked before any work, and its ``auto`` keys resolved once the data
is read.

`check_pipeline_config` checks everything a value alone decides (before the data is loaded) and
returns the run's typed settings (`RunSettings`, built once); `resolved_settings` turns each
``auto`` of `DATA_AUTO` into its value for the counted training rows and classes
(`supernet.data.table_recipe`), logs what each became in one line, checks what needed the data
(an ensemble's folds, the archs a search can score, the search against the real space) and
returns the config and the settings resolved; `resolved_for_data` is its config alone.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.commands.pipeline_record import REQUEST_FILE, finished
from supernet.commands.run_settings import ExportSettings, RunSettings
from supernet.config import SpaceSettings, TrainingSettings
from supernet.data.datasets import DataBundle
from supernet.data.table_recipe import AUTO, RECIPES, resolve
from supernet.errors import UsageError
from supernet.files import to_plain
from supernet.io.checkpoint import resolve_checkpoint
from supernet.search import validate_search_config
from supernet.train.ensemble import check_ensemble_config
from supernet.train.recipe_settings import EnsembleSettings, RetrainSettings, recipe_keys

log = logging.getLogger("supernet.commands.pipeline")

# Keys the tables' data configs may leave at auto, resolved once the training rows and classes are counted
# (the others, the retraining recipe's and the data's, are resolved where they are read).
DATA_AUTO = {
    "search.budget": "search_budget",
    "retrain.init": "retrain_init",
    "retrain.ensemble": "ensemble",
    "retrain.ensemble_from": "ensemble_from",
}


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
    retrain = RetrainSettings.build(cfg.retrain)
    check_ensemble_budget(cfg, space.space().size())
    return RunSettings(
        seed=int(cfg.seed),
        ckpt_path=None if cfg.ckpt_path is None else str(cfg.ckpt_path),
        space=space,
        training=training,
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


def data_autos(cfg: DictConfig, bundle: DataBundle) -> tuple[dict[str, Any], str | None]:
    """What each ``auto`` of `DATA_AUTO` stands for on `bundle`'s training rows and classes
    (`supernet.data.table_recipe`), and the line that says so (None: no auto)."""
    rows, regression = len(bundle.train_x), bundle.task.is_regression
    chosen = {
        key: resolve(name, AUTO, rows, regression, bundle.num_classes)
        for key, name in DATA_AUTO.items()
        if OmegaConf.select(cfg, key) == AUTO
    }
    if not chosen:
        return chosen, None
    counted = f"{rows} training rows" + ("" if regression else f", {bundle.num_classes} classes")
    return chosen, f"{', '.join(f'{k}=auto -> {v}' for k, v in chosen.items())} ({counted})"


def resolved_for_data(cfg: DictConfig, bundle: DataBundle) -> DictConfig:
    """`cfg` with each ``auto`` of `DATA_AUTO` (``search.budget``, ``retrain.init``,
    ``retrain.ensemble``, ``retrain.ensemble_from``) replaced by what it stands for on `bundle`'s
    training rows and classes (`supernet.data.table_recipe`), logged in one line; checked again
    once resolved."""
    chosen, line = data_autos(cfg, bundle)
    if not chosen:
        check_ensemble_data(cfg, bundle)
        return cfg
    cfg = OmegaConf.create(to_plain(cfg))
    for key, value in chosen.items():
        OmegaConf.update(cfg, key, value)
    log.info("%s", line)
    check_ensemble_config(cfg.retrain.ensemble, cfg.retrain.ensemble_from)
    space = SpaceSettings.build(cfg.space, cfg.data).space(bundle.in_features, bundle.num_classes)
    check_ensemble_budget(cfg, space.size())
    check_ensemble_data(cfg, bundle)
    return cfg


def resolved_settings(cfg: DictConfig, settings: RunSettings, bundle: DataBundle) -> tuple[DictConfig, RunSettings]:
    """The one ``auto`` step of a run, once the data is read: `cfg` resolved (`resolved_for_data`)
    and `settings` with the same values (``settings.resolved``: the line logged), the search
    checked against the real space (the smallest arch's size depends on the features and classes)."""
    chosen, line = data_autos(cfg, bundle)
    cfg = resolved_for_data(cfg, bundle)
    r = cfg.retrain
    retrain = replace(
        settings.retrain,
        init=str(r.init),
        ensemble=EnsembleSettings(1 if r.get("ensemble") is None else int(r.ensemble), str(r.ensemble_from)),
    )
    space = settings.space.space(bundle.in_features, bundle.num_classes)
    if "search.budget" in chosen:  # checked before the data as its smallest value: checked as it is now
        search = validate_search_config(to_plain(cfg.search), space)
    else:
        search = settings.search.for_space(space)
    return cfg, replace(settings, search=search, retrain=retrain, resolved=line)


def ensemble_size(cfg: DictConfig) -> int:
    """``retrain.ensemble`` (a run saved before ensembles existed has none: the winner alone)."""
    k = cfg.retrain.get("ensemble")
    return 1 if k is None else int(k)
