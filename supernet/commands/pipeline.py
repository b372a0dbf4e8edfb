"""``supernet`` (also ``python -m supernet``): train -> search -> export -> retrain in one run.

supernet
supernet data=fashion_mnist search.constraints.max_params=100000
supernet -m seed=0,1,2 sampler=uniform,sandwich

The whole job in one run dir: train the supernet, search it, export the winner, retrain it.

<run_dir>/train/     checkpoints, TensorBoard, result.json of the supernet
<run_dir>/search/    history.csv, pareto.json/png, best/arch.yaml, result.json
<run_dir>/subnet/    the exported winner (arch.yaml, model.safetensors, model.onnx)
<run_dir>/retrain/   the retrained winner (subnet/, metrics.json, TensorBoard)
<run_dir>/result.json, summary.md
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from supernet.commands import search as search_job
from supernet.commands.common import entry_point
from supernet.config import build_space, check_train_config
from supernet.core.space import arch_str
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.io.checkpoint import load_supernet
from supernet.io.export import export_subnet
from supernet.io.files import to_plain, write_json
from supernet.search import validate_search_config
from supernet.train.fit import train_supernet
from supernet.train.retrain import check_recipe, retrain_subnet

log = logging.getLogger(__name__)


def _recipe(cfg: DictConfig) -> dict[str, Any]:
    r = to_plain(cfg.retrain)
    return {k: r[k] for k in ("optim", "dropout", "label_smoothing", "batch_size", "augment", "onnx")}


def _with(cfg: DictConfig, **keys: Any) -> DictConfig:
    """A phase's config: the pipeline's, resolved, with a few keys set (not in struct mode)."""
    return OmegaConf.create({**to_plain(cfg), **keys})


def check_pipeline_config(cfg: DictConfig) -> None:
    """Everything that can be checked before the first phase starts."""
    if cfg.ckpt_path is None:
        check_train_config(cfg)
    space = build_space(cfg.space, cfg.data)
    validate_search_config(to_plain(cfg.search), space)
    check_recipe(_recipe(cfg))
    if int(cfg.retrain.max_epochs) < 1:
        raise UsageError(f"retrain.max_epochs={cfg.retrain.max_epochs} must be >= 1")
    if cfg.retrain.init not in ("inherited", "scratch"):
        raise UsageError(f"retrain.init={cfg.retrain.init!r} must be inherited or scratch")


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    check_pipeline_config(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    phases: dict[str, dict] = {}

    t0 = time.perf_counter()
    bundle = load_data(cfg.data)
    phases["data"] = {"wall_s": round(time.perf_counter() - t0, 2), "summary": bundle.summary()}

    t0 = time.perf_counter()
    if cfg.ckpt_path is None:
        train_cfg = _with(cfg, ckpt_path=None)
        trained = train_supernet(train_cfg, out_dir / "train", bundle=bundle)
        ckpt = trained["paths"]["checkpoint"]
        phases["train"] = {
            "wall_s": round(time.perf_counter() - t0, 2),
            "metrics": trained["metrics"],
            "epochs": trained["epochs"],
        }
    else:
        ckpt = cfg.ckpt_path
        phases["train"] = {"wall_s": 0.0, "skipped": f"ckpt_path={ckpt}"}
    supernet = load_supernet(ckpt)
    supernet.model.calibrate(bundle.train_x)

    t0 = time.perf_counter()
    search_cfg = _with(cfg, resume=False, ckpt_path=str(supernet.path))
    searched = search_job.run(search_cfg, out_dir / "search", supernet=supernet, bundle=bundle)
    best = searched["best"]
    if best is None:
        raise UsageError("the search found no arch within the constraints")
    phases["search"] = {
        "wall_s": round(time.perf_counter() - t0, 2),
        "strategy": searched["strategy"],
        "n_evaluations": searched["n_evaluations"],
        "best": best,
    }

    t0 = time.perf_counter()
    arch = tuple(best["arch"])
    exported = export_subnet(
        supernet,
        arch,
        out_dir / "subnet",
        overwrite=True,
        search_figures=best,
        budget=searched.get("constraints"),
        verify_x=bundle.val_x[: int(cfg.export.verify_samples)].cpu(),
        onnx=bool(cfg.export.onnx),
    )
    inherited_test = None
    if bundle.test_x is not None:
        # The arch is already chosen: the test split only reports how good it is.
        inherited_test = InheritedEvaluator(supernet.model, supernet.space, bundle.test_x, bundle.test_y).accuracies(
            [arch]
        )[0]
    phases["export"] = {
        "wall_s": round(time.perf_counter() - t0, 2),
        "path": exported["path"],
        "max_abs_diff": exported["max_abs_diff"],
    }

    t0 = time.perf_counter()
    trainer_cfg = {**to_plain(cfg.trainer), "max_epochs": int(cfg.retrain.max_epochs)}
    retrained = retrain_subnet(
        out_dir / "subnet",
        _recipe(cfg),
        None,
        trainer_cfg,
        out_dir / "retrain",
        init=str(cfg.retrain.init),
        seed=int(cfg.seed),
        compare=bool(cfg.retrain.compare),
        tensorboard=cfg.logger.name == "tensorboard",
        bundle=bundle,  # the export's data config is the pipeline's own: no second read
    )
    metrics = retrained["metrics"]
    phases["retrain"] = {
        "wall_s": round(time.perf_counter() - t0, 2),
        "init": metrics["init"],
        "epochs": metrics["epochs"],
    }

    winner = {
        "arch": list(arch),
        "params": best["params"],
        "flops": best["flops"],
        "val_acc": best["val_acc"],  # inherited weights, what the search selected on
        "test_acc_inherited": inherited_test,
        "val_acc_retrained": metrics["val_acc"],
        "test_acc": metrics["test_acc"],  # retrained: the headline figure
    }
    for key in ("latency_ms", "finetuned_acc", "finetuned_loss"):  # measured; re-ranked (search.finetune.top)
        if key in best:
            winner[key] = best[key]
    result = {
        "task": "pipeline",
        "status": "ok",
        "data": bundle.summary(),
        "seed": int(cfg.seed),
        "winner": winner,
        "constraints": searched.get("constraints"),
        "phases": phases,
        "wall_s": round(time.perf_counter() - started, 2),
        "objective": metrics["val_acc"],
        "paths": {
            "run_dir": str(out_dir),
            "checkpoint": str(supernet.path),
            "search": str(out_dir / "search"),
            "subnet": exported["path"],
            "retrained_subnet": retrained["paths"]["subnet"],
        },
    }
    if retrained.get("compare"):
        result["compare"] = retrained["compare"]
    write_json(out_dir / "result.json", result)
    (out_dir / "summary.md").write_text(summary_md(result))
    print(summary_md(result))
    return result


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def summary_md(r: dict[str, Any]) -> str:
    w, p = r["winner"], r["phases"]
    arch = arch_str(w["arch"])
    lines = [
        "# supernet run",
        "",
        f"- data: {r['data']}",
        f"- winner: **{arch}** ({w['params']:,} params, {w['flops']:,} FLOPs/sample)"
        + (f", constraints {r['constraints']}" if any((r.get("constraints") or {}).values()) else ""),
        f"- inherited weights: val {_pct(w['val_acc'])}, test {_pct(w['test_acc_inherited'])}"
        + (f"; after the re-ranking fine-tune: val {_pct(w['finetuned_acc'])}" if "finetuned_acc" in w else ""),
        f"- retrained ({p['retrain']['init']}, {p['retrain']['epochs']} epochs): val {_pct(w['val_acc_retrained'])}, "
        f"**test {_pct(w['test_acc'])}**",
        f"- search: {p['search']['strategy']}, {p['search']['n_evaluations']} candidates scored",
        "",
        "| phase | wall s |",
        "|---|---|",
    ]
    lines += [f"| {name} | {ph.get('wall_s', 0):.1f} |" for name, ph in p.items()]
    lines += [
        f"| total | {r['wall_s']:.1f} |",
        "",
        f"model: `{r['paths']['retrained_subnet']}` (load with `supernet.load_subnet`)",
        "",
    ]
    return "\n".join(lines)


main = entry_point("pipeline", run)

if __name__ == "__main__":
    main()
