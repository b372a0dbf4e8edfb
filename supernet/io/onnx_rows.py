"""``model.onnx`` that takes raw table rows: the table encoder (`supernet.data.table_encoder`) in
the graph, before the net that `supernet.io.onnx_export` writes.

What the scikit-learn estimators' ``export()`` writes for a fit on a DataFrame or an array
(`rows_onnx`). One input per column, as skl2onnx names a pipeline's: a numeric column is
``tensor(double) [N, 1]``, a categorical one ``tensor(string) [N, 1]`` (its values as the encoder
names them: ``"3"``, ``"True"``, ``"red"``; a missing value is ``"__missing__"``); an array fit
has one input ``input``, ``tensor(float) [N, F]``, as its ``predict`` takes. In the graph, in
double precision: a missing number (NaN) takes the training median, each numeric column its
``scale`` (standard / robust: centre and spread; quantile: the piecewise-linear rank, ties at
their middle rank, then the normal quantile by Acklam's rational approximation, relative error
1.2e-9; the smooth clip) and its ``periodic`` sines and cosines; a category its one-hot (ai.onnx.ml
``LabelEncoder``, an unseen value all zeros). The output is the net's, ``logits`` (a regression's
values). Written, the file is run with onnxruntime on the estimator's reference rows and compared
with the model's outputs through the Python encoder; it is removed (and the export says why)
where they differ.

    python -c "import onnxruntime as o; print([i.name for i in o.InferenceSession('model.onnx').get_inputs()])"
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from supernet.io.onnx_export import ONNX_ATOL, _save_onnx, has_onnxruntime, onnxruntime_outputs

ROWS_INPUT = "input"  # an array fit's one input; a DataFrame fit's are its column names
FEATURES = "features"  # the encoded features: the encoder's output, the net's input
BOUND = 1e-7  # supernet.data.scalers.BOUND: ranks stay inside (BOUND, 1 - BOUND)
# Acklam's inverse normal CDF: central region |p - 0.5| <= 0.5 - P_LOW, else the tails.
P_LOW = 0.02425
ACKLAM_A = (-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.3577518672690, -30.66479806614716,
            2.506628277459239)  # fmt: skip
ACKLAM_B = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
ACKLAM_C = (-7.784894002430293e-03, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
            2.938163982698783)  # fmt: skip
ACKLAM_D = (7.784695709041462e-03, 0.3224671290700398, 2.445134137142996, 3.754408661907416)


class _Graph:
    """Nodes and constants of the encoder graph, with fresh names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"enc_{stem}_{self.count}"

    def const(self, value: Any, dtype: Any = np.float64) -> str:
        from onnx import numpy_helper

        name = self.name("c")
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, domain: str = "", **attrs: Any) -> str:
        from onnx import helper

        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], domain=domain, **attrs))
        return out

    def poly(self, x: str, coefs: tuple[float, ...], last: float | None = None) -> str:
        """Horner's rule: ``((c0 x + c1) x + ...) x + c_k`` (then ``* x + last`` when given)."""
        out = self.const(coefs[0])
        for c in [*coefs[1:], *([] if last is None else [last])]:
            out = self.op("Add", self.op("Mul", out, x), self.const(c))
        return out


# ---------------------------------------------------------------------------- numeric columns
def _interp(g: _Graph, x: str, quantiles: np.ndarray) -> str:
    """The rank of `x` among the training quantiles (`supernet.data.scalers._normal_scores`):
    linear between distinct quantiles, a tie's jump taken half at the tied value itself."""
    levels = np.linspace(0.0, 1.0, len(quantiles))
    lo, hi = quantiles[:-1], quantiles[1:]
    rise = levels[1:] - levels[:-1]
    ramp = hi > lo
    axis = g.const(np.array([1]), np.int64)
    parts = []
    if ramp.any():
        width = (hi - lo)[ramp]
        shifted = g.op("Max", g.op("Sub", x, g.const(lo[ramp])), g.const(np.zeros(1)))
        clipped = g.op("Min", shifted, g.const(width))
        parts.append(g.op("ReduceSum", g.op("Mul", clipped, g.const(rise[ramp] / width)), axis, keepdims=1))
    if (~ramp).any():
        at = g.const(lo[~ramp])
        above, reached = g.op("Greater", x, at), g.op("GreaterOrEqual", x, at)
        half = g.op("Add", g.op("Cast", above, to=11), g.op("Cast", reached, to=11))
        parts.append(g.op("ReduceSum", g.op("Mul", half, g.const(rise[~ramp] / 2.0)), axis, keepdims=1))
    return parts[0] if len(parts) == 1 else g.op("Add", *parts)


