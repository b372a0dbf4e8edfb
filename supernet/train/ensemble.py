"""Ensembles of the found subnets (``retrain.ensemble=K``): K members retrained with the winner's
recipe, their outputs averaged, exported as one model. The pipeline's ``ensemble`` phase.

    supernet retrain.ensemble=5                                # the 5 best distinct feasible archs
    supernet retrain.ensemble=5 retrain.ensemble_from=seeds    # the winner, retrained with seeds seed..seed+4
    supernet retrain.ensemble=5 retrain.ensemble_from=folds    # the winner, retrained on 5 folds of train+val

Members (`member_records`): ``top`` takes the winner, then the re-ranked finalists
(``search.finetune.top``) in their fine-tuned order, then the other feasible archs by the inherited
search metric; ``seeds`` and ``folds`` the winner K times. Member 0 is the pipeline's retrained
winner itself (copied; ``folds``: retrained like the others); each other one is exported from the
supernet (``top``, under the search's budget), retrained by `train_variant` with the same recipe
(``seeds``: seed + i, which changes the batch order, and the init under ``retrain.init=scratch``;
``folds``: seed + i on fold i, `supernet.train.folds`) and read back. A member whose
``metrics.json`` is there is not trained again (a killed phase resumes). The average
(`supernet.io.ensemble`) is verified against the members, exported, and scored like a retrained
subnet (`eval_splits`; ``folds``: its validation figures out of fold).

    <out>/members/<i>/   source/ (top: the inherited export), subnet/ (retrained), metrics.json
    <out>/subnet/        the ensemble's export (load it with `supernet.load_subnet`)
    <out>/result.json    ``ensemble``: what the pipeline's result.json shows
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from supernet.core.metrics import Metric
from supernet.data.datasets import DataBundle
from supernet.data.table_recipe import AUTO
from supernet.errors import UsageError
from supernet.files import write_json
from supernet.io.ensemble import EnsembleSubnet, combine, ensemble_meta
from supernet.io.export import export_subnet, write_export
from supernet.io.subnet import Subnet, load_subnet
from supernet.search.base import fitness_key, score_key
from supernet.search.report import full_scored, public
from supernet.search.state import STATE_FILE
from supernet.train.folds import Fold, fold_bundle, make_folds, out_of_fold_figures
from supernet.train.retrain import (
    VERIFY_SAMPLES,
    RetrainRequest,
    eval_splits,
    export_data_config,
    matching_bundle,
    train_variant,
    training_form,
)

log = logging.getLogger(__name__)

ENSEMBLE_FROM = ("top", "seeds", "folds")


# ---------------------------------------------------------------------------- choosing the members
def check_ensemble_config(k: Any, source: Any, auto: bool = False) -> None:
    """One-line errors for ``retrain.ensemble`` / ``retrain.ensemble_from`` before any training
    (`auto`: either may still be ``auto``, which the pipeline resolves by the table's size)."""
    if not (auto and k == AUTO) and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        also = " or auto" if auto else ""
        raise UsageError(f"retrain.ensemble={k} must be a whole number >= 1 (1: no ensemble, the winner alone){also}")
    choices = [*ENSEMBLE_FROM, AUTO] if auto else list(ENSEMBLE_FROM)
    if source not in choices:
        raise UsageError(f"retrain.ensemble_from={source!r} must be one of {choices}")


def read_history(search_dir: Path) -> list[dict]:
    """Every scored record of the search in `search_dir` (its ``search_state.json``)."""
    path = Path(search_dir) / STATE_FILE
    try:
        return list(json.loads(path.read_text())["history"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"retrain.ensemble: cannot read the search's history from {path} ({exc})") from None


def ranked_records(search: Mapping[str, Any], history: Sequence[dict]) -> list[dict]:
    """The search's distinct feasible archs, best first: the winner, the re-ranked finalists in
    their fine-tuned order, then the rest by the inherited search metric (`fitness_key`)."""
    key = score_key(list(search["objectives"]))
    finalists = sorted((search.get("finetune") or {}).get("finalists") or [], key=lambda r: r["finetuned_rank"])
    rest = sorted(full_scored(list(history), key), key=lambda r: fitness_key(r, key), reverse=True)
    ranked, seen = [], set()
    for record in [search["best"], *finalists, *rest]:
        arch = tuple(record["arch"])
        if record.get("feasible", True) and arch not in seen:
            seen.add(arch)
            ranked.append(public(record))
    return ranked


def member_records(search: Mapping[str, Any], history: Sequence[dict], k: int, source: str) -> list[dict]:
    """The `k` members' search records (``seeds``, ``folds``: the winner `k` times); a `UsageError`
    naming both numbers when the search found fewer distinct feasible archs than ``top`` needs."""
    if source in ("seeds", "folds"):
        return [public(search["best"])] * k
    ranked = ranked_records(search, history)
    if len(ranked) < k:
        raise UsageError(
            f"retrain.ensemble={k} but the search found {len(ranked)} distinct feasible archs; lower "
            "retrain.ensemble, use retrain.ensemble_from=seeds, or widen the search (search.budget, search.constraints)"
        )
    return ranked[:k]


# ---------------------------------------------------------------------------- building
@dataclass(frozen=True)
class EnsemblePlan:
    """What `build_ensemble` builds. `records`: the members' search records (member 0 the winner);
    `template`: the winner's retraining (recipe, resolved, trainer, init, seed; its ``subnet_dir``
    the winner's export); `winner`: that retraining's result (``metrics``, ``paths``); `budget`: the
    search's constraints, checked on each member's export; `metric`: the search metric."""

    records: Sequence[Mapping[str, Any]]
    source: str
    template: RetrainRequest
    winner: Mapping[str, Any]
    out_dir: Path
    metric: Metric
    budget: Mapping[str, Any] | None = None
    verify_samples: int = VERIFY_SAMPLES


def build_ensemble(plan: EnsemblePlan, supernet: Any, bundle: DataBundle) -> dict[str, Any]:
    """Retrain the members into ``out_dir/members/<i>``, export their average to ``out_dir/subnet``
    and score it; returns (and writes as ``out_dir/result.json``) the phase's result, whose
    ``ensemble`` field the pipeline's result.json shows. `supernet`: the loaded supernet (``top``)."""
    started = time.perf_counter()
    name = plan.metric.short
    folds = make_folds(bundle, len(plan.records), plan.template.seed) if plan.source == "folds" else None
    # Every member gets the winner's recipe as the run's settings resolved it, on the winner's
    # training rows (a fold's differ), and checked once: the template is the settings' request.
    members, rows = [], []
    for i, record in enumerate(plan.records):
        metrics = _member(plan, i, record, supernet, bundle, None if folds is None else folds[i])
        members.append(load_subnet(metrics["subnet"]))
        rows.append({
            "seed": metrics["seed"],
            "init": metrics["init"],
            f"val_{name}": metrics[f"val_{name}"],
            f"test_{name}": metrics[f"test_{name}"],
            "source": str(metrics["subnet"]),
        })  # fmt: skip
    meta = ensemble_meta(members, rows, plan.source)
    export = _export(plan, members, meta, bundle)
    eval_batch = int(export_data_config(members[0].meta, None).get("eval_batch_size", 4096))
    # Scored in the training form (a regression's outputs standardised), like a retrained subnet.
    trained = EnsembleSubnet([training_form(m) for m in members], members[0].meta)
    figures = eval_splits(trained, bundle, eval_batch)
    if folds is not None:
        figures |= out_of_fold_figures(trained.members, folds, bundle, eval_batch)
    keep = ("arch", "params", "flops", "seed", f"val_{name}", f"test_{name}")
    doc = {
        "k": len(members),
        "from": plan.source,
        "members": [{k: m[k] for k in keep} | {"path": m["source"]} for m in meta["members"]],
        "params": meta["params"],
        "flops": meta["flops"],
        f"val_{name}": figures[f"val_{name}"],
        f"test_{name}": figures[f"test_{name}"],
        "wall_s": round(time.perf_counter() - started, 2),
        "path": export["path"],
    }
    if folds is not None:
        n_val = len(bundle.val_y)
        doc["validation"] = f"out of fold: each of the {n_val} validation rows scored by the member that held it out"
    result = {
        "task": "ensemble",
        "status": "ok",
        "ensemble": doc,
        "metrics": figures,
        "export": {k: export[k] for k in ("max_abs_diff", "onnx", "files")},
        "paths": {"run_dir": str(plan.out_dir), "subnet": export["path"], "members": str(plan.out_dir / "members")},
    }
    write_json(plan.out_dir / "result.json", result)
    log.info("ensemble of %d (%s): val %s %.4f", len(members), plan.source, name, doc[f"val_{name}"])
    return result


def _export(plan: EnsemblePlan, members: list[Subnet], meta: dict[str, Any], bundle: DataBundle) -> dict[str, Any]:
    """``out_dir/subnet``: the members' average, verified against their own outputs (averaged in float64)."""
    x_ref = bundle.val_x[: plan.verify_samples].detach().float().cpu()
    with torch.no_grad():
        outputs = [copy.deepcopy(m).double().mlp(x_ref.double()) for m in members]
        reference = combine(outputs, members[0].task.is_regression).float()
    onnx = bool(plan.template.recipe.get("onnx", True))
    ensemble = EnsembleSubnet(members, meta)
    return write_export(ensemble, meta, plan.out_dir / "subnet", (x_ref, reference), overwrite=True, onnx=onnx)


def _member(  # noqa: PLR0913 - the plan, which member, its record, the supernet, the data, its fold
    plan: EnsemblePlan, i: int, record: Mapping[str, Any], supernet: Any, bundle: DataBundle, fold: Fold | None
) -> dict:
    """Member `i`'s retraining metrics (``subnet``: its retrained export): the winner's own for
    member 0 (but a fold's), a finished earlier run's, or a new `train_variant` run."""
    member_dir = plan.out_dir / "members" / str(i)
    if i == 0 and fold is None:
        return _copy_winner(plan.winner, member_dir)
    seed = plan.template.seed + (i if plan.source in ("seeds", "folds") else 0)
    marker = None if fold is None else fold.marker()
    done = _trained(member_dir, record["arch"], seed, plan.template.init, marker)
    if done is not None:
        return done
    if plan.source == "top":
        source_dir = member_dir / "source"
        export_subnet(
            supernet,
            tuple(record["arch"]),
            source_dir,
            overwrite=True,
            search_figures=record,
            budget=plan.budget,
            verify_x=bundle.val_x[: plan.verify_samples].cpu(),
            onnx=False,
        )
    else:
        source_dir = Path(plan.template.subnet_dir)
    recipe = {**plan.template.recipe, "onnx": False}  # the ensemble's own export has the ONNX graph
    request = replace(plan.template, subnet_dir=source_dir, recipe=recipe, out_dir=member_dir, seed=seed, compare=False)
    request = request.checked()
    source = load_subnet(source_dir)
    data = export_data_config(source.meta, None)
    bundle = matching_bundle(source, request, data, bundle if fold is None else fold_bundle(bundle, fold))
    log.info("ensemble member %d/%d: %s, seed %d", i + 1, len(plan.records), list(source.arch), seed)
    metrics = train_variant(source, request, bundle, data, request.init, member_dir)
    if marker is not None:
        metrics["fold"] = marker
        write_json(member_dir / "metrics.json", metrics)
    return metrics


def _trained(member_dir: Path, arch: Sequence[int], seed: int, init: str, fold: dict | None) -> dict | None:
    """The metrics of member `member_dir` when a previous run finished it with this arch, seed,
    init and fold (None: not a fold member)."""
    path = member_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    found = (list(metrics.get("arch", [])), metrics.get("seed"), metrics.get("init"), metrics.get("fold"))
    same = found == (list(arch), seed, init, fold)
    if not same or not (member_dir / "subnet").is_dir():
        return None
    return {**metrics, "subnet": str(member_dir / "subnet")}  # where it is now (a run dir may have moved)


def _copy_winner(winner: Mapping[str, Any], member_dir: Path) -> dict:
    """Member 0: the pipeline's retrained winner, copied into `member_dir` with its metrics."""
    target = member_dir / "subnet"
    shutil.rmtree(target, ignore_errors=True)
    member_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(winner["paths"]["subnet"], target)
    metrics = {**winner["metrics"], "subnet": str(target), "copied_from": str(winner["paths"]["subnet"])}
    write_json(member_dir / "metrics.json", metrics)
    return metrics
