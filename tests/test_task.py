"""The task's losses: class weights, label smoothing, regression scaling (supernet/core/task.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from supernet.core.task import Task
from supernet.errors import UsageError


def test_class_weights_weigh_rows_like_torchs_weighted_mean():
    torch.manual_seed(0)
    task = Task(class_weight=(0.5, 9.5))
    outputs, y = torch.randn(64, 2), torch.randint(0, 2, (64,))
    want = F.cross_entropy(outputs, y, weight=torch.tensor([0.5, 9.5]))
    assert torch.allclose(task.loss_fn(outputs, y), want, atol=1e-6)


def test_label_smoothing_does_not_pull_rows_toward_the_heavy_class():
    """With smoothing, each row's smoothed loss is weighted by its own class only: a confident,
    correct majority row costs the same whatever weight the minority class has."""
    outputs, y = torch.tensor([[4.0, -4.0]]), torch.tensor([0])
    light, heavy = Task(class_weight=(1.0, 1.0)), Task(class_weight=(1.0, 19.0))
    assert heavy.loss_fn(outputs, y, 0.1) == pytest.approx(float(light.loss_fn(outputs, y, 0.1)))
    assert heavy.loss_fn(outputs, y, 0.1) == pytest.approx(float(F.cross_entropy(outputs, y, label_smoothing=0.1)))


def test_regression_scaling_round_trips_and_distils_by_mse():
    task = Task("regression", "mse", targets=("a", "b"), target_mean=(10.0, -2.0), target_std=(3.0, 0.5))
    y = torch.tensor([[13.0, -1.5], [7.0, -2.0]])
    assert torch.allclose(task.standardise(y), torch.tensor([[1.0, 1.0], [-1.0, 0.0]]))
    assert torch.allclose(task.to_units(task.standardise(y)), y)
    student, teacher = torch.zeros(2, 2), torch.ones(2, 2)
    assert task.teacher_targets(teacher, 4.0) is teacher  # no temperature for values
    assert float(task.distillation_loss(student, teacher, 4.0)) == pytest.approx(1.0)
    assert Task.from_dict(task.to_dict()) == task


def test_a_loss_of_the_other_task_is_refused_in_one_line():
    with pytest.raises(UsageError, match=r"loss=huber applies to regression, and the task is classification"):
        Task().with_loss("huber")
    with pytest.raises(UsageError, match=r"loss=l1 is unknown: use one of \['mse', 'huber'\]"):
        Task("regression", "mse").with_loss("l1")
    assert Task("regression", "mse").with_loss("huber").loss == "huber"


REGRESSION_TASK = Task(kind="regression", loss="huber", targets=("y",), target_mean=(3.0,), target_std=(2.0,))


@pytest.mark.parametrize(
    "task", [Task(), Task(class_weight=(0.5, 9.5)), REGRESSION_TASK], ids=["plain", "weighted", "huber"]
)
def test_chunked_and_stacked_losses_equal_the_training_loss(task):
    """Scoring sums the loss chunk by chunk and divides once; the stand-alone stack sums its nets:
    both must be what `loss_fn` trains by."""
    torch.manual_seed(0)
    if task.is_regression:
        outputs, y = torch.randn(3, 50, 1), torch.randn(50, 1)
    else:
        outputs, y = torch.randn(3, 50, 2), torch.randint(0, 2, (50,))
    each = [task.loss_fn(out, y) for out in outputs]
    chunked = sum(task.summed_loss(outputs[0][i : i + 7], y[i : i + 7]) for i in range(0, 50, 7))
    assert float(chunked) / task.loss_denominator(y) == pytest.approx(float(each[0]), rel=1e-5)
    assert float(task.stacked_loss(outputs, y)) == pytest.approx(float(sum(each)), rel=1e-5)


def test_the_task_decides_its_metric_names_monitor_and_folds():
    import numpy as np

    classes = Task()
    assert (classes.default_metric, classes.headline, classes.monitor) == ("accuracy", "acc", ("val/acc", "max"))
    assert (REGRESSION_TASK.default_metric, REGRESSION_TASK.headline) == ("rmse", "rmse")
    assert REGRESSION_TASK.monitor == ("val/rmse", "min")
    assert (classes.format_value(0.9041), REGRESSION_TASK.format_value(0.123456)) == ("90.41%", "0.1235")
    y = np.array([0] * 30 + [1] * 10)
    for _, held_out in classes.splitter(5, 0).split(np.zeros(40), classes.strata(y)):
        assert (y[held_out] == 1).sum() == 2  # stratified: each fold keeps the 3:1 classes
    assert set(REGRESSION_TASK.strata(y)) == {0.0}
