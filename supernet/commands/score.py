"""``supernet-score``: inherited-weight scores of archs from a JSON file -> scores.json.

supernet-score ckpt_path=last archs_file=my_archs.json split=test
supernet-score ckpt_path=last archs_file=my_archs.json metric=mae     # a regression, in target units

``metric`` (null: the supernet's task default, accuracy or RMSE) is reported per arch on the
validation split (``val_acc``, ``val_rmse``...) and, with ``split=test``, on the test split too
(``test_acc``, ``test_rmse``...). A regression's values are in the targets' own units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from supernet.core.device import pick_device
from supernet.core.metrics import METRICS, Metric, resolve_metric
from supernet.core.space import as_arch
from supernet.core.task import Task
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.files import to_plain, write_json
from supernet.io.checkpoint import LoadedSupernet, load_supernet
from supernet.io.loading import CKPT_REQUIRED, load_for_scoring


def read_archs(path: Any, space) -> list:
    """The archs of a JSON file (a list of width lists), each checked against the space."""
    if path is None:
        raise UsageError("archs_file is required: a JSON file with a list of archs, e.g. [[256, 128], [64]]")
    p = Path(str(path))
    if not p.is_file():
        raise UsageError(f"archs_file={path} does not exist")
    try:
        items = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"archs_file={path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise UsageError(f"archs_file={path} is not UTF-8 text: pass a JSON file") from None
    if not isinstance(items, list) or not items:
        raise UsageError(f"archs_file={path} must hold a non-empty JSON list of archs (lists of widths)")
    archs = []
    for item in items:
        if not isinstance(item, list):
            raise UsageError(f"archs_file={path}: {item!r} is not a list of widths")
        problem = space.check(as_arch(item))
        if problem:
            raise UsageError(f"archs_file={path}: {problem}")
        archs.append(as_arch(item))
    return archs


def supernet_task(supernet: LoadedSupernet) -> Task:
    """The task the supernet learned (a checkpoint without one: a classification)."""
    return Task.from_dict(supernet.data.get("task"))


def supernet_metric(name: Any, supernet: LoadedSupernet, key: str = "metric") -> Metric:
    """`name` (None: the task's default) checked against the supernet's task before any data is
    read: a one-line `UsageError` naming `key` otherwise."""
    return resolve_metric(None if name is None else str(name), supernet_task(supernet), supernet.space.num_classes, key)


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Score the archs of ``archs_file``: read and check everything, score, write scores.json."""
    if cfg.split not in ("val", "test"):
        raise UsageError(f"split={cfg.split!r} must be val or test")
    if cfg.ckpt_path is None:
        raise UsageError(CKPT_REQUIRED)
    supernet = load_supernet(cfg.ckpt_path)
    archs = read_archs(cfg.archs_file, supernet.space)  # checked before any data is read
    metric = supernet_metric(cfg.get("metric"), supernet)
    device = pick_device(str(cfg.device))
    supernet, bundle = load_for_scoring(supernet, to_plain(cfg.data))  # in the supernet's task and units
    scores = score_archs(supernet, bundle, archs, cfg.split, device, metric)
    return _write(out_dir, supernet, cfg.split, scores, metric)


def key_on(split: str, metric: Metric) -> str:
    """A metric's field on `split`: ``val_acc`` / ``test_acc`` for accuracy, ``val_<name>`` /
    ``test_<name>`` otherwise."""
    return f"{split}_{metric.short}"


def score_archs(
    supernet, bundle, archs: list, split: str, device, metric: Metric | None = None
) -> list[dict[str, Any]]:
    """One row per arch: size, the validation `metric` (default accuracy) and, for
    ``split=test``, the test one."""
    metric = metric or METRICS["accuracy"]
    model, space, task = supernet.model, supernet.space, bundle.task
    val = InheritedEvaluator(model, space, bundle.val_x, bundle.val_y, device=device, metric=metric, task=task)
    records = val.evaluate(archs)
    test = None
    if split == "test":
        if bundle.test_x is None:
            raise UsageError(f"split=test but data={bundle.name} has no test split")
        scorer = InheritedEvaluator(model, space, bundle.test_x, bundle.test_y, device=device, metric=metric, task=task)
        test = scorer.scores(archs)
    scores = []
    for i, (arch, record) in enumerate(zip(archs, records)):
        row = {"arch": list(arch), "params": record["params"], "flops": record["flops"], metric.key: record[metric.key]}
        if test is not None:
            row[key_on("test", metric)] = test[i]
        scores.append(row)
    return scores


def _write(out_dir: Path, supernet, split: str, scores: list[dict], metric: Metric | None = None) -> dict[str, Any]:
    """scores.json and result.json in the run dir; one JSON line per arch on stdout."""
    name = (metric or METRICS["accuracy"]).name
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / "scores.json", {"ckpt_path": str(supernet.path), "split": split, "metric": name, "scores": scores}
    )
    result = {
        "task": "score",
        "status": "ok",
        "metric": name,
        "n": len(scores),
        "scores": scores,
        "paths": {"run_dir": str(out_dir), "scores": str(out_dir / "scores.json")},
    }
    write_json(out_dir / "result.json", result)
    for row in scores:
        print(json.dumps(row))
    return result
