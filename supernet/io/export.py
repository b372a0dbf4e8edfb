"""Exported subnets: a directory with ``arch.yaml`` + ``model.safetensors`` (+ ``model.onnx``).

An export is the compact model of one arch with its own (sliced) weights, the input normalisation
and everything needed to feed it raw inputs, verified before it is published:

    supernet-export ckpt_path=outputs/train/runs/<stamp> arch=[256,128] out=subnets/a
    supernet-export search_dir=outputs/search/runs/<stamp> out=subnets/best
    python -c "from supernet import load_subnet; m = load_subnet('subnets/best'); print(m.arch)"

Layout of an export directory::

    arch.yaml          plain YAML (read with yaml.safe_load): widths, input shape, classes,
                       normalisation, preprocess spec, params, FLOPs, the supernet checkpoint and
                       its sha256, the search's figures and budget, verification results
    model.safetensors  tensors ``layers.<i>.weight`` / ``layers.<i>.bias`` (i = 0 .. depth, the
                       last one is the classifier head), float32
    model.onnx         the whole model (normalisation included, raw flattened input
                       ``(batch, in_features)`` -> logits), when the ``onnx`` extra is installed

Reading an export back (`Subnet`, `load_subnet`) is `supernet.io.subnet`. Writing is atomic:
everything goes into a hidden sibling directory, is verified there (the files are read back and
their logits compared with the reference), and only then renamed into place, so a crash never
leaves a half-written export. A non-empty target needs ``overwrite=True``, and even then only a
previous export is replaced (a folder holding nothing but the files above, its ``arch.yaml``
marked ``format: supernet-subnet``), never a folder with anything else in it. The hidden siblings a
killed export left (``.<out>.tmp-<pid>-*``, ``.<out>.old-*``) are removed by the next export of
``<out>``. The files get the umask's permissions, like any file the user writes.
"""

from __future__ import annotations

import copy
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from supernet.core.task import Task
from supernet.data.datasets import per_feature
from supernet.errors import UsageError
from supernet.files import dump_yaml, load_yaml, process_alive, to_plain
from supernet.io.checkpoint import file_sha256
from supernet.io.onnx_export import ONNX_FILE, export_onnx
from supernet.io.subnet import (
    ARCH_FILE,
    FORMAT,
    FORMAT_VERSION,
    PICKLE_SUFFIXES,
    WEIGHTS_FILE,
    Subnet,
    expected_shapes,
    fold_output_scale,
    load_subnet,
)

__all__ = [  # the reading side lives in supernet.io.subnet; its names stay importable from here
    "ARCH_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "ONNX_FILE",
    "PICKLE_SUFFIXES",
    "WEIGHTS_FILE",
    "Subnet",
    "check_budget",
    "check_target",
    "expected_shapes",
    "export_subnet",
    "load_subnet",
    "write_export",
]

log = logging.getLogger(__name__)

VERIFY_ATOL = 1e-5  # exported logits vs the reference (supernet or trained model)


# ---------------------------------------------------------------------------- checks
def check_budget(
    arch: Sequence[int], params: int, flops: int, budget: Mapping[str, Any] | None, latency_ms: float | None = None
) -> None:
    """UsageError naming the bound when `arch` breaks ``max_params`` / ``max_flops`` (and
    ``max_latency_ms`` when the search measured a latency)."""
    budget = budget or {}
    for key, value, unit in (
        ("max_params", params, "parameters"),
        ("max_flops", flops, "FLOPs"),
        ("max_latency_ms", latency_ms, "ms latency"),
    ):
        limit = budget.get(key)
        if limit is not None and value is not None and value > limit:
            raise UsageError(
                f"arch {list(arch)} has {value} {unit}, above the budget {key}={limit}; "
                "pick an arch within the budget (e.g. the search's best) or raise the bound"
            )


