"""Stand-alone training of many small MLPs from scratch: the ground truth a supernet is judged by.

Every arch is trained alone (its own weights, nothing inherited) with one fixed short `Recipe`:
Adam, ``epochs`` passes over the training split in mini-batches of ``batch_size``, a per-step
cosine learning-rate schedule from ``lr`` to 0, then its score on the validation split. The nets
learn by the data's task (``bundle.task``: cross-entropy with its class weights, or MSE / Huber on
the standardised regression targets) and are scored by a `Metric` (``metric=``, default accuracy;
RMSE, MAE... are computed in the targets' own units).

Several nets train at once: all archs of one seed go through one loop over the same batches, their
losses are summed and one backward pass and one (multi-tensor) Adam step update all of them. The
nets share nothing, so each net's gradients and Adam update are exactly its own; what is shared is
the data on the device, the batch order and the per-step overhead. On CUDA the nets of one depth
are also stacked into zero-padded weight tensors, so a step is one batched matmul per layer for all
of them (small nets are launch-bound on a GPU, not FLOP-bound). A net's result depends only on
(arch, recipe, seed, data): its initial weights come from a seed derived from (seed, arch) and the
batch order from the seed, so it trains alike alone or in a group (on CPU bit for bit, padded on
CUDA to float rounding), and results are cached per net (`supernet.evaluation.standalone_cache`).

    from supernet.evaluation.standalone import Recipe, StandaloneCache, train_standalone
    accs = train_standalone([(64,), (256, 128)], space, bundle, Recipe(epochs=10), seeds=[0, 1],
                            device="cuda", cache=StandaloneCache("outputs/standalone_cache.json"))
    accs[((64,), 0)]   # validation accuracy of arch (64,) trained with seed 0
    rmse = train_standalone(archs, space, regression_bundle, recipe, [0], metric=METRICS["rmse"])

With accuracy (the default) only accuracy is measured and cached, as always (``val_acc``). Any
other metric measures every metric of the task at once (`task_metrics`) and caches each under its
record key (``val_rmse``, ``val_mae``, ...), so asking for another one later costs no training; an
entry that lacks the key asked for is trained again, never read as another metric.

Determinism: for a given seed the results are bit-identical across runs on the same CPU (same
torch build and thread count); on CUDA (TF32 matmuls) rounding differences grow during training.
See docs/experiments/fidelity.md for what the stand-alone targets are used for.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from supernet.core.metrics import METRICS, Metric, default_metric, task_metrics
from supernet.core.optim import build_schedule
from supernet.core.space import Arch, SearchSpace, arch_str, parse_arch
from supernet.core.task import Task
from supernet.data.datasets import DataBundle
from supernet.errors import UsageError
from supernet.evaluation.recipe import Recipe
from supernet.evaluation.standalone_cache import StandaloneCache, cache_key, data_identity

__all__ = ["Recipe", "StandaloneCache", "data_identity", "parse_arch", "train_standalone"]

log = logging.getLogger(__name__)

# Nets of one seed are trained together up to this many parameters per group (weights, grads and
# two Adam moments: 16 bytes each, so 64M parameters are about 1 GiB). On a GPU a big group is one
# batched matmul per layer; on a CPU the work is the same either way, and a group is what a killed
# run keeps (the cache is saved after each), so CPU groups are small.
GROUP_PARAMS = 64_000_000
CPU_GROUP_PARAMS = 4_000_000


def group_bound(device: torch.device) -> int:
    """The default parameters per training group on `device` (see the comment above)."""
    return GROUP_PARAMS if device.type == "cuda" else CPU_GROUP_PARAMS


def init_seed(seed: int, arch: Sequence[int]) -> int:
    """The seed of one net's initial weights: fixed by (seed, arch), not by its group."""
    return int(hashlib.sha256(f"{int(seed)}:{arch_str(arch)}".encode()).hexdigest()[:8], 16)


def build_mlp(space: SearchSpace, arch: Sequence[int], seed: int) -> nn.Sequential:
    """``Linear, ReLU, ..., Linear`` for `arch` with PyTorch's default init drawn on the CPU from
    `init_seed(seed, arch)` (the global RNG is left untouched)."""
    dims = [space.in_features, *arch, space.num_classes]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(seed, arch))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=False)):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
    return nn.Sequential(*layers)


