"""Re-ranking a search's finalists with a slower, better-informed score before the winner is chosen.

Inherited-weight accuracy is cheap enough to score thousands of candidates but mis-ranks some of
them (mostly small nets; docs/experiments/fidelity.md). With ``search.finetune.top=K`` the search
runs as usual, then its K best feasible candidates (single objective: by inherited val_acc;
several objectives: the K best-val_acc members of the Pareto front) are scored again after a
short fine-tune (supernet/evaluation/finetune.py), and the winner is the best of them by that
score (``search.finetune.score``: the validation loss, lower is better, or the accuracy):

    supernet-search ckpt_path=last search.constraints.max_params=100000 search.finetune.top=10

The search loop itself never sees the second score, so a search can be resumed with another
``search.finetune`` and only its ending changes. Written next to the search's outputs
(`supernet.search.report`): ``finetune.csv``, and in result.json a ``finetune`` section; ``best``
(and best/arch.yaml) then carries ``finetuned_acc`` and ``finetuned_loss``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from supernet.core.space import Arch, as_arch
from supernet.evaluation.recipe import FinetuneRecipe
from supernet.search.base import check_range


def check_finetune(node: Mapping) -> None:
    """Raise `UsageError` for a bad ``search.finetune.*`` value (defaults already filled in)."""
    FinetuneRecipe.from_cfg(node, "search.finetune", other_keys=("top",))
    check_range("finetune.top", node["top"], 0, integer=True)
    check_range("finetune.steps", node["steps"], 1, integer=True)  # 0 would re-rank by inherited loss


def rerank(finalists: Sequence[dict], score: Callable[[list[Arch]], list[dict]], by: str = "loss") -> dict:
    """Score `finalists` (history records, best first by inherited val_acc) with `score`
    (``archs -> [{"acc", "loss"}]``), rank them by `by` and return ``{"best": record +
    finetuned_acc/loss, "finalists": rows, "changed": bool}``. Ties keep the inherited order."""
    scores = score([as_arch(r["arch"]) for r in finalists])
    rows = [
        {**r, "finetuned_acc": float(s["acc"]), "finetuned_loss": float(s["loss"]), "inherited_rank": i + 1}
        for i, (r, s) in enumerate(zip(finalists, scores, strict=True))
    ]
    sign = -1.0 if by == "acc" else 1.0  # sorted ascending: high accuracy or low loss first
    order = sorted(range(len(rows)), key=lambda i: sign * rows[i][f"finetuned_{by}"])  # stable: ties keep order
    for place, i in enumerate(order):
        rows[i]["finetuned_rank"] = place + 1
    best = rows[order[0]]
    return {"best": best, "finalists": rows, "changed": order[0] != 0}
