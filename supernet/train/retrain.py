"""Retraining an exported subnet: fine-tune its inherited weights, or train it from scratch.

`SubnetModule` is the Lightning system (the exported MLP with optional dropout, AdamW + cosine,
label smoothing, optional random image shifts); `retrain_subnet` is the whole phase that
``supernet-retrain`` and the pipeline call: load the export, train, report validation and **test**
accuracy (the only place the test split is read), and write the retrained model as a new export.

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
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import TensorBoardLogger
from torchmetrics.classification import MulticlassAccuracy

from supernet.config import check_trainer_config, trainer_kwargs
from supernet.core.optim import build_optimizer, build_schedule, check_optim_config
from supernet.data.datasets import DataBundle, load_data
from supernet.errors import NonFiniteLossError, UsageError
from supernet.io.export import Subnet, load_subnet, write_export
from supernet.io.files import to_plain, write_json
from supernet.train.module import NonFiniteWatch, TensorDataModule, logs_this_step, plain_hparams

log = logging.getLogger(__name__)

INITS = ("inherited", "scratch")
VERIFY_SAMPLES = 512


# ---------------------------------------------------------------------------- augmentation
def random_shift(
    x: torch.Tensor, image_shape: tuple[int, int, int], max_shift: int, fill: torch.Tensor
) -> torch.Tensor:
    """Shift each flattened image ``(N, C*H*W)`` by its own random offset in ``[-max_shift, max_shift]``
    pixels along both axes; uncovered pixels take `fill` (per channel: the normalised value of a
    black pixel). All on the tensor's device, no per-sample Python."""
    n = x.shape[0]
    c, h, w = image_shape
    s = max_shift
    img = x.reshape(n, c, h, w) - fill[None, :, None, None]
    padded = F.pad(img, (s, s, s, s))  # zeros = `fill` after adding it back
    dy = torch.randint(0, 2 * s + 1, (n,), device=x.device)
    dx = torch.randint(0, 2 * s + 1, (n,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols] + fill[None, :, None, None]
    return out.reshape(n, -1)


def image_shape_of(meta: Mapping[str, Any]) -> tuple[int, int, int] | None:
    """``(C, H, W)`` for image exports, None for tabular ones (no spatial structure to shift)."""
    shape = list(meta.get("input_shape") or [])
    if len(shape) != 3 or (meta.get("preprocess") or {}).get("kind") == "table":
        return None
    return int(shape[0]), int(shape[1]), int(shape[2])


# ---------------------------------------------------------------------------- the system
class SubnetModule(pl.LightningModule):
    """Trains one exported MLP (`supernet.io.export.Subnet`) on normalised inputs.

    ``init="scratch"`` weights come from ``seed`` (PyTorch's default Linear init); for
    ``init="inherited"`` load them afterwards: ``module.model.load_state_dict(load_subnet(d).state_dict())``.
    """

    def __init__(
        self,
        meta: dict,
        optim: dict,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        augment_shift: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = Subnet.from_meta(meta, dropout=dropout)
        self.image_shape = image_shape_of(meta)
        self.augment_shift = int(augment_shift) if self.image_shape else 0
        if augment_shift and not self.image_shape:
            log.warning("augment.shift=%s ignored: the inputs are not images", augment_shift)
        norm = self.model.normalize
        self.register_buffer("fill", -norm.mean / norm.std, persistent=False)  # a black pixel, normalised
        self.val_acc = MulticlassAccuracy(self.model.num_classes, average="micro")
        self._watch = NonFiniteWatch(retrain_nonfinite_message)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.mlp(x)

    def on_fit_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "to_device"):
            datamodule.to_device(self.device)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self.augment_shift:
            x = random_shift(x, self.image_shape, self.augment_shift, self.fill)
        loss = F.cross_entropy(self.model.mlp(x), y, label_smoothing=float(self.hparams.label_smoothing))
        if NonFiniteWatch.applies(self):
            self._watch.push(loss.detach()[None], self.current_epoch, batch_idx, self.global_step, [self.model.arch])
        elif not torch.isfinite(loss):
            raise NonFiniteLossError(retrain_nonfinite_message([loss.item()], self._where(batch_idx), self.model.arch))
        if logs_this_step(self.trainer):
            self.log("train/loss", loss, prog_bar=True)
            self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def _where(self, batch_idx: int) -> str:
        return f"epoch {self.current_epoch}, batch {batch_idx}, global step {self.global_step}"

    def configure_callbacks(self) -> list[pl.Callback]:
        return [self._watch]

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.val_acc.update(self.model.mlp(x), y)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        self.log("val/acc", acc, prog_bar=True)
        self.log("hp/val_acc", acc)
        self.val_acc.reset()

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.model.parameters(), self.hparams.optim)
        schedule = build_schedule(optimizer, self.hparams.optim, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


# ---------------------------------------------------------------------------- helpers
def retrain_nonfinite_message(losses: list, where: str, arch: Any) -> str:
    return f"non-finite loss {losses} at {where} retraining arch {list(arch)}; lower optim.lr"


@torch.no_grad()
def accuracy(model: Subnet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
    """Top-1 accuracy of ``model.mlp`` on normalised inputs, in float32 on the tensors' device."""
    was_training = model.training
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # no TF32: the figures are the exported model's
    try:
        model.eval().to(x.device)
        correct = sum(
            (model.mlp(xb.float()).argmax(-1) == yb).sum().item()
            for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True)
        )
    finally:
        torch.set_float32_matmul_precision(precision)
        model.train(was_training)
    return correct / max(len(y), 1)


def check_recipe(recipe: Mapping[str, Any]) -> None:
    """One-line errors for a bad ``retrain.*`` / ``optim.*`` before any data is read."""
    check_optim_config(recipe.get("optim") or {})
    for key in ("dropout", "label_smoothing"):
        v = recipe.get(key, 0.0)
        if v is None or not 0.0 <= float(v) < 1.0:
            raise UsageError(f"retrain.{key}={v} must be in [0, 1)")
    shift = (recipe.get("augment") or {}).get("shift", 0)
    if shift is None or isinstance(shift, bool) or int(shift) != shift or int(shift) < 0:
        raise UsageError(f"retrain.augment.shift={shift} must be a whole number of pixels >= 0 (0: off)")
    bs = recipe.get("batch_size")
    if bs is not None and int(bs) < 1:
        raise UsageError(f"retrain.batch_size={bs} must be a positive integer or null (the data config's)")


def export_data_config(meta: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The data config the export's supernet was trained on, with the non-null `overrides` on top."""
    data = meta.get("data") or {}
    cfg = dict(data.get("config") or {"name": data.get("name")})
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if not cfg.get("name"):
        raise UsageError("the export does not record its data set (arch.yaml data.name); pass data.name=...")
    return cfg


def _expand(values: list[float] | torch.Tensor, in_features: int) -> torch.Tensor:
    v = torch.as_tensor(values, dtype=torch.float32)
    return v.repeat_interleave(in_features // len(v))[None, :]


def match_normalization(bundle: DataBundle, meta: Mapping[str, Any]) -> DataBundle:
    """Re-normalise the splits with the export's mean/std when the loaded data's differ (e.g. with
    ``data.limit_train``): the normalisation is part of the model, inherited weights expect it."""
    norm = meta["normalization"]
    if torch.allclose(torch.tensor(bundle.mean), torch.tensor(norm["mean"])) and torch.allclose(
        torch.tensor(bundle.std), torch.tensor(norm["std"])
    ):
        return bundle
    log.info("re-normalising the data with the export's mean/std")
    f = bundle.in_features
    scale = _expand(bundle.std, f) / _expand(norm["std"], f)
    shift = (_expand(bundle.mean, f) - _expand(norm["mean"], f)) / _expand(norm["std"], f)
    for name in ("train_x", "val_x", "test_x"):
        x = getattr(bundle, name)
        if x is not None:
            setattr(bundle, name, x * scale.to(x.device) + shift.to(x.device))
    bundle.mean, bundle.std = list(norm["mean"]), list(norm["std"])
    return bundle


def _eval_splits(model: Subnet, bundle: DataBundle, batch_size: int) -> dict[str, float | None]:
    test = None
    if bundle.test_x is not None:
        test = accuracy(model, bundle.test_x, bundle.test_y, batch_size)
    return {"val_acc": accuracy(model, bundle.val_x, bundle.val_y, batch_size), "test_acc": test}


# ---------------------------------------------------------------------------- one training run
def train_variant(
    source: Subnet,
    subnet_dir: Path,
    init: str,
    recipe: Mapping[str, Any],
    bundle: DataBundle,
    data_cfg: Mapping[str, Any],
    trainer_cfg: Mapping[str, Any],
    out_dir: Path,
    seed: int,
    tensorboard: bool = True,
) -> dict[str, Any]:
    """Train `source`'s arch (from its weights or from scratch) into `out_dir`: metrics.json and
    the retrained export ``out_dir/subnet``. Returns the metrics."""
    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(seed, workers=True, verbose=False)
    module = SubnetModule(
        meta=source.meta,
        optim=dict(recipe["optim"]),
        dropout=float(recipe.get("dropout", 0.0)),
        label_smoothing=float(recipe.get("label_smoothing", 0.0)),
        augment_shift=int((recipe.get("augment") or {}).get("shift", 0)),
        seed=seed,
    )
    if init == "inherited":
        module.model.load_state_dict(source.state_dict())
    batch_size = int(recipe.get("batch_size") or data_cfg.get("batch_size", 128))
    eval_batch = int(data_cfg.get("eval_batch_size", 4096))
    datamodule = TensorDataModule(bundle, batch_size, eval_batch, seed, loader=data_cfg.get("loader", "tensor"))
    loggers = []
    if tensorboard:
        tb = TensorBoardLogger(save_dir=str(out_dir), name="", version="", default_hp_metric=False)
        tb.log_hyperparams(
            plain_hparams(
                {
                    "init": init,
                    "seed": seed,
                    "arch": list(source.arch),
                    "recipe": dict(recipe),
                    "subnet": str(subnet_dir),
                }
            ),
            {"hp/val_acc": 0.0, "hp/test_acc": 0.0},
        )
        loggers.append(tb)
    trainer = pl.Trainer(
        **trainer_kwargs(trainer_cfg),
        default_root_dir=str(out_dir),
        logger=loggers or False,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)
    model = copy.deepcopy(module.model).float().eval()
    figures = _eval_splits(model, bundle, eval_batch)
    if loggers and figures["test_acc"] is not None:
        loggers[0].log_metrics(
            {"test/acc": figures["test_acc"], "hp/test_acc": figures["test_acc"]}, step=trainer.global_step
        )
        loggers[0].finalize("success")
    metrics = {
        "init": init,
        "seed": seed,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "arch": list(source.arch),
        "params": source.num_params(),
        **figures,
        "wall_s": round(time.perf_counter() - started, 2),
    }
    if not trainer.is_global_zero:
        return metrics
    model = model.cpu()
    x_ref = bundle.val_x[:VERIFY_SAMPLES].detach().float().cpu()
    with torch.no_grad():
        reference = model.mlp(x_ref)
    meta = {k: v for k, v in source.meta.items() if k not in ("weights", "verification", "onnx")}
    meta["weights_from"] = f"retrained (init={init})"
    meta["retrain"] = {
        "init": init,
        "seed": seed,
        "epochs": metrics["epochs"],
        "recipe": to_plain(dict(recipe)),
        "val_acc": figures["val_acc"],
        "test_acc": figures["test_acc"],
        "source": {"path": str(subnet_dir), "weights_sha256": (source.meta.get("weights") or {}).get("sha256")},
    }
    export = write_export(
        model, meta, out_dir / "subnet", (x_ref, reference), overwrite=True, onnx=bool(recipe.get("onnx", True))
    )
    metrics["subnet"] = export["path"]
    write_json(out_dir / "metrics.json", metrics)
    log.info(
        "retrained %s (init=%s): val %.4f, test %s",
        list(source.arch),
        init,
        figures["val_acc"],
        "n/a" if figures["test_acc"] is None else f"{figures['test_acc']:.4f}",
    )
    return metrics


# ---------------------------------------------------------------------------- the phase
def retrain_subnet(
    subnet_dir: str | Path,
    recipe: Mapping[str, Any],
    data_cfg: Mapping[str, Any] | None,
    trainer_cfg: Mapping[str, Any],
    out_dir: str | Path,
    init: str = "inherited",
    seed: int = 0,
    compare: bool = False,
    tensorboard: bool = True,
    bundle: DataBundle | None = None,
) -> dict[str, Any]:
    """Retrain the export in `subnet_dir` into `out_dir` and report val and test accuracy.

    `recipe`: ``{optim: {...conf/optim}, dropout, label_smoothing, batch_size, augment: {shift}, onnx}``;
    `data_cfg`: overrides of the export's own data config (non-null keys, e.g. ``root``, ``limit_train``);
    `trainer_cfg`: ``conf/trainer``. ``compare=True`` also reports the inherited weights without
    training and both inits side by side (``compare.md``). Returns the result dict (also written to
    ``out_dir/result.json``): ``metrics`` (val_acc, test_acc...), ``compare`` rows when asked,
    ``paths.subnet`` (the retrained export of `init`), ``objective`` = validation accuracy.
    `bundle`: the data already loaded from the export's own data config (the pipeline's), so it is
    not read again.
    """
    if init not in INITS:
        raise UsageError(f"init={init!r} must be one of {list(INITS)}")
    recipe = to_plain(recipe)
    check_recipe(recipe)
    trainer_cfg = to_plain(trainer_cfg)
    check_trainer_config(trainer_cfg)
    subnet_dir, out_dir = Path(subnet_dir), Path(out_dir)
    source = load_subnet(subnet_dir)
    data = export_data_config(source.meta, to_plain(data_cfg))
    bundle = bundle if bundle is not None else load_data(data)
    if (bundle.in_features, bundle.num_classes) != (source.in_features, source.num_classes):
        raise UsageError(
            f"data={bundle.name} has {bundle.in_features} features and {bundle.num_classes} classes, the subnet "
            f"in {subnet_dir} expects {source.in_features} and {source.num_classes}"
        )
    if bundle.test_x is None:
        log.warning("data=%s has no test split: test accuracy is not reported", bundle.name)
    bundle = match_normalization(bundle, source.meta)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "recipe": recipe,
        "bundle": bundle,
        "data_cfg": data,
        "trainer_cfg": trainer_cfg,
        "seed": seed,
        "tensorboard": tensorboard,
    }
    result: dict[str, Any] = {
        "task": "retrain",
        "status": "ok",
        "init": init,
        "seed": seed,
        "arch": list(source.arch),
        "params": source.num_params(),
        "data": bundle.summary(),
        "subnet_source": str(subnet_dir),
    }
    paths = {"run_dir": str(out_dir)}
    if compare:
        eval_batch = int(data.get("eval_batch_size", 4096))
        device = torch.device(
            "cuda" if torch.cuda.is_available() and trainer_cfg.get("accelerator") != "cpu" else "cpu"
        )
        before = _eval_splits(copy.deepcopy(source), bundle.to(device), eval_batch)
        runs = {
            "inherited": train_variant(source, subnet_dir, "inherited", out_dir=out_dir / "finetuned", **common),
            "scratch": train_variant(source, subnet_dir, "scratch", out_dir=out_dir / "scratch", **common),
        }
        rows = [
            {"finish": "inherited only", "init": "supernet weights", "epochs": 0, **before},
            {
                "finish": "fine-tuned",
                "init": "inherited",
                "epochs": runs["inherited"]["epochs"],
                "val_acc": runs["inherited"]["val_acc"],
                "test_acc": runs["inherited"]["test_acc"],
            },
            {
                "finish": "from scratch",
                "init": f"random (seed {seed})",
                "epochs": runs["scratch"]["epochs"],
                "val_acc": runs["scratch"]["val_acc"],
                "test_acc": runs["scratch"]["test_acc"],
            },
        ]
        metrics = runs[init]
        (out_dir / "compare.md").write_text(compare_table(rows, source, bundle.name, recipe, seed))
        result["compare"] = rows
        paths.update(
            compare=str(out_dir / "compare.md"), finetuned=str(out_dir / "finetuned"), scratch=str(out_dir / "scratch")
        )
        paths["metrics"] = str(out_dir / ("finetuned" if init == "inherited" else "scratch") / "metrics.json")
    else:
        metrics = train_variant(source, subnet_dir, init, out_dir=out_dir, **common)
        paths["metrics"] = str(out_dir / "metrics.json")
    paths["subnet"] = metrics.get("subnet")
    result.update(metrics=metrics, objective=metrics["val_acc"], paths=paths)
    write_json(out_dir / "result.json", result)
    return result


def compare_table(rows: list[dict], source: Subnet, data_name: str, recipe: Mapping[str, Any], seed: int) -> str:
    """Markdown: the three ways to finish a winner, on the same validation and test splits."""

    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.2f}%"

    optim = recipe.get("optim") or {}
    lines = [
        f"# Three ways to finish arch {list(source.arch)} ({source.num_params():,} params) on {data_name}",
        "",
        f"Recipe: {optim.get('name')} lr={optim.get('lr')} ({optim.get('schedule', 'cosine')}), "
        f"label_smoothing={recipe.get('label_smoothing')}, dropout={recipe.get('dropout')}, "
        f"augment.shift={(recipe.get('augment') or {}).get('shift', 0)}, seed={seed}.",
        "",
        "| finish | init | epochs | val acc | test acc |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['finish']} | {r['init']} | {r['epochs']} | {pct(r['val_acc'])} | {pct(r['test_acc'])} |")
    return "\n".join(lines) + "\n"
