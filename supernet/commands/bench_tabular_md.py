"""The tabular benchmark's ``tabular.md``: per group and task each method's test figures, wins, paired gains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from supernet.core.metrics import METRICS
from supernet.data.benchmark_sets import BENCHMARK_SETS, GROUPS

BASELINE_METHODS = ("mlp", "hgb", "realmlp", "lightgbm")  # the methods that are not supernet variants, shown last


def tabular_md(records: list[dict[str, Any]], skipped: Sequence[str] = ()) -> str:
    """Markdown: for each group of sets (``confirm`` first: no rule was chosen on them; then
    ``tune``), per set each method's test metric (params, wall s); then, per task, the mean
    (accuracy; regression: RMSE over the set's best RMSE) and the number of sets each method wins."""
    seen = list(dict.fromkeys(r["method"] for r in records))
    # the baselines last
    methods = [m for m in seen if m not in BASELINE_METHODS] + [m for m in seen if m in BASELINE_METHODS]
    splits = len({r.get("split") for r in records})
    lines = ["# supernet-bench suite=tabular", ""]
    if splits > 1:
        lines += [f"Each figure is the mean over {splits} test splits (`data.test_seed`); wall s a split.", ""]
    for group in (*GROUPS, ""):
        members = [r for r in records if _group(r["set"]) == group]
        if members:
            lines += _group_tables(group, members, methods, splits)
    lines += [f"- {line}" for line in skipped]
    return "\n".join(lines) + "\n"


def _group(name: str) -> str:
    """A set's group in the registry (a name outside it, as in a hand-made record: none)."""
    bench = BENCHMARK_SETS.get(name)
    return "" if bench is None else bench.group


GROUP_TITLES = {
    "confirm": "confirm: sets no rule was chosen on",
    "tune": "tune: sets the defaults are chosen on",
}


def _group_tables(group: str, records: list[dict[str, Any]], methods: list[str], splits: int) -> list[str]:
    """One group's task tables and, over several splits, its paired table; each heading names
    the group (none for sets outside the registry)."""
    lines = [f"# {GROUP_TITLES[group]} ({len({r['set'] for r in records})} sets)", ""] if group else []
    by_set: dict[str, dict[str, dict]] = {}
    for r in mean_records(records):
        by_set.setdefault(r["set"], {})[r["method"]] = r
    for task in ("classification", "regression"):
        sets = {s: rows for s, rows in by_set.items() if next(iter(rows.values()))["task"] == task}
        if sets:  # the methods of this task (a small classification table's ensemble is not a regression's)
            lines += _task_table(task, sets, [m for m in methods if any(m in rows for rows in sets.values())])
    if splits > 1:
        lines += paired_table(records, methods[0], [m for m in BASELINE_METHODS if m in methods])
    return lines


def paired_table(records: list[dict[str, Any]], method: str, baselines: Sequence[str]) -> list[str]:
    """`method` against each baseline, paired by test split: per set the mean gain with its
    standard error over the splits, and the splits won / level / lost. A gain is accuracy points
    above the baseline, or for a regression the percentage by which the RMSE is below it."""
    if not baselines:
        return []
    value = {(r["set"], r["method"], r.get("split")): r for r in records}
    sets = list(dict.fromkeys(r["set"] for r in records if r["method"] == method))
    lines = [
        f"## {method} against the baselines, paired by test split",
        "",
        "Gain: accuracy points above the baseline (regression: % of the baseline's RMSE below it); "
        "± one standard error over the splits; splits won / level / lost.",
        "",
        "| set | " + " | ".join(baselines) + " |",
        "|---|" + "---|" * len(baselines),
    ]
    for name in sets:
        splits = [k[2] for k in value if k[:2] == (name, method)]
        cells = [_paired_cell([_gain(value, name, method, b, s) for s in splits]) for b in baselines]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


# Per task: a method's gain over a baseline from (ours, theirs): accuracy points above it, or the
# percentage of the baseline's RMSE below it; and the summary row's label, digits, and whether each
# value is read over the set's best (an RMSE / the best RMSE).
GAINS = {
    "classification": lambda ours, theirs: 100 * (ours - theirs),
    "regression": lambda ours, theirs: 100 * (theirs - ours) / theirs,
}
SUMMARIES = {"classification": ("mean accuracy", 4, False), "regression": ("mean {} / best", 3, True)}


def _gain(value: Mapping[tuple, dict], name: str, method: str, baseline: str, split: Any) -> float | None:
    ours, theirs = value.get((name, method, split)), value.get((name, baseline, split))
    if ours is None or theirs is None or ours["value"] is None or theirs["value"] is None:
        return None
    return GAINS[ours["task"]](ours["value"], theirs["value"])


def _paired_cell(gains: list[float | None]) -> str:
    import numpy as np

    g = np.array([x for x in gains if x is not None], dtype=float)
    if len(g) == 0:
        return "-"
    se = g.std(ddof=1) / np.sqrt(len(g)) if len(g) > 1 else float("nan")
    won, lost = int((g > 1e-9).sum()), int((g < -1e-9).sum())
    return f"{g.mean():+.2f} ± {se:.2f} ({won} / {len(g) - won - lost} / {lost})"


def mean_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per (set, method): the mean value, validation value, params and wall seconds of
    its test splits (records without ``split`` are their own mean)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["set"], r["method"]), []).append(r)
    means = []
    for group in groups.values():
        mean = {k: v for k, v in group[0].items() if k != "split"}
        for key, digits in (("value", 5), ("val_value", 5), ("params", None), ("wall_s", 2)):
            values = [r[key] for r in group if r[key] is not None]
            mean[key] = round(_mean(values), digits) if values else None  # digits None: an int
        means.append(mean)
    return means


