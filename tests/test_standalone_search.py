"""The ``search=standalone`` evaluator and its wall-clock budget (supernet/evaluation/standalone_search.py).

.venv/bin/python -m pytest tests/test_standalone_search.py -q
"""

from __future__ import annotations

import time

import pytest

from supernet.errors import UsageError
from supernet.evaluation.standalone_search import StandaloneEvaluator, TimeBudget, check_standalone_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_standalone_evaluator_and_time_budget(digits, digits_space):
    settings = check_standalone_config(
        {"time_budget_s": 60, "standalone": {"epochs": 1, "batch_size": None, "cache": None}}, {"batch_size": 64}
    )
    assert settings.recipe.batch_size == 64 and settings.cache is None
    budget = TimeBudget(settings.time_budget_s)
    ev = StandaloneEvaluator(digits_space, digits, settings.recipe, seed=0, time_budget=budget)
    records = ev.evaluate([(32,), (64, 16)])
    assert [set(r) for r in records] == [{"val_acc", "params", "flops"}] * 2
    assert records[1]["params"] == digits_space.params((64, 16))
    ev.evaluate([(32,), (64, 16), (8,)])
    assert ev.n_trained == 3  # the repeats came from the cache
    assert budget() is None and 0 < budget.remaining_s <= 60
    short = TimeBudget(0.01).start()
    time.sleep(0.02)
    assert short() == "time_budget"
    with pytest.raises(UsageError, match="search.time_budget_s=0"):
        check_standalone_config({"time_budget_s": 0})