# ---------------------------------------------------------------------------- training
def train_standalone(  # noqa: PLR0913 - the recipe's inputs, where it trains and what it reports
    archs: Iterable[Sequence[int]],
    space: SearchSpace,
    bundle: DataBundle,
    recipe: Recipe,
    seeds: Iterable[int],
    device: torch.device | str = "cpu",
    cache: StandaloneCache | None = None,
    padded: bool | None = None,
    metric: Metric | None = None,
) -> dict[tuple[Arch, int], float]:
    """The validation `metric` of every (arch, seed), training only what `cache` does not hold
    under the metric's key. The default metric is the task's: accuracy, or RMSE for a regression;
    a metric of the other task is a `UsageError`.

    Nets of the same seed train together in groups of at most `group_bound(device)` parameters;
    the cache is saved after each group, so a killed run keeps what it finished. ``padded``
    (default: on CUDA only) stacks the nets of one depth into zero-padded weight tensors and runs
    one batched matmul per layer for all of them (see `_train_padded`)."""
    archs = list(dict.fromkeys(space.validate(a) for a in archs))
    metric = metric or default_metric(bundle.task)
    if not bundle.task.same_kind(metric.kind):
        raise UsageError(
            f"stand-alone training scores {metric.name}, a {metric.kind} metric, but data={bundle.name} is a "
            f"{bundle.task.kind}: score it by one of {[m.name for m in task_metrics(bundle.task, space.num_classes)]}"
        )
    device = torch.device(device)
    cache = cache if cache is not None else StandaloneCache(None)
    data_id = data_identity(bundle)
    results, todo = _lookup(archs, [int(s) for s in seeds], recipe, cache, data_id, metric.key)
    if not todo:
        return results
    padded = device.type == "cuda" if padded is None else padded
    train = _train_padded if padded else _train_group
    task, measured = bundle.task, measured_metrics(metric, bundle.task, space.num_classes)
    data = [t.to(device) for t in (bundle.train_x, bundle.train_y, bundle.val_x, bundle.val_y)]
    for seed, pending in todo.items():
        for group in _groups(pending, space, group_bound(device), padded):
            started = time.perf_counter()
            values = train(group, space, data, recipe, seed, device, task, measured)
            wall_s = time.perf_counter() - started
            for i, arch in enumerate(group):
                results[(arch, seed)] = values[metric.key][i]
                key = cache_key(arch, recipe, seed, data_id)
                scores = {k: v[i] for k, v in values.items()}
                cache.put(
                    key,
                    {
                        **(cache.entries.get(key) or {}),  # what another metric's run measured stays
                        "arch": list(arch), "seed": seed, **scores, "params": space.params(arch),
                        "recipe": recipe.to_dict(), "data": data_id, "device": device.type,
                        "method": "padded" if padded else "loop", "group_wall_s": round(wall_s, 3),
                        "group_size": len(group),
                    },
                )  # fmt: skip
            cache.save()
            log.info("stand-alone: %d nets, seed %d, %d epochs in %.1f s", len(group), seed, recipe.epochs, wall_s)
    return results


def measured_metrics(metric: Metric, task: Task, num_classes: int) -> list[Metric]:
    """What a training measures: accuracy alone (what it always measured), or for any other
    metric every metric of the task (`metric` first), so that the cache can answer any of them."""
    if metric.name == "accuracy":
        return [metric]
    return [metric, *(m for m in task_metrics(task, num_classes) if m.name != metric.name)]


def _lookup(
    archs: list[Arch], seeds: list[int], recipe: Recipe, cache: StandaloneCache, data_id: str, field: str = "val_acc"
) -> tuple[dict[tuple[Arch, int], float], dict[int, list[Arch]]]:
    """The cached values of `field` (a metric's record key), and per seed the archs still to
    train (in order): those without an entry, or whose entry lacks `field`."""
    results: dict[tuple[Arch, int], float] = {}
    todo: dict[int, list[Arch]] = {}
    for seed in seeds:
        for arch in archs:
            entry = cache.get(cache_key(arch, recipe, seed, data_id), field)
            if entry is None:
                todo.setdefault(seed, []).append(arch)
            else:
                results[(arch, seed)] = float(entry[field])
    return results, todo


def _groups(archs: list[Arch], space: SearchSpace, group_params: int, padded: bool = False) -> list[list[Arch]]:
    """Archs in groups of at most `group_params` parameters (padded: of one depth each, counting
    every net at the group's widest width per layer)."""
    groups: list[list[Arch]] = []
    for arch in sorted(archs, key=lambda a: (len(a), space.params(a)) if padded else space.params(a)):
        group = groups[-1] if groups else []
        if group and padded and len(group[-1]) != len(arch):
            group = []
        candidate = [*group, arch]
        if padded:
            size = len(candidate) * space.params(tuple(max(ws) for ws in zip(*candidate, strict=True)))
        else:
            size = sum(space.params(a) for a in candidate)
        if group and size <= group_params:
            group.append(arch)
        else:
            groups.append([arch])
    return groups


def _train_group(
    archs: list[Arch],
    space: SearchSpace,
    data: list[torch.Tensor],
    recipe: Recipe,
    seed: int,
    device: torch.device,
    task: Task | None = None,
    metrics: Sequence[Metric] = (METRICS["accuracy"],),
) -> dict[str, list[float]]:
    """Train `archs` together, one net each; every metric's record key -> its value per net."""
    train_x, train_y, val_x, val_y = data
    task = task or Task()
    nets = [build_mlp(space, arch, seed).to(device) for arch in archs]
    params = [p for net in nets for p in net.parameters()]

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Independent nets: the gradient of the sum w.r.t. one net's weights is its own loss's.
        return torch.stack([task.loss_fn(net(x), y) for net in nets]).sum()

    _fit(params, loss, train_x, train_y, recipe, seed)
    if [m.name for m in metrics] == ["accuracy"]:
        return {"val_acc": val_accuracies(nets, val_x, val_y)}
    return val_scores(lambda xs: torch.stack([net(xs) for net in nets]), val_x, val_y, metrics, task)