def _ndtri(g: _Graph, p: str) -> str:
    """The normal quantile of `p` in (0, 1): Acklam's approximation, each region where it holds."""
    q = g.op("Sub", p, g.const(0.5))
    r = g.op("Mul", q, q)
    central = g.op("Div", g.op("Mul", g.poly(r, ACKLAM_A), q), g.poly(r, ACKLAM_B, 1.0))

    def tail(u: str) -> str:  # sqrt(-2 log u), then the tail's ratio
        t = g.op("Sqrt", g.op("Mul", g.const(-2.0), g.op("Log", u)))
        return g.op("Div", g.poly(t, ACKLAM_C), g.poly(t, ACKLAM_D, 1.0))

    low = tail(p)
    high = g.op("Neg", tail(g.op("Sub", g.const(1.0), p)))
    out = g.op("Where", g.op("Less", p, g.const(P_LOW)), low, central)
    return g.op("Where", g.op("Greater", p, g.const(1.0 - P_LOW)), high, out)


def _scaled(g: _Graph, x: str, scale: dict[str, Any] | None) -> str:
    """`supernet.data.scalers.apply_scale` on the column `x` (double, [N, 1])."""
    if scale is None:
        return x
    if scale["kind"] == "quantile":
        rank = _interp(g, x, np.asarray(scale["quantiles"], dtype=np.float64))
        out = _ndtri(g, g.op("Clip", rank, g.const(BOUND), g.const(1.0 - BOUND)))
    else:
        out = g.op("Div", g.op("Sub", x, g.const(scale["center"])), g.const(scale["scale"]))
    clip = scale.get("clip")
    if clip is None:
        return out
    ratio = g.op("Div", out, g.const(float(clip)))
    return g.op("Div", out, g.op("Sqrt", g.op("Add", g.const(1.0), g.op("Mul", ratio, ratio))))


def _numeric(g: _Graph, x: str, col: dict[str, Any]) -> list[str]:
    """One numeric column's inputs: imputed, scaled, then its periodic features."""
    filled = g.op("Where", g.op("IsNaN", x), g.const(col["fill"]), x)
    scaled = _scaled(g, filled, col.get("scale"))
    blocks = [scaled]
    spec = col.get("periodic")
    if spec is not None:
        z = g.op("Div", g.op("Sub", scaled, g.const(spec["center"])), g.const(spec["scale"]))
        freqs = 2.0 * math.pi * np.asarray(spec["frequencies"], dtype=np.float64)[None, :]
        angles = g.op("Mul", z, g.const(freqs))
        blocks += [g.op("Sin", angles), g.op("Cos", angles)]
    return blocks


def _categorical(g: _Graph, x: str, col: dict[str, Any]) -> str:
    """One categorical column's one-hot: each training category's index, -1 for any other."""
    cats = list(col["categories"])
    codes = g.op(
        "LabelEncoder",
        x,
        domain="ai.onnx.ml",
        keys_strings=cats,
        values_int64s=list(range(len(cats))),
        default_int64=-1,
    )
    hit = g.op("Equal", codes, g.const(np.arange(len(cats))[None, :], np.int64))
    return g.op("Cast", hit, to=11)


# ---------------------------------------------------------------------------- the graph
def encoder_model(spec: dict[str, Any], opset: int) -> Any:
    """The encoder of a ``preprocess`` spec as an ONNX model: raw columns in, ``features`` (float,
    ``[N, in_features]``) out."""
    from onnx import TensorProto, helper

    g = _Graph()
    array = spec.get("array_width")
    if array:
        inputs = [helper.make_tensor_value_info(ROWS_INPUT, TensorProto.FLOAT, ["N", int(array)])]
        whole = g.op("Cast", ROWS_INPUT, to=11)
        names = {f"x{i}": i for i in range(int(array))}
        column = {
            c["name"]: g.op(
                "Slice",
                whole,
                g.const([names[c["name"]]], np.int64),
                g.const([names[c["name"]] + 1], np.int64),
                g.const([1], np.int64),
            )  # fmt: skip
            for c in spec["columns"]
        }
    else:
        inputs, column = [], {}
        for c in spec["columns"]:
            kind = TensorProto.DOUBLE if c["type"] == "numeric" else TensorProto.STRING
            inputs.append(helper.make_tensor_value_info(c["name"], kind, ["N", 1]))
            column[c["name"]] = c["name"]
    blocks: list[str] = []
    for c in spec["columns"]:
        x = column[c["name"]]
        blocks += _numeric(g, x, c) if c["type"] == "numeric" else [_categorical(g, x, c)]
    joined = g.op("Concat", *blocks, axis=1) if len(blocks) > 1 else blocks[0]
    g.nodes.append(helper.make_node("Cast", [joined], [FEATURES], to=TensorProto.FLOAT))
    output = helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, ["N", len(spec["feature_names"])])
    graph = helper.make_graph(g.nodes, "table_encoder", inputs, [output], g.inits)
    opsets = [helper.make_opsetid("", opset), helper.make_opsetid("ai.onnx.ml", 3)]
    return helper.make_model(graph, opset_imports=opsets)


