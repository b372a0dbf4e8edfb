"""Retraining an exported subnet: fine-tune its inherited weights, or train it from scratch.

`retrain_subnet(RetrainRequest(...))` is the whole phase that ``supernet-retrain`` and the pipeline
call: load the export, train it (`supernet.train.subnet_module.SubnetModule`), report validation and
**test** accuracy (the only place the test split is read), and write the retrained model as a new
export. Recipes compared: docs/experiments/retrain.md.

    supernet-retrain subnet=subnets/best init=inherited trainer.max_epochs=20
    supernet-retrain subnet=subnets/best init=scratch
    supernet-retrain subnet=subnets/best compare=true     # inherited-only vs fine-tuned vs scratch

Outputs in the run dir: ``subnet/`` (arch.yaml + model.safetensors + model.onnx), ``metrics.json``,
``result.json``, TensorBoard curves (``train/loss``, ``val/acc``, ``test/acc``). With
``compare=true`` each trained variant has its own sub-dir (``finetuned/``, ``scratch/``) and
``compare.md`` holds the table.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger

from supernet.config import check_min_steps, check_trainer_config, trainer_kwargs
from supernet.core.optim import check_optim_config
from supernet.core.task import Task
from supernet.data.datasets import DataBundle, load_data, per_feature
from supernet.data.table_recipe import AUTO, RECIPE_AUTO_KEYS, auto_line, recipe_autos
from supernet.errors import UsageError
from supernet.files import to_plain, write_json
from supernet.io.checkpoint import merged_data_config
from supernet.io.export import write_export
from supernet.io.subnet import Subnet, fold_output_scale, load_subnet
from supernet.train.best_epoch import check_selection, selection_callbacks
from supernet.train.callbacks import StopOnSignal, fitting, observer_callbacks
from supernet.train.length import passes_for
from supernet.train.module import TensorDataModule, plain_hparams
from supernet.train.split_scores import class_recall, eval_splits, outputs_of, split_figures, top1
from supernet.train.subnet_module import SubnetModule

__all__ = [  # the scores (outputs_of, eval_splits, split_figures...) live in supernet.train.split_scores
    "AUTO_KEYS",
    "INITS",
    "VERIFY_SAMPLES",
    "RetrainRequest",
    "check_recipe",
    "class_recall",
    "compare_table",
    "eval_splits",
    "export_data_config",
    "headline_metric",
    "match_normalization",
    "matching_bundle",
    "outputs_of",
    "resolved_recipe",
    "retrain_subnet",
    "split_figures",
    "top1",
    "train_variant",
    "training_form",
]

log = logging.getLogger(__name__)

INITS = ("inherited", "scratch")
AUTO_KEYS = RECIPE_AUTO_KEYS  # dropout, label_smoothing: may be auto, chosen by the table's size
VERIFY_SAMPLES = 512


# ---------------------------------------------------------------------------- helpers
def check_recipe(recipe: Mapping[str, Any], optim_key: str = "optim") -> None:
    """One-line errors for a bad ``retrain.*`` / ``optim.*`` before any data is read; `optim_key`
    is where the command line sets the optimiser (the pipeline's is ``retrain.optim``)."""
    check_optim_config(recipe.get("optim") or {}, optim_key)
    for key in AUTO_KEYS:
        v = recipe.get(key, 0.0)
        if v == AUTO:
            continue
        if v is None or isinstance(v, (bool, str)) or not 0.0 <= float(v) < 1.0:
            raise UsageError(f"retrain.{key}={v!r} must be in [0, 1) or auto (by the table's size)")
    shift = (recipe.get("augment") or {}).get("shift", 0)
    if shift is None or isinstance(shift, bool) or int(shift) != shift or int(shift) < 0:
        raise UsageError(f"retrain.augment.shift={shift} must be a whole number of pixels >= 0 (0: off)")
    bs = recipe.get("batch_size")
    if bs is not None and int(bs) < 1:
        raise UsageError(f"retrain.batch_size={bs} must be a positive integer or null (the data config's)")
    check_selection(recipe)
    check_min_steps(recipe.get("min_steps"), "retrain.min_steps")


def resolved_recipe(recipe: Mapping[str, Any], bundle: DataBundle) -> dict[str, Any]:
    """`recipe` with each ``auto`` of `AUTO_KEYS` replaced by its value for `bundle`'s training
    split (`supernet.data.table_recipe.recipe_autos`)."""
    return recipe_autos(recipe, len(bundle.train_x), bundle.task.is_regression)[0]


def export_data_config(meta: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The data config the export's supernet was trained on, with the non-null `overrides` on top."""
    cfg = merged_data_config(meta.get("data") or {}, overrides)
    if not cfg.get("name"):
        raise UsageError("the export does not record its data set (arch.yaml data.name); pass data.name=...")
    return cfg


def match_normalization(bundle: DataBundle, meta: Mapping[str, Any]) -> DataBundle:
    """Re-normalise the splits with the export's mean/std when the loaded data's differ (e.g. with
    ``data.limit_train``): the normalisation is part of the model, inherited weights expect it.
    A new bundle when they differ; the given one is left as it is."""
    norm = meta["normalization"]
    if torch.allclose(torch.tensor(bundle.mean), torch.tensor(norm["mean"])) and torch.allclose(
        torch.tensor(bundle.std), torch.tensor(norm["std"])
    ):
        return bundle
    log.info("re-normalising the data with the export's mean/std")
    f = bundle.in_features
    scale = per_feature(bundle.std, f) / per_feature(norm["std"], f)
    shift = (per_feature(bundle.mean, f) - per_feature(norm["mean"], f)) / per_feature(norm["std"], f)
    moved = {}
    for name in ("train_x", "val_x", "test_x"):
        x = getattr(bundle, name)
        moved[name] = None if x is None else x * scale.to(x.device) + shift.to(x.device)
    return replace(bundle, mean=list(norm["mean"]), std=list(norm["std"]), **moved)


def headline_metric(task: Task) -> str:
    """The metric retraining reports first and calls its objective: the task's default."""
    return task.headline


def training_form(source: Subnet) -> Subnet:
    """A copy of an export in the form it trains in: a regression's output scale taken out of
    the last layer again (`fold_output_scale`)."""
    model = copy.deepcopy(source)
    fold_output_scale(model, source.task, inverse=True)
    return model


# ---------------------------------------------------------------------------- the request
@dataclass(frozen=True)
class RetrainRequest:
    """What `retrain_subnet` is asked to do: which export, how to train it, where results go.

    The fields are `retrain_subnet`'s former arguments, in the same order.
    `recipe`: ``{optim: {...conf/optim}, dropout, label_smoothing, batch_size, augment: {shift}, onnx}``;
    `data_cfg`: overrides of the export's own data config (non-null keys, e.g. ``root``, ``limit_train``);
    `trainer_cfg`: ``conf/trainer``. ``compare=True`` also reports the inherited weights without
    training and both inits side by side (``compare.md``). `verified`: its recipe and trainer
    were checked (`checked`, or the run's settings, built once: `RetrainSettings.request`), and
    are not checked again.
    """

    subnet_dir: str | Path
    recipe: Mapping[str, Any]
    data_cfg: Mapping[str, Any] | None
    trainer_cfg: Mapping[str, Any]
    out_dir: str | Path
    init: str = "inherited"
    seed: int = 0
    compare: bool = False
    tensorboard: bool = True
    verified: bool = False

    def checked(self) -> RetrainRequest:
        """The request as plain data with paths, after the one-line checks of init, recipe and
        trainer (those two only once: not for a `verified` request)."""
        if self.init not in INITS:
            raise UsageError(f"init={self.init!r} must be one of {list(INITS)}")
        recipe, trainer_cfg = to_plain(self.recipe), to_plain(self.trainer_cfg)
        if not self.verified:
            check_recipe(recipe)
            check_trainer_config(trainer_cfg)
        return replace(
            self,
            subnet_dir=Path(self.subnet_dir),
            recipe=recipe,
            trainer_cfg=trainer_cfg,
            out_dir=Path(self.out_dir),
            data_cfg=to_plain(self.data_cfg),
            verified=True,
        )


# ---------------------------------------------------------------------------- one training run
def train_variant(
    source: Subnet, request: RetrainRequest, bundle: DataBundle, data_cfg: Mapping[str, Any], init: str, out_dir: Path
) -> dict[str, Any]:
    """Train `source`'s arch (from its weights or from scratch) into `out_dir`: metrics.json and
    the retrained export ``out_dir/subnet``. `data_cfg` is the merged data config; the request's
    recipe is resolved (`retrain_subnet` resolves it once, the pipeline's settings did). Returns
    the metrics."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe, seed = request.recipe, request.seed
    pl.seed_everything(seed, workers=True, verbose=False)
    module = _variant_module(source, recipe, seed, init)
    batch_size = int(recipe.get("batch_size") or data_cfg.get("batch_size", 128))
    eval_batch = int(data_cfg.get("eval_batch_size", 4096))
    rows, min_steps = len(bundle.train_x), recipe.get("min_steps")
    passes = passes_for(request.trainer_cfg, min_steps, rows, batch_size, f"retraining ({init})")
    datamodule = TensorDataModule(
        bundle, batch_size, eval_batch, seed, loader=data_cfg.get("loader", "tensor"), passes=passes
    )
    tb = _variant_logger(source, request, init, out_dir)
    callbacks, best = selection_callbacks(recipe, bundle.task)
    trainer = pl.Trainer(
        **trainer_kwargs(request.trainer_cfg),
        default_root_dir=str(out_dir),
        callbacks=[*callbacks, *observer_callbacks("retrain"), StopOnSignal()],
        logger=[tb] if tb is not None else False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    with fitting():
        trainer.fit(module, datamodule=datamodule)
    model = copy.deepcopy(module.model).float().eval()
    figures = eval_splits(model, bundle, eval_batch)
    head = headline_metric(bundle.task)
    if tb is not None and figures[f"test_{head}"] is not None:
        test = figures[f"test_{head}"]
        tb.log_metrics({f"test/{head}": test, f"hp/test_{head}": test}, step=trainer.global_step)
        tb.finalize("success")
    metrics = {
        "init": init,
        "seed": seed,
        "epochs": trainer.current_epoch,
        "best_epoch": None if best is None else best.best_epoch,  # the epoch whose weights were kept
        "global_step": trainer.global_step,
        "arch": list(source.arch),
        "params": source.num_params(),
        **figures,
        "wall_s": round(time.perf_counter() - started, 2),
    }
    if trainer.is_global_zero:
        _write_variant(model.cpu(), source, request, bundle, metrics, out_dir)
    return metrics


def _variant_module(source: Subnet, recipe: Mapping[str, Any], seed: int, init: str) -> SubnetModule:
    """The module that trains `source`'s arch under `recipe`, from its weights (``init=inherited``) or not."""
    module = SubnetModule(
        meta=source.meta,
        optim=dict(recipe["optim"]),
        dropout=float(recipe.get("dropout", 0.0)),
        label_smoothing=float(recipe.get("label_smoothing", 0.0)),
        augment_shift=int((recipe.get("augment") or {}).get("shift", 0)),
        seed=seed,
    )
    if init == "inherited":
        module.model.load_state_dict(training_form(source).state_dict())
    return module


def _variant_logger(source: Subnet, request: RetrainRequest, init: str, out_dir: Path) -> TensorBoardLogger | None:
    """One TensorBoard run in `out_dir` with the variant's hyper-parameters, or None when off."""
    if not request.tensorboard:
        return None
    tb = TensorBoardLogger(save_dir=str(out_dir), name="", version="", default_hp_metric=False)
    hparams = {
        "init": init,
        "seed": request.seed,
        "arch": list(source.arch),
        "recipe": dict(request.recipe),
        "subnet": str(request.subnet_dir),
    }
    head = headline_metric(source.task)
    tb.log_hyperparams(plain_hparams(hparams), {f"hp/val_{head}": 0.0, f"hp/test_{head}": 0.0})
    return tb


def _write_variant(
    model: Subnet, source: Subnet, request: RetrainRequest, bundle: DataBundle, metrics: dict[str, Any], out_dir: Path
) -> None:
    """The retrained export ``out_dir/subnet`` (verified against `model` on validation inputs) and
    ``metrics.json``; adds ``metrics["subnet"]``."""
    init, head = metrics["init"], headline_metric(bundle.task)
    x_ref = bundle.val_x[:VERIFY_SAMPLES].detach().float().cpu()
    model = copy.deepcopy(model)
    fold_output_scale(model, bundle.task)  # the export outputs the targets' own units
    with torch.no_grad():
        reference = model.mlp(x_ref)
    meta = {k: v for k, v in source.meta.items() if k not in ("weights", "verification", "onnx")}
    meta["weights_from"] = f"retrained (init={init})"
    meta["retrain"] = {
        "init": init,
        "seed": request.seed,
        "epochs": metrics["epochs"],
        "recipe": to_plain(dict(request.recipe)),
        **{k: metrics[k] for k in (f"val_{head}", f"test_{head}")},
        "source": {
            "path": str(request.subnet_dir),
            "weights_sha256": (source.meta.get("weights") or {}).get("sha256"),
        },
    }
    onnx = bool(request.recipe.get("onnx", True))
    export = write_export(model, meta, out_dir / "subnet", (x_ref, reference), overwrite=True, onnx=onnx)
    metrics["subnet"] = export["path"]
    write_json(out_dir / "metrics.json", metrics)
    test = metrics[f"test_{head}"]
    log.info(
        "retrained %s (init=%s): val %s %.4f, test %s",
        list(source.arch),
        init,
        head,
        metrics[f"val_{head}"],
        "n/a" if test is None else f"{test:.4f}",
    )


# ---------------------------------------------------------------------------- the phase
def retrain_subnet(request: RetrainRequest, bundle: DataBundle | None = None) -> dict[str, Any]:
    """Retrain the export in ``request.subnet_dir`` into ``request.out_dir`` and report val and
    test accuracy.

    Returns the result dict (also written to ``out_dir/result.json``): ``metrics`` (val_acc,
    test_acc...), ``compare`` rows when asked, ``paths.subnet`` (the retrained export of ``init``),
    ``objective`` = validation accuracy. `bundle`: the data already loaded from the export's own
    data config (the pipeline's), so it is not read again.
    """
    request = request.checked()
    source = load_subnet(request.subnet_dir)
    if not isinstance(source, Subnet):  # an ensemble (supernet.io.ensemble) has no one arch to train
        raise UsageError(
            f"subnet={request.subnet_dir} is an ensemble of {len(source.members)} subnets; retraining takes one: "
            f"pass one member's export (its arch.yaml lists them under members[].source)"
        )
    data = export_data_config(source.meta, request.data_cfg)
    bundle = matching_bundle(source, request, data, bundle)
    resolved, autos = recipe_autos(request.recipe, len(bundle.train_x), bundle.task.is_regression)  # the run's: none
    if autos:
        log.info("retrain recipe: %s", auto_line(autos))
    request = replace(request, recipe=resolved)  # what each variant trains with, and records
    out_dir = Path(request.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "task": "retrain",
        "status": "ok",
        "init": request.init,
        "seed": request.seed,
        "arch": list(source.arch),
        "params": source.num_params(),
        "data": bundle.summary(),
        "subnet_source": str(request.subnet_dir),
        **{key: resolved[key] for key in AUTO_KEYS},
    }
    paths = {"run_dir": str(out_dir)}
    if request.compare:
        metrics = _compare(source, request, bundle, data, result, paths)
    else:
        metrics = train_variant(source, request, bundle, data, request.init, out_dir)
        paths["metrics"] = str(out_dir / "metrics.json")
    paths["subnet"] = metrics.get("subnet")
    result.update(metrics=metrics, objective=metrics[f"val_{headline_metric(bundle.task)}"], paths=paths)
    write_json(out_dir / "result.json", result)
    return result


def matching_bundle(
    source: Subnet, request: RetrainRequest, data: Mapping[str, Any], bundle: DataBundle | None
) -> DataBundle:
    """The data (loaded unless given) checked against the export's shape, in the export's
    normalisation, class weights and target scaling (a retrain, an ensemble member)."""
    bundle = bundle if bundle is not None else load_data(data)
    if (bundle.in_features, bundle.num_classes) != (source.in_features, source.num_classes):
        raise UsageError(
            f"data={bundle.name} has {bundle.in_features} features and {bundle.num_classes} classes, the subnet "
            f"in {request.subnet_dir} expects {source.in_features} and {source.num_classes}"
        )
    if bundle.test_x is None:
        log.warning("data=%s has no test split: test accuracy is not reported", bundle.name)
    # The export's class weights, and its target scaling (what its last layer expects).
    return match_normalization(bundle, source.meta).adopt_task(source.task, "the subnet")


def _compare(
    source: Subnet,
    request: RetrainRequest,
    bundle: DataBundle,
    data: Mapping[str, Any],
    result: dict[str, Any],
    paths: dict[str, Any],
) -> dict[str, Any]:
    """``compare=true``: the inherited weights as they are, fine-tuned and trained from scratch on
    the same splits; writes ``compare.md``, fills ``result["compare"]`` and `paths`, returns the
    metrics of ``request.init``."""
    out_dir, seed = Path(request.out_dir), request.seed
    eval_batch = int(data.get("eval_batch_size", 4096))
    on_gpu = torch.cuda.is_available() and request.trainer_cfg.get("accelerator") != "cpu"
    before = eval_splits(training_form(source), bundle.to(torch.device("cuda" if on_gpu else "cpu")), eval_batch)
    runs = {
        "inherited": train_variant(source, request, bundle, data, "inherited", out_dir / "finetuned"),
        "scratch": train_variant(source, request, bundle, data, "scratch", out_dir / "scratch"),
    }
    head = headline_metric(bundle.task)
    keys = (f"val_{head}", f"test_{head}")
    rows = [{"finish": "inherited only", "init": "supernet weights", "epochs": 0, **{k: before[k] for k in keys}}]
    for finish, init, label in (("fine-tuned", "inherited", "inherited"), ("from scratch", "scratch", None)):
        run = runs[init]
        row = {"finish": finish, "init": label or f"random (seed {seed})", "epochs": run["epochs"]}
        rows.append({**row, **{k: run[k] for k in keys}})
    (out_dir / "compare.md").write_text(compare_table(rows, source, bundle.name, request.recipe, seed))
    result["compare"] = rows
    paths.update(
        compare=str(out_dir / "compare.md"), finetuned=str(out_dir / "finetuned"), scratch=str(out_dir / "scratch")
    )
    paths["metrics"] = str(out_dir / ("finetuned" if request.init == "inherited" else "scratch") / "metrics.json")
    return runs[request.init]


def compare_table(rows: list[dict], source: Subnet, data_name: str, recipe: Mapping[str, Any], seed: int) -> str:
    """Markdown: the three ways to finish a winner, on the same validation and test splits."""

    head = headline_metric(source.task)

    def pct(v: float | None) -> str:
        if v is None:
            return "n/a"
        return source.task.format_value(v)

    optim = recipe.get("optim") or {}
    lines = [
        f"# Three ways to finish arch {list(source.arch)} ({source.num_params():,} params) on {data_name}",
        "",
        f"Recipe: {optim.get('name')} lr={optim.get('lr')} ({optim.get('schedule', 'cosine')}), "
        f"label_smoothing={recipe.get('label_smoothing')}, dropout={recipe.get('dropout')}, "
        f"augment.shift={(recipe.get('augment') or {}).get('shift', 0)}, seed={seed}.",
        "",
        f"| finish | init | epochs | val {head} | test {head} |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        val, test = pct(r[f"val_{head}"]), pct(r[f"test_{head}"])
        lines.append(f"| {r['finish']} | {r['init']} | {r['epochs']} | {val} | {test} |")
    return "\n".join(lines) + "\n"