def _fit(
    params: list[torch.Tensor],
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    recipe: Recipe,
    seed: int,
) -> None:
    """The recipe's loop (Adam, cosine per step, batches drawn from `seed`) shared by both trainers."""
    optimizer = torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(train_x) / recipe.batch_size)
    schedule = build_schedule(optimizer, {"schedule": "cosine"}, recipe.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(int(seed))
    for _ in range(recipe.epochs):
        order = torch.randperm(len(train_x), generator=g).to(train_x.device)
        for idx in order.split(recipe.batch_size):
            value = loss(train_x[idx], train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
            schedule.step()


def _train_padded(
    archs: list[Arch],
    space: SearchSpace,
    data: list[torch.Tensor],
    recipe: Recipe,
    seed: int,
    device: torch.device,
    task: Task | None = None,
    metrics: Sequence[Metric] = (METRICS["accuracy"],),
) -> dict[str, list[float]]:
    """The same training as `_train_group` for nets of one depth, as one stack: layer l of all
    nets is a zero-padded ``(nets, in_max, out_max)`` tensor and a step is one batched matmul per
    layer. Padding stays exactly zero: a padded unit's pre-activation is 0, ReLU passes no
    gradient at 0, a padded input is 0, so padded weights get zero gradients and Adam moves them
    by exactly 0. Each net's initial weights are those `build_mlp` gives; results equal the
    per-net loop's to float rounding (the summation order of the matmuls differs)."""
    train_x, train_y, val_x, val_y = data
    task = task or Task()
    depth, n = len(archs[0]), len(archs)
    dims = [space.in_features, *(max(a[i] for a in archs) for i in range(depth)), space.num_classes]
    weights = [torch.zeros(n, a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)]
    biases = [torch.zeros(n, 1, b) for b in dims[1:]]
    for k, arch in enumerate(archs):
        linears = [m for m in build_mlp(space, arch, seed) if isinstance(m, nn.Linear)]
        for layer, lin in enumerate(linears):
            out_f, in_f = lin.weight.shape
            weights[layer][k, :in_f, :out_f] = lin.weight.detach().T
            biases[layer][k, 0, :out_f] = lin.bias.detach()
    weights = [w.to(device).requires_grad_() for w in weights]
    biases = [b.to(device).requires_grad_() for b in biases]

    def forward(x: torch.Tensor) -> torch.Tensor:  # (batch, in) -> (nets, batch, outputs)
        h = x
        for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
            h = torch.matmul(h, w) + b
            if layer < depth:
                h = F.relu(h)
        return h

    _fit([*weights, *biases], lambda x, y: stacked_loss(task, forward(x), y), train_x, train_y, recipe, seed)
    if [m.name for m in metrics] == ["accuracy"]:
        correct = torch.zeros(n, dtype=torch.long, device=device)
        with torch.no_grad():
            for start in range(0, len(val_x), 8192):
                xs, ys = val_x[start : start + 8192], val_y[start : start + 8192]
                correct += (forward(xs).argmax(-1) == ys).sum(1)
        return {"val_acc": (correct.double() / len(val_x)).tolist()}
    return val_scores(forward, val_x, val_y, metrics, task)


def stacked_loss(task: Task, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`Task.stacked_loss` (the name this module has offered)."""
    return task.stacked_loss(outputs, y)


@torch.no_grad()
def val_accuracies(nets: list[nn.Module], x: torch.Tensor, y: torch.Tensor, chunk: int = 8192) -> list[float]:
    """Accuracy of each net on (x, y), in chunks that bound the activations' memory."""
    correct = torch.zeros(len(nets), dtype=torch.long, device=x.device)
    for start in range(0, len(x), chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        for i, net in enumerate(nets):
            correct[i] += (net(xs).argmax(1) == ys).sum()
    return (correct.double() / len(x)).tolist()


@torch.no_grad()
def val_scores(
    predict: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    metrics: Sequence[Metric],
    task: Task,
    chunk: int = 8192,
) -> dict[str, list[float]]:
    """Every metric's record key -> its value for each net on (x, y); `predict` maps a chunk of
    inputs to the nets' outputs ``(nets, chunk, outputs)``. Each net's outputs are kept for the
    whole split (a metric such as RMSE or balanced accuracy is not a sum over chunks)."""
    chunks = [predict(x[start : start + chunk]) for start in range(0, len(x), chunk)]
    outputs = torch.cat(chunks, dim=1) if len(chunks) > 1 else chunks[0]
    return {m.key: [m(out, y, task) for out in outputs] for m in metrics}
