"""``model.onnx`` of an export: written with torch's exporter and checked with onnxruntime.

Optional (the ``onnx`` extra): without it, an export is arch.yaml + model.safetensors and says why.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from supernet.io.subnet import Subnet

log = logging.getLogger("supernet.io.export")

ONNX_FILE = "model.onnx"


ONNX_ATOL = 1e-4  # onnxruntime vs PyTorch


# ---------------------------------------------------------------------------- ONNX
def export_onnx(model: Subnet, raw_x: torch.Tensor, path: Path) -> dict[str, Any] | str:
    """ONNX of the full model (normalisation included), checked with onnxruntime when installed.
    Never fails the export: a problem outside our control is logged and recorded as skipped."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return "skipped: onnx is not installed (pip install 'supernet[onnx]')"
    model = model.eval()
    try:
        _save_onnx(model, raw_x[:2].contiguous(), path)
    except Exception as exc:
        path.unlink(missing_ok=True)
        reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        log.warning("ONNX export skipped (%s)", reason)
        return f"skipped: {reason}"
    info: dict[str, Any] = {"file": ONNX_FILE, "input": "raw features (batch, in_features), float32", "opset": None}
    try:
        import onnx

        info["opset"] = int(onnx.load(str(path)).opset_import[0].version)
    except Exception:  # informative only
        pass
    return _check_onnx(model, raw_x, path, info)


def _save_onnx(model: Subnet, example: torch.Tensor, path: Path) -> None:
    """The TorchScript-based exporter (instant for a plain MLP), else the torch.export-based one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                (example,),
                str(path),
                input_names=["input"],
                output_names=["logits"],
                dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                dynamo=False,
            )
        except Exception:  # a torch without it
            program = torch.onnx.export(
                model,
                (example,),
                None,
                input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                dynamo=True,
                verbose=False,
            )
            program.save(str(path))


def has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def onnxruntime_outputs(path: Path, feeds: dict[str, Any]) -> torch.Tensor:
    """The first output of the ONNX file at `path` on `feeds`, run by onnxruntime on the CPU."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, feeds)[0])


def _check_onnx(model: Subnet, raw_x: torch.Tensor, path: Path, info: dict[str, Any]) -> dict[str, Any] | str:
    """onnxruntime's logits against PyTorch's; the file is removed (and the export records why)
    when they cannot be compared or differ by more than `ONNX_ATOL`."""
    if not has_onnxruntime():
        info["checked"] = "no: onnxruntime is not installed"
        return info
    try:
        got = onnxruntime_outputs(path, {"input": raw_x.numpy()})
        with torch.no_grad():
            diff = (got - model(raw_x)).abs().max().item()
    except Exception as exc:
        path.unlink(missing_ok=True)
        log.warning("ONNX export skipped: onnxruntime could not run it (%s)", exc)
        return f"skipped: onnxruntime could not run it ({type(exc).__name__})"
    if not diff < ONNX_ATOL:
        path.unlink(missing_ok=True)
        log.warning("ONNX export skipped: onnxruntime output differs from PyTorch by %.3g", diff)
        return f"skipped: onnxruntime output differs from PyTorch by {diff:.3g} (limit {ONNX_ATOL})"
    info.update({"checked": "onnxruntime", "max_abs_diff": float(diff), "atol": ONNX_ATOL})
    return info
