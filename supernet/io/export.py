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

Safety: `load_subnet` never unpickles anything (YAML ``safe_load`` + safetensors), checks every
key and shape against ``arch.yaml`` and the weights' sha256, and names what is wrong. Writing is
atomic: everything goes into a hidden sibling directory, is verified there (the files are read
back and their logits compared with the reference), and only then renamed into place, so a crash
never leaves a half-written export. A non-empty target needs ``overwrite=True``, and even then only
a previous export (a directory with ``arch.yaml``) is replaced, never an arbitrary folder.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from supernet.data.datasets import Normalize
from supernet.errors import UsageError
from supernet.io.checkpoint import file_sha256

log = logging.getLogger(__name__)

FORMAT = "supernet-subnet"
FORMAT_VERSION = 1
ARCH_FILE = "arch.yaml"
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
VERIFY_ATOL = 1e-5  # exported logits vs the reference (supernet or trained model)
ONNX_ATOL = 1e-4  # onnxruntime vs PyTorch
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar")


# ---------------------------------------------------------------------------- the model
class Subnet(nn.Module):
    """A plain MLP with its input normalisation: raw inputs ``(N, ...)`` in, logits out.

    ``forward(raw)`` flattens to ``(N, in_features)``, normalises with the saved mean/std and runs
    ``mlp``; ``mlp(x)`` takes already-normalised inputs (what `supernet.data.datasets.load_data` returns).
    ``preprocess(inputs)`` turns a DataFrame (tabular exports) or images (image-folder exports)
    into the raw features ``forward`` expects, using the saved preprocess spec.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        num_classes: int,
        mean: Sequence[float],
        std: Sequence[float],
        dropout: float = 0.0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.arch = tuple(int(w) for w in hidden)
        dims = [int(in_features), *self.arch, int(num_classes)]
        self.normalize = Normalize(list(mean), list(std))
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.dropout = float(dropout)
        self.in_features, self.num_classes = dims[0], dims[-1]
        self.meta: dict[str, Any] = dict(meta or {})

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], dropout: float = 0.0) -> Subnet:
        """A freshly initialised model of the shape described by an ``arch.yaml`` dict."""
        norm = meta["normalization"]
        return cls(meta["in_features"], meta["arch"], meta["num_classes"], norm["mean"], norm["std"], dropout, meta)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, in_features)`` -> logits."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
                if self.dropout and self.training:
                    x = F.dropout(x, self.dropout, training=True)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normalize(x.reshape(x.shape[0], -1)))

    def preprocess(self, inputs: Any) -> torch.Tensor:
        """Raw user inputs (DataFrame rows, PIL images or paths, arrays) -> raw features."""
        from supernet.data.tables import raw_features

        return raw_features(self.meta.get("preprocess") or {}, inputs)

    def weights(self) -> dict[str, torch.Tensor]:
        """The tensors saved in ``model.safetensors`` (contiguous CPU copies)."""
        state = self.state_dict()
        return {k: v.detach().cpu().contiguous().clone() for k, v in state.items() if k.startswith("layers.")}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.layers.parameters())


def expected_shapes(meta: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``layers.<i>.weight/bias`` -> shape, for the arch in ``meta``."""
    dims = [int(meta["in_features"]), *(int(w) for w in meta["arch"]), int(meta["num_classes"])]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        shapes[f"layers.{i}.weight"] = (b, a)
        shapes[f"layers.{i}.bias"] = (b,)
    return shapes


