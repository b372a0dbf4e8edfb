"""``supernet-bench suite=tabular``: supernet against scikit-learn on real tables, offline.

    supernet-bench suite=tabular                    # every benchmark table an installed package ships
    supernet-bench suite=tabular quick=true         # wdbc, digits, concrete with short runs (the tests)
    supernet-bench suite=tabular tabular.sets=[letter,pima]
    supernet-bench suite=tabular 'tabular.variants={default: [], ens5: [retrain.ensemble=5]}'
    supernet-bench suite=tabular tabular.repeats=5  # 5 test splits a set (data.test_seed), their mean

Each set (`supernet.data.benchmark_sets`, fixed 20% test split) goes through every supernet
variant (the pipeline in this process, with that variant's overrides) and through scikit-learn's
``MLP*`` and ``HistGradientBoosting*`` with their defaults, on the same split (numeric columns
standardised for them, no periodic features). A variant's record is its run's model: the
ensemble where the run built one (``retrain.ensemble``; a small table's default), else the
winner; an ensemble's run also yields the winner alone, as ``<variant>:winner``. Writes
``tabular.json`` (one record per set and method: set, task, rows, method, metric, value,
val_value, params, wall_s) and ``tabular.md`` (the table, the mean accuracy and the number of
wins per method). Wall seconds are fitting only: the data load is shared, and the supernet runs
write no ONNX and no figures. A set whose package is not installed is skipped with one line
naming the package. With ``tabular.repeats=R`` every method runs on R test splits of each set
(``data.test_seed`` 12345, 12346, ...; ``tabular.first_split`` moves the start; records carry
their ``split``) and the table shows their means: on a small
table one test row is half a point, and R splits make a comparison R times less noisy. A second
table pairs the first variant with each baseline split by split: the mean gain, its standard
error, and the splits won, level and lost.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from supernet.baseline import hgb_baseline, lightgbm_baseline, missing_peer, mlp_baseline, realmlp_baseline
from supernet.commands.bench_tabular_md import BASELINE_METHODS, mean_records, paired_table, tabular_md
from supernet.commands.compose import compose_config
from supernet.commands.pipeline import check_pipeline_config, run_pipeline
from supernet.core.metrics import DEFAULT_METRIC, METRICS
from supernet.data.benchmark_sets import BENCHMARK_SETS, GROUPS, group_balance, install_hint, missing_package
from supernet.data.datasets import load_data
from supernet.data.splits import TEST_SEED
from supernet.errors import UsageError
from supernet.files import to_plain, write_json

__all__ = [  # tabular_md, mean_records, paired_table live in supernet.commands.bench_tabular_md
    "BASELINES",
    "in_group",
    "mean_records",
    "one_set",
    "paired_table",
    "run_tabular",
    "tabular_md",
]

log = logging.getLogger(__name__)

QUICK_SETS = ("wdbc", "digits", "concrete")
QUICK_OVERRIDES = (  # short runs: what the tests can afford
    "trainer.max_epochs=2",
    "retrain.max_epochs=2",
    "train.min_steps=null",
    "retrain.min_steps=null",
    "search.budget=60",
    "search.population=20",
    "search.finetune.top=3",
)
# Every supernet run: no TensorBoard, no progress bar, no ONNX or figures (not part of fitting).
QUIET = ("logger=none", "trainer.enable_progress_bar=false", "figures=false", "export.onnx=false", "retrain.onnx=false")
BASELINES = dict(zip(BASELINE_METHODS, (mlp_baseline, hgb_baseline, realmlp_baseline, lightgbm_baseline), strict=True))
PEERS = ("realmlp", "lightgbm")  # optional: their packages are the `bench` extra (pip install ".[bench]")
BASELINE_DATA = ("data.scaler=standard", "data.periodic=null")


def run_tabular(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Every chosen set through every method; tabular.json and tabular.md in `out_dir`."""
    settings = to_plain(cfg.tabular)
    if settings.get("list"):
        return list_registry()
    names = in_group(chosen_sets(settings.get("sets"), bool(cfg.quick)), settings.get("group", "all"))
    variants = _variants(settings.get("variants"))
    skipped: list[str] = []
    baselines = _baselines(settings.get("baselines")) + _peers(settings.get("peers", "auto"), bool(cfg.quick), skipped)
    repeats = _repeats(settings.get("repeats", 1))
    check_variants(names, variants, cfg)
    records: list[dict[str, Any]] = []
    _quiet_logs()
    for name in names:
        package = missing_package(BENCHMARK_SETS[name])
        if package is not None:
            line = f"skipped data.set={name}: {install_hint(package)}"
            print(line, flush=True)
            skipped.append(line)
            continue
        for split in _splits(repeats, settings.get("first_split", 0)):
            run_dir = out_dir / "runs" / name / ("" if split is None else f"split{split}")
            records += one_set(name, variants, baselines, cfg, run_dir, split)
    write_json(out_dir / "tabular.json", records)
    table = tabular_md(records, skipped)
    (out_dir / "tabular.md").write_text(table)
    print(table)
    paths = {"tabular": str(out_dir / "tabular.json"), "table": str(out_dir / "tabular.md")}
    return {"task": "bench", "suite": "tabular", "status": "ok", "records": len(records), "paths": paths}


