"""``supernet-export``: one subnet as a verified compact model (see conf/export.yaml).

supernet-export ckpt_path=outputs/train/runs/<stamp> arch=[256,128] out=subnets/a
supernet-export search_dir=outputs/search/runs/<stamp> out=subnets/best

A supernet checkpoint + an arch (given, or a search's best, with its figures, budget and
checkpoint from ``best/arch.yaml`` and ``result.json``) -> an export dir, verified on the
validation split (never the test split) of the supernet's own data config.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from supernet.core.space import Arch, as_arch
from supernet.errors import UsageError
from supernet.files import to_plain, write_json
from supernet.io.checkpoint import load_supernet
from supernet.io.export import check_budget, check_target, export_subnet
from supernet.io.loading import load_for_scoring

log = logging.getLogger(__name__)

# Keys of best/arch.yaml that describe the search, not the arch's figures.
NOT_FIGURES = ("arch", "space", "constraints", "objectives", "strategy", "seed")


def _read_yaml(path: Path, key: str) -> dict:
    """A YAML mapping; anything else is a usage error naming `key`."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{key}: {path} is not valid YAML ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{key}: {path} is not UTF-8 text: pass a YAML file") from None
    if not isinstance(doc, dict):
        raise UsageError(f"{key}: {path} does not hold a mapping")
    return doc


def _read_json(path: Path, key: str) -> dict:
    """A JSON object, or {} when the file is missing or holds something else."""
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UsageError(f"{key}: {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except UnicodeDecodeError:
        raise UsageError(f"{key}: {path} is not UTF-8 text: pass a JSON file") from None
    return doc if isinstance(doc, dict) else {}


def from_search(search_dir: Any, ckpt_path: Any) -> dict[str, Any]:
    """arch, figures, budget, checkpoint (and its sha256 at search time) from a search run dir."""
    root = Path(str(search_dir))
    if not root.is_dir():
        raise UsageError(
            f"search_dir={search_dir} is not a directory; pass a search run dir (outputs/search/runs/<stamp>)"
        )
    best_file = root / "best" / "arch.yaml"
    if not best_file.is_file():
        raise UsageError(
            f"search_dir={search_dir} has no best/arch.yaml: the search is unfinished or found no feasible arch"
        )
    best = _read_yaml(best_file, "search_dir")
    result = _read_json(root / "result.json", "search_dir")
    request = _read_json(root / "search_request.json", "search_dir")
    if "arch" not in best:
        raise UsageError(f"search_dir={search_dir}: {best_file} has no 'arch'")
    ckpt = ckpt_path if ckpt_path is not None else result.get("ckpt_path") or request.get("ckpt_path")
    if ckpt is None:
        raise UsageError(f"search_dir={search_dir} does not record its checkpoint; pass ckpt_path=")
    figures = {k: v for k, v in best.items() if k not in NOT_FIGURES}
    figures.update(search_dir=str(root), strategy=best.get("strategy"), objectives=best.get("objectives"))
    budget = best.get("constraints") or result.get("constraints") or {}
    return {
        "arch": as_arch(best["arch"]),
        "ckpt_path": ckpt,
        "figures": figures,
        "budget": {k: v for k, v in budget.items() if v is not None},
        # Only checked when the checkpoint is the one the search recorded.
        "ckpt_sha256": result.get("ckpt_sha256") if ckpt_path is None else None,
    }


def resolve_request(cfg: DictConfig) -> dict[str, Any]:
    """Everything the export needs, checked before any file is loaded."""
    if cfg.get("out") in (None, ""):
        raise UsageError("out is required: the export directory, e.g. out=subnets/best")
    if cfg.get("search_dir") is not None:
        if cfg.get("arch") is not None:
            raise UsageError("pass either arch=[...] (with ckpt_path) or search_dir=..., not both")
        request = from_search(cfg.search_dir, cfg.get("ckpt_path"))
    else:
        if cfg.get("ckpt_path") is None or cfg.get("arch") is None:
            raise UsageError(
                "pass ckpt_path=<supernet .ckpt or run dir> and arch=[w1,w2,...], or search_dir=<search run dir>"
            )
        request = {
            "arch": as_arch(cfg.arch),
            "ckpt_path": cfg.ckpt_path,
            "figures": None,
            "budget": {},
            "ckpt_sha256": None,
        }
    request["budget"].update({k: v for k, v in (to_plain(cfg.get("budget")) or {}).items() if v is not None})
    n = cfg.get("verify_samples", 512)
    if n is None or int(n) < 1:
        raise UsageError(f"verify_samples={n} must be a positive integer")
    check_target(Path(str(cfg.out)), bool(cfg.overwrite))
    return request


def run(cfg: DictConfig, out_dir: Path, supernet: Any = None, bundle: Any = None) -> dict[str, Any]:
    """Export one subnet. The pipeline may pass the already-loaded `supernet` and data `bundle`."""
    request = resolve_request(cfg)
    if supernet is None:
        supernet = load_supernet(request["ckpt_path"])
    arch = check_request(cfg, request, supernet)
    supernet, bundle = load_for_scoring(supernet, to_plain(cfg.get("data")) or {}, bundle=bundle)
    summary = export_subnet(
        supernet,
        arch,
        Path(str(cfg.out)),
        overwrite=bool(cfg.overwrite),
        search_figures=request["figures"],
        budget=request["budget"] or None,
        verify_x=bundle.val_x[: int(cfg.verify_samples)],
        onnx=bool(cfg.onnx),
    )
    return _write(out_dir, supernet, summary)


def check_request(cfg: DictConfig, request: dict[str, Any], supernet) -> Arch:
    """The arch, checked against the loaded supernet (the weights the search saw, its space and
    the budget) before any data is read."""
    if request["ckpt_sha256"] and request["ckpt_sha256"] != supernet.sha256:
        raise UsageError(
            f"checkpoint {supernet.path} changed since the search in search_dir={cfg.search_dir} (sha256 differs): "
            "its figures no longer describe these weights; pass ckpt_path= the checkpoint the search used, "
            "or search again"
        )
    arch = supernet.space.validate(request["arch"])
    figures = request["figures"] or {}
    check_budget(
        arch,
        supernet.space.params(arch),
        supernet.space.flops(arch),
        request["budget"],
        figures.get("latency_ms"),
    )
    return arch


def _write(out_dir: Path, supernet, summary: dict[str, Any]) -> dict[str, Any]:
    """result.json in the run dir and one line on stdout."""
    result = {
        "task": "export",
        "status": "ok",
        "export": summary,
        "ckpt_path": str(supernet.path),
        "ckpt_sha256": supernet.sha256,
        "paths": {"run_dir": str(out_dir), "export": summary["path"]},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "result.json", result)
    print(
        f"exported {summary['arch']} ({summary['params']} params, max |diff| {summary['max_abs_diff']:.2g}) "
        f"to {summary['path']}"
    )
    return result
