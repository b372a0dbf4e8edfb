"""Scoring architectures with the weights they inherit from the supernet: batched, cached.

Many archs are scored in one pass over a prefix tree of their widths. Archs that share a prefix
``(w1, ..., wk)`` share its activations; at each tree node the next layer is computed once, at
the widest width any child needs, and every child takes its first ``w`` columns (a prefix of the
units is exactly the child's own layer). The first layer, the most expensive one for image data,
is therefore computed once per validation chunk for the whole batch of candidates. The validation
set stays on the device; accuracies are summed on the device and read back once per call. Any
other metric (``search.metric``: balanced accuracy, RMSE, ...) keeps each arch's outputs for the
call and scores them with `supernet.core.metrics`.

    ev = InheritedEvaluator(sn.model, sn.space, bundle.val_x, bundle.val_y)
    ev.evaluate([(256, 128), (64,)])   # -> [{"val_acc": ..., "params": ..., "flops": ...}, ...]
    InheritedEvaluator(..., metric=METRICS["rmse"], task=bundle.task)   # records carry val_rmse
    ev.subset([0, 5, 9]).evaluate([(64,)])   # the same model scored on those validation rows

`subset(rows)` is what ``search.fidelity=subset`` scores on first (supernet/search/subset.py): it
shares the model, its batch-norm calibration and the latency measurements with its parent.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from supernet.core.metrics import Metric, default_metric
from supernet.core.space import Arch, SearchSpace, as_arch
from supernet.core.supermlp import SuperMLP, batch_stats
from supernet.core.task import Task


class InheritedEvaluator:
    """The search's view of the supernet: ``evaluate(archs) -> [record]``, cached per arch."""

    def __init__(  # noqa: PLR0913 - the scoring settings a search, a callback and a bench each pass
        self,
        model: SuperMLP,
        space: SearchSpace,
        x: torch.Tensor,
        y: torch.Tensor,
        device: torch.device | str | None = None,
        chunk_size: int | None = None,
        amp: bool = False,
        latency: dict | None = None,
        metric: Metric | None = None,
        task: Task | None = None,
    ) -> None:
        self.task = task or Task()
        self.metric = metric or default_metric(self.task)
        self.device = torch.device(device) if device is not None else x.device
        self.model = model.to(self.device).eval()
        self.space = space
        self.x, self.y = x.to(self.device), y.to(self.device)
        # Keep a chunk's widest activations (N x width_max floats per layer) within ~256 MB.
        self.chunk_size = chunk_size or max(256, (256 << 20) // (4 * space.width_max * max(1, space.depth_max)))
        self.amp = amp and self.device.type == "cuda"
        self.latency = latency  # {"batch_size", "warmup", "repeats"} or None: not measured
        self.cache: dict[Arch, dict] = {}
        self.latency_cache: dict[Arch, float] = {}  # shared with `subset` evaluators: measured once
        self.n_scored = 0  # archs actually computed (cache misses)
        # With norm="batch": each prefix-tree node's calibrated statistics (`_node_stats`).
        self.stats_cache: dict[Arch, tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ public
    def labels(self) -> list:
        """The class (or the targets) of every validation row, in order."""
        return self.y.tolist()

    def subset(self, rows: Sequence[int]) -> InheritedEvaluator:
        """An evaluator of the same model on the validation rows `rows` (its own accuracy cache)."""
        index = torch.as_tensor(list(rows), dtype=torch.long, device=self.device)
        if len(index) == 0 or int(index.min()) < 0 or int(index.max()) >= len(self.y):
            raise ValueError(f"subset rows must be 1 or more indices in [0, {len(self.y)})")
        sub = InheritedEvaluator(
            self.model,
            self.space,
            self.x[index],
            self.y[index],
            self.device,
            self.chunk_size,
            self.amp,
            self.latency,
            metric=self.metric,
            task=self.task,
        )
        sub.latency_cache = self.latency_cache
        sub.stats_cache = self.stats_cache  # statistics come from the calibration inputs, not these rows
        return sub

    def evaluate(self, archs: Sequence[Sequence[int]]) -> list[dict]:
        archs = [as_arch(a) for a in archs]
        todo = list(dict.fromkeys(a for a in archs if a not in self.cache))
        if todo:
            for arch, value in zip(todo, self.scores(todo), strict=True):
                record = {self.metric.key: value, "params": self.space.params(arch), "flops": self.space.flops(arch)}
                if self.latency:
                    if arch not in self.latency_cache:
                        self.latency_cache[arch] = self.latency_ms(arch)
                    record["latency_ms"] = self.latency_cache[arch]
                self.cache[arch] = record
        return [dict(self.cache[a]) for a in archs]

    def scores(self, archs: Sequence[Arch]) -> list[float]:
        """The metric of every arch on (x, y)."""
        if self.metric.name == "accuracy":
            return self.accuracies(archs)
        return [self.metric(out, self.y, self.task) for out in self.outputs(archs)]

    @torch.no_grad()
    def accuracies(self, archs: Sequence[Arch]) -> list[float]:
        """Accuracy of every arch on (x, y), all archs in one prefix-tree pass per chunk; the hits
        are summed on the device."""
        correct = torch.zeros(len(archs), dtype=torch.long, device=self.device)
        index = {a: i for i, a in enumerate(archs)}

        def count(ending: list[Arch], logits: torch.Tensor, ys: torch.Tensor) -> None:
            hits = (logits.argmax(1) == ys).sum()
            for a in ending:
                correct[index[a]] += hits

        self._pass(archs, count)
        return (correct.double() / len(self.x)).tolist()

    @torch.no_grad()
    def outputs(self, archs: Sequence[Arch]) -> list[torch.Tensor]:
        """Every arch's outputs on x (float32, on the device), in one prefix-tree pass per chunk."""
        chunks: list[list[torch.Tensor]] = [[] for _ in archs]
        index = {a: i for i, a in enumerate(archs)}

        def keep(ending: list[Arch], logits: torch.Tensor, ys: torch.Tensor) -> None:
            for a in ending:
                chunks[index[a]].append(logits.float())

        self._pass(archs, keep)
        return [torch.cat(c) for c in chunks]

    def _pass(self, archs: Sequence[Arch], sink) -> None:
        """One prefix-tree pass over x: `sink(archs ending at a node, their outputs, the chunk's y)`."""
        for arch in archs:
            self.space.validate(arch)
        self.n_scored += len(archs)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.amp else nullcontext()
        with autocast:
            stats = self._node_stats(list(archs)) if self.model.norm == "batch" else None
            for start in range(0, len(self.x), self.chunk_size):
                xs, ys = self.x[start : start + self.chunk_size], self.y[start : start + self.chunk_size]
                self._walk(xs, ys, 0, list(archs), sink, stats, ())

    @torch.no_grad()
    def accuracies_naive(self, archs: Sequence[Arch], batch_size: int = 1024) -> list[float]:
        """The obvious way, one arch at a time through its extracted model in mini-batches
        (what `supernet-bench` compares the batched scorer against)."""
        out = []
        for arch in archs:
            net = self.model.extract(arch)
            correct = 0
            for start in range(0, len(self.x), batch_size):
                logits = net(self.x[start : start + batch_size])
                correct += int((logits.argmax(1) == self.y[start : start + batch_size]).sum())
            out.append(correct / len(self.x))
        return out

    # ------------------------------------------------------------------ prefix tree
    def _node_stats(self, archs: list[Arch]) -> dict[Arch, tuple[torch.Tensor, torch.Tensor]]:
        """With ``norm="batch"``: the normalisation statistics of every node of the prefix tree,
        keyed by the widths before it, measured on the supernet's calibration inputs.

        A unit's statistics depend only on the layers before it, so each node is measured once
        per search, over the layer's full width, and kept (`stats_cache`, shared with `subset`
        evaluators): a later batch walks only down to the prefixes it has not met. Measured over
        the full width, a node's statistics do not depend on which archs asked for them, so a
        resumed search computes the same numbers."""
        cache = self.stats_cache
        needed = {a[:d] for a in archs for d in range(len(a))}
        if not needed <= cache.keys():
            self._measure(self.model.calibration_inputs(self.device), 0, [a for a in archs if len(a)], ())
        return {p: cache[p] for p in needed}

    def _measure(self, h: torch.Tensor, depth: int, group: list[Arch], prefix: Arch) -> None:
        """Fill `stats_cache` for `prefix` and the missing prefixes below it (`group`: the archs
        that go through this node)."""
        cache, layer = self.stats_cache, self.model.hidden[depth]
        z = F.linear(h, layer.weight[:, : h.shape[1]], layer.bias).float()
        if prefix not in cache:
            cache[prefix] = batch_stats(z)
        # An arch that ends after this layer needs nothing below: `_misses` leaves it out.
        _, branches = _branches(group, depth)
        children = {w: [a for a in sub if self._misses(a, prefix + (w,))] for w, sub in branches.items()}
        children = {w: sub for w, sub in children.items() if sub}
        if not children:
            return
        z = F.relu(self.model.normalize(depth, z, cache[prefix]), inplace=True)  # a fresh tensor: no copy
        for width, sub in children.items():
            self._measure(z[:, :width], depth + 1, sub, prefix + (width,))

    def _misses(self, arch: Arch, prefix: Arch) -> bool:
        """Whether `arch` (going on past `prefix`) needs a prefix at or below it that is not kept."""
        return any(arch[:d] not in self.stats_cache for d in range(len(prefix), len(arch)))

    def _walk(
        self,
        h: torch.Tensor,
        y: torch.Tensor,
        depth: int,
        group: list[Arch],
        sink,
        stats: dict | None = None,
        prefix: Arch = (),
    ) -> None:
        model = self.model
        ending = [a for a in group if len(a) == depth]
        if ending:
            head = model.head_for(depth)
            sink(ending, F.linear(h, head.weight[:, : h.shape[1]], head.bias), y)
        widest, children = _branches(group, depth)
        if not children:
            return
        layer = model.hidden[depth]
        weight, bias = layer.weight[:widest, : h.shape[1]], layer.bias[:widest]
        if stats is not None:
            # Folded into the node's weights: one matmul, no extra pass over the activations.
            weight, bias = model.folded(depth, weight, bias, stats[prefix])
        z = F.relu(F.linear(h, weight, bias), inplace=True)  # a fresh tensor: ~10% of a node's time saved
        for width, sub in children.items():
            self._walk(z[:, :width], y, depth + 1, sub, sink, stats, prefix + (width,))

    # ------------------------------------------------------------------ latency
    def latency_ms(self, arch: Arch) -> float:
        """Median wall time of the extracted subnet on this device for one batch, warmed up."""
        cfg = self.latency or {}
        net = self.model.extract(arch)
        batch = torch.randn(int(cfg.get("batch_size", 1)), self.space.in_features, device=self.device)
        return measure_ms(lambda: net(batch), int(cfg.get("warmup", 5)), int(cfg.get("repeats", 20)), self.device)


def _branches(group: list[Arch], depth: int) -> tuple[int, dict[int, list[Arch]]]:
    """The archs of `group` that go on past layer `depth`, grouped by their width there, and the
    widest of those widths (the width the tree node computes); ``(0, {})`` when none goes on."""
    children: dict[int, list[Arch]] = defaultdict(list)
    for a in group:
        if len(a) > depth:
            children[a[depth]].append(a)
    return max(children, default=0), children


def measure_ms(fn, warmup: int, repeats: int, device: torch.device) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