# ---------------------------------------------------------------------------- writing
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
    """Refuse to write where it would silently replace something (before any work is done)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{key}={out_dir} is a file; pass a directory path for the export")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise UsageError(f"{key}={out_dir} exists and is not empty; pass overwrite=true to replace it")
        if not (out_dir / ARCH_FILE).is_file():
            raise UsageError(
                f"{key}={out_dir} is not empty and is not an export (no {ARCH_FILE}); "
                "overwrite=true only replaces a previous export: choose another directory"
            )


def write_export(
    model: Subnet,
    meta: Mapping[str, Any],
    out_dir: str | Path,
    reference: tuple[torch.Tensor, torch.Tensor],
    overwrite: bool = False,
    onnx: bool = True,
) -> dict[str, Any]:
    """Write `model` + `meta` as an export directory, atomically, and verify it.

    ``reference = (x, logits)``: normalised inputs and the logits the export must reproduce
    (the supernet's for that arch, or the trained model's) within `VERIFY_ATOL`; the files are read
    back with `load_subnet` for that check, so what is verified is what was written.
    ``meta["params"]`` must equal the model's parameter count. Returns a summary dict.
    """
    out_dir = Path(out_dir)
    check_target(out_dir, overwrite)
    n_params = model.num_params()
    if n_params != int(meta["params"]):
        raise RuntimeError(f"exported model has {n_params} parameters, the closed form says {meta['params']}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        meta = dict(meta)
        from safetensors.torch import save_file

        save_file(model.weights(), str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT})
        meta["weights"] = {"file": WEIGHTS_FILE, "sha256": file_sha256(tmp / WEIGHTS_FILE)}
        x_ref, logits_ref = (t.detach().cpu().float() for t in reference)
        _write_yaml(tmp / ARCH_FILE, meta)  # provisional, so load_subnet can read the files back
        written = load_subnet(tmp, key="export")
        with torch.no_grad():
            diff = (written.mlp(x_ref) - logits_ref).abs().max().item()
        if not diff < VERIFY_ATOL:  # also catches NaN
            raise RuntimeError(
                f"verification failed: the exported model's logits differ from the reference by {diff:.3g} "
                f"(limit {VERIFY_ATOL}) on {len(x_ref)} inputs"
            )
        meta["verification"] = {
            "max_abs_diff": float(diff),
            "n_inputs": len(x_ref),
            "atol": VERIFY_ATOL,
            "params_match_closed_form": True,
        }
        raw = x_ref * _norm_stat(written, "std") + _norm_stat(written, "mean")  # raw inputs for ONNX
        meta["onnx"] = _export_onnx(written, raw, tmp / ONNX_FILE) if onnx else "skipped: onnx=false"
        _write_yaml(tmp / ARCH_FILE, meta)
        _fsync_dir_files(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; an export is an ordinary folder
        _publish(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = sorted(p.name for p in out_dir.iterdir())
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


def _norm_stat(model: Subnet, name: str) -> torch.Tensor:
    """Mean or std broadcast to ``(1, in_features)`` (one value per channel or per feature)."""
    v = getattr(model.normalize, name)
    return v.repeat_interleave(model.in_features // len(v))[None, :]


def _write_yaml(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(yaml.safe_dump(_plain(doc), sort_keys=False))


def _plain(node: Any) -> Any:
    """Plain YAML-safe data (tuples -> lists, numpy/torch scalars -> Python numbers)."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_plain(v) for v in node]
    if hasattr(node, "item") and callable(node.item):
        return node.item()
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    return str(node)


def _fsync_dir_files(directory: Path) -> None:
    for p in directory.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())


