"""`supernet.train.op_count` counts the operations of real training steps; what it says about the
supernet's step (the launch cost on a GPU) is checked here on the CPU."""

import pytest
import torch
import torch.nn.functional as F

from supernet.config import trainer_kwargs
from supernet.core.space import SearchSpace
from supernet.data.datasets import load_data
from supernet.train.module import SupernetModule, TensorDataModule, distillation_loss
from supernet.train.op_count import OpCounter, ops_per_step

OPTIM = {"name": "adamw", "lr": 0.005, "schedule": "constant"}


@pytest.fixture(scope="module")
def digits():
    return load_data({"name": "digits"})


def sandwich(bundle, temperature: float = 1.0) -> SupernetModule:
    space = SearchSpace(bundle.in_features, bundle.num_classes, 1, 3, 8, 32, 8)
    sampler = {"name": "sandwich", "n_random": 2, "temperature": temperature}
    return SupernetModule(space.to_dict(), bundle.info(), sampler, OPTIM)


def test_counter_skips_views():
    x = torch.randn(4, 3)
    with OpCounter() as counter:
        x.t().detach()[:2]  # views only: no kernel
        x.relu().sum()
    assert dict(counter.ops) == {"relu": 1, "sum": 1}


@pytest.mark.slow
def test_bf16_autocast_adds_operations_to_a_sandwich_step(digits):
    fp32 = ops_per_step(sandwich(digits), TensorDataModule(digits, 32, 1000, seed=0), "32-true", steps=4)
    bf16 = ops_per_step(sandwich(digits), TensorDataModule(digits, 32, 1000, seed=0), "bf16-mixed", steps=4)
    assert fp32 > 50
    assert bf16 > 1.2 * fp32  # the casts: why trainer.precision=auto is float32


@pytest.mark.slow
def test_temperature_one_skips_the_scaling_kernels(digits):
    at_1 = ops_per_step(sandwich(digits, 1.0), TensorDataModule(digits, 32, 1000, seed=0), steps=4)
    at_2 = ops_per_step(sandwich(digits, 2.0), TensorDataModule(digits, 32, 1000, seed=0), steps=4)
    assert at_1 < at_2


def test_distillation_loss_is_the_scaled_soft_cross_entropy():
    torch.manual_seed(0)
    logits, teacher = torch.randn(16, 10), torch.randn(16, 10)
    for t in (1.0, 2.0, 0.5):
        soft = (teacher / t).softmax(-1)
        expected = F.cross_entropy(logits / t, soft) * t * t
        assert torch.equal(distillation_loss(logits, soft, t), expected)


def test_precision_auto_is_float32_and_bf16_is_on_request():
    assert trainer_kwargs({"precision": "auto", "max_epochs": 1})["precision"] == "32-true"
    assert trainer_kwargs({"precision": "bf16-mixed"})["precision"] == "bf16-mixed"
