"""Aggregate a sweep: one row per job, mean and spread per configuration, and plots.

    supernet-report outputs/pipeline/multiruns/<stamp>      # -> report.md, report.csv, report.png

A job is any directory holding a ``result.json`` (pipeline, search, train or rank runs). Its
configuration is read from Hydra's ``.hydra/overrides.yaml``; jobs that differ only in ``seed``
form one configuration, whose mean and standard deviation are reported. Failed jobs are listed
with their error. When the jobs ran searches, ``report_search.png`` shows the best-so-far
validation metric against the number of evaluations for each strategy (mean over seeds).

Pipeline and search jobs report the metric they searched by (``search.metric``): accuracy as
``val_acc`` (inherited weights) and ``test_acc`` (retrained), any other as ``val_<name>`` and
``test_<name>`` (``val_rmse``, ``test_rmse``), in report.csv (with a ``metric`` column when one is
not accuracy), the tables (``val rmse``) and the figures; best-so-far is the lowest so far where
smaller is better. Jobs of different metrics get columns each, and a figure panel each for the
search curves (report.png plots the first metric and names the others).

Rank jobs (``supernet-rank``) report Kendall tau, overall, per parameter band and by size alone,
against the metric they ranked by (``rank.metric``: named in the headings, the figure and, when it
is not accuracy, report.csv's ``metric`` column).
Their configuration is the one of the run that trained their supernet (found above
``ckpt_path``) plus their own overrides, so the supernet's seed is the replicate: how much tau
moves with it is the spread to read before trusting one supernet's ranking::

    supernet-train -m data=fashion_mnist model.heads=per_depth,shared seed=0,1,2
    supernet-rank -m ckpt_path=<the six train job dirs, comma-separated> rank.cache=sa.json
    supernet-report outputs/rank/multiruns/<stamp>      # tau mean ± std per heads setting

Rank jobs of one supernet over several samples (``supernet-rank -m ckpt_path=<it> seed=0,1,2``)
are also pooled into one larger sample, for tighter intervals: a "Pooled over samples" table and
``pooled.json`` (`supernet.fidelity.pooling`). Reading the jobs: `supernet.fidelity.sweep`; the
tables and figures: `supernet.fidelity.tables` and `supernet.fidelity.figures`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from supernet.fidelity.figures import rank_figure, search_figure, winner_figure
from supernet.fidelity.pooling import pool_doc, pool_rank_jobs
from supernet.fidelity.sweep import (
    GAP_COLUMNS,
    METRICS,
    Job,
    aggregate,
    aggregated,
    best_so_far_curves,
    find_jobs,
    load_job,
    rank_metrics,
    ranked_by,
    row_metrics,
    shared_overrides,
    summarize_job,
    sweep_columns,
)
from supernet.fidelity.tables import pooled_tables, rank_tables, search_table, winner_tables
from supernet.files import check_dir_writable, write_json


def write_report(root: Path, out: Path | None = None) -> dict[str, Path]:
    """report.md, report.csv and report.png (and pooled.json, report_search.png when they apply)
    in `out` (default: `root`, the sweep); returns their paths by kind. An `out` that cannot be
    written is a one-line error before the jobs are read."""
    import matplotlib

    matplotlib.use("Agg")

    found = find_jobs(root)
    out = _report_dir(root, out)
    jobs = [load_job(path) for path in found]
    shared = shared_overrides(jobs)
    rows = [summarize_job(j, root, shared) for j in jobs]
    taus = rank_metrics(rows)
    searched = row_metrics(rows)  # the metrics of pipeline and search jobs (accuracy: as always)
    metrics = [*taus, *METRICS] if taus else aggregated(searched)
    groups = aggregate(rows, metrics)
    paths = {"md": out / "report.md", "csv": out / "report.csv", "png": out / "report.png"}
    _write_csv(paths["csv"], rows, groups, taus, metrics, sweep_columns(searched))

    failed = [r for r in rows if r["status"] != "ok"]
    lines = [
        f"# supernet report: {root}",
        "",
        f"{len(rows)} jobs, {len(rows) - len(failed)} ok, {len(failed)} failed.",
        "",
    ]
    if shared:
        lines += ["Shared by every job: `" + " ".join(shared) + "`", ""]
    if taus:  # a sweep of supernet-rank jobs
        lines += _rank_section(root, jobs, rows, groups, taus, paths)
        image = "![tau per configuration](report.png)"
    else:
        lines += winner_tables(rows, groups, searched)
        winner_figure(rows, paths["png"], searched)
        image = "![winners](report.png)"
    if failed:
        lines += ["", "## Failed jobs", ""] + [f"- `{r['job']}` ({r['config']}): {r.get('error')}" for r in failed]

    curves = best_so_far_curves([j.path for j in jobs], rows)
    if curves:
        paths["search_png"] = out / "report_search.png"
        search_figure(curves, paths["search_png"])
        lines += search_table(curves) + ["", "![best so far](report_search.png)"]
    lines += ["", image, ""]
    paths["md"].write_text("\n".join(lines))
    return paths


def _report_dir(root: Path, out: Path | None) -> Path:
    """Where the report goes, checked writable (a read-only sweep takes ``out=``), and made."""
    if out is None:
        check_dir_writable(root, f"supernet-report: {root}", "pass out=<dir> to write the report elsewhere")
        return root
    check_dir_writable(out, f"supernet-report: out={out}", "pick another out=")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _rank_section(
    root: Path, jobs: list[Job], rows: list[dict], groups: list[dict], taus: list[str], paths: dict[str, Path]
) -> list[str]:
    """The tau tables and figure, and the pooled reports (pooled.json) where jobs can be pooled."""
    metric = ranked_by([r for r in rows if r["status"] == "ok" and "tau" in r])
    lines = rank_tables(rows, groups, taus, metric)
    rank_figure(groups, taus, paths["png"], metric)
    pools = pool_rank_jobs([j.path for j in jobs])
    if pools:
        paths["pooled"] = paths["md"].parent / "pooled.json"
        write_json(paths["pooled"], {"pools": [pool_doc(p, root) for p in pools]})
        lines += pooled_tables(pools)
    return lines


def _write_csv(
    path: Path, rows: list[dict], groups: list[dict], taus: list[str], metrics: list[str], job_columns: list[str]
) -> None:
    """One row per job (`job_columns`, see `sweep_columns`), a blank line, then one row per
    configuration (mean and std of `metrics`)."""
    with open(path, "w", newline="") as f:
        named = any(r.get("metric", "accuracy") != "accuracy" for r in rows)  # accuracy alone: as always
        columns = job_columns[:-1] + ["metric"] * named + taus + (GAP_COLUMNS if taus else []) + job_columns[-1:]
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r.get(k) for k in columns})
        f.write("\n")
        agg_cols = ["config", "n"] + [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
        agg_writer = csv.DictWriter(f, fieldnames=agg_cols)
        agg_writer.writeheader()
        agg_writer.writerows(groups)
