"""``supernet-score``: inherited-weight accuracy of archs from a JSON file -> scores.json.

supernet-score ckpt_path=last archs_file=my_archs.json split=test

Score a user's list of archs (JSON) with inherited weights -> scores.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from supernet.commands.common import entry_point
from supernet.core.device import pick_device
from supernet.core.space import as_arch
from supernet.data.datasets import load_data
from supernet.errors import UsageError
from supernet.evaluation.inherited import InheritedEvaluator
from supernet.io.checkpoint import data_config, load_supernet
from supernet.io.files import to_plain, write_json


def read_archs(path: Any, space) -> list:
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
    if cfg.split not in ("val", "test"):
        raise UsageError(f"split={cfg.split!r} must be val or test")
    if cfg.ckpt_path is None:
        raise UsageError("ckpt_path is required: a supernet .ckpt, a training run dir, or `last`")
    supernet = load_supernet(cfg.ckpt_path)
    archs = read_archs(cfg.archs_file, supernet.space)
    device = pick_device(str(cfg.device))
    bundle = load_data(data_config(supernet, to_plain(cfg.data)))
    supernet.model.calibrate(bundle.train_x)
    val = InheritedEvaluator(supernet.model, supernet.space, bundle.val_x, bundle.val_y, device=device).evaluate(archs)
    test_acc = None
    if cfg.split == "test":
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
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "scores.json", {"ckpt_path": str(supernet.path), "split": cfg.split, "scores": scores})
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


main = entry_point("score", run)

if __name__ == "__main__":
    main()
