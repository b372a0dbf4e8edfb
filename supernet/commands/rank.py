"""``supernet-rank``: how well the supernet ranks archs compared with training them alone (conf/rank.yaml).

supernet-rank ckpt_path=last
supernet-rank ckpt_path=outputs/train/runs/<stamp> rank.n=50 rank.epochs=10 rank.seeds=2
supernet-rank ckpt_path=last rank.cache=null          # train everything again, keep nothing
supernet-rank ckpt_path=last rank.metric=mae          # a regression supernet, ranked by MAE

Inherited-weight scores vs stand-alone training on a stratified sample, both in one metric
(``rank.metric``; null: the task's default, accuracy or RMSE; a lower-is-better metric is turned
so that tau, top-k and regret keep their sense); each score is also ranked together with size
(``with_size``), which tells whether the supernet knows anything that size does not. rank.csv
names its score columns after the metric (``inherited_acc``, ``standalone_rmse_mean``...),
rank.json and result.json carry it as ``metric``. Writes rank.json (every metric, bootstrap
intervals, the verdict, per-arch rows), rank.csv, rank.png (the scatter by parameter band),
TensorBoard ``rank/*`` and result.json. Stand-alone results go to the shared cache
(``rank.cache``): a rerun trains only what is missing.
Results and how to read them: docs/experiments/fidelity.md.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from supernet.commands.rank_outputs import rank_figure, rank_rows, write_rank_csv, write_tensorboard
from supernet.commands.score import supernet_metric
from supernet.core.device import pick_device
from supernet.core.metrics import METRICS, Metric, resolve_metric
from supernet.data.datasets import check_data_config
from supernet.errors import UsageError
from supernet.evaluation.finetune import FinetuneRecipe, finetuned_scores
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.evaluation.standalone import Recipe, train_standalone
from supernet.evaluation.standalone_cache import StandaloneCache
from supernet.fidelity.metrics import (
    BOOTSTRAP,
    CONFIDENCE,
    check_bands,
    fidelity_report,
    predictor_name,
    stratified_sample,
    with_size,
)
from supernet.files import to_plain, write_json
from supernet.io.checkpoint import data_config, load_supernet
from supernet.io.loading import CKPT_REQUIRED, load_for_scoring

log = logging.getLogger(__name__)

MIN_BOOTSTRAP = 100  # fewer resamples leave too few in a 2.5% tail for a percentile bound

# One supernet is one draw of its training seed (measured: docs/experiments/fidelity.md).
SEED_HINT = (
    "one supernet is one draw: its training seed moves tau too (Fashion-MNIST: about +-0.04 overall, "
    "+-0.2 within a band of ~20 archs); rank several seeds with `supernet-rank -m ckpt_path=a,b,c` and "
    "read the spread with `supernet-report <that sweep dir>`"
)


def _int_at_least(cfg: Any, key: str, lo: int) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v).is_integer() or v < lo:
        raise UsageError(f"rank.{key}={v!r} must be an integer >= {lo}")
    return int(v)


def check_rank_config(cfg: Any) -> dict[str, Any]:
    """Everything about ``rank.*`` that can be checked before the checkpoint is read."""
    rank = to_plain(cfg)
    out = {
        "n": _int_at_least(rank, "n", 3),
        "seeds": _int_at_least(rank, "seeds", 1),
        "bins": _int_at_least(rank, "bins", 1),
        "bands": check_bands(rank.get("bands") or []),
        "cache": rank.get("cache"),
        "bootstrap": _int_at_least(rank, "bootstrap", 0) if rank.get("bootstrap") is not None else 0,
    }
    if 0 < out["bootstrap"] < MIN_BOOTSTRAP:
        raise UsageError(
            f"rank.bootstrap={out['bootstrap']} is too few resamples for a {CONFIDENCE:.0%} interval: "
            f"use 0 (no intervals) or at least {MIN_BOOTSTRAP}, e.g. {BOOTSTRAP}"
        )
    topk = rank.get("topk") or []
    if not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in topk):
        raise UsageError(f"rank.topk={topk!r} must be a list of integers >= 1, e.g. [5, 10]")
    out["topk"] = list(topk)
    out["metric"] = _metric_name(rank.get("metric"))
    out["finetune"] = FinetuneRecipe.from_cfg(rank.get("finetune"), "rank.finetune").to_dict()
    Recipe.from_cfg(rank, "rank")  # epochs < 1, lr <= 0...: stop before any work
    return out


def _metric_name(name: Any) -> str | None:
    """``rank.metric``: null or a known metric's name (whether it fits the task needs the checkpoint)."""
    if name is None:
        return None
    if str(name) not in METRICS:
        raise UsageError(f"rank.metric={str(name)!r} is unknown; choose one of {sorted(METRICS)}")
    return str(name)