def rows_onnx(model: Any, rows: Any, encoded: torch.Tensor, path: Path) -> dict[str, Any] | str:
    """Write `model` (a `Subnet` or an ensemble, with a table ``preprocess`` spec) to `path` as
    one ONNX graph, encoder then net, and check it on `rows` (the raw rows the estimator keeps:
    a DataFrame or an array; `encoded`, their encoded features). The info for ``arch.yaml``, or
    why it was skipped."""
    try:
        import onnx
        from onnx import compose
    except ImportError:
        return "skipped: onnx is not installed (pip install 'supernet[onnx]')"
    spec = model.meta["preprocess"]
    try:
        _save_onnx(model.eval(), encoded[:2].contiguous(), path)
        net = onnx.load(str(path))
        opset = next(o.version for o in net.opset_import if o.domain in ("", "ai.onnx"))
        encoder = encoder_model(spec, opset)
        encoder.ir_version = net.ir_version
        merged = compose.merge_models(encoder, net, io_map=[(FEATURES, net.graph.input[0].name)])
        onnx.checker.check_model(merged)
        onnx.save(merged, str(path))
    except Exception as exc:  # never fails the export: the graph is an extra
        path.unlink(missing_ok=True)
        return f"skipped: {type(exc).__name__}: {str(exc).strip()[:200]}"
    described = "one [N, 1] input per column (numbers: double, categories: string)"
    info: dict[str, Any] = {
        "file": path.name,
        "input": "the raw array rows, [N, F] float" if spec.get("array_width") else f"raw rows: {described}",
        "inputs": [i.name for i in merged.graph.input],
        "opset": opset,
    }
    return _check_rows(model, rows, encoded, path, info)


def onnx_feeds(spec: dict[str, Any], rows: Any) -> dict[str, np.ndarray]:
    """onnxruntime's inputs for `rows`: the array as float32, or each column of a DataFrame as
    double (numbers, NaN for missing) or strings (categories as the encoder names them)."""
    from supernet.data.table_encoder import _category_strings

    if spec.get("array_width"):
        return {ROWS_INPUT: np.asarray(rows, dtype=np.float32)}
    import pandas as pd

    feeds = {}
    for c in spec["columns"]:
        s = rows[c["name"]]
        if c["type"] == "numeric":
            feeds[c["name"]] = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)[:, None]
        else:
            feeds[c["name"]] = np.array(_category_strings(s), dtype=object)[:, None]
    return feeds


def _check_rows(model: Any, rows: Any, encoded: torch.Tensor, path: Path, info: dict[str, Any]) -> dict[str, Any] | str:
    """onnxruntime on the raw rows against the model on their encoding (what ``predict_proba``
    computes from): within `ONNX_ATOL` (relative past 1), else the file is removed."""
    if not has_onnxruntime():
        info["checked"] = "no: onnxruntime is not installed"
        return info
    try:
        got = onnxruntime_outputs(path, onnx_feeds(model.meta["preprocess"], rows))
        with torch.no_grad():
            want = model(encoded)
        diff = (got - want).abs().max().item()
    except Exception as exc:
        path.unlink(missing_ok=True)
        return f"skipped: onnxruntime could not run it ({type(exc).__name__}: {str(exc).strip()[:200]})"
    limit = ONNX_ATOL * max(1.0, want.abs().max().item())
    if not diff < limit:
        path.unlink(missing_ok=True)
        return f"skipped: onnxruntime output differs from PyTorch by {diff:.3g} on the raw rows (limit {limit:.3g})"
    info.update({"checked": f"onnxruntime on {len(encoded)} raw rows", "max_abs_diff": float(diff), "atol": limit})
    return info
