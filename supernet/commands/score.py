"""``supernet-score``: inherited-weight accuracy of archs from a JSON file -> scores.json.

supernet-score ckpt_path=last archs_file=my_archs.json split=test
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from supernet.core.device import pick_device
from supernet.core.space import as_arch
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.files import to_plain, write_json
from supernet.io.checkpoint import load_supernet
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


def run(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Score the archs of ``archs_file``: read and check everything, score, write scores.json."""
    if cfg.split not in ("val", "test"):
        raise UsageError(f"split={cfg.split!r} must be val or test")
    if cfg.ckpt_path is None:
        raise UsageError(CKPT_REQUIRED)
    supernet = load_supernet(cfg.ckpt_path)
    archs = read_archs(cfg.archs_file, supernet.space)  # checked before any data is read
    device = pick_device(str(cfg.device))
    supernet, bundle = load_for_scoring(supernet, to_plain(cfg.data))
    scores = score_archs(supernet, bundle, archs, cfg.split, device)
    return _write(out_dir, supernet, cfg.split, scores)


def score_archs(supernet, bundle, archs: list, split: str, device) -> list[dict[str, Any]]:
    """One row per arch: size, validation accuracy and, for ``split=test``, test accuracy."""
    val = InheritedEvaluator(supernet.model, supernet.space, bundle.val_x, bundle.val_y, device=device).evaluate(archs)
    test_acc = None
    if split == "test":
        if bundle.test_x is None:
            raise UsageError(f"split=test but data={bundle.name} has no test split")
        test = InheritedEvaluator(supernet.model, supernet.space, bundle.test_x, bundle.test_y, device=device)
        test_acc = test.accuracies(archs)
    scores = []
    for i, (arch, record) in enumerate(zip(archs, val)):
        row = {"arch": list(arch), "params": record["params"], "flops": record["flops"], "val_acc": record["val_acc"]}
        if test_acc is not None:
            row["test_acc"] = test_acc[i]
        scores.append(row)
    return scores


def _write(out_dir: Path, supernet, split: str, scores: list[dict]) -> dict[str, Any]:
    """scores.json and result.json in the run dir; one JSON line per arch on stdout."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "scores.json", {"ckpt_path": str(supernet.path), "split": split, "scores": scores})
    result = {
        "task": "score",
        "status": "ok",
        "n": len(scores),
        "scores": scores,
        "paths": {"run_dir": str(out_dir), "scores": str(out_dir / "scores.json")},
    }
    write_json(out_dir / "result.json", result)
    for row in scores:
        print(json.dumps(row))
    return result