def metric_info(metric: Metric) -> dict[str, Any]:
    """A metric as rank.json records it (what `supernet.fidelity` reads, without torch)."""
    return {"name": metric.name, "key": metric.key, "higher_is_better": metric.higher_is_better}


def rank_data_config(cfg: DictConfig, supernet) -> dict[str, Any]:
    """A chosen data group (``data=<name>``: the node has a name) as is; otherwise the supernet's
    own data config with the non-null ``data.*`` keys on top."""
    node = to_plain(cfg.get("data")) or {}
    if node.get("name"):
        check_data_config(node)
        return node
    return data_config(supernet, node)


@dataclass
class RankInputs:
    """What the rank job reads before any training: the calibrated supernet, its data, the recipe."""

    supernet: Any
    bundle: Any
    device: torch.device
    recipe: Recipe
    cache: StandaloneCache
    started: float  # perf_counter when the data started loading (timing.total_s counts from here)
    metric: Metric = METRICS["accuracy"]


@dataclass
class RankScores:
    """Every score of the sample: inherited, fine-tuned (None without ``rank.finetune.steps``),
    stand-alone per seed (in the metric's own values); and the seconds each took."""

    archs: list
    params: list[int]
    inherited: list[float]
    finetune: FinetuneRecipe
    finetuned: list[dict] | None
    by_seed: dict[int, list[float]]
    seconds: dict[str, float]
    metric: Metric = METRICS["accuracy"]

    @property
    def predictor(self) -> list[float]:
        """The inherited scores with higher meaning better (minus an RMSE): what is ranked."""
        sign = self.metric.sign
        return self.inherited if sign == 1 else [sign * v for v in self.inherited]


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Rank a stratified sample by the supernet and by stand-alone training; write the reports."""
    settings = check_rank_config(cfg.rank)
    inputs = read_inputs(cfg, settings)
    scores = score_sample(cfg, settings, inputs)
    report, rankings = rank_reports(cfg, settings, scores)
    rows = rank_rows(
        scores.archs,
        scores.params,
        scores.inherited,
        scores.by_seed,
        settings["bands"],
        scores.finetuned,
        metric_info(scores.metric),
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    write_rank_csv(out_dir / "rank.csv", rows)
    fig = rank_figure(rows, report, settings["bands"])
    fig.savefig(out_dir / "rank.png", dpi=120)
    if cfg.logger.name == "tensorboard":
        write_tensorboard(out_dir, report, fig, rankings)
    timing = _timing(inputs, scores)
    doc = {
        "ckpt_path": str(inputs.supernet.path),
        "ckpt_sha256": inputs.supernet.sha256,
        "data": inputs.bundle.summary(),
        "space": inputs.supernet.space.to_dict(),
        "seed": int(cfg.seed),
        "rank": settings,
        "recipe": inputs.recipe.to_dict(),
        "device": str(inputs.device),
        "timing": timing,
        **report,
        "finetuned": None,  # (kept when there is no fine-tune: readers look for the key)
        **rankings,
        "archs": rows,
    }
    write_json(out_dir / "rank.json", doc)
    result = _result(out_dir, inputs, report, rankings, timing)
    write_json(out_dir / "result.json", result)
    for rep in (report, *rankings.values()):
        print(rep["verdict"])
    print(SEED_HINT)
    return result


def read_inputs(cfg: DictConfig, settings: dict[str, Any]) -> RankInputs:
    """Check what needs the checkpoint (``rank.n`` against the space, the recipe, the cache file)
    before the data is loaded, then load and calibrate."""
    if cfg.get("ckpt_path") is None:
        raise UsageError(CKPT_REQUIRED)
    device = pick_device(str(cfg.get("device", "auto")))
    supernet = load_supernet(cfg.ckpt_path)
    space = supernet.space
    if settings["n"] > space.size():
        raise UsageError(
            f"rank.n={settings['n']} is above the {space.size()} archs in the space: use at most {space.size()}"
        )
    metric = supernet_metric(settings["metric"], supernet, "rank.metric")
    if metric.kind == "regression" and settings["finetune"]["steps"] and settings["finetune"]["score"] == "acc":
        raise UsageError("rank.finetune.score=acc needs a classification; the supernet is a regression: use loss")
    data_cfg = rank_data_config(cfg, supernet)
    recipe = Recipe.from_cfg(to_plain(cfg.rank), "rank", batch_size_default=data_cfg.get("batch_size"))
    cache = StandaloneCache(settings["cache"])  # a corrupt cache file stops here, before training

    started = time.perf_counter()
    # In the supernet's task (`load_for_scoring`): stand-alone nets learn as it did, scored alike.
    supernet, bundle = load_for_scoring(supernet, data_cfg=data_cfg)
    if (bundle.in_features, bundle.num_classes) != (space.in_features, space.num_classes):
        raise UsageError(
            f"data={bundle.name} has {bundle.in_features} features and {bundle.num_classes} classes but the "
            f"supernet expects {space.in_features} and {space.num_classes}: use the data it was trained on"
        )
    metric = resolve_metric(metric.name, bundle.task, bundle.num_classes, "rank.metric")
    return RankInputs(supernet, bundle, device, recipe, cache, started, metric)


def score_sample(cfg: DictConfig, settings: dict[str, Any], inputs: RankInputs) -> RankScores:
    """The inherited metric, the optional fine-tune and stand-alone training of the stratified sample."""
    supernet, bundle, device, space = inputs.supernet, inputs.bundle, inputs.device, inputs.supernet.space
    metric = inputs.metric
    torch.set_float32_matmul_precision("high")
    archs = stratified_sample(space, settings["n"], int(cfg.seed), settings["bins"])
    params = [space.params(a) for a in archs]

    t0 = time.perf_counter()
    evaluator = InheritedEvaluator(
        supernet.model, space, bundle.val_x, bundle.val_y, device=device, metric=metric, task=bundle.task
    )
    inherited = evaluator.scores(archs)
    inherited_s = time.perf_counter() - t0
    finetune = FinetuneRecipe.from_cfg(to_plain(cfg.rank).get("finetune"), "rank.finetune")
    finetuned, finetune_s = None, 0.0
    if finetune.steps:
        t0 = time.perf_counter()
        extra = None if metric.name == "accuracy" else metric  # accuracy: acc and loss, as always
        finetuned = finetuned_scores(
            supernet.model, archs, bundle, finetune, seed=int(cfg.seed), device=device, metric=extra
        )
        finetune_s = time.perf_counter() - t0

    seeds = list(range(settings["seeds"]))
    t0 = time.perf_counter()
    standalone = train_standalone(
        archs, space, bundle, inputs.recipe, seeds, device=device, cache=inputs.cache, metric=metric
    )
    standalone_s = time.perf_counter() - t0
    by_seed = {s: [standalone[(a, s)] for a in archs] for s in seeds}
    seconds = {"inherited": inherited_s, "finetune": finetune_s, "standalone": standalone_s}
    return RankScores(archs, params, inherited, finetune, finetuned, by_seed, seconds, metric)


def rank_reports(cfg: DictConfig, settings: dict[str, Any], scores: RankScores) -> tuple[dict, dict[str, dict]]:
    """The fidelity report of the inherited ranking, and the extra rankings, each a full report:
    the inherited score and size together (does the supernet know what size does not?), and with
    a fine-tune the same two for the fine-tuned score. Every predictor is higher-is-better; the
    targets are the metric's own values (see `fidelity_report`)."""
    metric = metric_info(scores.metric)

    def rank_by(values: list[float], name: str | None = None) -> dict[str, Any]:
        """``name`` (how it was scored) heads the verdict of every ranking but the inherited one."""
        rep = fidelity_report(
            scores.archs,
            scores.params,
            values,
            scores.by_seed,
            settings["bands"],
            settings["topk"],
            settings["bootstrap"],
            int(cfg.seed),
            metric=metric,
        )
        if name is not None:
            rep["verdict"] = f"ranked by {name}: {rep['verdict']}"
        log.info("verdict: %s", rep["verdict"])
        return rep

    report = rank_by(scores.predictor)
    both = with_size(scores.predictor, scores.params)
    rankings = {"with_size": rank_by(both, predictor_name(size=True, metric=metric))}
    if scores.finetuned is not None:
        tuned = [scores.finetune.rank_value(s) for s in scores.finetuned]
        ft = scores.finetune.to_dict()
        rankings["finetuned"] = rank_by(tuned, predictor_name(ft))
        rankings["finetuned_with_size"] = rank_by(with_size(tuned, scores.params), predictor_name(ft, size=True))
    return report, rankings