def check_target(out_dir: Path, overwrite: bool, key: str = "out") -> None:
    """Refuse to write where it would silently replace something (before any work is done):
    ``overwrite=True`` replaces only an export, a folder holding nothing but the files this
    module writes, with a supernet ``arch.yaml``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{key}={out_dir} is a file; pass a directory path for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise UsageError(f"{key}={out_dir} exists and is not empty; pass overwrite=true to replace it")
        foreign = _foreign_entry(out_dir)
        if foreign is not None:
            raise UsageError(
                f"{key}={out_dir} is not an export written by supernet-export (it holds {foreign}): "
                "pick another out, or empty it yourself"
            )


EXPORT_FILES = (ARCH_FILE, WEIGHTS_FILE, ONNX_FILE, f"{ONNX_FILE}.data")  # .data: ONNX external weights


def _foreign_entry(out_dir: Path) -> str | None:
    """What makes `out_dir` not an export (a file the exporter never writes, or an ``arch.yaml``
    without its format marker), else None."""
    for entry in sorted(out_dir.iterdir()):
        if entry.name not in EXPORT_FILES or not entry.is_file() or entry.is_symlink():
            return entry.name + ("/" if entry.is_dir() else "")
    arch = out_dir / ARCH_FILE
    if not arch.is_file():
        return f"no {ARCH_FILE}"
    try:
        meta = load_yaml(arch.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return f"{ARCH_FILE} without format: {FORMAT}"
    return None


# ---------------------------------------------------------------------------- writing
def write_export(
    model: Subnet,
    meta: Mapping[str, Any],
    out_dir: str | Path,
    reference: tuple[torch.Tensor, torch.Tensor],
    overwrite: bool = False,
    onnx: bool = True,
    onnx_writer: Callable[[Subnet, Path], dict[str, Any] | str] | None = None,
) -> dict[str, Any]:
    """Write `model` + `meta` as an export directory, atomically, and verify it.

    ``reference = (x, logits)``: normalised inputs and the outputs the export must reproduce
    (the supernet's for that arch, or the trained model's) within `VERIFY_ATOL` (relative past 1);
    the files are read back with `load_subnet` for that check, so what is verified is what was written.
    ``meta["params"]`` must equal the model's parameter count. `onnx_writer(model, path)`, where
    given, writes ``model.onnx`` of the model read back in place of `export_onnx`'s graph of the
    encoded features, and returns its ``onnx`` info (the estimators' raw rows: `supernet.io.onnx_rows`).
    Returns a summary dict.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, overwrite)
    n_params = model.num_params()
    if n_params != int(meta["params"]):
        raise RuntimeError(f"exported model has {n_params} parameters, the closed form says {meta['params']}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out_dir)
    tmp = _make_tmp_dir(out_dir)
    try:
        meta = _write_verified(model, dict(meta), tmp, reference, onnx, onnx_writer)
        _fsync_dir_files(tmp)
        _publish(tmp, out_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(p.name for p in out_dir.iterdir())
    diff = meta["verification"]["max_abs_diff"]
    log.info(
        "exported %s to %s (max |diff| %.2g, onnx: %s)",
        list(model.arch),
        out_dir,
        diff,
        meta["onnx"] if isinstance(meta["onnx"], str) else "ok",
    )
    return {
        "path": str(out_dir),
        "arch": list(model.arch),
        "params": int(meta["params"]),
        "flops": meta.get("flops"),
        "max_abs_diff": float(diff),
        "onnx": meta["onnx"],
        "files": files,
    }


def _write_verified(
    model: Subnet,
    meta: dict[str, Any],
    tmp: Path,
    reference: tuple[torch.Tensor, torch.Tensor],
    onnx: bool,
    onnx_writer: Callable[[Subnet, Path], dict[str, Any] | str] | None = None,
) -> dict[str, Any]:
    """The files of the export in `tmp`: weights, then ``arch.yaml``, read back and compared with
    `reference`, then the ONNX model; returns the final ``arch.yaml`` dict."""
    from safetensors.torch import save

    # Through an ordinary open() (not save_file, which creates the file -rw-------): the export's
    # files get the umask's permissions, like any file the user writes.
    (tmp / WEIGHTS_FILE).write_bytes(save(model.weights(), metadata={"format": FORMAT}))
    meta["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(tmp / WEIGHTS_FILE)}
    x_ref, logits_ref = (t.detach().cpu().float() for t in reference)
    _write_yaml(tmp / ARCH_FILE, meta)  # provisional, so load_subnet can read the files back
    written = load_subnet(tmp, key="export")
    with torch.no_grad():
        diff = (written.mlp(x_ref) - logits_ref).abs().max().item()
    # Relative past 1: a regression's outputs in its targets' units (prices...) carry float32's
    # relative rounding, and the folded output scale rounds once more.
    limit = VERIFY_ATOL * max(1.0, logits_ref.abs().max().item())
    if not diff < limit:  # also catches NaN
        raise RuntimeError(
            f"verification failed: the exported model's outputs differ from the reference by {diff:.3g} "
            f"(limit {limit:.3g}) on {len(x_ref)} inputs"
        )
    meta["verification"] = {
        "max_abs_diff": float(diff),
        "n_inputs": len(x_ref),
        "atol": limit,
        "params_match_closed_form": True,
    }
    norm = written.normalize
    raw = x_ref * per_feature(norm.std, written.in_features) + per_feature(norm.mean, written.in_features)
    if not onnx:
        meta["onnx"] = "skipped: onnx=false"
    elif onnx_writer is not None:
        meta["onnx"] = onnx_writer(written, tmp / ONNX_FILE)
    else:
        meta["onnx"] = export_onnx(written, raw, tmp / ONNX_FILE)
    _write_yaml(tmp / ARCH_FILE, meta)
    return meta


def _write_yaml(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(dump_yaml(to_plain(doc)))


def _fsync_dir_files(directory: Path) -> None:
    for p in directory.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def _tmp_prefix(out_dir: Path, kind: str) -> str:
    return f".{out_dir.name}.{kind}-"


def _make_tmp_dir(out_dir: Path) -> Path:
    """A hidden sibling ``.<out>.tmp-<pid>-<random>`` made with the umask's permissions (an export
    is an ordinary folder; `tempfile.mkdtemp` would make it private)."""
    while True:
        tmp = out_dir.parent / f"{_tmp_prefix(out_dir, 'tmp')}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue


def _remove_leftovers(out_dir: Path) -> None:
    """Delete the hidden siblings a killed export of `out_dir` left behind: its ``.tmp-<pid>-``
    folders whose writer is gone, and an ``.old-`` folder once the export it held aside is
    replaced (with `out_dir` missing, that folder holds the only copy: it is kept)."""
    for kind in ("tmp", "old"):
        for leftover in out_dir.parent.glob(f"{_tmp_prefix(out_dir, kind)}*"):
            if not leftover.is_dir() or leftover.is_symlink():
                continue
            if kind == "old" and not out_dir.is_dir():
                continue
            pid = leftover.name[len(_tmp_prefix(out_dir, kind)) :].split("-")[0]
            if kind == "tmp" and pid.isdigit() and process_alive(int(pid)):
                continue  # another export writing right now
            log.info("removing %s, left behind by an interrupted export", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _publish(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Rename the finished temp dir into place. A previous export is moved aside first and deleted
    only after the new one is in place (rename over a non-empty directory is not possible). The
    target is checked again here: something may have been put there while the export was made."""
    old = None
    if out_dir.exists():
        check_target(out_dir, overwrite)
        if any(out_dir.iterdir()):
            old = out_dir.parent / f"{_tmp_prefix(out_dir, 'old')}{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out_dir, old)
        else:
            out_dir.rmdir()
    os.rename(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------- from a supernet
def export_subnet(
    loaded: Any,
    arch: Sequence[int],
    out_dir: str | Path,
    overwrite: bool = False,
    search_figures: Mapping[str, Any] | None = None,
    budget: Mapping[str, Any] | None = None,
    verify_x: torch.Tensor | None = None,
    onnx: bool = True,
) -> dict[str, Any]:
    """Export `arch` of a loaded supernet (`supernet.io.checkpoint.LoadedSupernet`) to `out_dir`.

    `verify_x`: normalised real inputs (e.g. the validation split); when None the supernet's own
    validation split is loaded. `search_figures`: the search's record of this arch (val_acc,
    latency_ms...); `budget`: the search's constraints (max_params, max_flops, max_latency_ms).
    Raises UsageError for an arch outside the space, a broken budget or an occupied `out_dir`.
    """
    space = loaded.space
    arch = space.validate(arch)
    out_dir = Path(out_dir)
    params, flops = space.params(arch), space.flops(arch)
    figures = dict(search_figures or {})
    check_budget(arch, params, flops, budget, figures.get("latency_ms"))
    check_target(out_dir, overwrite)
    uncalibrated = loaded.model.norm == "batch" and loaded.model.calibration is None
    if verify_x is None or uncalibrated:
        from supernet.data.datasets import load_data
        from supernet.io.checkpoint import data_config

        bundle = load_data(data_config(loaded))
        verify_x = bundle.val_x[:512] if verify_x is None else verify_x
        if uncalibrated:
            loaded.model.calibrate(bundle.train_x)
    model, reference = _extracted(loaded, arch, verify_x)
    meta = _supernet_meta(loaded, arch, params, flops)
    if figures:
        meta["search"] = figures
    if budget:
        meta["budget"] = dict(budget)
    return write_export(model, meta, out_dir, reference, overwrite=overwrite, onnx=onnx)


def _extracted(
    loaded: Any, arch: Sequence[int], verify_x: torch.Tensor
) -> tuple[Subnet, tuple[torch.Tensor, torch.Tensor]]:
    """`arch`'s weights copied out of the supernet into a `Subnet`, and the reference
    ``(x, logits)`` of the supernet for that arch that the export must reproduce."""
    space, norm = loaded.space, loaded.data["normalization"]
    task = Task.from_dict(loaded.data.get("task"))
    model = Subnet(space.in_features, arch, space.num_classes, norm["mean"], norm["std"])
    plain = loaded.model.extract(arch)
    with torch.no_grad():
        for i, layer in enumerate(plain[::2]):  # Linear, ReLU, Linear, ... -> the Linear layers
            model.layers[i].weight.copy_(layer.weight.cpu())
            model.layers[i].bias.copy_(layer.bias.cpu())
        fold_output_scale(model, task)  # a regression export outputs the targets' own units
        # The reference runs on the CPU in float32, like the check of the written files: a GPU's
        # TF32 matmuls would differ by more than VERIFY_ATOL.
        supernet = loaded.model
        if next(supernet.parameters()).device.type != "cpu":
            supernet = copy.deepcopy(supernet).cpu()
        was_training = supernet.training
        x = verify_x.detach().float().cpu()
        reference = task.to_units(supernet.eval()(x, arch).float())
        supernet.train(was_training)
    return model, (x, reference)


def task_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    """``arch.yaml``'s record of the task: its kind, targets, class weights, target scaling."""
    task = Task.from_dict(info.get("task"))
    return {"task": task.to_dict(), "outputs": task.outputs_meaning}


def _supernet_meta(loaded: Any, arch: Sequence[int], params: int, flops: int) -> dict[str, Any]:
    """``arch.yaml`` of an arch exported with inherited weights (before the writer adds its checks)."""
    info, space = loaded.data, loaded.space
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": list(arch),
        "activation": "relu",
        "input_shape": list(info["input_shape"]),
        "in_features": space.in_features,
        "num_classes": space.num_classes,
        "class_names": list(info["class_names"]),
        "normalization": {"mean": list(info["normalization"]["mean"]), "std": list(info["normalization"]["std"])},
        "preprocess": dict(info.get("preprocess") or {}),
        **task_fields(info),
        "params": params,
        "flops": flops,
        "data": {"name": info["name"], "config": info.get("config") or {"name": info["name"]}},
        "supernet": {"checkpoint": str(loaded.path), "sha256": loaded.sha256, "space": space.to_dict()},
        "weights_from": "supernet (inherited, no retraining)",
    }