def _task_table(task: str, sets: dict[str, dict[str, dict]], methods: list[str]) -> list[str]:
    metric = METRICS[next(iter(next(iter(sets.values())).values()))["metric"]]
    sign = 1 if metric.higher_is_better else -1
    lines = [
        f"## {task}: test {metric.name} (params, wall s)",
        "",
        "| set | rows | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    wins = dict.fromkeys(methods, 0)
    for name, rows in sets.items():
        best = max((r for r in rows.values() if r["value"] is not None), key=lambda r: sign * r["value"])
        wins[best["method"]] += 1
        cells = [_cell(rows.get(m), m == best["method"]) for m in methods]
        lines.append(f"| {name} | {next(iter(rows.values()))['rows']:,} | " + " | ".join(cells) + " |")
    walls = [sum(rows[m]["wall_s"] for rows in sets.values() if m in rows) for m in methods]
    return [
        *lines,
        "",
        "| | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
        _summary_row(task, sets, methods, metric),
        "| wins | " + " | ".join(str(wins[m]) for m in methods) + " |",
        "| wall s, all sets | " + " | ".join(f"{w:.0f}" for w in walls) + " |",
        "",
    ]


def _summary_row(task: str, sets: dict[str, dict[str, dict]], methods: list[str], metric) -> str:
    """The mean accuracy, or the mean of RMSE / the set's best RMSE (1.0: best everywhere)."""
    label, digits, over_best = SUMMARIES[task]
    cells = []
    for m in methods:
        values = [
            rows[m]["value"] / (min(r["value"] for r in rows.values()) if over_best else 1)
            for rows in sets.values()
            if m in rows
        ]
        partial = "" if len(values) == len(sets) else f" ({len(values)} of {len(sets)} sets)"
        cells.append(f"{_mean(values):.{digits}f}{partial}")
    return f"| {label.format(metric.name)} | " + " | ".join(cells) + " |"


def _cell(r: Mapping[str, Any] | None, best: bool) -> str:
    if r is None:
        return "-"
    value = f"**{r['value']:.4f}**" if best else f"{r['value']:.4f}"
    params = "" if r["params"] is None else f"{_short(r['params'])}, "
    return f"{value} ({params}{r['wall_s']:.1f} s)"


def _short(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}k" if n >= 1e3 else str(n)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
