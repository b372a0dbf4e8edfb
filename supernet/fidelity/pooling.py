"""Pool the rank jobs of one supernet into one larger sample, for tighter intervals.

One stratified sample of 50 archs knows tau and the supernet's tau minus size's too loosely to
tell a supernet that adds a little beyond size from one that adds nothing
(docs/experiments/fidelity.md). More samples settle it, and the stand-alone cache makes each one
pay only for its new archs. `supernet-report` pools every group of rank jobs
that ranked the same supernet (the same checkpoint bytes) on the same data with the same
stand-alone recipe, seeds, bands and fine-tune, but drew different samples (``seed``), and
reports one fidelity report over the union of their archs::

    supernet-rank -m ckpt_path=<supernet> seed=0,1,2 rank.cache=sa.json
    supernet-report outputs/rank/multiruns/<stamp>     # report.md "Pooled over samples", pooled.json

An arch drawn by two samples counts once, with the first job's scores (the inherited and
stand-alone values are the same in both; a fine-tuned score differs a little, as each job draws
its fine-tune batches from its own seed). Jobs that ranked by different metrics (``rank.metric``,
rank.json's ``metric``; none: accuracy) are never pooled together.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supernet.core.space import parse_arch
from supernet.evaluation.recipe import FinetuneRecipe
from supernet.fidelity.metrics import (
    ACCURACY,
    BANDS,
    BOOTSTRAP,
    TOPK,
    fidelity_report,
    metric_doc,
    predictor_name,
    score_column,
    with_size,
)


@dataclass(frozen=True)
class Pool:
    """The rank jobs of one supernet and recipe over several samples, and their pooled reports."""

    ckpt_path: str
    jobs: list[Path]
    samples: list[int]
    report: dict[str, Any]  # ranked by inherited accuracy
    with_size: dict[str, Any]  # ranked by inherited accuracy and size together (`metrics.with_size`)
    finetuned: dict[str, Any] | None  # ranked by the fine-tuned score; None without a fine-tune
    finetuned_with_size: dict[str, Any] | None
    finetune: dict[str, Any] | None  # the fine-tune recipe
    metric: dict[str, Any] = field(default_factory=lambda: dict(ACCURACY))  # what the archs were ranked by

    def rankings(self) -> list[tuple[str, dict[str, Any]]]:
        """``(how it was ranked, report)`` for each ranking the pool has, in the report's order."""
        pairs = [
            (predictor_name(metric=self.metric), self.report),
            (predictor_name(size=True, metric=self.metric), self.with_size),
            (predictor_name(self.finetune), self.finetuned),
            (predictor_name(self.finetune, size=True), self.finetuned_with_size),
        ]
        return [(name, report) for name, report in pairs if report is not None]


def _read_rank_json(job: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((job / "rank.json").read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # a failed or unfinished job: the per-job table already says so
    return doc if isinstance(doc, dict) and doc.get("archs") and doc.get("seeds") else None


def _finetune_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """A rank job's fine-tune recipe; None when it ran none (its other settings then do not matter)."""
    finetune = (doc.get("rank") or {}).get("finetune") or {}
    return finetune if finetune.get("steps") else None


def _metric_of(doc: dict[str, Any]) -> dict[str, Any]:
    """A rank job's metric (rank.json written before ``rank.metric`` existed: accuracy)."""
    return metric_doc(doc.get("metric"))


def pool_key(doc: dict[str, Any]) -> str:
    """What must be equal for two rank jobs' archs to be one sample: the supernet, the data, the
    stand-alone recipe and seeds (the target), the metric, the bands and the fine-tune (the
    predictors)."""
    name = _metric_of(doc)["name"]
    return json.dumps(
        [
            *([] if name == "accuracy" else [name]),
            doc.get("ckpt_sha256") or doc.get("ckpt_path"),
            doc.get("data"),
            doc.get("recipe"),
            doc.get("seeds"),
            (doc.get("rank") or {}).get("bands"),
            _finetune_of(doc),
        ],
        sort_keys=True,
    )


def pool_rank_jobs(jobs: list[Path]) -> list[Pool]:
    """One `Pool` per group of at least two rank jobs with different samples (see the module
    docstring); jobs without a readable ``rank.json`` are left out. In the jobs' order."""
    groups: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    for job in jobs:
        doc = _read_rank_json(job)
        if doc is not None:
            groups[pool_key(doc)].append((job, doc))
    pools = []
    for members in groups.values():
        if len({doc.get("seed") for _, doc in members}) < 2:
            continue  # one sample (or the same one twice): nothing to pool
        pools.append(_pool(members))
    return pools


def _pool(members: list[tuple[Path, dict]]) -> Pool:
    first = members[0][1]
    rows: dict[str, dict] = {}
    for _, doc in members:
        for row in doc["archs"]:
            rows.setdefault(row["arch"], row)
    archs = [parse_arch(a) for a in rows]
    params = [int(r["params"]) for r in rows.values()]
    metric = _metric_of(first)
    column, sign = score_column(metric), 1 if metric["higher_is_better"] else -1
    by_seed = {s: [float(r[f"standalone_{column}_seed{s}"]) for r in rows.values()] for s in first["seeds"]}
    rank = first.get("rank") or {}
    args = (rank.get("bands") or BANDS, rank.get("topk") or TOPK)
    resamples = max(int((doc.get("rank") or {}).get("bootstrap") or 0) for _, doc in members) or BOOTSTRAP

    def rank_by(scores: list[float]) -> dict[str, Any]:
        return fidelity_report(archs, params, scores, by_seed, *args, resamples, 0, metric=metric)

    # The predictor: higher is better (minus an inherited RMSE).
    inherited = [sign * float(r[f"inherited_{column}"]) for r in rows.values()]
    finetune = _finetune_of(first)
    finetuned = finetuned_with_size = None
    if finetune is not None:
        recipe = FinetuneRecipe.from_cfg(
            {k: finetune[k] for k in ("steps", "lr", "batch_size", "score")}, "rank.finetune"
        )
        scores = [
            {k: float(r[f"finetuned_{k}"]) for k in ("acc", "loss") if r.get(f"finetuned_{k}") not in (None, "")}
            for r in rows.values()
        ]
        tuned = [recipe.rank_value(s) for s in scores]
        # The mean rank is taken over the pooled archs, not read from the jobs: a rank depends on
        # which other archs are in the sample.
        finetuned, finetuned_with_size = rank_by(tuned), rank_by(with_size(tuned, params))
    return Pool(
        ckpt_path=str(first.get("ckpt_path")),
        jobs=[job for job, _ in members],
        samples=sorted({int(doc["seed"]) for _, doc in members}),
        report=rank_by(inherited),
        with_size=rank_by(with_size(inherited, params)),
        finetuned=finetuned,
        finetuned_with_size=finetuned_with_size,
        finetune=finetune,
        metric=metric,
    )


def pool_doc(pool: Pool, root: Path) -> dict[str, Any]:
    """``pooled.json``'s entry for one pool: where it came from and the full report of each ranking."""
    return {
        "ckpt_path": pool.ckpt_path,
        "jobs": [str(j.relative_to(root)) or "." for j in pool.jobs],  # jobs found under root
        "samples": pool.samples,
        "n": pool.report["n"],
        "metric": pool.metric,
        "inherited": pool.report,
        "with_size": pool.with_size,
        "finetune": pool.finetune,
        "finetuned": pool.finetuned,
        "finetuned_with_size": pool.finetuned_with_size,
    }
