"""Scoring with a short fine-tune: a better-informed, slower view of a subnet than inherited weights.

Each arch is extracted from the supernet (its inherited weights), trained alone for a few Adam
steps on the training split and scored on the validation split. Every arch sees the same batches
(drawn from `seed`), so the only difference between two candidates is their weights and shape.

Why: inherited accuracy mis-ranks mostly the small nets, whose shared weights are tuned for the
larger ones that contain them; a few steps of their own let them catch up (measured in
docs/experiments/fidelity.md, "A short fine-tune before scoring"). It costs far more than an
inherited score, so it re-ranks a search's best candidates (``search.finetune.top``) and a fidelity
check's sample (``rank.finetune.steps``), not every candidate of a search.

    from supernet.evaluation.finetune import FinetuneRecipe, finetuned_scores
    finetuned_scores(sn.model, [(64,), (256, 128)], bundle, FinetuneRecipe(steps=100))
    # -> [{"acc": ..., "loss": ...}, {"acc": ..., "loss": ...}]
    finetuned_scores(sn.model, archs, bundle, recipe, metric=METRICS["rmse"])   # -> [{"loss", "rmse"}, ...]

The nets learn by the task's loss (``bundle.task``: cross-entropy with its class weights, or the
regression loss on standardised targets) and ``loss`` is that loss on the validation split
(class-weighted: the weighted mean, as training takes it). A classification is always scored
with ``acc``; a `metric` other than accuracy adds its value under its name (``balanced_accuracy``,
``rmse``: computed in the targets' units).

A supernet trained with ``model.norm=batch`` hands each arch over with its normalisation unfolded
(``extract(fold=False)``): it fine-tunes with batch statistics, as the supernet trained, and its
statistics are measured again on the calibration images before it is scored.

Nets train together in groups (their losses summed, one backward, one multi-tensor Adam step):
the gradient of the sum with respect to one net's weights is exactly that net's own, so a net's
result does not depend on its group (on CPU bit for bit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from supernet.core.metrics import Metric
from supernet.core.space import Arch
from supernet.core.supermlp import SuperMLP
from supernet.core.task import Task
from supernet.data.datasets import DataBundle
from supernet.evaluation.recipe import FinetuneRecipe

# Parameters per training group: Adam keeps weights, grads and two moments (16 bytes each).
GROUP_PARAMS = 16_000_000


def finetuned_scores(
    model: SuperMLP,
    archs: Sequence[Sequence[int]],
    bundle: DataBundle,
    recipe: FinetuneRecipe,
    seed: int = 0,
    device: torch.device | str | None = None,
    group_params: int = GROUP_PARAMS,
    metric: Metric | None = None,
) -> list[dict[str, float]]:
    """``{"acc", "loss"}`` on the validation split for each arch after `recipe` (the supernet
    itself is not changed); regression: ``{"loss"}``; with a `metric` other than accuracy, its
    value under its name too."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    task = getattr(bundle, "task", None) or Task()
    metric = None if metric is None or metric.name == "accuracy" else metric
    archs = [model.space.validate(a) for a in archs]
    train_x, train_y = bundle.train_x.to(device), bundle.train_y.to(device)
    val_x, val_y = bundle.val_x.to(device), bundle.val_y.to(device)
    scores: dict[Arch, dict[str, float]] = {}
    for group in _groups(list(dict.fromkeys(archs)), model, group_params):
        # Unfolded: a subnet normalised like the supernet (model.norm=batch) fine-tunes with batch
        # statistics, as it was trained; its folded weights alone train worse (docs/experiments/fidelity.md).
        nets = [model.extract(a, fold=False).to(device) for a in group]
        if recipe.steps:
            _fit(nets, (train_x, train_y), recipe, seed, task)
            _recalibrate(nets, model.calibration)
        scores.update(zip(group, _val_scores(nets, val_x, val_y, task, metric), strict=True))
    return [dict(scores[a]) for a in archs]


def _groups(archs: list[Arch], model: SuperMLP, group_params: int) -> list[list[Arch]]:
    groups: list[list[Arch]] = []
    size = 0
    for arch in archs:
        params = model.space.params(arch)
        if groups and size + params <= group_params:
            groups[-1].append(arch)
            size += params
        else:
            groups.append([arch])
            size = params
    return groups


def _fit(nets, train: tuple[torch.Tensor, torch.Tensor], recipe: FinetuneRecipe, seed: int, task: Task) -> None:
    train_x, train_y = train
    for net in nets:
        net.train()
    optimizer = torch.optim.Adam([p for net in nets for p in net.parameters()], lr=recipe.lr)
    # The batch indices come from a CPU generator: the same batches on every device.
    g = torch.Generator().manual_seed(int(seed))
    for _ in range(recipe.steps):
        idx = torch.randint(len(train_y), (recipe.batch_size,), generator=g).to(train_x.device)
        x, y = train_x[idx], train_y[idx]
        loss = torch.stack([task.loss_fn(net(x), y) for net in nets]).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def _recalibrate(nets, calibration: torch.Tensor | None) -> None:
    """Measure the fine-tuned nets' normalisation statistics again on the calibration inputs, as
    the inherited scores are measured (the running averages lag behind the changing weights).
    PyTorch keeps the unbiased variance, n / (n - 1) times the biased one the supernet uses."""
    for net in nets:
        norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        if not norms:
            continue
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None  # a cumulative average: one pass gives these inputs' statistics
        net.train()
        net(calibration.to(next(net.parameters()).device))


@torch.no_grad()
def _val_scores(
    nets, x: torch.Tensor, y: torch.Tensor, task: Task, metric: Metric | None = None, chunk: int = 8192
) -> list[dict[str, float]]:
    """Each net's validation loss (the task's, summed over chunks), its accuracy (classification)
    and `metric` (computed on all of its outputs at once)."""
    for net in nets:
        net.eval()
    correct = torch.zeros(len(nets), dtype=torch.long, device=x.device)
    loss = torch.zeros(len(nets), dtype=torch.float64, device=x.device)
    outputs: list[list[torch.Tensor]] = [[] for _ in nets]
    labels = not task.is_regression  # a classification's accuracy is counted beside the loss
    for start in range(0, len(x), chunk):
        xs, ys = x[start : start + chunk], y[start : start + chunk]
        for i, net in enumerate(nets):
            logits = net(xs)
            if labels:
                correct[i] += (logits.argmax(1) == ys).sum()
            loss[i] += task.summed_loss(logits, ys).double()
            if metric is not None:
                outputs[i].append(logits)
    total = task.loss_denominator(y)
    scores = [{"loss": v / total} for v in loss.tolist()]
    if labels:
        scores = [{"acc": c / len(x), **s} for c, s in zip(correct.tolist(), scores, strict=True)]
    if metric is not None:
        for s, outs in zip(scores, outputs, strict=True):
            s[metric.name] = metric(torch.cat(outs), y, task)
    return scores
