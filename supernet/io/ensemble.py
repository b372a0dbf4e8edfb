"""An ensemble of exported subnets as one model: `EnsembleSubnet`, its ``arch.yaml`` and its loading.

    python -c "from supernet import load_subnet; m = load_subnet('<run_dir>/ensemble/subnet'); print(m.archs)"

The pipeline writes one with ``retrain.ensemble=K`` (`supernet.train.ensemble`). An ensemble
export is a directory like a single export (`supernet.io.export`), written by the same writer
(`write_export`: verified against the members' averaged outputs, published atomically,
overwriting only an export) and read by the same `load_subnet`, which dispatches here on
``arch.yaml``'s ``kind: ensemble``:

    arch.yaml          the shared fields (input shape, classes, normalisation, preprocess spec,
                       task), params and FLOPs in total, and ``members``: each one's arch,
                       params, FLOPs, seed and val/test figures
    model.safetensors  member i's tensors under ``members.<i>.layers.<j>.weight/bias``
    model.onnx         the averaging graph: raw features -> the ensemble's output

A classification ensemble outputs the log of its members' mean probabilities (so argmax and
softmax are the average's; `predict_proba` returns the mean); a regression one the mean of the
members' values, in the targets' units. The members share one input normalisation (the data's).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from supernet.errors import UsageError
from supernet.io.mlp import (
    ENSEMBLE_KIND,
    FORMAT,
    FORMAT_VERSION,
    Subnet,
    checked_fields,
    expected_shapes,
    with_tensors,
)

# What every member shares with the ensemble (copied from the first member's arch.yaml).
SHARED_FIELDS = (
    "activation", "input_shape", "in_features", "num_classes", "class_names", "class_labels", "label_dtype",
    "normalization", "preprocess", "task", "outputs", "data", "supernet",
)  # fmt: skip
MEMBER_PREFIX = "members"


def combine(outputs: Sequence[torch.Tensor], regression: bool) -> torch.Tensor:
    """The members' outputs averaged: their mean (a regression's values), or the log of the mean
    of their softmax probabilities (logsumexp of the log-probabilities: no underflow to -inf)."""
    stacked = torch.stack(list(outputs))
    if regression:
        return stacked.mean(0)
    return torch.logsumexp(torch.log_softmax(stacked, -1), 0) - math.log(len(outputs))


class EnsembleSubnet(nn.Module):
    """Several `Subnet` s of one data set, averaged: raw inputs ``(N, ...)`` in, the average out.

    ``forward(raw)`` normalises once and averages ``members[i].mlp`` (`combine`); ``mlp(x)`` takes
    normalised inputs. `predict`, `predict_proba` and `preprocess` are `Subnet`'s, read on the
    average; ``archs`` (also ``arch``) holds the members' archs, ``num_params()`` their total.
    """

    def __init__(self, members: Sequence[Subnet], meta: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        for i, m in enumerate(members[1:], start=1):
            same = (m.in_features, m.num_classes) == (first.in_features, first.num_classes)
            if not same or not m.task.same_kind(first.task) or not _same_normalization(m, first):
                raise ValueError(f"member {i} ({list(m.arch)}) does not share member 0's inputs, outputs or task")
        self.members = nn.ModuleList(members)
        self.meta: dict[str, Any] = dict(meta) if meta is not None else shared_fields(first.meta)
        self.archs = tuple(tuple(m.arch) for m in members)
        self.arch = self.archs
        self.in_features, self.num_classes = first.in_features, first.num_classes

    @property
    def normalize(self) -> nn.Module:
        return self.members[0].normalize

    task = Subnet.task
    preprocess = Subnet.preprocess
    predict = Subnet.predict
    predict_proba = Subnet.predict_proba
    _raw = Subnet._raw

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised ``(N, in_features)`` -> the members' averaged output."""
        return combine([m.mlp(x) for m in self.members], self.task.is_regression)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normalize(x.reshape(x.shape[0], -1)))

    def weights(self) -> dict[str, torch.Tensor]:
        """The tensors of ``model.safetensors``: each member's under ``members.<i>.``."""
        return {f"{MEMBER_PREFIX}.{i}.{k}": v for i, m in enumerate(self.members) for k, v in m.weights().items()}

    def num_params(self) -> int:
        return sum(m.num_params() for m in self.members)


def _same_normalization(a: Subnet, b: Subnet) -> bool:
    na, nb = a.normalize, b.normalize
    return na.mean.shape == nb.mean.shape and bool(torch.equal(na.mean, nb.mean) and torch.equal(na.std, nb.std))


def shared_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a member's ``arch.yaml`` that the ensemble's repeats."""
    return {k: meta[k] for k in SHARED_FIELDS if k in meta}


def ensemble_meta(members: Sequence[Subnet], rows: Sequence[Mapping[str, Any]], source: str) -> dict[str, Any]:
    """``arch.yaml`` of an ensemble of `members` (before the writer adds its checks): `rows` are
    the members' figures (seed, val/test metric, where each came from), `source` how they were
    chosen (``top``, ``seeds`` or ``folds``)."""
    regression = members[0].task.is_regression
    listed = []
    for m, row in zip(members, rows, strict=True):
        listed.append({"arch": list(m.arch), "params": m.num_params(), "flops": m.meta.get("flops"), **row})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": ENSEMBLE_KIND,
        **shared_fields(members[0].meta),
        "outputs": "mean of the members' values, in the targets' units"
        if regression
        else "log of the mean of the members' probabilities",
        "k": len(members),
        "from": source,
        "params": sum(m.num_params() for m in members),
        "flops": sum(int(m.meta.get("flops") or 0) for m in members),
        "members": listed,
        "weights_from": f"{len(members)} retrained subnets ({source})",
    }


def member_meta(meta: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Member `i`'s own ``arch.yaml`` fields, as `Subnet.from_meta` reads them."""
    member = meta["members"][i]
    return {**shared_fields(meta), "arch": member["arch"], "params": member.get("params"), "flops": member.get("flops")}


def checked_ensemble_meta(meta: dict[str, Any], path: Path, key: str) -> dict[str, Any]:
    """An ensemble's ``arch.yaml`` with every member's fields checked like a subnet's."""
    members = meta.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, dict) for m in members):
        raise UsageError(f"{key}={path}: an ensemble needs a non-empty list of members (each with its arch)")
    checked = [checked_fields(member_meta(meta, i), path, f"{key} (member {i})") for i in range(len(members))]
    for member, fields in zip(members, checked, strict=True):
        member["arch"] = fields["arch"]
    meta.update({k: checked[0][k] for k in ("in_features", "num_classes", "normalization")})
    return meta


def ensemble_shapes(meta: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``members.<i>.layers.<j>.weight/bias`` -> shape, for every member of ``meta``."""
    return {
        f"{MEMBER_PREFIX}.{i}.{name}": shape
        for i in range(len(meta["members"]))
        for name, shape in expected_shapes(member_meta(meta, i)).items()
    }


def build_ensemble(meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> EnsembleSubnet:
    """The `EnsembleSubnet` of a checked ``arch.yaml`` and its tensors (what `load_subnet` returns)."""
    members = [
        with_tensors(Subnet.from_meta(member_meta(meta, i)), tensors, f"{MEMBER_PREFIX}.{i}.")
        for i in range(len(meta["members"]))
    ]
    return EnsembleSubnet(members, meta).eval()