def _quiet_logs() -> None:
    """One progress line per record instead of each run's own logs."""
    for name in ("supernet", "pytorch_lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.WARNING)


def chosen_sets(sets: Sequence[str] | None, quick: bool) -> list[str]:
    """``tabular.sets`` checked by name; null: every set (quick: `QUICK_SETS`)."""
    if sets is None:
        return list(QUICK_SETS if quick else BENCHMARK_SETS)
    if isinstance(sets, str):
        sets = [sets]
    unknown = [s for s in sets if s not in BENCHMARK_SETS]
    if unknown:
        raise UsageError(f"tabular.sets names unknown set(s) {unknown}; choose from {sorted(BENCHMARK_SETS)}")
    return list(sets)


def in_group(names: list[str], group: Any) -> list[str]:
    """``tabular.group``: the sets of `names` in group ``tune`` or ``confirm`` (``all``: every one)."""
    if group not in (*GROUPS, "all"):
        raise UsageError(f"tabular.group={group!r} must be one of {', '.join(GROUPS)}, all")
    if group == "all":
        return names
    kept = [n for n in names if BENCHMARK_SETS[n].group == group]
    if not kept:
        raise UsageError(f"tabular.group={group} leaves none of the sets {names}; they are all in the other group")
    return kept


def list_registry() -> dict[str, Any]:
    """``tabular.list=true``: the registry, one JSON object a set on stdout, and on stderr each
    kind's count in each group (`group_balance`), the rule's check."""
    for bench in BENCHMARK_SETS.values():
        row = {"name": bench.name, "task": bench.task, "rows": bench.rows, "group": bench.group}
        print(json.dumps({**row, "package": bench.package, "installed": missing_package(bench) is None}))
    for kind, counts in group_balance().items():
        print(f"{kind:>22}: " + ", ".join(f"{g} {counts[g]}" for g in GROUPS), file=sys.stderr)
    return {"task": "bench", "suite": "tabular", "status": "ok", "listed": len(BENCHMARK_SETS)}


def _variants(variants: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    if variants is None:
        return {"supernet": []}
    if not isinstance(variants, Mapping) or not all(isinstance(v, (list, tuple)) for v in variants.values()):
        raise UsageError(f"tabular.variants={variants!r} must map a name to a list of pipeline overrides")
    return {str(k): [str(o) for o in v] for k, v in variants.items()}


def check_variants(names: Sequence[str], variants: dict[str, list[str]], cfg: DictConfig) -> None:
    """Compose each variant's pipeline config before any set runs, so that a mistyped override is
    a one-line error at once rather than after the sets before it have trained."""
    if not names:
        return
    for variant, overrides in variants.items():
        try:
            _pipeline_cfg(names[0], overrides, cfg)
        except UsageError as err:
            raise UsageError(f"tabular.variants.{variant}: {err}") from None


def _repeats(repeats: Any) -> int:
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise UsageError(f"tabular.repeats={repeats!r} must be an integer >= 1 (test splits per set)")
    return repeats


def _splits(repeats: int, first: Any) -> list[int | None]:
    """The test splits each set runs on: None (the fixed split) alone, or `repeats` of them from
    `first` on (split i holds out data.test_seed 12345 + i), so a second run can confirm a choice
    on splits the first never scored."""
    if isinstance(first, bool) or not isinstance(first, int) or first < 0:
        raise UsageError(f"tabular.first_split={first!r} must be an integer >= 0 (the first repeat's split)")
    if repeats == 1 and first == 0:
        return [None]
    return list(range(first, first + repeats))


def _peers(peers: Any, quick: bool, skipped: list[str]) -> list[str]:
    """``tabular.peers``: the optional peers that run (``auto``: every installed one, none with
    quick=true, whose defaults are no short runs); a peer whose package is missing is skipped
    with one line naming it, printed and kept for the table."""
    if peers == "auto":
        return [] if quick else [p for p in PEERS if missing_peer(p) is None]
    peers = [peers] if isinstance(peers, str) else list(peers or [])
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise UsageError(f"tabular.peers names {unknown}; choose from {list(PEERS)} or auto")
    for peer in [p for p in peers if missing_peer(p) is not None]:
        line = f"skipped peer {peer}: pip install {missing_peer(peer)}"
        print(line, flush=True)
        skipped.append(line)
    return [p for p in peers if missing_peer(p) is None]


def _baselines(names: Sequence[str] | None) -> list[str]:
    names = list(names or [])
    unknown = [n for n in names if n not in BASELINES or n in PEERS]
    if unknown:
        raise UsageError(f"tabular.baselines names {unknown}; choose from {sorted(set(BASELINES) - set(PEERS))}")
    return names


# ---------------------------------------------------------------------------- one set
def one_set(  # noqa: PLR0913 - a set, its methods, the bench config, where, and which test split
    name: str,
    variants: dict[str, list[str]],
    baselines: list[str],
    cfg: DictConfig,
    out_dir: Path,
    split: int | None = None,
) -> list[dict[str, Any]]:
    """The records of set `name` on one test split (`split`: the repeat, None: the fixed split):
    each supernet variant, then each baseline."""
    seed = [] if split is None else [f"data.test_seed={TEST_SEED + split}"]
    records = []
    for variant, overrides in variants.items():
        records += supernet_records(name, variant, _pipeline_cfg(name, [*seed, *overrides], cfg), out_dir / variant)
    # The baselines see numeric columns standardised, as scikit-learn's MLP usually is, and none
    # of the periodic features the supernet's recipe may add: scikit-learn as a user runs it.
    bundle = load_data(_pipeline_cfg(name, [*seed, *BASELINE_DATA], cfg).data)
    metric = METRICS[DEFAULT_METRIC[bundle.task.kind]]
    for method in baselines:
        fitted = BASELINES[method](bundle, seed=int(cfg.seed))
        scores = (fitted[f"test_{metric.short}"], fitted[f"val_{metric.short}"], fitted.get("params"), fitted["fit_s"])
        records.append(_record(name, bundle, method, metric, scores))
        print(_progress(records[-1]), flush=True)
    if split is not None:
        for record in records:
            record["split"] = split
    return records


def _pipeline_cfg(name: str, overrides: list[str], cfg: DictConfig) -> DictConfig:
    quick = list(QUICK_OVERRIDES) if cfg.quick else []
    extra = [str(o) for o in cfg.tabular.overrides]
    wanted = ["data=bench_table", f"data.set={name}", f"seed={cfg.seed}", *QUIET, *quick, *extra, *overrides]
    pipeline_cfg = compose_config("pipeline", wanted)
    check_pipeline_config(pipeline_cfg)
    return pipeline_cfg


def supernet_records(name: str, variant: str, cfg: DictConfig, run_dir: Path) -> list[dict[str, Any]]:
    """One pipeline run: the record of its model (``variant``: the ensemble when it built one, as a
    small table does by default, else the winner), and its winner alone (``variant:winner``) when
    the model is an ensemble."""
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result, state = run_pipeline(cfg, run_dir)
    wall = time.perf_counter() - started - result["phases"]["data"]["wall_s"]
    # Every method is compared on the task's default metric (the baselines' too), whatever
    # search.metric a variant ranks by: retraining and the ensemble score every metric of the task.
    bundle = state.bundle
    metric = METRICS[DEFAULT_METRIC[bundle.task.kind]]
    winner, ensemble = result["winner"], result.get("ensemble")
    ensemble_s = (result["phases"].get("ensemble") or {}).get("wall_s", 0.0)
    retrained = state.results["retrain"]["metrics"]
    single = (retrained[f"test_{metric.short}"], retrained[f"val_{metric.short}"], winner["params"], wall - ensemble_s)
    if not ensemble:
        records = [_record(name, bundle, variant, metric, single)]
    else:
        figures = state.results["ensemble"]["metrics"]
        scores = (figures[f"test_{metric.short}"], figures[f"val_{metric.short}"], ensemble["params"], wall)
        records = [_record(name, bundle, variant, metric, scores)]
        records.append(_record(name, bundle, f"{variant}:winner", metric, single))
    for record in records:
        print(_progress(record), flush=True)
    return records


def _record(name: str, bundle, method: str, metric, scores: tuple) -> dict[str, Any]:
    """One record; `scores`: the test value, the validation value, params (or None), wall seconds."""
    value, val_value, params, wall_s = scores
    return {
        "set": name,
        "task": bundle.task.kind,
        "rows": len(bundle.train_y) + len(bundle.val_y) + (0 if bundle.test_y is None else len(bundle.test_y)),
        "method": method,
        "metric": metric.name,
        "value": None if value is None else round(float(value), 5),
        "val_value": None if val_value is None else round(float(val_value), 5),
        "params": None if params is None else int(params),
        "wall_s": round(float(wall_s), 2),
    }


def _progress(r: Mapping[str, Any]) -> str:
    return f"{r['set']:>14}  {r['method']:<22} test {r['metric']} {r['value']:.4f}  ({r['wall_s']:.1f} s)"
