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
