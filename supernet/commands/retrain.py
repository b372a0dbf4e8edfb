"""``supernet-retrain``: fine-tune or retrain an exported subnet (see conf/retrain.yaml).

supernet-retrain subnet=subnets/best init=inherited trainer.max_epochs=20
supernet-retrain subnet=subnets/best init=scratch
supernet-retrain subnet=subnets/best compare=true

The retrain phase: an export dir -> a retrained export, metrics.json with val and test accuracy.

The work is `supernet.train.retrain.retrain_subnet`, which the pipeline calls directly; this job only
reads the Hydra config and checks it before any file is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from supernet.config import check_trainer_config
from supernet.errors import UsageError
from supernet.files import to_plain
from supernet.train.retrain import INITS, RetrainRequest, check_recipe, retrain_subnet


def recipe_of(cfg: DictConfig) -> dict[str, Any]:
    """``retrain.*`` + ``optim`` as the plain recipe dict `retrain_subnet` takes."""
    return {**to_plain(cfg.retrain), "optim": to_plain(cfg.optim)}


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    if cfg.get("subnet") in (None, ""):
        raise UsageError("subnet is required: an export directory written by supernet-export, e.g. subnet=subnets/best")
    if cfg.init not in INITS:
        raise UsageError(f"init={cfg.init!r} must be one of {list(INITS)}")
    recipe = recipe_of(cfg)
    check_recipe(recipe)
    check_trainer_config(cfg.trainer)
    result = retrain_subnet(
        RetrainRequest(
            subnet_dir=str(cfg.subnet),
            recipe=recipe,
            data_cfg=to_plain(cfg.get("data")),
            trainer_cfg=cfg.trainer,
            out_dir=out_dir,
            init=str(cfg.init),
            seed=int(cfg.seed),
            compare=bool(cfg.compare),
            tensorboard=cfg.logger.name == "tensorboard",
            verified=True,  # recipe and trainer checked above, before any file is read: not again
        )
    )
    m = result["metrics"]
    test = "n/a" if m["test_acc"] is None else f"{m['test_acc']:.4f}"
    print(
        f"retrained {m['arch']} (init={m['init']}, {m['epochs']} epochs): val {m['val_acc']:.4f}, test {test} "
        f"-> {result['paths']['subnet']}"
    )
    if result.get("compare"):
        print(Path(result["paths"]["compare"]).read_text())
    return result
