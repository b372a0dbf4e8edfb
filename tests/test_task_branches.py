"""Issue 38: outside `supernet/core/`, at most 12 places branch on classification versus regression;
the others ask the `Task` (tests/task_branches.py counts them)."""

from __future__ import annotations

import pytest
import torch
from task_branches import branch_sites

from supernet.core.task import Task, check_class_weight, describe_rows
from supernet.errors import UsageError

MAX_BRANCH_SITES = 12
REGRESSION = Task("regression", "mse", targets=("a", "b"), target_mean=(1.0, -2.0), target_std=(2.0, 0.5))


def test_few_places_outside_core_branch_on_the_task():
    sites = branch_sites()
    assert len(sites) <= MAX_BRANCH_SITES, f"{len(sites)} branch sites on the task's kind:\n" + "\n".join(sites)


def test_the_counter_sees_each_kind_of_branch(tmp_path):
    package = tmp_path / "supernet"
    (package / "core").mkdir(parents=True)
    (package / "core" / "task.py").write_text("if task.is_regression:\n    pass\n")  # core may branch
    (package / "m.py").write_text(
        "if task.is_regression:\n    x = 1\n"
        "y = 1 if kind == 'regression' else 2\n"
        "z = [r for r in rows if r.task.kind == CLASSIFICATION]\n"
        "flag = not task.is_regression\n"
        "ok = task.choose(1, 2)\n"
    )
    assert [s.split(":")[1] for s in branch_sites(package)] == ["1", "3", "4", "5"]


def test_the_task_answers_what_callers_asked_of_its_kind():
    plain = Task()
    assert plain.choose("c", "r") == "c" and REGRESSION.choose("c", "r") == "r"
    assert plain.same_kind("classification") and not plain.same_kind(REGRESSION) and REGRESSION.same_kind(REGRESSION)
    assert plain.num_outputs(["x", "y", "z"]) == 3 and REGRESSION.num_outputs([]) == 2
    assert (plain.min_outputs, REGRESSION.min_outputs) == (2, 1)
    assert not plain.multi_output and REGRESSION.multi_output and not Task("regression", targets=("a",)).multi_output
    assert (plain.outputs_meaning, REGRESSION.outputs_meaning) == ("logits", "values in the targets' units")
    labels = torch.tensor([2, 0, 1])
    assert plain.standardise(labels) is labels  # a classification's labels pass through, as with to_units


def test_for_training_measures_a_regression_and_weighs_a_classification():
    y = torch.tensor([[1.0, 10.0], [3.0, 14.0]])
    task = Task.for_training("regression", y, ["a", "b"])
    assert task == Task("regression", "mse", targets=("a", "b"), target_mean=(2.0, 12.0), target_std=task.target_std)
    assert task.target_std == pytest.approx((2**0.5, 8**0.5))
    assert Task.for_training("regression", y[:1], ["a", "b"]).target_std == (1.0, 1.0)  # one row: std 1
    assert Task.for_training("classification", torch.tensor([0, 1]), weights=(1.0, 2.0)) == Task(
        class_weight=(1.0, 2.0)
    )


def test_fold_scale_folds_to_units_into_the_last_layer_and_back():
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(5, 3)
    with torch.no_grad():
        before = REGRESSION.to_units(layer(x))
        REGRESSION.fold_scale(layer)
        assert torch.allclose(layer(x), before, atol=1e-6)
        REGRESSION.fold_scale(layer, inverse=True)
        assert torch.allclose(REGRESSION.to_units(layer(x)), before, atol=1e-6)
        weight = layer.weight.clone()
        Task().fold_scale(layer)
        assert torch.equal(layer.weight, weight)


def test_predictions_are_values_or_labels():
    import numpy as np

    outputs = torch.tensor([[0.1, 0.9], [2.0, -1.0]])
    assert Task().predictions(outputs, lambda: np.array(["no", "yes"])).tolist() == ["yes", "no"]
    assert REGRESSION.predictions(outputs, lambda: None).tolist() == outputs.tolist()
    assert Task("regression", targets=("a",)).predictions(outputs[:, :1], lambda: None).shape == (2,)


def test_class_weight_and_the_rows_line():
    check_class_weight("classification", "balanced")
    check_class_weight("regression", None)
    with pytest.raises(UsageError, match="applies to classification; the task is regression"):
        check_class_weight("regression", "balanced")
    line = describe_rows(Task(), ["a", "b"], torch.tensor([0, 0, 0, 1]))
    assert line == "2 classes (largest/smallest class in train: 3.00)"
    assert describe_rows(REGRESSION, [], torch.zeros(2, 2)).startswith("task=regression on ['a', 'b']")