def _timing(inputs: RankInputs, scores: RankScores) -> dict[str, Any]:
    return {
        "inherited_scoring_s": round(scores.seconds["inherited"], 3),
        "finetune_s": round(scores.seconds["finetune"], 3),
        "standalone_s": round(scores.seconds["standalone"], 3),
        "standalone_trained": inputs.cache.misses,
        "standalone_cached": inputs.cache.hits,
        "total_s": round(time.perf_counter() - inputs.started, 3),
    }


def _result(out_dir: Path, inputs: RankInputs, report: dict, rankings: dict[str, dict], timing: dict) -> dict:
    """result.json: the headline figures of every ranking, the timing and the files."""
    overall = report["all"]
    return {
        "task": "rank",
        "status": "ok",
        "metric": inputs.metric.name,
        "objective": overall["kendall_tau"],
        "metrics": {k: v for k, v in overall.items() if not isinstance(v, list)},
        "bands": {name: b.get("kendall_tau") for name, b in report["bands"].items()},
        "kendall_tau_ci": overall["kendall_tau_ci"],
        "params_gap_ci": overall["params_gap_ci"],
        "verdict": report["verdict"],
        "finetuned": None,
        **{key: _summary(rep) for key, rep in rankings.items()},
        "timing": timing,
        "ckpt_path": str(inputs.supernet.path),
        "data": inputs.bundle.summary(),
        "device": str(inputs.device),
        "paths": {
            "run_dir": str(out_dir),
            "rank_json": str(out_dir / "rank.json"),
            "rank_csv": str(out_dir / "rank.csv"),
            "rank_png": str(out_dir / "rank.png"),
            "cache": str(inputs.cache.path) if inputs.cache.path else None,
        },
    }


def _summary(report: dict) -> dict:
    """The headline figures of a fidelity report (result.json's view of the fine-tuned one)."""
    overall = report["all"]
    keys = ("kendall_tau", "kendall_tau_ci", "params_tau", "params_gap", "params_gap_ci", "spearman_rho", "regret")
    return {
        **{k: overall.get(k) for k in keys},
        "bands": {name: b.get("kendall_tau") for name, b in report["bands"].items()},
        "verdict": report["verdict"],
    }