def _publish(tmp: Path, out_dir: Path) -> None:
    """Rename the finished temp dir into place. A previous export is moved aside first and deleted
    only after the new one is in place (rename over a non-empty directory is not possible)."""
    old = None
    if out_dir.exists():
        if any(out_dir.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, old / "export")
        else:
            out_dir.rmdir()
    os.rename(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _export_onnx(model: Subnet, raw_x: torch.Tensor, path: Path) -> dict[str, Any] | str:
    """ONNX of the full model (normalisation included), checked with onnxruntime when installed.
    Never fails the export: a problem outside our control is logged and recorded as skipped."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return "skipped: onnx is not installed (pip install 'supernet[onnx]')"
    model = model.eval()
    example = raw_x[:2].contiguous()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:  # the TorchScript-based exporter: instant for a plain MLP
                torch.onnx.export(
                    model,
                    (example,),
                    str(path),
                    input_names=["input"],
                    output_names=["logits"],
                    dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                    dynamo=False,
                )
            except Exception:  # a torch without it: the torch.export-based exporter
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
    try:
        import onnxruntime as ort
    except ImportError:
        info["checked"] = "no: onnxruntime is not installed"
        return info
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"input": raw_x.numpy()})[0])
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
    info = loaded.data
    model = Subnet(
        space.in_features, arch, space.num_classes, info["normalization"]["mean"], info["normalization"]["std"]
    )
    plain = loaded.model.extract(arch)
    with torch.no_grad():
        for i, layer in enumerate(plain[::2]):  # Linear, ReLU, Linear, ... -> the Linear layers
            model.layers[i].weight.copy_(layer.weight.cpu())
            model.layers[i].bias.copy_(layer.bias.cpu())
        # The reference runs on the CPU in float32, like the check of the written files: a GPU's
        # TF32 matmuls would differ by more than VERIFY_ATOL.
        supernet = loaded.model
        if next(supernet.parameters()).device.type != "cpu":
            supernet = copy.deepcopy(supernet).cpu()
        was_training = supernet.training
        x = verify_x.detach().float().cpu()
        reference = supernet.eval()(x, arch).float()
        supernet.train(was_training)
    meta = {
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
        "params": params,
        "flops": flops,
        "data": {"name": info["name"], "config": info.get("config") or {"name": info["name"]}},
        "supernet": {"checkpoint": str(loaded.path), "sha256": loaded.sha256, "space": space.to_dict()},
        "weights_from": "supernet (inherited, no retraining)",
    }
    if figures:
        meta["search"] = figures
    if budget:
        meta["budget"] = dict(budget)
    return write_export(model, meta, out_dir, (x, reference), overwrite=overwrite, onnx=onnx)


# ---------------------------------------------------------------------------- reading
def load_subnet(path: str | Path, key: str = "subnet") -> Subnet:
    """Rebuild the exported model from ``arch.yaml`` + ``model.safetensors``; nothing is unpickled.

    Every problem (missing file, a pickle instead of an export, a key or shape that disagrees
    with ``arch.yaml``, weights changed after export) is a one-line `UsageError`.
    """
    root = Path(path)
    if not root.exists():
        raise UsageError(f"{key}={path} does not exist; pass an export directory written by supernet-export")
    if not root.is_dir():
        if root.suffix.lower() in PICKLE_SUFFIXES or _looks_pickled(root):
            raise UsageError(
                f"{key}={path} is a PyTorch/pickle file; supernet never unpickles model files: pass an export "
                f"directory ({ARCH_FILE} + {WEIGHTS_FILE}) written by supernet-export"
            )
        raise UsageError(f"{key}={path} is a file, not an export directory ({ARCH_FILE} + {WEIGHTS_FILE})")
    for name in (ARCH_FILE, WEIGHTS_FILE):
        if not (root / name).is_file():
            others = sorted(p.name for p in root.glob("*") if p.suffix.lower() in PICKLE_SUFFIXES)
            hint = f" (it holds {others}: pickle files are never loaded)" if others else ""
            raise UsageError(f"{key}={path} is missing {name}{hint}; re-export it with supernet-export")
    meta = _read_meta(root / ARCH_FILE, key)
    tensors = _read_weights(root / WEIGHTS_FILE, key)
    expected = expected_shapes(meta)
    missing = [k for k in expected if k not in tensors]
    extra = sorted(k for k in tensors if k not in expected)
    if missing or extra:
        parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
        raise UsageError(
            f"{key}={path}: {WEIGHTS_FILE} does not match arch {meta['arch']} in {ARCH_FILE}: {'; '.join(parts)}"
        )
    for name, shape in expected.items():
        got = tuple(tensors[name].shape)
        if got != shape:
            raise UsageError(
                f"{key}={path}: tensor {name} has shape {list(got)} in {WEIGHTS_FILE} but arch {meta['arch']} "
                f"in {ARCH_FILE} needs {list(shape)}"
            )
        if not tensors[name].is_floating_point():
            raise UsageError(f"{key}={path}: tensor {name} has dtype {tensors[name].dtype}, expected a float type")
    recorded = (meta.get("weights") or {}).get("sha256")
    if recorded and recorded != file_sha256(root / WEIGHTS_FILE):
        raise UsageError(
            f"{key}={path}: {WEIGHTS_FILE} does not match the sha256 in {ARCH_FILE} (weights.sha256): it was "
            f"changed after export; re-export it, or delete weights.sha256 from {ARCH_FILE} to accept the new weights"
        )
    model = Subnet.from_meta(meta)
    with torch.no_grad():
        for name, param in model.state_dict().items():
            if name in tensors:
                param.copy_(tensors[name].float())
    return model.eval()


def _looks_pickled(path: Path) -> bool:
    """A torch.save zip or a raw pickle stream (protocol 2+ starts with 0x80)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def _read_meta(path: Path, key: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{key}={path} is not valid YAML ({reason}); re-export the subnet") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{key}={path} must hold a mapping of export fields, got {type(meta).__name__}")
    if meta.get("format", FORMAT) != FORMAT or int(meta.get("format_version", FORMAT_VERSION)) > FORMAT_VERSION:
        raise UsageError(
            f"{key}={path}: format {meta.get('format')!r} version {meta.get('format_version')} is not "
            f"{FORMAT} <= {FORMAT_VERSION}; re-export with this version of supernet"
        )
    try:
        arch = [int(w) for w in meta["arch"]]
        in_features, num_classes = int(meta["in_features"]), int(meta["num_classes"])
        mean = [float(v) for v in meta["normalization"]["mean"]]
        std = [float(v) for v in meta["normalization"]["std"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{key}={path}: missing or malformed field ({type(exc).__name__}: {exc}); it needs arch, in_features, "
            "num_classes and normalization.mean/std"
        ) from None
    if not arch or min(arch) < 1 or in_features < 1 or num_classes < 2:
        raise UsageError(f"{key}={path}: arch={arch}, in_features={in_features}, num_classes={num_classes} are invalid")
    if not mean or len(mean) != len(std) or in_features % len(mean) or min(std) <= 0:
        raise UsageError(
            f"{key}={path}: normalization has {len(mean)} means and {len(std)} stds (all > 0 needed), which must "
            f"divide in_features={in_features}"
        )
    meta.update(arch=arch, in_features=in_features, num_classes=num_classes, normalization={"mean": mean, "std": std})
    return meta


def _read_weights(path: Path, key: str) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"{key}={path} is not a valid safetensors file ({reason}); it may be truncated or a pickle: re-export it"
        ) from None
