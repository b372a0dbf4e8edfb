"""Re-ranking a search's finalists with a slower, better-informed score before the winner is chosen.

Inherited-weight scores are cheap enough to score thousands of candidates but mis-rank some of
them (mostly small nets; docs/experiments/fidelity.md). With ``search.finetune.top=K`` the search
runs as usual, then its K best feasible candidates (single objective: by the inherited search
metric; several objectives: the K best-scoring members of the Pareto front) are scored again after
a short fine-tune (supernet/evaluation/finetune.py), and the winner is the best of them by that
score (``search.finetune.score``: ``loss``, the validation loss the task trains by, lower is
better; or ``acc``, also spelt ``metric``: the search metric after the fine-tune, in its own
direction):

    supernet-search ckpt_path=last search.constraints.max_params=100000 search.finetune.top=10

The search loop itself never sees the second score, so a search can be resumed with another
``search.finetune`` and only its ending changes. Written next to the search's outputs
(`supernet.search.report`): ``finetune.csv``, and in result.json a ``finetune`` section; ``best``
(and best/arch.yaml) then carries ``finetuned_loss`` and the fine-tuned metric, `finetuned_key`:
``finetuned_acc`` for accuracy, ``finetuned_<name>`` for another metric (``finetuned_rmse``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from supernet.core.metrics import Metric, default_metric
from supernet.core.space import Arch, as_arch
from supernet.evaluation.recipe import FinetuneRecipe
from supernet.search.base import check_range

# search.finetune.score: "metric" is a synonym of "acc" (the search metric, whatever it is).
METRIC_SCORES = ("acc", "metric")


def score_name(metric: Metric | None = None) -> str:
    """The key of the search metric in a fine-tune score: ``acc`` for accuracy, else its name."""
    return (metric or default_metric()).short


def finetuned_key(metric: Metric | None = None) -> str:
    """The record field of the fine-tuned metric: ``finetuned_acc``, ``finetuned_rmse``, ..."""
    return f"finetuned_{score_name(metric)}"


def recipe_node(node: Mapping) -> dict:
    """``search.finetune`` as `FinetuneRecipe` reads it (``score=metric`` read as ``acc``)."""
    node = dict(node)
    if node.get("score") == "metric":
        node["score"] = "acc"
    return node


def check_finetune(node: Mapping) -> None:
    """Raise `UsageError` for a bad ``search.finetune.*`` value (defaults already filled in)."""
    FinetuneRecipe.from_cfg(recipe_node(node), "search.finetune", other_keys=("top",))
    check_range("finetune.top", node["top"], 0, integer=True)
    check_range("finetune.steps", node["steps"], 1, integer=True)  # 0 would re-rank by inherited loss


def rerank(
    finalists: Sequence[dict],
    score: Callable[[list[Arch]], list[dict]],
    by: str = "loss",
    metric: Metric | None = None,
) -> dict:
    """Score `finalists` (history records, best first by the inherited `metric`, accuracy when
    None) with `score` (``archs -> [{"loss", score_name(metric)}]``), rank them by `by` (``loss``,
    lower first; ``acc``/``metric``: the metric, best first in its direction) and return
    ``{"best": record + finetuned_<metric>/loss, "finalists": rows, "changed": bool}``. Ties keep
    the inherited order."""
    metric = metric or default_metric()
    name, key = score_name(metric), finetuned_key(metric)
    scores = score([as_arch(r["arch"]) for r in finalists])
    rows = [
        {**r, key: float(s[name]), "finetuned_loss": float(s["loss"]), "inherited_rank": i + 1}
        for i, (r, s) in enumerate(zip(finalists, scores, strict=True))
    ]
    if by in METRIC_SCORES:  # sorted ascending: the metric's best first
        field, sign = key, -float(metric.sign)
    else:  # low loss first
        field, sign = "finetuned_loss", 1.0
    order = sorted(range(len(rows)), key=lambda i: sign * rows[i][field])  # stable: ties keep order
    for place, i in enumerate(order):
        rows[i]["finetuned_rank"] = place + 1
    best = rows[order[0]]
    return {"best": best, "finalists": rows, "changed": order[0] != 0}
