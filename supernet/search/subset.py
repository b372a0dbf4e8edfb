"""Multi-fidelity scoring (``search.fidelity=subset``): every new candidate is scored first on a
fixed, stratified subset of the validation split, and only those that can still matter on all of it.

    supernet-search ckpt_path=<run> search.fidelity=subset search.subset.size=0.25
    supernet-search ckpt_path=<run> search.fidelity=full          # every candidate on the full split

The subset (`stratified_rows`) is drawn once per search from the search seed, class by class in
the split's proportions (regression: `random_rows`, a plain seeded sample), and saved in
search_state.json, so a resume scores on the same rows. After a batch is scored on it, `promoted`
picks the candidates the full split scores: the best ``top`` fraction of the batch, and any
candidate within ``margin`` of the leaders' subset scores (several objectives: whose point, its
score improved by ``margin``, no feasible scored arch dominates). The margin follows the metric's
direction (`within_margin`): a higher-is-better metric (accuracy, r2) is raised by ``margin``; a
lower-is-better one (RMSE, log loss, whose units are the data's) is lowered by the fraction
``margin`` of itself. The subset score is the record's ``<key>_subset`` field (``val_acc_subset``
for accuracy). Only full-split scores choose the best arch, the Pareto front and the finalists; a
candidate never promoted is told to the strategy with its subset score. See supernet/search/runner.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from supernet.core.metrics import METRIC_KEYS
from supernet.errors import UsageError
from supernet.search.base import COMMON_DEFAULTS, SCORE_ALIAS, constrained_ranks, fitness_key, minimised, score_key
from supernet.search.pareto import dominates, pareto_front

FIDELITIES = ("subset", "full")


def check_fidelity(cfg: dict) -> None:
    """Check ``search.fidelity`` and ``search.subset`` of a config with defaults filled in (in place)."""
    if cfg["fidelity"] not in FIDELITIES:
        raise UsageError(f"search.fidelity={cfg['fidelity']!r} must be one of {list(FIDELITIES)}")
    node = cfg["subset"] = {**COMMON_DEFAULTS["subset"], **(cfg.get("subset") or {})}
    unknown = sorted(set(node) - set(COMMON_DEFAULTS["subset"]))
    if unknown:
        raise UsageError(f"search.subset has unknown key(s) {unknown}: use {sorted(COMMON_DEFAULTS['subset'])}")
    size = node["size"]
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size <= 0 or (size >= 1 and size % 1):
        raise UsageError(
            f"search.subset.size={size!r} must be a fraction of the validation split in (0, 1) "
            "or a whole number of rows"
        )
    for key in ("top", "margin"):
        value = node[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise UsageError(f"search.subset.{key}={value!r} must be in (0, 1]")
    if cfg.get("evaluator", "inherited") == "standalone" and (
        cfg["fidelity"] != "full" or node != COMMON_DEFAULTS["subset"]
    ):
        raise UsageError(
            "search.fidelity and search.subset mean nothing with search=standalone (every candidate is trained "
            "and scored once): drop them"
        )


def subset_rows(size: float, n_rows: int) -> int:
    """The number of rows ``search.subset.size`` asks for out of a split of `n_rows`."""
    rows = max(1, round(size * n_rows)) if size < 1 else int(size)
    if rows > n_rows:
        raise UsageError(
            f"search.subset.size={size} is larger than the validation split ({n_rows} rows): use at most "
            f"{n_rows}, or a fraction in (0, 1)"
        )
    return rows


def stratified_rows(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """`n` row indices of `labels`, sorted, drawn class by class in the split's proportions
    (largest remainders round the quotas); the same for the same labels, `n` and `seed`."""
    rng = random.Random(f"search.subset:{int(seed)}")
    by_class: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        by_class.setdefault(int(c), []).append(i)
    classes = sorted(by_class)
    exact = {c: n * len(by_class[c]) / len(labels) for c in classes}
    quota = {c: math.floor(exact[c]) for c in classes}
    for c in sorted(classes, key=lambda c: (quota[c] - exact[c], c))[: n - sum(quota.values())]:
        quota[c] += 1
    return sorted(i for c in classes for i in rng.sample(by_class[c], quota[c]))


def random_rows(n_rows: int, n: int, seed: int) -> list[int]:
    """`n` of `n_rows` row indices, sorted, drawn uniformly from `seed` (the subset of a regression
    split, whose targets have no classes to stratify by)."""
    rng = random.Random(f"search.subset:{int(seed)}")
    return sorted(rng.sample(range(n_rows), n))


def fitness_view(record: dict, key: str = SCORE_ALIAS) -> dict:
    """The record a strategy is told: its full-split score `key`, or its subset score if never promoted."""
    if record.get(key) is None:
        return {**record, key: record[f"{key}_subset"]}
    return record


def within_margin(value: float, key: str, margin: float) -> float:
    """The subset score `value` improved by `margin` in the direction of `key`: plus `margin` when
    higher is better, times ``1 - margin`` when lower is better (a relative margin: RMSE has units)."""
    return value + margin if METRIC_KEYS[key] > 0 else value * (1.0 - margin)


def promoted(batch: list[dict], history: list[dict], objectives: list[str], top: float, margin: float) -> list[bool]:
    """Which records of `batch` (new, scored on the subset) the full split scores: the best
    ``ceil(top * len(batch))`` by subset score (constrained dominance with several objectives),
    and any feasible one within `margin` of the subset scores of `history` and the batch."""
    key = score_key(objectives)
    views = [fitness_view(r, key) for r in batch]
    if len(objectives) > 1:
        ranks, crowd = constrained_ranks(views, objectives)
        order = sorted(range(len(batch)), key=lambda i: (ranks[i], -crowd[i], i))
    else:
        order = sorted(range(len(batch)), key=lambda i: (_negated(fitness_key(views[i], key)), i))
    keep = [False] * len(batch)
    for i in order[: math.ceil(top * len(batch))]:
        keep[i] = True
    leaders = _subset_front([*history, *batch], objectives, key)
    for i, r in enumerate(batch):
        if r["feasible"] and not keep[i]:
            point = minimised({**r, key: within_margin(r[f"{key}_subset"], key, margin)}, objectives)
            keep[i] = not any(dominates(p, point) for p in leaders)
    return keep


def _subset_front(records: list[dict], objectives: list[str], key: str) -> list[tuple[float, ...]]:
    """The feasible records' non-dominated points by subset score (one objective: the best)."""
    points = [
        minimised({**r, key: r[f"{key}_subset"]}, objectives)
        for r in records
        if r["feasible"] and r.get(f"{key}_subset") is not None
    ]
    return [points[i] for i in pareto_front(points)] if points else []


def _negated(key: tuple) -> tuple:
    return tuple(-float(v) for v in key)
